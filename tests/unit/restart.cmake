# Adoption after a daemon restart (issue 6): the lease manager's claims and
# grace period, the ledger, resuming from the fd store. Label `restart`.
arena_add_check_test(test_daemon_adopt SOURCES test_adopt.c LIBS arenad_service
  LABELS "daemon;restart")
