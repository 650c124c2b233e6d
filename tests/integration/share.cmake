# Sharing leases by token (test_share.c): owners and attachers in separate
# processes against a real arenad, a second uid, a daemon restart.
add_executable(test_share test_share.c)
target_link_libraries(test_share PRIVATE arena_test_harness arena-client-static
                      PkgConfig::CHECK Threads::Threads)
set_target_properties(test_share PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
if(TARGET arenad)
  add_dependencies(test_share arenad arenactl)
endif()
add_test(NAME test_share COMMAND test_share)
set_tests_properties(test_share PROPERTIES LABELS "integration;client;share" TIMEOUT 300)
# arena-demo --share: the hand-off story runs and the simulator reads the
# generator's bytes after the generator exited (exit status 0).
if(TARGET arena-demo)
  add_test(NAME demo_share COMMAND arena-demo --share --scenario-mb 16)
  set_tests_properties(demo_share PROPERTIES LABELS "integration;share;demo" TIMEOUT 60)
endif()
