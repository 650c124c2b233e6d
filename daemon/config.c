/* SPDX-License-Identifier: MIT
 *
 * config.c -- arenad's settings: embedded defaults, then the --config file,
 * then command-line flags.
 *
 * The file is plain "key = value" lines; '#' starts a comment line; blank lines
 * are ignored; a value may be wrapped in double quotes. SIZE values take 512M,
 * 8G, 1T, a plain byte count, or a percentage of physical RAM ("75%").
 *
 *   key                    default              meaning
 *   socket                 $ARENAD_SOCKET, else /run/arenad/arenad.sock as root,
 *                          else $XDG_RUNTIME_DIR/arenad.sock
 *                                               Unix socket path (restart to change)
 *   budget                 50%                  SIZE: cap on bytes leased by all clients
 *   heap_size              2 x budget           SIZE: address space of each per-uid pool
 *                                               (sparse; restart to change)
 *   small_lease_limit      4M                   SIZE: leases up to this size are placed
 *                                               from the top of the heap (restart to
 *                                               change)
 *   decay_ms               2000                 ms a released extent stays dirty before
 *                                               its pages are punched (0: at once)
 *   parked_decay_ms        1000                 ms a lease may stay parked before the
 *                                               daemon takes it back and punches its
 *                                               pages, without the client's help
 *                                               (0: only when memory is short)
 *   restart_grace_ms       10000                ms a pool adopted after a restart takes
 *                                               claims from re-registering clients
 *                                               before unclaimed space is freed (a
 *                                               reload applies it to pools adopted
 *                                               afterwards)
 *   max_frame              64K                  SIZE: largest request frame (256 .. 16M;
 *                                               restart to change)
 *   frame_timeout_ms       30000                ms a client may leave a frame half-sent,
 *                                               or (throttled, see below) read no reply
 *                                               byte, before it is disconnected (0: never)
 *   max_clients            4096                 connections served at once (synonym:
 *                                               max_connections); never more than
 *                                               RLIMIT_NOFILE allows, less a reserve
 *   max_connections_per_uid 256                 connections one uid may hold at once
 *                                               (0: no cap); root is exempt so an admin
 *                                               can always connect
 *   hello_timeout_ms       10000                ms a new connection may take to send
 *                                               Hello before it is closed (0: never)
 *   max_requests_in_flight 64                   replies queued unwritten for one
 *                                               connection (plus requests the dispatcher
 *                                               holds, ad_conn_set_pending) at which the
 *                                               daemon stops reading it until half have
 *                                               drained (0: no cap)
 *   max_reply_queue        8M                   SIZE: unread reply bytes queued for one
 *                                               connection before it is dropped (64K .. 1G)
 *   max_leases_per_client  65536                leases one connection may hold
 *   max_bytes_per_uid      (none)               SIZE: bytes all clients of one uid may
 *                                               lease together (more is ERROR_LIMIT)
 *   log_level              info                 error | warn | info | debug
 *   socket_mode            0666                 octal permissions of the socket file
 *   socket_group           (the daemon's)       group name or gid owning the socket file
 *   hugetlb                false                back pools with huge pages (MFD_HUGETLB;
 *                                               restart to change)
 *   admin_group            (none)               group name or gid whose members may see
 *                                               all clients and reclaim any pool
 *   weight.UID             1                    fair-share weight of uid UID's clients
 *                                               (1 .. 1000): twice the weight, twice the
 *                                               share when memory is short
 *   cap.UID                (none)               SIZE: the most one client of uid UID may
 *                                               lease (more is ERROR_LIMIT)
 *   guarantee.UID          (none)               SIZE: a fair share of at least this much
 *                                               for each client of uid UID
 *
 * Fair shares (DESIGN.md section 4) are max-min fair over the clients that
 * hold or ask for memory; weights scale them, caps bound them, guarantees
 * floor them. UID is numeric; up to AD_CONFIG_MAX_FAIR uids. Rules apply to
 * clients that connect after a start or reload.
 *
 * Booleans take true/false, yes/no, on/off, 1/0. Unknown keys and bad values
 * are errors naming FILE:LINE; at start-up they stop the daemon (exit 2), at
 * a SIGHUP reload the old settings stay. This module does no I/O besides
 * reading the file and resolving admin_group (NSS), and never logs.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"
#include "size.h"

#define CONFIG_LINE_MAX     4096
#define CONFIG_MIN_FRAME    256u
#define CONFIG_MAX_FRAME    (16ull << 20)
#define CONFIG_MAX_CLIENTS  1000000u
#define CONFIG_MIN_QUEUE    (64ull << 10)
#define CONFIG_MAX_QUEUE    (1ull << 30)
#define CONFIG_MAX_DECAY_MS (24ull * 3600ull * 1000ull)

typedef int (*config_setter_fn)(ad_config_t *cfg, const char *value, char *err, size_t err_len);

static void config_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void config_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    /* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): false positive */
    (void)vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

