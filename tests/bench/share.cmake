# bench-share: share + attach latency and first-touch hand-off of 64 MiB and
# 1 GiB by token, next to a pipe and memfd + SCM_RIGHTS by hand
# (build/bin/bench-share; --quick for CI).
add_executable(bench-share bench_share.c)
target_link_libraries(bench-share PRIVATE arena-client-static arena_test_harness)
if(TARGET arenad)
  add_dependencies(bench-share arenad)
endif()
# A smoke run (exit status only, nothing timed): the program works end to end.
add_test(NAME bench_share_quick COMMAND bench-share --quick)
set_tests_properties(bench_share_quick PROPERTIES LABELS "bench;share" TIMEOUT 120)
