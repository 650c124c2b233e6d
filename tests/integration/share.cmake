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