void ad_config_defaults(ad_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->budget = arena__physical_memory() / 2;
    cfg->heap_size = 0;
    cfg->small_lease_limit = 4ull << 20;
    cfg->decay_ms = 2000;
    cfg->restart_grace_ms = 10000;
    cfg->parked_decay_ms = 1000;
    cfg->max_frame = (uint64_t)ARENA_DEFAULT_MAX_FRAME;
    cfg->frame_timeout_ms = 30000;
    cfg->max_clients = 4096;
    cfg->max_connections_per_uid = 256;
    cfg->hello_timeout_ms = 10000;
    cfg->max_requests_in_flight = 64;
    cfg->max_reply_queue = 8ull << 20;
    cfg->max_leases_per_client = 65536;
    cfg->log_level = AD_LOG_INFO;
    cfg->socket_mode = 0666;
    cfg->hugetlb = false;
}

/* Parses a whole unsigned decimal number in [min, max]. */
static int parse_uint(const char *value, uint64_t min, uint64_t max, uint64_t *ret)
{
    if (!isdigit((unsigned char)value[0]))
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (*end != '\0')
        return -EINVAL;
    if (v < min || v > max)
        return -ERANGE;
    *ret = v;
    return 0;
}

static int parse_size(const char *value, uint64_t min, uint64_t max, uint64_t *ret)
{
    uint64_t v;
    int r = arena__size_parse(value, arena__physical_memory(), &v);
    if (r < 0)
        return r;
    if (v < min || v > max)
        return -ERANGE;
    *ret = v;
    return 0;
}

static int set_socket(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    size_t len = strlen(value);
    if (len == 0 || value[0] != '/') {
        config_err(err, err_len, "socket must be an absolute path");
        return -EINVAL;
    }
    if (len >= sizeof(cfg->socket)) {
        config_err(err, err_len, "socket path longer than %zu bytes", sizeof(cfg->socket) - 1);
        return -ERANGE;
    }
    memcpy(cfg->socket, value, len + 1);
    cfg->set |= AD_CONFIG_SET_SOCKET;
    return 0;
}

static int set_budget(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    int r = parse_size(value, 1, UINT64_MAX / 4, &cfg->budget);
    if (r < 0) {
        config_err(err, err_len, "budget: expected a non-zero size like 512M, 8G or 50%%");
        return r;
    }
    cfg->set |= AD_CONFIG_SET_BUDGET;
    return 0;
}

static int set_heap_size(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    int r = parse_size(value, 1, UINT64_MAX / 4, &cfg->heap_size);
    if (r < 0) {
        config_err(err, err_len, "heap_size: expected a non-zero size like 16G");
        return r;
    }
    cfg->set |= AD_CONFIG_SET_HEAP_SIZE;
    return 0;
}

static int set_small_lease_limit(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    int r = parse_size(value, 0, UINT64_MAX / 4, &cfg->small_lease_limit);
    if (r < 0)
        config_err(err, err_len, "small_lease_limit: expected a size like 4M");
    return r;
}

static int set_decay_ms(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    int r = parse_uint(value, 0, CONFIG_MAX_DECAY_MS, &cfg->decay_ms);
    if (r < 0)
        config_err(err, err_len, "decay_ms: expected milliseconds from 0 to %llu",
                   (unsigned long long)CONFIG_MAX_DECAY_MS);
    return r;
}

