# Unit suites of the client connection layer (label `client`).
arena_add_check_test(test_client_error SOURCES test_client_error.c
  LIBS arena-client-static LABELS client TIMEOUT 60)
arena_add_check_test(test_client_wire SOURCES test_client_wire.c
  LIBS arena-client-static LABELS client TIMEOUT 120)
# The wire test builds list replies with protobuf-c directly.
target_include_directories(test_client_wire PRIVATE ${CMAKE_BINARY_DIR}/proto)
add_dependencies(test_client_wire arena_proto)
arena_add_check_test(test_client_conn SOURCES test_client_conn.c
  LIBS arena-client-static LABELS client TIMEOUT 120)
# arenactl's helpers, without its main().
arena_add_check_test(test_client_ctl
  SOURCES test_client_ctl.c ${CMAKE_SOURCE_DIR}/client/arenactl/arenactl.c
          ${CMAKE_SOURCE_DIR}/client/arenactl/map.c
  LIBS arena-client-static PkgConfig::JSONC LABELS client TIMEOUT 60)
target_compile_definitions(test_client_ctl PRIVATE ARENACTL_NO_MAIN)

# Only the public arena_* API may be exported from libarena-client.so.
add_test(NAME test_client_exports
  COMMAND sh -c "nm -D --defined-only \"$1\" | awk '$2 ~ /^[TDBRVW]$/ && $3 !~ /^arena_[a-z]/ { print \"unexpected export: \" $3; bad = 1 } $3 ~ /^arena_connect/ { seen = 1 } END { exit (bad || !seen) }'"
          sh $<TARGET_FILE:arena-client>)
set_tests_properties(test_client_exports PROPERTIES LABELS "unit;client" TIMEOUT 30)
