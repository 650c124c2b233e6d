# Issue 5 with the allocator pools: a stopped generator's parked segments
# feed a simulator (test_starve_pool). Labels `integration;starve`.
add_executable(test_starve_pool test_starve_pool.c)
target_link_libraries(test_starve_pool PRIVATE arena_test_harness arena-client-static
                      PkgConfig::CHECK Threads::Threads)
set_target_properties(test_starve_pool PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
if(TARGET arenad)
  add_dependencies(test_starve_pool arenad)
endif()
add_test(NAME test_starve_pool COMMAND test_starve_pool)
set_tests_properties(test_starve_pool PROPERTIES LABELS "integration;starve" TIMEOUT 120)