static int set_parked_decay(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    int r = parse_uint(value, 0, CONFIG_MAX_DECAY_MS, &cfg->parked_decay_ms);
    if (r < 0)
        config_err(err, err_len, "parked_decay_ms: expected milliseconds from 0 to %llu",
                   (unsigned long long)CONFIG_MAX_DECAY_MS);
    return r;
}

static int set_restart_grace(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    int r = parse_uint(value, 0, CONFIG_MAX_DECAY_MS, &cfg->restart_grace_ms);
    if (r < 0)
        config_err(err, err_len, "restart_grace_ms: expected milliseconds from 0 to %llu",
                   (unsigned long long)CONFIG_MAX_DECAY_MS);
    return r;
}

static int set_max_frame(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    int r = parse_size(value, CONFIG_MIN_FRAME, CONFIG_MAX_FRAME, &cfg->max_frame);
    if (r < 0)
        config_err(err, err_len, "max_frame: expected a size from %u to %llu bytes",
                   CONFIG_MIN_FRAME, (unsigned long long)CONFIG_MAX_FRAME);
    return r;
}

static int set_frame_timeout(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    int r = parse_uint(value, 0, CONFIG_MAX_DECAY_MS, &cfg->frame_timeout_ms);
    if (r < 0)
        config_err(err, err_len, "frame_timeout_ms: expected milliseconds from 0 to %llu",
                   (unsigned long long)CONFIG_MAX_DECAY_MS);
    return r;
}

static int set_max_clients(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    uint64_t v;
    int r = parse_uint(value, 1, CONFIG_MAX_CLIENTS, &v);
    if (r < 0) {
        config_err(err, err_len, "max_clients: expected a number from 1 to %u", CONFIG_MAX_CLIENTS);
        return r;
    }
    cfg->max_clients = (uint32_t)v;
    return 0;
}

static int set_max_per_uid(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    uint64_t v;
    int r = parse_uint(value, 0, CONFIG_MAX_CLIENTS, &v);
    if (r < 0) {
        config_err(err, err_len, "max_connections_per_uid: expected a number from 0 to %u",
                   CONFIG_MAX_CLIENTS);
        return r;
    }
    cfg->max_connections_per_uid = (uint32_t)v;
    return 0;
}

static int set_hello_timeout(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    int r = parse_uint(value, 0, CONFIG_MAX_DECAY_MS, &cfg->hello_timeout_ms);
    if (r < 0)
        config_err(err, err_len, "hello_timeout_ms: expected milliseconds from 0 to %llu",
                   (unsigned long long)CONFIG_MAX_DECAY_MS);
    return r;
}

static int set_max_in_flight(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    uint64_t v;
    int r = parse_uint(value, 0, 1000000, &v);
    if (r < 0) {
        config_err(err, err_len, "max_requests_in_flight: expected a number from 0 to 1000000");
        return r;
    }
    cfg->max_requests_in_flight = (uint32_t)v;
    return 0;
}

static int set_max_reply_queue(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    int r = parse_size(value, CONFIG_MIN_QUEUE, CONFIG_MAX_QUEUE, &cfg->max_reply_queue);
    if (r < 0)
        config_err(err, err_len, "max_reply_queue: expected a size from 64K to 1G");
    return r;
}

static int set_max_bytes_per_uid(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    int r = parse_size(value, 0, UINT64_MAX / 4, &cfg->max_bytes_per_uid);
    if (r < 0)
        config_err(err, err_len, "max_bytes_per_uid: expected a size like 4G or 25%% (0: no cap)");
    return r;
}

static int set_max_leases(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    uint64_t v;
    int r = parse_uint(value, 1, UINT32_MAX, &v);
    if (r < 0) {
        config_err(err, err_len, "max_leases_per_client: expected a number from 1 to %u",
                   UINT32_MAX);
        return r;
    }
    cfg->max_leases_per_client = (uint32_t)v;
    return 0;
}

static int set_log_level(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    int r = ad_log_level_parse(value, &cfg->log_level);
    if (r < 0)
        config_err(err, err_len, "log_level: expected error, warn, info or debug");
    return r;
}

