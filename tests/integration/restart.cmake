# Daemon restarts (issue 6): SIGKILL and restart under clients holding data,
# re-registration, forged and conflicting claims (test_restart.c).
add_executable(test_restart test_restart.c)
target_link_libraries(test_restart PRIVATE arena_test_harness arena-client-static
                      PkgConfig::CHECK Threads::Threads)
set_target_properties(test_restart PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
if(TARGET arenad)
  add_dependencies(test_restart arenad arenactl)
endif()
add_test(NAME test_restart COMMAND test_restart)
set_tests_properties(test_restart PROPERTIES LABELS "integration;restart;tsan" TIMEOUT 300)
target_compile_definitions(test_restart PRIVATE ARENAD_PATH="${CMAKE_BINARY_DIR}/bin/arenad"
                           ARENACTL_PATH="${CMAKE_BINARY_DIR}/bin/arenactl")
