# Unit suites of the lease service (daemon/service.cmake).
arena_add_check_test(test_daemon_config SOURCES test_config.c LIBS arenad_service LABELS daemon)
arena_add_check_test(test_daemon_wire SOURCES test_wire.c LIBS arenad_service LABELS daemon)
arena_add_check_test(test_daemon_lease SOURCES test_lease.c LIBS arenad_service LABELS daemon)
arena_add_check_test(test_daemon_dispatch SOURCES test_dispatch.c LIBS arenad_service LABELS daemon)
# The no-starvation policy (issue 5): fair shares, control regions, the
# event ring, reclaim and pressure in the lease manager. Label `starve`.
arena_add_check_test(test_starve_daemon SOURCES test_starve_daemon.c LIBS arenad_service
  LABELS "daemon;starve" TIMEOUT 60)
# The heap map behind `arenactl map`: merging under the frame cap, maps of a
# real lease manager, who may see which pool.
arena_add_check_test(test_heapmap SOURCES test_heapmap.c LIBS arenad_service LABELS daemon)
