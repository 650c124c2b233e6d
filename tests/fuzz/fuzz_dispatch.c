/* SPDX-License-Identifier: MIT
 *
 * fuzz_dispatch.c -- the daemon's connection, frame decoder and dispatcher
 * under arbitrary input, in one process over socketpairs.
 *
 * Each input is a script of chunks, [op][len lo][len hi][len bytes], run
 * against a fresh lease manager, admin view and dispatcher on a real libuv
 * loop (the same wiring as tests/unit/test_dispatch.c and daemon/server.c).
 * The ops write raw bytes, wrap the bytes as one frame (an Envelope payload
 * as far as the daemon knows), attach descriptors (memfd, pipe end,
 * /dev/null) with SCM_RIGHTS, send a well-formed request built from the
 * bytes, announce a bogus frame length, run the loop, switch between a few
 * peers and close them. A script is a fuzz input; tests/fuzz/gen_corpus.c
 * writes the seeds in tests/fuzz/corpus/.
 *
 * After every op the lease manager must be consistent: its validator holds
 * and its leased bytes equal the sum over its leases. Once every peer is
 * closed the manager holds no client, lease or waiter, and after teardown
 * the process holds exactly the descriptors it held before the input (the
 * daemon side closes every stray fd it receives and every socket it owns).
 * A broken invariant aborts, which libFuzzer reports as a crash.
 *
 * Built by clang with -fsanitize=fuzzer this is a libFuzzer target; built
 * without it (ARENA_FUZZ_REPLAY), main() replays the files and directories
 * named on the command line (skipping *.md notes), then a few thousand
 * seeded random scripts (FUZZ_REPLAY_RANDOM=N for another number), so the
 * corpus runs as an ordinary test under gcc. Single-threaded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "admin.h"
#include "arena.pb-c.h"
#include "conn.h"
#include "dispatch.h"
#include "fdpass.h"
#include "fuzz_ops.h"
#include "lease.h"
#include "log.h"

#define MiB       (1ull << 20)
#define NPEERS    4
#define MAX_FRAME 4096

/* Aborts with a message: an invariant of the daemon broke. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            (void)fprintf(stderr, "fuzz_dispatch: %s:%d: invariant failed: %s\n", __FILE__,        \
                          __LINE__, #cond);                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct peer {
    int fd;      /* the fuzzer's end; -1 when not open */
    bool open;   /* the daemon side exists (on_close has not run) */
    bool closed; /* on_close ran */
} peer_t;

typedef struct fuzz_state {
    uv_loop_t loop;
    ad_leases_t *mgr;
    ad_admin_t *adm;
    ad_dispatch_t *disp;
    peer_t peers[NPEERS];
    unsigned cur;
    int open_conns;
    uint64_t skew_ms; /* FUZZ_OP_PUMP moves the clock ahead; it never goes back */
    int pool_fd;      /* a pool memfd the daemon handed out (kept to hand back), or -1 */
    char token[64];   /* the last share token the daemon gave any peer ("" none) */
} fuzz_state_t;

static fuzz_state_t S;
static uint64_t total_granted;         /* leases granted over all inputs */
static uint64_t total_protocol_errors; /* protocol errors over all inputs */
static uint64_t total_attaches;        /* successful attaches over all inputs */

/* The daemon's clock: the loop's, plus the time the script skipped. */
static uint64_t fuzz_now(void)
{
    return uv_now(&S.loop) + S.skew_ms;
}

static void cb_frame(ad_conn_t *conn, const uint8_t *payload, size_t len, int fd, void *ctx)
{
    (void)ctx;
    ad_session_frame(ad_conn_get_data(conn), payload, len, fd, fuzz_now());
    (void)ad_dispatch_serve_waiters(S.disp, fuzz_now());
}

static void cb_oversize(ad_conn_t *conn, size_t len, void *ctx)
{
    (void)ctx;
    ad_session_oversize(ad_conn_get_data(conn), len);
}

static void cb_close(ad_conn_t *conn, int reason, void *ctx)
{
    peer_t *p = ctx;
    ad_session_free(ad_conn_get_data(conn), reason, fuzz_now());
    (void)ad_dispatch_serve_waiters(S.disp, fuzz_now());
    p->open = false;
    p->closed = true;
    S.open_conns--;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    (void)closedir(d);
    return n - 1; /* the directory's own fd */
}