static int set_socket_mode(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    size_t len = strlen(value);
    bool ok = len > 0 && len <= 4;
    for (size_t i = 0; ok && i < len; i++)
        ok = value[i] >= '0' && value[i] <= '7';
    if (!ok) {
        config_err(err, err_len, "socket_mode: expected octal permissions like 0660");
        return -EINVAL;
    }
    unsigned long mode = strtoul(value, NULL, 8);
    if (mode > 0777) {
        config_err(err, err_len, "socket_mode: only permission bits (at most 0777)");
        return -ERANGE;
    }
    cfg->socket_mode = (uint32_t)mode;
    return 0;
}

static int set_hugetlb(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            cfg->hugetlb = true;
            return 0;
        }
        if (strcasecmp(value, no[i]) == 0) {
            cfg->hugetlb = false;
            return 0;
        }
    }
    config_err(err, err_len, "hugetlb: expected true or false");
    return -EINVAL;
}

/* A group name or gid into *gid and *has ("" clears it). */
static int set_group(const char *key, const char *value, gid_t *gid, bool *has, char *err,
                     size_t err_len)
{
    uint64_t n;
    if (value[0] == '\0') {
        *has = false;
        return 0;
    }
    if (parse_uint(value, 0, (gid_t)-1 - 1, &n) == 0) {
        *gid = (gid_t)n;
        *has = true;
        return 0;
    }
    struct group grp, *found = NULL;
    char buf[4096];
    int r = getgrnam_r(value, &grp, buf, sizeof(buf), &found);
    if (r != 0 || !found) {
        config_err(err, err_len, "%s: no group named '%s'", key, value);
        return -EINVAL;
    }
    *gid = found->gr_gid;
    *has = true;
    return 0;
}

static int set_admin_group(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    return set_group("admin_group", value, &cfg->admin_gid, &cfg->has_admin_group, err, err_len);
}

static int set_socket_group(ad_config_t *cfg, const char *value, char *err, size_t err_len)
{
    return set_group("socket_group", value, &cfg->socket_gid, &cfg->has_socket_group, err, err_len);
}

static const struct {
    const char *key;
    config_setter_fn set;
} config_keys[] = {
    {"socket", set_socket},
    {"budget", set_budget},
    {"heap_size", set_heap_size},
    {"small_lease_limit", set_small_lease_limit},
    {"decay_ms", set_decay_ms},
    {"parked_decay_ms", set_parked_decay},
    {"restart_grace_ms", set_restart_grace},
    {"max_frame", set_max_frame},
    {"frame_timeout_ms", set_frame_timeout},
    {"max_clients", set_max_clients},
    {"max_connections_per_uid", set_max_per_uid},
    {"hello_timeout_ms", set_hello_timeout},
    {"max_requests_in_flight", set_max_in_flight},
    {"max_reply_queue", set_max_reply_queue},
    {"max_leases_per_client", set_max_leases},
    {"max_bytes_per_uid", set_max_bytes_per_uid},
    {"log_level", set_log_level},
    {"socket_mode", set_socket_mode},
    {"hugetlb", set_hugetlb},
    {"admin_group", set_admin_group},
    {"socket_group", set_socket_group},
};

/* weight.UID, cap.UID, guarantee.UID. Returns 1 when key is not one. */
static int set_fair(ad_config_t *cfg, const char *key, const char *value, char *err, size_t err_len)
{
    static const char *const kinds[] = {"weight.", "cap.", "guarantee."};
    int kind = -1;
    const char *rest = NULL;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(kinds[i]);
        if (strncmp(key, kinds[i], n) == 0) {
            kind = i;
            rest = key + n;
        }
    }
    if (kind < 0)
        return 1;
    char *end = NULL;
    errno = 0;
    unsigned long long uid = strtoull(rest, &end, 10);
    if (!*rest || *end || errno || uid >= (unsigned long long)(uid_t)-1 || *rest == '-') {
        config_err(err, err_len, "%.32s: expected a numeric uid after the dot", key);
        return -EINVAL;
    }
    ad_fair_rule_t *rule = NULL;
    for (size_t i = 0; i < cfg->fair_count; i++) {
        if (cfg->fair[i].uid == (uid_t)uid)
            rule = &cfg->fair[i];
    }
    if (!rule) {
        if (cfg->fair_count >= AD_CONFIG_MAX_FAIR) {
            config_err(err, err_len, "%.32s: at most %d uids may have fair-share rules", key,
                       AD_CONFIG_MAX_FAIR);
            return -ERANGE;
        }
        rule = &cfg->fair[cfg->fair_count++];
        memset(rule, 0, sizeof(*rule));
        rule->uid = (uid_t)uid;
    }
    if (kind == 0) {
        errno = 0;
        unsigned long w = strtoul(value, &end, 10);
        if (!*value || *end || errno || w < 1 || w > 1000) {
            config_err(err, err_len, "%.32s: expected a weight from 1 to 1000", key);
            return -EINVAL;
        }
        rule->weight = (uint32_t)w;
        return 0;
    }
    uint64_t v;
    if (parse_size(value, 1, UINT64_MAX / 4, &v) < 0) {
        config_err(err, err_len, "%.32s: expected a SIZE such as 512M, 8G or 10%%", key);
        return -EINVAL;
    }
    if (kind == 1)
        rule->cap = v;
    else
        rule->guarantee = v;
    return 0;
}

