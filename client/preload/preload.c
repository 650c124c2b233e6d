/* SPDX-License-Identifier: MIT
 *
 * preload.c -- libarena-preload.so: malloc and friends for unmodified programs.
 *
 *     LD_PRELOAD=build/lib/libarena-preload.so prog
 *
 * This file only adapts the C library's allocation contract to the thread
 * heaps of the allocator (alloc/internal.h); it owns three things besides: start-up, the bootstrap
 * buffer and the no-daemon policy.
 *
 * Start-up. The first allocation of the process (from the C library or the
 * dynamic loader, often before any constructor runs) initialises the allocator
 * and connects to arenad. malloc() and calloc() test nothing for that: a
 * thread starts on the allocator's empty heap, so its first allocation takes
 * the slow path, which asks arena__preload_gate() below before it gives the
 * thread a heap (the fast path stays the allocator's own, with no extra load
 * or branch). Initialisation may itself allocate (pthread_atfork, the
 * loader); those calls come back through the gate on the same thread and are
 * served from a static bootstrap buffer, recognised by a thread-local "in
 * init" flag. Other threads that allocate meanwhile wait for the
 * initialising thread. free() ignores bootstrap pointers as it ignores every
 * pointer the allocator does not own (the address map has no entry for the
 * buffer); realloc() moves them into the allocator. The buffer is never
 * reused, so its memory reads as zero.
 *
 * No daemon. When no arenad answers at start-up, one line goes to stderr
 * ("arena-preload: no arenad at SOCKET, using anonymous memory") and the
 * heaps fall back to anonymous memory, so the program still runs. With
 * ARENA_REQUIRE_DAEMON=1 the line says so instead, and every allocation then
 * fails: malloc() returns NULL with errno ENOMEM, which most programs report
 * and exit on. Printing is the one exception to "libraries never print": the
 * program's user must learn that its memory is not managed.
 *
 * fork(). The allocator registers its pthread_atfork() handlers when it is
 * initialised (arena__heap_init()): the child gets private copies of every
 * live region as it was at fork() and no connection; the parent is
 * unaffected (see the fork handshake in region.c).
 *
 * Defensive frees. free() and realloc() ignore pointers that are neither
 * bootstrap nor owned by the allocator (the address map has no entry for them: arena__heap_free()
 * and arena__heap_realloc() look them up), instead of corrupting memory; malloc_usable_size()
 * reports 0 for them.
 *
 * Exports: malloc, free, calloc, realloc, posix_memalign, aligned_alloc,
 * memalign, valloc, pvalloc and malloc_usable_size with default visibility;
 * a version script hides everything else. Thread-safe.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "conn.h"
#include "paths.h"
#include "alloc/internal.h"

#define PRELOAD_EXPORT __attribute__((visibility("default")))

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Bootstrap buffer: a bump allocator over static memory for allocations made
 * while the allocator initialises. Each block is preceded by a 16-byte header
 * holding its size; blocks are 16-aligned (or more, when asked). */
#define BOOT_SIZE   ((size_t)1024 * 1024)
#define BOOT_HEADER ((size_t)16)
#define BOOT_ALIGN  ((size_t)16)

static unsigned char boot_buf[BOOT_SIZE] __attribute__((aligned(4096)));
static _Atomic size_t boot_xused;

enum { PRELOAD_NONE, PRELOAD_RUNNING, PRELOAD_READY };

/* Start-up state: NONE -> RUNNING (one thread wins the CAS) -> READY (store
 * release; readers load acquire, so they see the allocator's initialised state). */
static _Atomic int preload_xstate;
static __thread bool preload_in_init __attribute__((tls_model("initial-exec")));

static bool boot_owns(const void *ptr)
{
    uintptr_t p = (uintptr_t)ptr;
    return p >= (uintptr_t)boot_buf && p < (uintptr_t)boot_buf + BOOT_SIZE;
}

static size_t boot_size(const void *ptr)
{
    size_t size;
    memcpy(&size, (const unsigned char *)ptr - BOOT_HEADER, sizeof(size));
    return size;
}

