# Typed slabs, bump arenas and the preload library. Included at the end of
# pool.cmake: slab.c and bump.c join the pool objects (so they are in both
# libarena-client libraries); libarena-preload.so is the pools, the connection
# and preload.c, exporting only the malloc family.
target_sources(arena_pool_objs PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/slab.c ${CMAKE_CURRENT_SOURCE_DIR}/bump.c)

# Version script: the ten malloc-family symbols, nothing else.
set(ARENA_PRELOAD_MAP ${CMAKE_CURRENT_BINARY_DIR}/arena-preload.map)
file(WRITE ${ARENA_PRELOAD_MAP}.in [=[
/* libarena-preload: exports the malloc family only. */
{
  global:
    malloc; free; calloc; realloc; posix_memalign; aligned_alloc;
    memalign; valloc; pvalloc; malloc_usable_size;
  local:
    *;
};
]=])
configure_file(${ARENA_PRELOAD_MAP}.in ${ARENA_PRELOAD_MAP} COPYONLY)

add_library(arena-preload SHARED ${CMAKE_CURRENT_SOURCE_DIR}/preload.c
  $<TARGET_OBJECTS:arena_pool_objs> $<TARGET_OBJECTS:arena_conn_objs>)
target_include_directories(arena-preload PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/include ${CMAKE_CURRENT_SOURCE_DIR}
  ${CMAKE_SOURCE_DIR}/common)
set_target_properties(arena-preload PROPERTIES LINK_DEPENDS ${ARENA_PRELOAD_MAP})
target_link_options(arena-preload PRIVATE
  -Wl,--version-script=${ARENA_PRELOAD_MAP} -Wl,--no-undefined -Wl,-z,nodelete)
target_link_libraries(arena-preload PRIVATE PkgConfig::PROTOBUFC Threads::Threads)
