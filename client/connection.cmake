# libarena-client, connection side: the connection, the protobuf-c adapter,
# raw leases, error codes, the admin calls, and arenactl.
#
# ARENA_CLIENT_OBJECT_LIBS lists the OBJECT libraries that make up both
# libarena-client.so and libarena-client.a; add the pool objects
# (arena_pool_objs) to it, or link them into both libraries with
# target_link_libraries(arena-client[-static] PRIVATE arena_pool_objs).

set(ARENA_PROTO_C ${CMAKE_BINARY_DIR}/proto/arena.pb-c.c)
set_source_files_properties(${ARENA_PROTO_C} PROPERTIES GENERATED TRUE COMPILE_OPTIONS -w)

add_library(arena_conn_objs OBJECT
  conn.c wire.c lease.c error.c admin.c notify.c
  ${CMAKE_SOURCE_DIR}/common/paths.c ${CMAKE_SOURCE_DIR}/common/size.c
  ${CMAKE_SOURCE_DIR}/common/fdpass.c
  ${ARENA_PROTO_C})
add_dependencies(arena_conn_objs arena_proto)
target_include_directories(arena_conn_objs PUBLIC
  ${CMAKE_CURRENT_SOURCE_DIR}/include ${CMAKE_CURRENT_SOURCE_DIR}
  ${CMAKE_SOURCE_DIR}/common ${CMAKE_BINARY_DIR}/proto)
target_link_libraries(arena_conn_objs PUBLIC PkgConfig::PROTOBUFC Threads::Threads)

set(ARENA_CLIENT_OBJECT_LIBS arena_conn_objs)
set(ARENA_CLIENT_OBJECTS "")
foreach(lib IN LISTS ARENA_CLIENT_OBJECT_LIBS)
  list(APPEND ARENA_CLIENT_OBJECTS $<TARGET_OBJECTS:${lib}>)
endforeach()

set(ARENA_CLIENT_MAP ${CMAKE_CURRENT_SOURCE_DIR}/arena-client.map)
add_library(arena-client SHARED ${ARENA_CLIENT_OBJECTS})
set_target_properties(arena-client PROPERTIES
  VERSION ${PROJECT_VERSION} SOVERSION 0 LINK_DEPENDS ${ARENA_CLIENT_MAP})
target_link_options(arena-client PRIVATE
  -Wl,--version-script=${ARENA_CLIENT_MAP} -Wl,--no-undefined)
target_include_directories(arena-client PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
target_link_libraries(arena-client PRIVATE PkgConfig::PROTOBUFC Threads::Threads)

add_library(arena-client-static STATIC ${ARENA_CLIENT_OBJECTS})
set_target_properties(arena-client-static PROPERTIES OUTPUT_NAME arena-client)
# Internal headers too: arenactl and the tests use the arena__ calls.
target_include_directories(arena-client-static PUBLIC
  ${CMAKE_CURRENT_SOURCE_DIR}/include ${CMAKE_CURRENT_SOURCE_DIR}
  ${CMAKE_SOURCE_DIR}/common)
target_link_libraries(arena-client-static PUBLIC PkgConfig::PROTOBUFC Threads::Threads)

add_executable(arenactl arenactl.c)
target_link_libraries(arenactl PRIVATE arena-client-static)
