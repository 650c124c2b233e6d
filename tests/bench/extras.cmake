# bench-pool: arena's pools, slabs and bump arenas against glibc, jemalloc,
# mimalloc and tcmalloc (each in a child process under LD_PRELOAD). Starts a
# private arenad through the integration harness unless ARENAD_SOCKET is set.
add_executable(bench-pool bench_pool.c)
# Keep every malloc/free a real call: the compiler may otherwise fold pairs.
target_compile_options(bench-pool PRIVATE -fno-builtin-malloc -fno-builtin-free)
target_link_libraries(bench-pool PRIVATE arena_pool_objs arena_conn_objs arena_test_harness
                      Threads::Threads ${CMAKE_DL_LIBS})
add_dependencies(bench-pool arena-preload)
if(TARGET arenad)
  add_dependencies(bench-pool arenad)
endif()
