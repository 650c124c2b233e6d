# Unit suites of the lease service (daemon/service.cmake).
arena_add_check_test(test_daemon_config SOURCES test_config.c LIBS arenad_service LABELS daemon)
arena_add_check_test(test_daemon_wire SOURCES test_wire.c LIBS arenad_service LABELS daemon)
arena_add_check_test(test_daemon_lease SOURCES test_lease.c LIBS arenad_service LABELS daemon)
arena_add_check_test(test_daemon_dispatch SOURCES test_dispatch.c LIBS arenad_service LABELS daemon)
