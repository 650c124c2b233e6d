# Connection limits (issue 6): descriptors attached to frames and the
# requests-in-flight throttle in daemon/conn.c. Label `limits`.
arena_add_check_test(test_conn_limits SOURCES test_conn_limits.c LIBS arenad_service
  LABELS "daemon;limits" TIMEOUT 60)
