# bench-reclaim: the delay between a starving request and its grant when the
# memory sits parked in another, stopped process, next to the plain lease
# latency with free memory (build/bin/bench-reclaim).
add_executable(bench-reclaim bench_reclaim.c)
target_link_libraries(bench-reclaim PRIVATE arena-client-static arena_test_harness)
if(TARGET arenad)
  add_dependencies(bench-reclaim arenad)
endif()
