/* SPDX-License-Identifier: MIT
 *
 * test_ctlword.c -- the lease state word across real processes.
 *
 * A child ("client") parks and unparks a lease in a tight loop, with the
 * mprotect calls the pools make, while the parent ("daemon") keeps trying to
 * reclaim it and, each time it wins, punches the page and grants the slot
 * again under a new generation. An independent in-use flag, set by the client
 * only while it believes it holds the lease, shows they never both do.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "ctlword.h"

typedef struct shared {
    arena__ctlword_header_t head;
    _Atomic uint64_t xslot[1];
    _Atomic uint64_t xin_use;      /* client holds the lease (test probe) */
    _Atomic uint64_t xclient_done; /* cycles the client finished */
    _Atomic uint64_t xviolations;  /* daemon saw in_use after winning */
    _Atomic uint64_t xreclaims;
    _Atomic uint64_t xlost; /* unparks that found the lease gone */
} shared_t;

START_TEST(test_encoding)
{
    uint64_t w = arena__ctlword_make(12345, ARENA__CTLWORD_PARKED);
    ck_assert_int_eq(arena__ctlword_state_of(w), ARENA__CTLWORD_PARKED);
    ck_assert_uint_eq(arena__ctlword_generation_of(w), 12345);
    _Atomic uint64_t x;
    arena__ctlword_store_active_release(&x, 7);
    ck_assert(!arena__ctlword_unpark_acquire(&x, 7)); /* not parked */
    ck_assert(!arena__ctlword_reclaim_acq_rel(&x, 7));
    ck_assert(!arena__ctlword_park_release(&x, 8)); /* wrong generation */
    ck_assert(arena__ctlword_park_release(&x, 7));
    ck_assert(!arena__ctlword_reclaim_acq_rel(&x, 6)); /* a late CAS for an older lease */
    ck_assert(arena__ctlword_reclaim_acq_rel(&x, 7));
    ck_assert(!arena__ctlword_unpark_acquire(&x, 7));
    ck_assert_int_eq(arena__ctlword_state_of(arena__ctlword_load_acquire(&x)),
                     ARENA__CTLWORD_RECLAIMED);
    arena__ctlword_store_free_release(&x, 8);
    ck_assert_int_eq(arena__ctlword_state_of(arena__ctlword_load_acquire(&x)), ARENA__CTLWORD_FREE);
    ck_assert_uint_eq(arena__ctlword_region_size(4), sizeof(arena__ctlword_header_t) + 32);
}
END_TEST

static void client_loop(shared_t *sh, unsigned char *lease, size_t page, uint64_t cycles)
{
    uint64_t gen = 1;
    for (uint64_t i = 0; i < cycles; i++) {
        if (arena__ctlword_unpark_acquire(&sh->xslot[0], gen)) {
            if (mprotect(lease, page, PROT_READ | PROT_WRITE) < 0)
                _exit(3);
            atomic_store(&sh->xin_use, 1);
            lease[i % page] = (unsigned char)i; /* really use it */
            atomic_store(&sh->xin_use, 0);
            if (mprotect(lease, page, PROT_NONE) < 0)
                _exit(3);
            if (!arena__ctlword_park_release(&sh->xslot[0], gen))
                _exit(4); /* only the client moves an ACTIVE word */
        } else {
            /* Gone: wait for the next grant, as a pool would lease anew. */
            atomic_fetch_add(&sh->xlost, 1);
            uint64_t w;
            while (arena__ctlword_state_of(w = arena__ctlword_load_acquire(&sh->xslot[0])) !=
                       ARENA__CTLWORD_ACTIVE ||
                   arena__ctlword_generation_of(w) == gen)
                ;
            gen = arena__ctlword_generation_of(w);
            if (mprotect(lease, page, PROT_NONE) < 0 ||
                !arena__ctlword_park_release(&sh->xslot[0], gen))
                _exit(5);
        }
        atomic_store(&sh->xclient_done, i + 1);
    }
    _exit(0);
}

START_TEST(test_park_unpark_race_across_processes)
{
    const uint64_t cycles = 300000;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    shared_t *sh =
        mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(sh, MAP_FAILED);
    memset(sh, 0, sizeof(*sh));
    int fd = memfd_create("lease", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)page), 0);
    uint64_t gen = 1;
    /* Granted, then parked by the client before the race starts. */
    atomic_store(&sh->xslot[0], arena__ctlword_make(gen, ARENA__CTLWORD_PARKED));

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        unsigned char *lease = mmap(NULL, page, PROT_NONE, MAP_SHARED, fd, 0);
        if (lease == MAP_FAILED)
            _exit(2);
        client_loop(sh, lease, page, cycles);
    }
    while (atomic_load(&sh->xclient_done) < cycles) {
        if (arena__ctlword_reclaim_acq_rel(&sh->xslot[0], gen)) {
            if (atomic_load(&sh->xin_use))
                atomic_fetch_add(&sh->xviolations, 1);
            atomic_fetch_add(&sh->xreclaims, 1);
            (void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)page);
            arena__ctlword_store_active_release(&sh->xslot[0], ++gen);
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                          "client failed with status %d", status);
            break;
        }
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0) == pid || errno == ECHILD, 1);
    ck_assert_uint_eq(atomic_load(&sh->xviolations), 0);
    ck_assert_uint_eq(atomic_load(&sh->xclient_done), cycles);
    /* The race really happened both ways. */
    uint64_t reclaims = atomic_load(&sh->xreclaims), lost = atomic_load(&sh->xlost);
    ck_assert_uint_gt(reclaims, 0);
    /* Every win of the daemon cost the client one unpark, except perhaps a
     * last one after the client finished. */
    ck_assert_msg(lost == reclaims || lost + 1 == reclaims, "lost %llu reclaims %llu",
                  (unsigned long long)lost, (unsigned long long)reclaims);
    (void)close(fd);
    (void)munmap(sh, sizeof(*sh));
}
END_TEST

static Suite *ctlword_suite(void)
{
    Suite *s = suite_create("ctlword");
    TCase *tc = tcase_create("ctlword");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_encoding);
    tcase_add_test(tc, test_park_unpark_race_across_processes);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(ctlword_suite)
