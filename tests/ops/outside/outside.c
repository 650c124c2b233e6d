/* SPDX-License-Identifier: MIT
 *
 * outside.c -- a program outside the arenad tree, built against an installed
 * libarena-client (pkg-config or find_package), run against a daemon:
 * connects to the socket in argv[1] ("-": the library's default connection,
 * found through $ARENAD_SOCKET), leases 8 MiB, writes and reads it back,
 * releases it. Prints one line and exits 0 on success, 1 otherwise. With a
 * second argument N it holds the lease for N seconds before releasing it
 * (so a test can look at a client that holds memory, or restart the daemon
 * under it: every byte is checked again after the hold).
 */
#include <arena.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s SOCKET|- [HOLD_SECONDS]\n", argv[0]);
        return 2;
    }
    arena_conn_t *conn = NULL;
    int r = strcmp(argv[1], "-") == 0 ? 0 : arena_connect(argv[1], &conn);
    if (r < 0) {
        fprintf(stderr, "outside: connect %s: %s\n", argv[1], arena_strerror(r));
        return 1;
    }
    arena_lease_t lease;
    r = arena_lease(conn, 8u << 20, 1000, &lease);
    if (r < 0) {
        fprintf(stderr, "outside: lease: %s\n", arena_strerror(r));
        arena_disconnect(conn);
        return 1;
    }
    unsigned char *p = lease.addr;
    memset(p, 0x5c, lease.size);
    int ok = lease.size >= (8u << 20) && p[0] == 0x5c && p[lease.size - 1] == 0x5c;
    if (argc == 3) {
        printf("holding\n");
        fflush(stdout);
        sleep((unsigned)atoi(argv[2]));
        for (size_t i = 0; i < lease.size; i++)
            ok = ok && p[i] == 0x5c;
    }
    r = arena_release(conn, &lease);
    arena_disconnect(conn);
    if (!ok || r < 0) {
        fprintf(stderr, "outside: lease contents or release failed (%s)\n", arena_strerror(r));
        return 1;
    }
    printf("outside: leased, wrote and released %zu bytes through libarena-client %d.%d.%d\n",
           lease.size, ARENA_VERSION_MAJOR, ARENA_VERSION_MINOR, ARENA_VERSION_PATCH);
    return 0;
}
