# No starvation end to end (issue 5): parked leases, reclaim without the
# client's help, pressure, fair shares, the event log. Label `starve`.
# ARENA_STARVE_SECONDS lengthens the randomized run (default 3 s),
# ARENA_STARVE_RACE_ITERS the park/unpark race (default 300000 rounds).
add_executable(test_starve test_starve.c)
target_link_libraries(test_starve PRIVATE arena_test_harness arena-client-static arenactl_core
                      PkgConfig::CHECK Threads::Threads)
set_target_properties(test_starve PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
if(TARGET arenad)
  add_dependencies(test_starve arenad)
endif()
add_test(NAME test_starve COMMAND test_starve)
set_tests_properties(test_starve PROPERTIES LABELS "starve;integration" TIMEOUT 300)

# arena-demo end to end, small: the system-allocator run starves the
# simulator, the arenad run feeds it while the generator is blocked.
if(TARGET arena-demo)
  add_test(NAME test_arena_demo_smoke
    COMMAND arena-demo --objects 300000 --budget-mb 64 --need-pct 85 --wait-ms 5000)
  set_tests_properties(test_arena_demo_smoke PROPERTIES LABELS "starve;integration" TIMEOUT 120
    PASS_REGULAR_EXPRESSION "RESULT system_sim_got=0 arenad_sim_got=1")
endif()
