# The lease service: config, log, wire adapter, connections, dispatcher, lease
# manager, admin and the event loop, as a static library the unit tests link,
# plus the arenad executable.
add_library(arenad_service STATIC
  config.c log.c wire.c conn.c dispatch.c lease.c reclaim.c adopt.c admin.c server.c
  listen.c timers.c reload.c
  control.c events.c fairshare.c ledger.c restart.c memfd.c heapmap.c)
target_include_directories(arenad_service PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(arenad_service PRIVATE AD_VERSION="${PROJECT_VERSION}")
target_link_libraries(arenad_service PUBLIC arenad_core arena_common arena_proto PkgConfig::LIBUV)

add_executable(arenad main.c)
target_compile_definitions(arenad PRIVATE AD_VERSION="${PROJECT_VERSION}")
target_link_libraries(arenad PRIVATE arenad_service)
if(LIBSYSTEMD_FOUND)
  target_compile_definitions(arenad PRIVATE ARENA_HAVE_SYSTEMD)
  target_link_libraries(arenad PRIVATE PkgConfig::LIBSYSTEMD)
endif()