/* size bytes aligned to align (a power of two) from the bootstrap buffer, or
 * NULL with errno ENOMEM when it is used up. Lock-free. */
static void *boot_alloc(size_t align, size_t size)
{
    size_t used = atomic_load_explicit(&boot_xused, memory_order_relaxed);
    size_t start, end;

    if (align < BOOT_ALIGN)
        align = BOOT_ALIGN;
    if (size > BOOT_SIZE || align > BOOT_SIZE / 2) {
        errno = ENOMEM;
        return NULL;
    }
    do {
        start = (used + BOOT_HEADER + align - 1) & ~(align - 1);
        end = (start + size + BOOT_ALIGN - 1) & ~(BOOT_ALIGN - 1);
        if (end > BOOT_SIZE) {
            errno = ENOMEM;
            return NULL;
        }
    } while (!atomic_compare_exchange_weak_explicit(&boot_xused, &used, end, memory_order_relaxed,
                                                    memory_order_relaxed));
    memcpy(boot_buf + start - BOOT_HEADER, &size, sizeof(size));
    return boot_buf + start;
}

/* Writes a message to stderr with write(2): stdio could allocate. */
static void preload_say(const char *const *parts)
{
    char line[512];
    size_t n = 0;

    for (; *parts; parts++)
        for (const char *s = *parts; *s && n < sizeof(line) - 1; s++)
            line[n++] = *s;
    line[n++] = '\n';
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        memmove(line, line + w, n - (size_t)w);
        n -= (size_t)w;
    }
}

/* Connects to the daemon, or sets up the fallback and warns. Runs once, on
 * the thread that won the start-up CAS, with preload_in_init set. */
static void preload_start(void)
{
    const char *require = getenv("ARENA_REQUIRE_DAEMON");
    bool required = require && strcmp(require, "1") == 0;
    char socket[256];
    arena_conn_t *conn;
    int saved = errno;

    arena__heap_init(); /* also registers the fork handlers */
    if (arena__conn_default(&conn) < 0) {
        if (arena__client_socket_path(socket, sizeof(socket)) < 0)
            strcpy(socket, "(no socket path: set ARENAD_SOCKET)");
        if (required) {
            arena__region_allow_fallback(false);
            preload_say((const char *const[]){"arena-preload: no arenad at ", socket,
                                              ", ARENA_REQUIRE_DAEMON=1: allocations fail", NULL});
        } else {
            arena__region_allow_fallback(true);
            preload_say((const char *const[]){"arena-preload: no arenad at ", socket,
                                              ", using anonymous memory", NULL});
        }
    }
    errno = saved;
}

/* Makes sure start-up has happened. Returns true when the caller may use the
 * allocator, false when it is the initialising thread itself (recursion: use the
 * bootstrap buffer). */
static bool preload_enter_slow(void)
{
    int expected = PRELOAD_NONE;

    if (preload_in_init)
        return false;
    if (atomic_compare_exchange_strong_explicit(&preload_xstate, &expected, PRELOAD_RUNNING,
                                                memory_order_acquire, memory_order_acquire)) {
        preload_in_init = true;
        preload_start();
        preload_in_init = false;
        atomic_store_explicit(&preload_xstate, PRELOAD_READY, memory_order_release);
        return true;
    }
    while (atomic_load_explicit(&preload_xstate, memory_order_acquire) != PRELOAD_READY)
        (void)sched_yield();
    return true;
}

static inline bool preload_enter(void)
{
    if (likely(atomic_load_explicit(&preload_xstate, memory_order_acquire) == PRELOAD_READY))
        return true;
    return preload_enter_slow();
}

/* Initialise at load time too, so the warning shows even in programs that
 * never allocate; usually the first malloc() has done it already. */
__attribute__((constructor)) static void preload_ctor(void)
{
    (void)preload_enter();
}

/* ---- the exported functions ------------------------------------------------------ */

/* The allocator's start-up gate (alloc/internal.h): its slow path asks here
 * before a thread takes its first heap, so malloc() and calloc() need no
 * test of their own. */
