/* SPDX-License-Identifier: MIT
 *
 * map.c -- `arenactl map`: a picture of each pool heap.
 *
 * The daemon sends each pool's extents in address order (arena__admin_map);
 * this file checks that they tile the heap, cuts the heap into equal cells
 * (a power-of-two multiple of the granule, as many as fit in ARENA__CTL_MAP_ROWS
 * rows of the chosen width) and gives each cell the state that holds most of
 * its bytes: a letter per client for its leases, '=' parked, '~' dirty (a
 * released lease waiting for its punch), '.' free, '!' held for a client of a
 * restarted daemon. High addresses are drawn at the top, so the small leases
 * that segregated fit carves from the top of the heap fill the first rows
 * and large leases the last. Under the picture: the legend (client id, pid
 * and name per letter, from the client listing) and the exact byte figures
 * the daemon summed before it merged anything. --json gives the same as one
 * document, built with json-c.
 *
 * A program, not the library: it allocates and prints. It trusts the daemon
 * for what the caller may see, and nothing else: a map that does not tile its
 * heap is refused (ARENA_EPROTOCOL), never drawn. Single-threaded.
 */
#include "ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "admin.h"
#include "paths.h"
#include "size.h"
#include "wire.h"

/* The row label ("%10s |") and the closing '|'. */
#define MAP_LABEL_COLS  13u
#define MAP_COLUMNS_DEF 80u

/* Letters for clients, in client id order; '#' for any after them. */
static const char map_letters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
#define MAP_LETTERS (sizeof(map_letters) - 1)

#define MAP_CH_PARKED  '='
#define MAP_CH_DIRTY   '~'
#define MAP_CH_FREE    '.'
#define MAP_CH_HELD    '!'
#define MAP_CH_OTHER   '#' /* leases of clients past the letters */
#define MAP_CH_UNKNOWN '?' /* a state this arenactl does not know */

static const char *map_state_name(uint32_t state)
{
    switch (state) {
    case ARENA__MAP_FREE:
        return "free";
    case ARENA__MAP_DIRTY:
        return "dirty";
    case ARENA__MAP_LEASED:
        return "leased";
    case ARENA__MAP_PARKED:
        return "parked";
    case ARENA__MAP_HELD:
        return "held";
    default:
        return "unknown";
    }
}

/* The extents tile [0, heap_size) in order, none empty. */
static bool map_tiles(const arena__admin_map_pool_t *p)
{
    uint64_t at = 0;
    for (size_t i = 0; i < p->count; i++) {
        const arena__admin_map_extent_t *e = &p->extents[i];
        if (e->offset != at || e->length == 0 || e->length > p->heap_size - at)
            return false;
        at += e->length;
    }
    return p->heap_size > 0 && at == p->heap_size;
}

static double map_fragmentation(const arena__admin_map_pool_t *p)
{
    uint64_t free_total = p->free_bytes + p->dirty_bytes;
    if (free_total == 0)
        return 0.0;
    double f = 1.0 - (double)p->largest_free / (double)free_total;
    return f < 0.0 ? 0.0 : f;
}

/* ---- clients and letters ---------------------------------------------------------- */

typedef struct map_legend {
    uint64_t ids[MAP_LETTERS]; /* client id of each letter, ascending */
    size_t count;
    bool others; /* more clients than letters */
} map_legend_t;

static int u64_cmp(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return (a > b) - (a < b);
}

/* Letters for the clients holding leased or parked extents of p. */
static void map_legend_build(const arena__admin_map_pool_t *p, map_legend_t *lg)
{
    memset(lg, 0, sizeof(*lg));
    for (size_t i = 0; i < p->count; i++) {
        const arena__admin_map_extent_t *e = &p->extents[i];
        if (e->state != ARENA__MAP_LEASED && e->state != ARENA__MAP_PARKED)
            continue;
        bool seen = false;
        for (size_t k = 0; k < lg->count && !seen; k++)
            seen = lg->ids[k] == e->client_id;
        if (seen)
            continue;
        if (lg->count == MAP_LETTERS) {
            /* Keep the lowest ids: drop the highest if this one is lower. */
            uint64_t *max = &lg->ids[0];
            for (size_t k = 1; k < lg->count; k++)
                max = lg->ids[k] > *max ? &lg->ids[k] : max;
            if (e->client_id < *max)
                *max = e->client_id;
            lg->others = true;
            continue;
        }
        lg->ids[lg->count++] = e->client_id;
    }
    qsort(lg->ids, lg->count, sizeof(lg->ids[0]), u64_cmp);
}