static void pump(void)
{
    for (int i = 0; i < 4; i++)
        (void)uv_run(&S.loop, UV_RUN_NOWAIT);
}

/* Remembers the token of every ShareReply among the whole frames at the
 * start of buf (a frame cut by the read is skipped: best effort). */
static void note_tokens(const uint8_t *buf, size_t n)
{
    size_t at = 0;
    while (n - at >= 4) {
        size_t len = (size_t)buf[at] | (size_t)buf[at + 1] << 8 | (size_t)buf[at + 2] << 16 |
                     (size_t)buf[at + 3] << 24;
        if (len > n - at - 4)
            return;
        Arena__V1__Envelope *env = arena__v1__envelope__unpack(NULL, len, buf + at + 4);
        if (env && env->body_case == ARENA__V1__ENVELOPE__BODY_SHARE_REPLY &&
            env->share_reply->token)
            (void)snprintf(S.token, sizeof(S.token), "%s", env->share_reply->token);
        if (env)
            arena__v1__envelope__free_unpacked(env, NULL);
        at += 4 + len;
    }
}

/* Reads and drops whatever the daemon sent to p, closing passed fds. */
static void drain(peer_t *p)
{
    if (p->fd < 0)
        return;
    for (;;) {
        uint8_t buf[16384];
        /* A HelloReply's first fd is the pool: kept once, to hand back. */
        ssize_t n = arena__recv_with_fds(p->fd, buf, sizeof(buf), &S.pool_fd, 1, MSG_DONTWAIT);
        if (n <= 0)
            return;
        note_tokens(buf, (size_t)n);
    }
}

static void peer_open(peer_t *p)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
    static const ad_conn_callbacks_t cbs = {
        .on_frame = cb_frame, .on_oversize = cb_oversize, .on_close = cb_close};
    ad_conn_limits_t limits = {.max_frame = MAX_FRAME, .max_queued = 256 * 1024};
    ad_conn_t *conn;
    p->fd = sv[1];
    p->open = true;
    p->closed = false;
    CHECK(ad_conn_new(&S.loop, sv[0], &limits, &cbs, p, &conn) == 0);
    ad_session_t *session;
    CHECK(ad_session_new(S.disp, conn, &session) == 0);
    ad_conn_set_data(conn, session);
    S.open_conns++;
}

/* Closes the fuzzer's end and runs the loop until the daemon side is gone. */
static void peer_close(peer_t *p)
{
    if (p->fd >= 0) {
        drain(p);
        (void)close(p->fd);
    }
    p->fd = -1;
    for (int i = 0; i < 1000 && p->open; i++)
        pump();
    CHECK(!p->open);
}

/* The current peer, (re)opened when the daemon side is gone. */
static peer_t *peer_cur(void)
{
    peer_t *p = &S.peers[S.cur];
    if (p->fd >= 0 && p->closed) {
        drain(p);
        (void)close(p->fd);
        p->fd = -1;
    }
    if (p->fd < 0)
        peer_open(p);
    return p;
}

/* Sends len bytes (and fds with the first byte), pumping the loop and
 * draining replies while the socket is full. Gives up when the daemon side
 * closes or after a bounded number of tries. */
static void peer_send(peer_t *p, const void *buf, size_t len, const int *fds, size_t nfds)
{
    const uint8_t *b = buf;
    size_t left = len;
    for (int tries = 0; tries < 64 && (left > 0 || nfds > 0); tries++) {
        uint8_t zero = 0;
        ssize_t n = arena__send_with_fds(p->fd, left > 0 ? (const void *)b : &zero,
                                         left > 0 ? left : 1, fds, nfds, NULL, 0, MSG_DONTWAIT);
        if (n == -EAGAIN || n == -EWOULDBLOCK) {
            pump();
            drain(p);
            if (p->closed)
                return;
            continue;
        }
        if (n < 0)
            return; /* EPIPE, ECONNRESET: the daemon side closed */
        nfds = 0;
        if (left > 0) {
            b += n;
            left -= (size_t)n;
        }
    }
}

static void put_le32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

/* One frame: the 4-byte length then payload. */
static void send_frame(peer_t *p, const uint8_t *payload, size_t len, const int *fds, size_t nfds)
{
    uint8_t *buf = malloc(4 + len);
    CHECK(buf != NULL);
    put_le32(buf, (uint32_t)len);
    if (len > 0)
        memcpy(buf + 4, payload, len);
    peer_send(p, buf, 4 + len, fds, nfds);
    free(buf);
}