int ad_config_set(ad_config_t *cfg, const char *key, const char *value, char *err, size_t err_len)
{
    if (!cfg || !key || !value) {
        config_err(err, err_len, "missing key or value");
        return -EINVAL;
    }
    if (strchr(key, '.')) {
        ad_config_t tmp = *cfg;
        int f = set_fair(&tmp, key, value, err, err_len);
        if (f <= 0) {
            if (f == 0)
                *cfg = tmp;
            return f;
        }
    }
    if (strcmp(key, "max_connections") == 0)
        key = "max_clients"; /* an older name of the same limit, still accepted */
    for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++) {
        if (strcmp(key, config_keys[i].key) != 0)
            continue;
        ad_config_t tmp = *cfg;
        int r = config_keys[i].set(&tmp, value, err, err_len);
        if (r < 0)
            return r;
        *cfg = tmp;
        return 0;
    }
    config_err(err, err_len, "unknown key '%.64s'", key);
    return -ENOENT;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    return s;
}

/* Splits one line into key and value in place. Returns 1 for a setting, 0 for
 * a blank or comment line, -EINVAL for anything else. */
static int config_split(char *line, char **ret_key, char **ret_value)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#')
        return 0;
    char *eq = strchr(s, '=');
    if (!eq)
        return -EINVAL;
    *eq = '\0';
    char *key = trim(s);
    char *value = trim(eq + 1);
    if (*key == '\0')
        return -EINVAL;
    size_t vlen = strlen(value);
    if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
        value[vlen - 1] = '\0';
        value++;
    } else if (vlen >= 1 && value[0] == '"') {
        return -EINVAL;
    }
    *ret_key = key;
    *ret_value = value;
    return 1;
}

int ad_config_load(ad_config_t *cfg, const char *path, char *err, size_t err_len)
{
    if (!cfg || !path) {
        config_err(err, err_len, "no configuration file given");
        return -EINVAL;
    }
    FILE *f = fopen(path, "re");
    if (!f) {
        int r = -errno;
        config_err(err, err_len, "%s: %s", path, ad_errstr(r));
        return r;
    }
    ad_config_t tmp = *cfg;
    char line[CONFIG_LINE_MAX];
    char why[AD_CONFIG_ERR_MAX];
    unsigned lineno = 0;
    int r = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n' && !feof(f)) {
            config_err(err, err_len, "%s:%u: line longer than %d bytes", path, lineno,
                       CONFIG_LINE_MAX - 2);
            r = -EINVAL;
            goto out;
        }
        char *key, *value;
        int kind = config_split(line, &key, &value);
        if (kind < 0) {
            config_err(err, err_len, "%s:%u: expected 'key = value'", path, lineno);
            r = -EINVAL;
            goto out;
        }
        if (kind == 0)
            continue;
        r = ad_config_set(&tmp, key, value, why, sizeof(why));
        if (r < 0) {
            config_err(err, err_len, "%s:%u: %s", path, lineno, why);
            goto out;
        }
    }
    if (ferror(f)) {
        r = -EIO;
        config_err(err, err_len, "%s: read error", path);
        goto out;
    }
    *cfg = tmp;
out:
    (void)fclose(f);
    return r;
}