static char map_letter(const map_legend_t *lg, uint64_t client_id)
{
    const uint64_t *hit = bsearch(&client_id, lg->ids, lg->count, sizeof(client_id), u64_cmp);
    return hit ? map_letters[hit - lg->ids] : MAP_CH_OTHER;
}

static char map_char(const map_legend_t *lg, const arena__admin_map_extent_t *e)
{
    switch (e->state) {
    case ARENA__MAP_LEASED:
        return map_letter(lg, e->client_id);
    case ARENA__MAP_PARKED:
        return MAP_CH_PARKED;
    case ARENA__MAP_DIRTY:
        return MAP_CH_DIRTY;
    case ARENA__MAP_FREE:
        return MAP_CH_FREE;
    case ARENA__MAP_HELD:
        return MAP_CH_HELD;
    default:
        return MAP_CH_UNKNOWN;
    }
}

static const arena__admin_client_t *map_client(const arena__admin_clients_t *clients, uint64_t id)
{
    for (size_t i = 0; clients && i < clients->count; i++) {
        if (clients->items[i].client_id == id)
            return &clients->items[i];
    }
    return NULL;
}

/* ---- the picture ------------------------------------------------------------------ */

/* The cell size: the granule doubled until ceil(heap / cell) cells fit in
 * ARENA__CTL_MAP_ROWS rows of width, so a cell is always a whole number of
 * granules and sizes read as round figures. */
static uint64_t map_cell_size(uint64_t heap_size, uint64_t granule, unsigned width)
{
    uint64_t cell = granule ? granule : 4096;
    uint64_t max_cells = (uint64_t)width * ARENA__CTL_MAP_ROWS;
    while (heap_size / cell + (heap_size % cell != 0) > max_cells && cell <= UINT64_MAX / 2)
        cell *= 2;
    return cell;
}

/* Fills cells[0..n) (low addresses first) with the character holding most
 * bytes of each cell; ties go to the lower address. */
static void map_fill_cells(const arena__admin_map_pool_t *p, const map_legend_t *lg, uint64_t cell,
                           char *cells, size_t n)
{
    size_t i = 0;
    for (size_t c = 0; c < n; c++) {
        uint64_t at = (uint64_t)c * cell;
        uint64_t end = p->heap_size - at > cell ? at + cell : p->heap_size;
        char chars[8];
        uint64_t bytes[8];
        size_t kinds = 0;
        for (size_t j = i; j < p->count && p->extents[j].offset < end; j++) {
            const arena__admin_map_extent_t *e = &p->extents[j];
            uint64_t a = e->offset > at ? e->offset : at;
            uint64_t b = e->offset + e->length < end ? e->offset + e->length : end;
            char ch = map_char(lg, e);
            size_t k = 0;
            while (k < kinds && chars[k] != ch)
                k++;
            if (k == kinds) {
                if (kinds == sizeof(chars))
                    continue; /* a ninth kind in one cell cannot outweigh them all */
                chars[kinds] = ch;
                bytes[kinds++] = 0;
            }
            bytes[k] += b - a;
        }
        while (i < p->count && p->extents[i].offset + p->extents[i].length <= end)
            i++;
        size_t best = 0;
        for (size_t k = 1; k < kinds; k++)
            best = bytes[k] > bytes[best] ? k : best;
        cells[c] = kinds ? chars[best] : MAP_CH_UNKNOWN;
    }
}

static const char *map_size(uint64_t bytes, char *buf, size_t len)
{
    return arena__size_format(bytes, buf, len);
}