static void send_env(peer_t *p, const Arena__V1__Envelope *env)
{
    size_t len = arena__v1__envelope__get_packed_size(env);
    uint8_t *buf = malloc(len + 1);
    CHECK(buf != NULL);
    (void)arena__v1__envelope__pack(env, buf);
    send_frame(p, buf, len, NULL, 0);
    free(buf);
}

static uint64_t get_u64(const uint8_t *b, size_t len, size_t at)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8 && at + i < len; i++)
        v |= (uint64_t)b[at + i] << (8 * i);
    return v;
}

/* A well-formed request of the kind b[0] selects, arguments from the rest. */
static void send_request(peer_t *p, const uint8_t *b, size_t len)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
    Arena__V1__LeaseRequest lease = ARENA__V1__LEASE_REQUEST__INIT;
    Arena__V1__ReleaseRequest release = ARENA__V1__RELEASE_REQUEST__INIT;
    Arena__V1__StatusRequest status = ARENA__V1__STATUS_REQUEST__INIT;
    Arena__V1__ListClientsRequest clients = ARENA__V1__LIST_CLIENTS_REQUEST__INIT;
    Arena__V1__ListLeasesRequest leases = ARENA__V1__LIST_LEASES_REQUEST__INIT;
    Arena__V1__ReclaimRequest reclaim = ARENA__V1__RECLAIM_REQUEST__INIT;
    Arena__V1__MetricsRequest metrics = ARENA__V1__METRICS_REQUEST__INIT;
    Arena__V1__EventsRequest events = ARENA__V1__EVENTS_REQUEST__INIT;
    Arena__V1__ClaimRequest claim = ARENA__V1__CLAIM_REQUEST__INIT;
    Arena__V1__LeaseClaim claims[4];
    Arena__V1__LeaseClaim *claim_ptrs[4];
    Arena__V1__ShareRequest share = ARENA__V1__SHARE_REQUEST__INIT;
    Arena__V1__AttachRequest attach = ARENA__V1__ATTACH_REQUEST__INIT;
    Arena__V1__UnshareRequest unshare = ARENA__V1__UNSHARE_REQUEST__INIT;
    char token[96];
    char name[17];
    uint8_t kind = len > 0 ? b[0] : 0;
    uint64_t arg = get_u64(b, len, 1);
    uint64_t arg2 = get_u64(b, len, 9);
    env.request_id = get_u64(b, len, 17);
    switch (kind % FUZZ_REQ_COUNT) {
    case FUZZ_REQ_HELLO:
        hello.protocol_version = (uint32_t)(arg % 4);
        hello.notifications = (arg2 & 1) != 0;
        hello.reattach = (arg2 & 2) != 0;
        memset(name, 0, sizeof(name));
        for (size_t i = 0; i < 16 && 25 + i < len; i++)
            name[i] = (char)b[25 + i];
        hello.client_name = name;
        env.body_case = ARENA__V1__ENVELOPE__BODY_HELLO;
        env.hello = &hello;
        break;
    case FUZZ_REQ_LEASE:
        /* Mostly sizes that fit the budget, sometimes anything. */
        lease.size = (arg2 & 0x100) ? arg : arg % (80 * MiB);
        lease.wait_ms = (int32_t)(arg2 & 0xff) - 8;
        lease.flags = (arg2 & 0x200) ? 1 : 0;
        env.body_case = ARENA__V1__ENVELOPE__BODY_LEASE;
        env.lease = &lease;
        break;
    case FUZZ_REQ_RELEASE:
        release.lease_id = (arg2 & 1) ? arg : arg % 64;
        env.body_case = ARENA__V1__ENVELOPE__BODY_RELEASE;
        env.release = &release;
        break;
    case FUZZ_REQ_STATUS:
        env.body_case = ARENA__V1__ENVELOPE__BODY_STATUS;
        env.status = &status;
        break;
    case FUZZ_REQ_CLIENTS:
        env.body_case = ARENA__V1__ENVELOPE__BODY_LIST_CLIENTS;
        env.list_clients = &clients;
        break;
    case FUZZ_REQ_LEASES:
        leases.client_id = arg % 8;
        env.body_case = ARENA__V1__ENVELOPE__BODY_LIST_LEASES;
        env.list_leases = &leases;
        break;
    case FUZZ_REQ_RECLAIM:
        reclaim.bytes = arg;
        reclaim.client_id = arg2 % 8;
        env.body_case = ARENA__V1__ENVELOPE__BODY_RECLAIM;
        env.reclaim = &reclaim;
        break;
    case FUZZ_REQ_METRICS:
        env.body_case = ARENA__V1__ENVELOPE__BODY_METRICS;
        env.metrics = &metrics;
        break;
    case FUZZ_REQ_EVENTS:
        events.since = arg;
        events.max = (uint32_t)arg2;
        env.body_case = ARENA__V1__ENVELOPE__BODY_EVENTS;
        env.events = &events;
        break;
    case FUZZ_REQ_CLAIM:
        /* 1-4 claims: granule-aligned offsets in the pool and sizes of 4 KiB
         * to 512 KiB, or (arg2 & 1) anything. */
        claim.n_claims = 1 + (arg2 >> 8) % 4;
        for (size_t i = 0; i < claim.n_claims; i++) {
            arena__v1__lease_claim__init(&claims[i]);
            uint64_t off = arg + i * (arg2 >> 16);
            claims[i].lease_id = i + 1;
            claims[i].offset = (arg2 & 1) ? off : (off % (128 * MiB)) & ~(uint64_t)4095;
            claims[i].size = (arg2 & 1) ? arg2 : (uint64_t)4096 << ((arg2 >> 4) % 8);
            claim_ptrs[i] = &claims[i];
        }
        claim.claims = claim_ptrs;
        env.body_case = ARENA__V1__ENVELOPE__BODY_CLAIM;
        env.claim = &claim;
        break;
    case FUZZ_REQ_SHARE:
        share.lease_id = arg % 64;
        share.flags = (uint32_t)(arg2 & 0xff);
        share.restrict_uid = (arg2 & 0x100) != 0;
        share.uid = (uint32_t)(arg2 >> 32);
        env.body_case = ARENA__V1__ENVELOPE__BODY_SHARE;
        env.share = &share;
        break;
    case FUZZ_REQ_ATTACH:
    case FUZZ_REQ_UNSHARE: {
        size_t tl = strlen(S.token);
        memcpy(token, S.token, tl + 1);
        if ((arg & 3) == 1 && tl > 0) {
            /* A byte that differs (a forgery), whatever arg2 asks for. */
            size_t at = (arg >> 8) % tl;
            char c = (char)(arg2 & 0xff ? arg2 & 0xff : '0');
            token[at] = token[at] != c ? c : (c == '0' ? '1' : '0');
        } else if ((arg & 3) == 2 && tl > 0) {
            token[arg2 % tl] = '\0';
        } else if ((arg & 3) == 3) {
            size_t k = 0;
            for (; k + 1 < sizeof(token) && 25 + k < len && b[25 + k] != 0; k++)
                token[k] = (char)b[25 + k];
            token[k] = '\0';
        }
        if (kind % FUZZ_REQ_COUNT == FUZZ_REQ_ATTACH) {
            attach.token = token;
            env.body_case = ARENA__V1__ENVELOPE__BODY_ATTACH;
            env.attach = &attach;
        } else {
            unshare.token = token;
            env.body_case = ARENA__V1__ENVELOPE__BODY_UNSHARE;
            env.unshare = &unshare;
        }
        break;
    }
    default:
        /* A reply or notification sent to the daemon: a protocol error. */
        env.body_case = ARENA__V1__ENVELOPE__BODY_STATUS_REPLY;
        {
            static Arena__V1__StatusReply reply = ARENA__V1__STATUS_REPLY__INIT;
            env.status_reply = &reply;
            send_env(p, &env);
        }
        return;
    }
    send_env(p, &env);
}