bool arena__preload_gate(size_t size, size_t align, void **ret_ptr)
{
    if (likely(preload_enter()))
        return true;
    *ret_ptr = boot_alloc(align, size); /* which takes BOOT_ALIGN at least */
    return false;
}

/* malloc(3). NULL with errno ENOMEM when no memory can be had. */
PRELOAD_EXPORT void *malloc(size_t size)
{
    return arena__heap_malloc(size);
}

/* free(3). NULL, bootstrap pointers and pointers the allocator does not own are
 * ignored. */
PRELOAD_EXPORT void free(void *ptr)
{
    /* arena__heap_free() ignores NULL and pointers it does not own itself
     * (its slow path looks the pointer up once and finds no segment), and
     * the bootstrap buffer is no segment: no test here. */
    arena__heap_free(ptr);
}

/* calloc(3). count * size overflowing gives NULL with errno ENOMEM. */
PRELOAD_EXPORT void *calloc(size_t count, size_t size)
{
    /* Bootstrap memory (the gate) is never reused: it reads as zero. */
    return arena__heap_calloc(count, size);
}

/* realloc(3). NULL ptr: malloc(size). size 0: frees ptr and returns NULL
 * (glibc). On failure NULL with errno ENOMEM, ptr untouched. A bootstrap ptr
 * moves into the allocator; a pointer not ours gives NULL with errno EINVAL. */
PRELOAD_EXPORT void *realloc(void *ptr, size_t size)
{
    void *p;

    if (!ptr)
        return malloc(size);
    if (unlikely(boot_owns(ptr))) {
        size_t old = boot_size(ptr);
        if (size == 0)
            return NULL;
        p = malloc(size);
        if (p)
            memcpy(p, ptr, old < size ? old : size);
        return p;
    }
    /* EINVAL for a pointer not ours: arena__heap_realloc() looks it up once. */
    return arena__heap_realloc(ptr, size);
}

/* size bytes aligned to align, a power of two (checked by the callers). */
static void *preload_aligned(size_t align, size_t size)
{
    if (unlikely(!preload_enter()))
        return boot_alloc(align, size);
    if (align <= 16)
        return arena__heap_malloc(size);
    return arena__heap_aligned(align, size);
}