static int map_print_pool(const arena__admin_map_pool_t *p, const arena__admin_clients_t *clients,
                          unsigned width, FILE *out)
{
    map_legend_t lg;
    map_legend_build(p, &lg);
    uint64_t cell = map_cell_size(p->heap_size, p->granule, width);
    size_t n = (size_t)(p->heap_size / cell + (p->heap_size % cell != 0));
    size_t rows = (n + width - 1) / width;
    char *cells = malloc(n);
    if (!cells)
        return -ENOMEM;
    map_fill_cells(p, &lg, cell, cells, n);

    char a[32], b[32], c[32], d[32], e[32];
    (void)fprintf(out,
                  "pool %" PRIu64 " of uid %" PRIu32 ": %s heap, one cell = %s, %zu x %zu, "
                  "high addresses at the top\n",
                  p->pool, p->uid, map_size(p->heap_size, a, sizeof(a)),
                  map_size(cell, b, sizeof(b)), (size_t)width, rows);
    for (size_t r = rows; r-- > 0;) {
        size_t first = r * width;
        (void)fprintf(out, "%10s |", map_size((uint64_t)first * cell, a, sizeof(a)));
        for (size_t k = 0; k < width; k++)
            (void)fputc(first + k < n ? cells[first + k] : ' ', out);
        (void)fputs("|\n", out);
    }
    free(cells);

    for (size_t k = 0; k < lg.count; k++) {
        const arena__admin_client_t *cl = map_client(clients, lg.ids[k]);
        if (cl)
            (void)fprintf(out, "  %c  client %" PRIu64 ", pid %" PRIu32 ", %s\n", map_letters[k],
                          cl->client_id, cl->pid, cl->name[0] ? cl->name : "(no name)");
        else
            (void)fprintf(out, "  %c  client %" PRIu64 " (gone)\n", map_letters[k], lg.ids[k]);
    }
    if (lg.others)
        (void)fprintf(out, "  %c  leases of clients past the %zu letters\n", MAP_CH_OTHER,
                      (size_t)MAP_LETTERS);
    (void)fprintf(out, "  %c parked   %c dirty (released, waiting for its punch)   %c free",
                  MAP_CH_PARKED, MAP_CH_DIRTY, MAP_CH_FREE);
    if (p->held_bytes)
        (void)fprintf(out, "   %c held for a client of a previous arenad", MAP_CH_HELD);
    (void)fputc('\n', out);
    (void)fprintf(out, "size %s   leased %s   parked %s   dirty %s   free %s",
                  map_size(p->heap_size, a, sizeof(a)), map_size(p->leased_bytes, b, sizeof(b)),
                  map_size(p->parked_bytes, c, sizeof(c)), map_size(p->dirty_bytes, d, sizeof(d)),
                  map_size(p->free_bytes, e, sizeof(e)));
    if (p->held_bytes)
        (void)fprintf(out, "   held %s", map_size(p->held_bytes, a, sizeof(a)));
    (void)fprintf(out, "\nlargest free extent %s   fragmentation %.1f%%\n",
                  map_size(p->largest_free, a, sizeof(a)), 100.0 * map_fragmentation(p));
    if (p->coalesced)
        (void)fprintf(out,
                      "(the daemon merged %" PRIu64 " extents into %zu to fit its frame; the "
                      "figures are exact)\n",
                      p->extents_total, p->count);
    return 0;
}

/* ---- JSON ------------------------------------------------------------------------- */

/* Adds key: v to obj; false when json-c could not allocate. */
static bool jadd(json_object *obj, const char *key, json_object *v)
{
    if (!v)
        return false;
    if (json_object_object_add(obj, key, v) != 0) {
        json_object_put(v);
        return false;
    }
    return true;
}

static bool jpush(json_object *arr, json_object *v)
{
    if (!v)
        return false;
    if (json_object_array_add(arr, v) != 0) {
        json_object_put(v);
        return false;
    }
    return true;
}

static json_object *map_json_pool(const arena__admin_map_pool_t *p)
{
    json_object *o = json_object_new_object();
    json_object *xs = json_object_new_array();
    bool ok = o && xs;
    ok = ok && jadd(o, "uid", json_object_new_uint64(p->uid));
    ok = ok && jadd(o, "pool", json_object_new_uint64(p->pool));
    ok = ok && jadd(o, "heap_size", json_object_new_uint64(p->heap_size));
    ok = ok && jadd(o, "granule", json_object_new_uint64(p->granule));
    ok = ok && jadd(o, "leased_bytes", json_object_new_uint64(p->leased_bytes));
    ok = ok && jadd(o, "parked_bytes", json_object_new_uint64(p->parked_bytes));
    ok = ok && jadd(o, "dirty_bytes", json_object_new_uint64(p->dirty_bytes));
    ok = ok && jadd(o, "free_bytes", json_object_new_uint64(p->free_bytes));
    ok = ok && jadd(o, "held_bytes", json_object_new_uint64(p->held_bytes));
    ok = ok && jadd(o, "largest_free", json_object_new_uint64(p->largest_free));
    ok = ok && jadd(o, "fragmentation", json_object_new_double(map_fragmentation(p)));
    ok = ok && jadd(o, "extents_total", json_object_new_uint64(p->extents_total));
    ok = ok && jadd(o, "coalesced", json_object_new_boolean(p->coalesced));
    for (size_t i = 0; ok && i < p->count; i++) {
        const arena__admin_map_extent_t *e = &p->extents[i];
        json_object *x = json_object_new_object();
        ok = x != NULL;
        ok = ok && jadd(x, "offset", json_object_new_uint64(e->offset));
        ok = ok && jadd(x, "length", json_object_new_uint64(e->length));
        ok = ok && jadd(x, "state", json_object_new_string(map_state_name(e->state)));
        ok = ok && jadd(x, "client_id", json_object_new_uint64(e->client_id));
        if (!ok || !jpush(xs, x)) {
            json_object_put(x);
            ok = false;
        }
    }
    if (ok && jadd(o, "extents", xs))
        return o;
    if (!ok)
        json_object_put(xs);
    json_object_put(o);
    return NULL;
}

