# Suites of the typed slabs and bump arenas (label extras). The slab suite is
# multi-threaded, so it also carries the tsan label; under ThreadSanitizer it
# runs with smaller parameters (SLAB_TEST_SMALL).
arena_add_check_test(test_slab SOURCES test_slab.c LIBS arena_pool_objs arena_conn_objs arena_test_harness
                     LABELS extras tsan TIMEOUT 300)
arena_add_check_test(test_bump SOURCES test_bump.c LIBS arena_pool_objs arena_conn_objs arena_test_harness
                     LABELS extras TIMEOUT 120)
if(ARENA_SANITIZE)
  set_tests_properties(test_slab PROPERTIES ENVIRONMENT "SLAB_TEST_SMALL=1")
endif()
# The "daemon" cases start a real arenad through the integration harness.
if(TARGET arenad)
  add_dependencies(test_slab arenad)
  add_dependencies(test_bump arenad)
endif()