int ad_config_finalize(ad_config_t *cfg, char *err, size_t err_len)
{
    if (!cfg)
        return -EINVAL;
    ad_config_t tmp = *cfg;
    if (tmp.budget == 0) {
        config_err(err, err_len, "budget is 0 (physical memory unknown?): set --budget");
        return -EINVAL;
    }
    if (tmp.heap_size == 0) {
        if (tmp.budget > UINT64_MAX / 2) {
            config_err(err, err_len, "budget too large");
            return -ERANGE;
        }
        tmp.heap_size = 2 * tmp.budget;
    }
    if (tmp.socket[0] == '\0') {
        int r = arena__default_socket_path(tmp.socket, sizeof(tmp.socket));
        if (r < 0) {
            config_err(err, err_len,
                       "no socket path: use --socket, $ARENAD_SOCKET or $XDG_RUNTIME_DIR (%s)",
                       ad_errstr(r));
            return r;
        }
    }
    *cfg = tmp;
    return 0;
}

void ad_config_leases(const ad_config_t *cfg, ad_leases_config_t *ret_config)
{
    *ret_config = (ad_leases_config_t){
        .budget = cfg->budget,
        .heap_size = cfg->heap_size,
        .small_limit = cfg->small_lease_limit,
        .decay_ms = cfg->decay_ms,
        .hugetlb = cfg->hugetlb,
        .max_leases_per_client = cfg->max_leases_per_client,
        .max_bytes_per_uid = cfg->max_bytes_per_uid,
        .restart_grace_ms = cfg->restart_grace_ms,
        .parked_decay_ms = cfg->parked_decay_ms,
        .fair_rules = cfg->fair_count > 0 ? cfg->fair : NULL,
        .fair_rule_count = cfg->fair_count,
    };
}

unsigned ad_config_reload(ad_config_t *cur, const ad_config_t *next)
{
    unsigned restart = 0;
    if (strcmp(next->socket, cur->socket) != 0)
        restart |= AD_CONFIG_RESTART_SOCKET;
    /* Derived or given: the pools made at start keep the size they have. */
    if (next->heap_size != cur->heap_size)
        restart |= AD_CONFIG_RESTART_HEAP_SIZE;
    if (next->small_lease_limit != cur->small_lease_limit)
        restart |= AD_CONFIG_RESTART_SMALL_LEASE_LIMIT;
    if (next->hugetlb != cur->hugetlb)
        restart |= AD_CONFIG_RESTART_HUGETLB;
    if (next->max_frame != cur->max_frame)
        restart |= AD_CONFIG_RESTART_MAX_FRAME;

    cur->budget = next->budget;
    cur->decay_ms = next->decay_ms;
    cur->restart_grace_ms = next->restart_grace_ms;
    cur->parked_decay_ms = next->parked_decay_ms;
    cur->max_clients = next->max_clients;
    /* Connection limits: new connections get the new ones (existing
     * connections keep max_requests_in_flight and max_reply_queue). */
    cur->max_connections_per_uid = next->max_connections_per_uid;
    cur->max_requests_in_flight = next->max_requests_in_flight;
    cur->max_reply_queue = next->max_reply_queue;
    cur->frame_timeout_ms = next->frame_timeout_ms;
    cur->hello_timeout_ms = next->hello_timeout_ms;
    cur->max_leases_per_client = next->max_leases_per_client;
    cur->max_bytes_per_uid = next->max_bytes_per_uid;
    cur->log_level = next->log_level;
    cur->has_admin_group = next->has_admin_group;
    cur->admin_gid = next->admin_gid;
    /* Weights, caps and guarantees: for clients that connect from now on. */
    memcpy(cur->fair, next->fair, sizeof(cur->fair));
    cur->fair_count = next->fair_count;
    return restart;
}

const char *ad_config_restart_key(unsigned bit)
{
    switch (bit) {
    case AD_CONFIG_RESTART_SOCKET:
        return "socket";
    case AD_CONFIG_RESTART_HEAP_SIZE:
        return "heap_size";
    case AD_CONFIG_RESTART_SMALL_LEASE_LIMIT:
        return "small_lease_limit";
    case AD_CONFIG_RESTART_HUGETLB:
        return "hugetlb";
    case AD_CONFIG_RESTART_MAX_FRAME:
        return "max_frame";
    default:
        return NULL;
    }
}
