# ops.cmake -- the operations pieces that hang off targets defined elsewhere:
# the systemd protocol (daemon/notify.c) joins the arenad executable here, so
# the daemon's own CMake files stay with their owners. service.cmake already
# defines ARENA_HAVE_SYSTEMD and links libsystemd when it is found.
if(TARGET arenad)
  get_target_property(_arenad_sources arenad SOURCES)
  if(NOT _arenad_sources MATCHES "notify\\.c")
    target_sources(arenad PRIVATE ${CMAKE_SOURCE_DIR}/daemon/notify.c)
  endif()
  unset(_arenad_sources)
endif()