static json_object *map_json_client(const arena__admin_client_t *c)
{
    json_object *o = json_object_new_object();
    bool ok = o != NULL;
    ok = ok && jadd(o, "client_id", json_object_new_uint64(c->client_id));
    ok = ok && jadd(o, "pid", json_object_new_uint64(c->pid));
    ok = ok && jadd(o, "uid", json_object_new_uint64(c->uid));
    ok = ok && jadd(o, "name", json_object_new_string(c->name));
    if (ok)
        return o;
    json_object_put(o);
    return NULL;
}

static int map_print_json(const arena__admin_map_t *m, const arena__admin_clients_t *clients,
                          FILE *out)
{
    json_object *doc = json_object_new_object();
    json_object *pools = json_object_new_array();
    json_object *cls = json_object_new_array();
    bool ok = doc && pools && cls;
    for (size_t i = 0; ok && i < m->count; i++)
        ok = jpush(pools, map_json_pool(&m->pools[i]));
    for (size_t i = 0; ok && clients && i < clients->count; i++)
        ok = jpush(cls, map_json_client(&clients->items[i]));
    if (ok) {
        ok = jadd(doc, "pools", pools);
        pools = NULL;
    }
    if (ok) {
        ok = jadd(doc, "clients", cls);
        cls = NULL;
    }
    ok = ok && jadd(doc, "pools_omitted", json_object_new_uint64(m->pools_omitted));
    const char *text = ok ? json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
                                                                    JSON_C_TO_STRING_NOSLASHESCAPE)
                          : NULL;
    int r = text ? 0 : -ENOMEM;
    if (text && fprintf(out, "%s\n", text) < 0)
        r = -EIO;
    json_object_put(pools);
    json_object_put(cls);
    json_object_put(doc);
    return r;
}

/* ---- the command ------------------------------------------------------------------ */

/* Cells per row when no --width is given: the terminal's columns (or 80)
 * less the row label, within the limits. */
static unsigned map_default_width(FILE *out)
{
    unsigned cols = MAP_COLUMNS_DEF;
    struct winsize ws;
    int fd = fileno(out);
    if (fd >= 0 && isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        cols = ws.ws_col;
    unsigned w = cols > MAP_LABEL_COLS ? cols - MAP_LABEL_COLS : ARENA__CTL_MAP_WIDTH_MIN;
    if (w < ARENA__CTL_MAP_WIDTH_MIN)
        w = ARENA__CTL_MAP_WIDTH_MIN;
    return w > ARENA__CTL_MAP_WIDTH_MAX ? ARENA__CTL_MAP_WIDTH_MAX : w;
}

int arena__ctl_map(arena_conn_t *conn, const arena__ctl_map_args_t *args, bool json, FILE *out)
{
    if (!args || !out)
        return -EINVAL;
    unsigned width = args->width ? args->width : map_default_width(out);
    if (width < ARENA__CTL_MAP_WIDTH_MIN || width > ARENA__CTL_MAP_WIDTH_MAX)
        return -EINVAL;
    arena__admin_map_t *m = NULL;
    int r = arena__admin_map(conn, args->by_uid, args->uid, &m);
    if (r < 0)
        return r;
    for (size_t i = 0; i < m->count; i++) {
        if (!map_tiles(&m->pools[i])) {
            arena__admin_map_free(m);
            return ARENA_EPROTOCOL;
        }
    }
    arena__admin_clients_t *clients = NULL;
    r = arena__admin_clients(conn, &clients);
    if (r < 0) {
        arena__admin_map_free(m);
        return r;
    }
    if (json) {
        r = map_print_json(m, clients, out);
    } else {
        for (size_t i = 0; i < m->count && r == 0; i++) {
            if (i > 0)
                (void)fputc('\n', out);
            r = map_print_pool(&m->pools[i], clients, width, out);
        }
        if (r == 0 && m->count == 0)
            (void)fputs("no pools\n", out);
        if (r == 0 && m->pools_omitted)
            (void)fprintf(out,
                          "(%" PRIu32 " more pools left out to fit the daemon's frame; "
                          "use --uid)\n",
                          m->pools_omitted);
    }
    arena__admin_clients_free(clients);
    arena__admin_map_free(m);
    return r;
}

int arena__ctl_run_map(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err)
{
    (void)err; /* the flow reports a failure with the daemon's words */
    arena__ctl_map_args_t m = {.by_uid = a->has_uid, .uid = a->uid, .width = a->width};
    return arena__ctl_map(conn, &m, a->json, out);
}