static bool is_pow2(size_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* posix_memalign(3). Returns 0, EINVAL (align not a power of two multiple of
 * sizeof(void *)) or ENOMEM; errno is left alone; *ret untouched on failure. */
PRELOAD_EXPORT int posix_memalign(void **ret, size_t align, size_t size)
{
    int saved = errno;
    void *p;

    if (!is_pow2(align) || align % sizeof(void *) != 0)
        return EINVAL;
    p = preload_aligned(align, size);
    errno = saved;
    if (!p)
        return ENOMEM;
    *ret = p;
    return 0;
}

/* aligned_alloc(3). align not a power of two: NULL with errno EINVAL. The
 * size need not be a multiple of align (as in glibc). */
PRELOAD_EXPORT void *aligned_alloc(size_t align, size_t size)
{
    if (!is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return preload_aligned(align, size);
}

/* memalign(3). Same rules as aligned_alloc() here: an alignment that is not a
 * power of two gives NULL with errno EINVAL (glibc would round it up). */
PRELOAD_EXPORT void *memalign(size_t align, size_t size)
{
    return aligned_alloc(align, size);
}

/* valloc(3): page-aligned. */
PRELOAD_EXPORT void *valloc(size_t size)
{
    return preload_aligned((size_t)getpagesize(), size);
}

/* pvalloc(3): page-aligned, size rounded up to whole pages (0: one page);
 * overflow gives NULL with errno ENOMEM. */
PRELOAD_EXPORT void *pvalloc(size_t size)
{
    size_t page = (size_t)getpagesize();
    size_t rounded;

    if (__builtin_add_overflow(size, page - 1, &rounded)) {
        errno = ENOMEM;
        return NULL;
    }
    rounded &= ~(page - 1);
    return preload_aligned(page, rounded ? rounded : page);
}

/* malloc_usable_size(3): 0 for NULL and for pointers that are not ours. */
PRELOAD_EXPORT size_t malloc_usable_size(void *ptr)
{
    if (!ptr)
        return 0;
    if (boot_owns(ptr))
        return boot_size(ptr);
    return arena__heap_usable_size(ptr);
}

/* ---- glibc's malloc introspection, with this allocator's figures ------------------ */

/* malloc_trim(3): gives every free page and empty lease back now -- free page
 * runs purged, empty segments and freed huge blocks parked (arena_trim()),
 * then the parking cache released to the daemon, so the machine has the
 * memory at once. pad is ignored (nothing is kept at a heap top). Returns 1
 * when memory was given back, 0 otherwise. */
PRELOAD_EXPORT int malloc_trim(size_t pad)
{
    (void)pad;
    if (!preload_enter())
        return 0;
    long long trimmed = arena__heap_trim();
    long long released = arena__region_park_release();
    return trimmed > 0 || released > 0;
}

/* The figures of mallinfo2() and malloc_stats(): leases held (active),
 * live bytes of the malloc family, parked and purged bytes, leases. */
static arena_stats_t preload_stats(void)
{
    arena_stats_t st = {0};
    if (preload_enter())
        (void)arena__heap_stats(&st);
    return st;
}

/* mallinfo2(3), with this allocator's meaning: arena and hblkhd are the
 * bytes of leases held (segments and huge blocks), hblks their count,
 * uordblks the live bytes, fordblks what the held leases have free
 * (arena - uordblks), keepcost the parked bytes a malloc_trim() gives back
 * at once; the others are 0. */
PRELOAD_EXPORT struct mallinfo2 mallinfo2(void)
{
    arena_stats_t st = preload_stats();
    struct mallinfo2 mi = {0};
    mi.arena = st.leased_bytes;
    mi.hblks = st.lease_count;
    mi.hblkhd = st.leased_bytes;
    mi.uordblks = st.live_bytes;
    mi.fordblks = st.leased_bytes > st.live_bytes ? st.leased_bytes - st.live_bytes : 0;
    mi.keepcost = st.parked_bytes;
    return mi;
}

/* mallinfo(3): mallinfo2() in ints, clamped (glibc's own wraps). */
PRELOAD_EXPORT struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi = {0};
#define PRELOAD_CLAMP(v) ((v) > (size_t)INT_MAX ? INT_MAX : (int)(v))
    mi.arena = PRELOAD_CLAMP(m2.arena);
    mi.hblks = PRELOAD_CLAMP(m2.hblks);
    mi.hblkhd = PRELOAD_CLAMP(m2.hblkhd);
    mi.uordblks = PRELOAD_CLAMP(m2.uordblks);
    mi.fordblks = PRELOAD_CLAMP(m2.fordblks);
    mi.keepcost = PRELOAD_CLAMP(m2.keepcost);
#undef PRELOAD_CLAMP
    return mi;
}

/* malloc_stats(3): the figures on stderr, in glibc's layout where the
 * meaning matches (system bytes: leased; in use bytes: live), with
 * write(2) (stdio could allocate). */
PRELOAD_EXPORT void malloc_stats(void)
{
    arena_stats_t st = preload_stats();
    char text[512];
    int n = snprintf(text, sizeof(text),
                     "Arena 0:\n"
                     "system bytes     = %10llu\n"
                     "in use bytes     = %10llu\n"
                     "Total (incl. mmap):\n"
                     "system bytes     = %10llu\n"
                     "in use bytes     = %10llu\n"
                     "max mmap regions = %10llu\n"
                     "max mmap bytes   = %10llu\n"
                     "parked bytes     = %10llu\n"
                     "purged bytes     = %10llu\n",
                     (unsigned long long)st.leased_bytes, (unsigned long long)st.live_bytes,
                     (unsigned long long)st.leased_bytes, (unsigned long long)st.live_bytes,
                     (unsigned long long)st.lease_count, (unsigned long long)st.leased_bytes,
                     (unsigned long long)st.parked_bytes, (unsigned long long)st.purged_bytes);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(STDERR_FILENO, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}
