# The pools park empty segments instead of releasing them, and publish their
# live bytes (issue 5). Against a real arenad: the integration harness is
# compiled in directly, as in pool.cmake. Labels `pool;park`.
arena_add_check_test(test_pool_park
  SOURCES test_pool_park.c ${CMAKE_SOURCE_DIR}/tests/integration/harness.c
  LIBS arena_pool_objs arena_conn_objs arena_common PkgConfig::PROTOBUFC Threads::Threads
  LABELS "pool;park;tsan" TIMEOUT 300)
target_include_directories(test_pool_park PRIVATE ${CMAKE_SOURCE_DIR}/tests/integration)
target_compile_definitions(test_pool_park PRIVATE
  ARENAD_PATH="${CMAKE_BINARY_DIR}/bin/arenad"
  ARENACTL_PATH="${CMAKE_BINARY_DIR}/bin/arenactl")
if(TARGET arenad)
  add_dependencies(test_pool_park arenad)
endif()
if(ARENA_SANITIZE)
  set_tests_properties(test_pool_park PROPERTIES ENVIRONMENT "POOL_TEST_SMALL=1")
endif()
