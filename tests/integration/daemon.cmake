# Integration tests of the lease service against a real arenad, and the
# harness other integration tests and benchmarks use to start one.
add_library(arena_test_harness STATIC harness.c)
target_include_directories(arena_test_harness PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(arena_test_harness PUBLIC
  ARENAD_PATH="${CMAKE_BINARY_DIR}/bin/arenad"
  ARENACTL_PATH="${CMAKE_BINARY_DIR}/bin/arenactl")

arena_add_check_test(test_badinput SOURCES test_badinput.c
  LIBS arena_test_harness arena_proto arena_common LABELS "daemon;integration" TIMEOUT 300)
add_dependencies(test_badinput arenad)
# Not a unit test: it starts a real daemon.
set_tests_properties(test_badinput PROPERTIES LABELS "daemon;integration")
