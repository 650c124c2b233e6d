# libarena-client, allocator side: thread heaps, size classes, small-object
# pages, large spans, segments and the address map, regions (leases or the
# anonymous fallback) and the public malloc family. pool-extras.cmake (typed
# slabs, bump arenas, the preload library) adds its sources to the same
# OBJECT library.
add_library(arena_pool_objs OBJECT
  ${CMAKE_CURRENT_SOURCE_DIR}/pool.c
  ${CMAKE_CURRENT_SOURCE_DIR}/page.c
  ${CMAKE_CURRENT_SOURCE_DIR}/large.c
  ${CMAKE_CURRENT_SOURCE_DIR}/segment.c
  ${CMAKE_CURRENT_SOURCE_DIR}/region.c
  ${CMAKE_CURRENT_SOURCE_DIR}/malloc.c)
target_include_directories(arena_pool_objs PUBLIC
  ${CMAKE_CURRENT_SOURCE_DIR}/include ${CMAKE_CURRENT_SOURCE_DIR}
  ${CMAKE_SOURCE_DIR}/common)
target_link_libraries(arena_pool_objs PUBLIC Threads::Threads)
if(TARGET arena_proto)
  add_dependencies(arena_pool_objs arena_proto)
endif()

include(${CMAKE_CURRENT_LIST_DIR}/pool-extras.cmake OPTIONAL)
