# bench-restart: what a daemon restart costs a client holding N leases
# (reconnect, pool handed back, every lease claimed) (build/bin/bench-restart).
add_executable(bench-restart bench_restart.c)
target_link_libraries(bench-restart PRIVATE arena-client-static arena_test_harness)
if(TARGET arenad)
  add_dependencies(bench-restart arenad)
endif()