/* Opens 1..3 descriptors of the kinds sel picks, for SCM_RIGHTS. */
/* A memfd that passes for a pool of this uid (named and sealed as arenad
 * makes them), so a re-registering hello adopts it. */
static int fake_pool(void)
{
    char name[48];
    (void)snprintf(name, sizeof(name), "arenad-pool-uid%lu", (unsigned long)getuid());
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, (off_t)(64 * MiB)) == 0);
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
    return fd;
}

static size_t make_fds(uint8_t sel, int *fds)
{
    size_t n = 1 + sel % 3;
    for (size_t i = 0; i < n; i++) {
        switch (((unsigned)(sel >> 2) + (unsigned)i * 3u) % 5u) {
        case 0:
            fds[i] = memfd_create("fuzz", MFD_CLOEXEC);
            break;
        case 3:
            fds[i] = fake_pool();
            break;
        case 4:
            /* The pool the daemon handed out, if any: handing it back. */
            fds[i] = S.pool_fd >= 0 ? fcntl(S.pool_fd, F_DUPFD_CLOEXEC, 0) : fake_pool();
            break;
        case 1: {
            int pfd[2];
            CHECK(pipe2(pfd, O_CLOEXEC) == 0);
            (void)close(pfd[1]);
            fds[i] = pfd[0];
            break;
        }
        default:
            fds[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
            break;
        }
        CHECK(fds[i] >= 0);
    }
    return n;
}

typedef struct sum_ctx {
    uint64_t bytes;
    uint64_t count;
} sum_ctx_t;

static int sum_lease(void *ctx, const ad_lease_view_t *view)
{
    sum_ctx_t *s = ctx;
    /* A shared extent counts once, in its charged holder's lease. */
    if (view->charged)
        s->bytes += view->size;
    s->count++;
    return 0;
}

static void check_manager(void)
{
    CHECK(ad_leases_is_valid(S.mgr));
    ad_leases_stats_t st;
    ad_leases_stats(S.mgr, &st);
    sum_ctx_t sum = {0, 0};
    (void)ad_leases_foreach_lease(S.mgr, 0, sum_lease, &sum);
    CHECK(sum.bytes == st.leased_bytes);
    CHECK(sum.count == st.leases);
    /* Grants never pass the budget; claims after a restart may (the data
     * exists: a client that comes back is never refused for the budget). */
    ad_leases_adopt_stats_t as;
    ad_leases_adopt_stats(S.mgr, &as);
    CHECK(st.leased_bytes <= st.budget + as.claimed_bytes_total);
}

static void state_init(void)
{
    memset(&S, 0, sizeof(S));
    S.pool_fd = -1;
    CHECK(uv_loop_init(&S.loop) == 0);
    ad_leases_config_t lc = {.budget = 64 * MiB,
                             .heap_size = 128 * MiB,
                             .small_limit = 4 * MiB,
                             .decay_ms = 10,
                             .max_leases_per_client = 16,
                             .restart_grace_ms = 500};
    CHECK(ad_leases_new(&lc, &S.mgr) == 0);
    CHECK(ad_admin_new(S.mgr, "/fuzz", 0, &S.adm) == 0);
    ad_dispatch_config_t dc = {.max_frame = MAX_FRAME};
    CHECK(ad_dispatch_new(&dc, S.mgr, S.adm, &S.disp) == 0);
    for (unsigned i = 0; i < NPEERS; i++)
        S.peers[i].fd = -1;
}

static void state_fini(void)
{
    if (S.pool_fd >= 0)
        (void)close(S.pool_fd);
    for (unsigned i = 0; i < NPEERS; i++)
        if (S.peers[i].fd >= 0 || S.peers[i].open)
            peer_close(&S.peers[i]);
    CHECK(S.open_conns == 0);
    check_manager();
    ad_leases_stats_t st;
    ad_leases_stats(S.mgr, &st);
    CHECK(st.clients == 0);
    CHECK(st.leases == 0);
    CHECK(st.leased_bytes == 0);
    CHECK(st.waiters == 0);
    total_granted += st.granted_total;
    ad_leases_share_stats_t ss;
    ad_leases_share_stats(S.mgr, &ss);
    CHECK(ss.tokens == 0);
    total_attaches += ss.attaches_total;
    total_protocol_errors += ad_admin_counters(S.adm)->protocol_errors_total;
    ad_dispatch_free(S.disp);
    ad_admin_free(S.adm);
    ad_leases_free(S.mgr);
    CHECK(uv_loop_close(&S.loop) == 0);
}

/* Runs one script. */
static void run_input(const uint8_t *data, size_t size)
{
    int fds_before = count_fds();
    state_init();
    size_t pos = 0;
    for (int ops = 0; ops < FUZZ_MAX_OPS && size - pos >= 3; ops++) {
        uint8_t op = data[pos];
        size_t len = (size_t)data[pos + 1] | (size_t)data[pos + 2] << 8;
        pos += 3;
        if (len > size - pos)
            len = size - pos;
        const uint8_t *b = data + pos;
        pos += len;
        peer_t *p = peer_cur();
        switch (op % FUZZ_OP_COUNT) {
        case FUZZ_OP_RAW:
            peer_send(p, b, len, NULL, 0);
            break;
        case FUZZ_OP_FRAME:
            send_frame(p, b, len, NULL, 0);
            break;
        case FUZZ_OP_FRAME_FDS: {
            int fds[4];
            size_t n = make_fds(len > 0 ? b[0] : 0, fds);
            send_frame(p, len > 0 ? b + 1 : b, len > 0 ? len - 1 : 0, fds, n);
            for (size_t i = 0; i < n; i++)
                (void)close(fds[i]);
            break;
        }
        case FUZZ_OP_REQUEST:
            send_request(p, b, len);
            break;
        case FUZZ_OP_LENGTH: {
            /* A header announcing any length, then whatever follows. */
            uint8_t hdr[4] = {0, 0, 0, 0};
            memcpy(hdr, b, len < 4 ? len : 4);
            peer_send(p, hdr, 4, NULL, 0);
            if (len > 4)
                peer_send(p, b + 4, len - 4, NULL, 0);
            break;
        }
        case FUZZ_OP_PUMP:
            pump();
            drain(p);
            S.skew_ms += len > 0 ? 10u * b[0] : 0;
            (void)ad_leases_purge(S.mgr, fuzz_now());
            (void)ad_dispatch_serve_waiters(S.disp, fuzz_now());
            break;
        case FUZZ_OP_SWITCH:
            S.cur = (len > 0 ? b[0] : S.cur + 1) % NPEERS;
            break;
        default: /* FUZZ_OP_CLOSE */
            peer_close(p);
            break;
        }
        pump();
        drain(&S.peers[S.cur]);
        check_manager();
    }
    state_fini();
    CHECK(count_fds() == fds_before);
}

/* libuv opens its process-wide signal pipe at the first uv_loop_init() and
 * keeps it: one empty run first, so the fd count starts from there. */
static void warm_up(void)
{
    ad_log_set_level(getenv("FUZZ_LOG") ? AD_LOG_DEBUG : AD_LOG_ERROR);
    state_init();
    state_fini();
}

#ifndef ARENA_FUZZ_REPLAY

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    warm_up();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_input(data, size);
    return 0;
}

