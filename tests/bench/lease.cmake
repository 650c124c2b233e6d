# bench-lease: lease + release round trips against a private arenad, next to
# a raw Unix-socket fd round trip (build/bin/bench-lease).
add_executable(bench-lease bench_lease.c)
target_link_libraries(bench-lease PRIVATE arena-client-static arena_test_harness)
if(TARGET arenad)
  add_dependencies(bench-lease arenad)
endif()
