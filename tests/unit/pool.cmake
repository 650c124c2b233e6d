# Unit suites of the allocator pools (label `pool`; the multi-threaded ones
# also `tsan`). They link the pool objects with the connection layer, so the
# same code runs on fallback memory here and against a real arenad in
# test_pool_daemon.
set(ARENA_POOL_TEST_LIBS arena_pool_objs arena_conn_objs arena_common
    PkgConfig::PROTOBUFC Threads::Threads)

arena_add_check_test(test_pool SOURCES test_pool.c
  LIBS ${ARENA_POOL_TEST_LIBS} LABELS pool TIMEOUT 300)
arena_add_check_test(test_pool_mt SOURCES test_pool_mt.c test_pool_stress.c
  LIBS ${ARENA_POOL_TEST_LIBS} LABELS "pool;tsan" TIMEOUT 300)
# Against a real arenad: the integration harness is compiled in directly (its
# library target is defined later, in tests/integration).
arena_add_check_test(test_pool_daemon
  SOURCES test_pool_daemon.c test_pool_stress.c ${CMAKE_SOURCE_DIR}/tests/integration/harness.c
  LIBS ${ARENA_POOL_TEST_LIBS} LABELS "pool;tsan;integration" TIMEOUT 300)
target_include_directories(test_pool_daemon PRIVATE ${CMAKE_SOURCE_DIR}/tests/integration)
target_compile_definitions(test_pool_daemon PRIVATE
  ARENAD_PATH="${CMAKE_BINARY_DIR}/bin/arenad"
  ARENACTL_PATH="${CMAKE_BINARY_DIR}/bin/arenactl")
# The whole test_pool suite again, on leases from a real arenad.
arena_add_check_test(test_pool_shared
  SOURCES test_pool.c ${CMAKE_SOURCE_DIR}/tests/integration/harness.c
  LIBS ${ARENA_POOL_TEST_LIBS} LABELS "pool;integration" TIMEOUT 300)
target_include_directories(test_pool_shared PRIVATE ${CMAKE_SOURCE_DIR}/tests/integration)
target_compile_definitions(test_pool_shared PRIVATE POOL_TEST_DAEMON
  ARENAD_PATH="${CMAKE_BINARY_DIR}/bin/arenad"
  ARENACTL_PATH="${CMAKE_BINARY_DIR}/bin/arenactl")
if(TARGET arenad)
  add_dependencies(test_pool_daemon arenad)
  add_dependencies(test_pool_shared arenad)
endif()
if(ARENA_SANITIZE)
  set_tests_properties(test_pool_mt PROPERTIES ENVIRONMENT "POOL_TEST_SMALL=1")
  set_tests_properties(test_pool_daemon PROPERTIES ENVIRONMENT "POOL_TEST_SMALL=1")
endif()

# Fast-path figures (a program, not a test): build/bin/bench-pool-fastpath.
add_executable(bench-pool-fastpath test_pool_bench.c)
target_link_libraries(bench-pool-fastpath PRIVATE ${ARENA_POOL_TEST_LIBS})