#else

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rbe");
    if (!f) {
        (void)fprintf(stderr, "fuzz_dispatch: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t *buf = malloc(FUZZ_MAX_INPUT);
    CHECK(buf != NULL);
    size_t n = fread(buf, 1, FUZZ_MAX_INPUT, f);
    (void)fclose(f);
    run_input(buf, n);
    free(buf);
    return 0;
}

static int replay_path(const char *path, unsigned *count)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        (void)fprintf(stderr, "fuzz_dispatch: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return replay_file(path);
    }
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(names[i]->d_name);
        bool doc = nl > 3 && strcmp(names[i]->d_name + nl - 3, ".md") == 0;
        if (names[i]->d_name[0] != '.' && !doc && rc == 0) {
            char full[4096];
            (void)snprintf(full, sizeof(full), "%s/%s", path, names[i]->d_name);
            rc = replay_path(full, count);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    warm_up();
    unsigned files = 0;
    unsigned random_inputs = 3000;
    unsigned seed = 20261122u;
    const char *env = getenv("FUZZ_REPLAY_RANDOM");
    if (env)
        random_inputs = (unsigned)strtoul(env, NULL, 10);
    for (int i = 1; i < argc; i++)
        if (replay_path(argv[i], &files) < 0)
            return 1;
    uint8_t *buf = malloc(FUZZ_MAX_INPUT);
    CHECK(buf != NULL);
    for (unsigned i = 0; i < random_inputs; i++) {
        size_t n = fuzz_random_script(buf, FUZZ_MAX_INPUT, &seed);
        run_input(buf, n);
    }
    free(buf);
    printf("fuzz_dispatch: replayed %u corpus files and %u random scripts: %" PRIu64
           " leases granted, %" PRIu64 " attaches, %" PRIu64
           " protocol errors, all invariants held\n",
           files, random_inputs, total_granted, total_attaches, total_protocol_errors);
    /* A run that never got a lease or never hit an error exercised nothing. */
    return total_granted > 0 && total_protocol_errors > 0 ? 0 : 1;
}

#endif
