# Integration tests of the lease service through libarena-client and arenactl
# (labels `integration` and `client`): a real arenad per test, started by the
# harness on a temporary socket.
foreach(t test_lease test_arenactl)
  add_executable(${t} ${t}.c)
  target_link_libraries(${t} PRIVATE arena_test_harness arena-client-static
                        PkgConfig::CHECK Threads::Threads)
  set_target_properties(${t} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_dependencies(${t} arenactl)
  if(TARGET arenad)
    add_dependencies(${t} arenad)
  endif()
endforeach()

add_test(NAME test_lease COMMAND test_lease lease)
# DESIGN.md section 7: stopping the daemon must not punch leases clients map.
add_test(NAME test_lease_daemon_stop COMMAND test_lease restart)
add_test(NAME test_arenactl COMMAND test_arenactl)
set_tests_properties(test_lease test_lease_daemon_stop test_arenactl PROPERTIES
  LABELS "integration;client" TIMEOUT 300)

# The connection path must never call malloc: every allocator entry point of
# the statically linked library objects is wrapped and counted.
add_executable(test_lease_nomalloc test_lease_nomalloc.c)
target_link_libraries(test_lease_nomalloc PRIVATE arena_test_harness arena-client-static
                      PkgConfig::CHECK Threads::Threads)
target_link_options(test_lease_nomalloc PRIVATE
  -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=strdup,--wrap=strndup
  -Wl,--wrap=posix_memalign,--wrap=aligned_alloc)
set_target_properties(test_lease_nomalloc PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
if(TARGET arenad)
  add_dependencies(test_lease_nomalloc arenad)
endif()
add_test(NAME test_lease_nomalloc COMMAND test_lease_nomalloc)
set_tests_properties(test_lease_nomalloc PROPERTIES LABELS "integration;client" TIMEOUT 120)

# `arenactl map` against a real arenad: the picture of a known layout, its
# JSON, bad input, another user's pool, merging to fit a small frame.
add_executable(test_map test_map.c)
target_link_libraries(test_map PRIVATE arena_test_harness arena-client-static PkgConfig::CHECK)
set_target_properties(test_map PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_dependencies(test_map arenactl)
if(TARGET arenad)
  add_dependencies(test_map arenad)
endif()
add_test(NAME test_map COMMAND test_map)
set_tests_properties(test_map PROPERTIES LABELS "integration;client" TIMEOUT 120)
