# install.cmake -- `cmake --install`: pkg-config and CMake package files, systemd
# units, man pages, the default configuration. debian/ packages this install
# with debhelper (dpkg-buildpackage) and sets the two directories below.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

if(TARGET arenad)
  install(TARGETS arenad RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
endif()
if(TARGET arenactl)
  install(TARGETS arenactl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
foreach(lib arena-client arena-client-static)
  if(TARGET ${lib})
    install(TARGETS ${lib}
            LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
            ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  endif()
endforeach()
# The preload library is loaded by path (LD_PRELOAD), never linked, and has
# no SONAME: a distribution may put it in a private directory.
set(ARENA_INSTALL_PRELOADDIR ${CMAKE_INSTALL_LIBDIR} CACHE STRING
    "Directory of libarena-preload.so, relative to the prefix or absolute")
if(TARGET arena-preload)
  install(TARGETS arena-preload LIBRARY DESTINATION ${ARENA_INSTALL_PRELOADDIR})
endif()
install(FILES ${CMAKE_SOURCE_DIR}/client/include/arena.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# Files that name install paths (arena-client.pc, arenad.service) are written
# at install time, so `cmake --install build --prefix DIR` and the .deb
# (prefix /usr) get paths that are true where the files land. The
# configuration goes to /etc for the prefix /usr (as GNUInstallDirs does) and
# to PREFIX/etc otherwise.
set(ARENA_INSTALL_LIBDIR ${CMAKE_INSTALL_LIBDIR})
set(ARENA_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR})
set(ARENA_INSTALL_SBINDIR ${CMAKE_INSTALL_SBINDIR})
# systemd units: relative to the prefix (/usr/lib/systemd/system for the
# prefix /usr, /usr/local/lib/... by default; systemd searches both) or
# absolute (Debian 12's debhelper wants /lib/systemd/system).
set(ARENA_SYSTEMD_UNITDIR lib/systemd/system CACHE STRING
    "Directory of the systemd units, relative to the prefix or absolute")
if(IS_ABSOLUTE "${ARENA_SYSTEMD_UNITDIR}")
  set(_arena_unitdir "${ARENA_SYSTEMD_UNITDIR}")
else()
  set(_arena_unitdir "\${_arena_prefix}/${ARENA_SYSTEMD_UNITDIR}")
endif()
install(CODE "
  set(_arena_prefix \"\${CMAKE_INSTALL_PREFIX}\")
  if(_arena_prefix STREQUAL \"/usr\")
    set(ARENAD_INSTALL_SYSCONF /etc)
  else()
    set(ARENAD_INSTALL_SYSCONF \"\${_arena_prefix}/etc\")
  endif()
  set(ARENAD_INSTALL_SBIN \"\${_arena_prefix}/${ARENA_INSTALL_SBINDIR}\")
  set(CMAKE_INSTALL_PREFIX \"\${_arena_prefix}\")
  set(CMAKE_INSTALL_LIBDIR \"${ARENA_INSTALL_LIBDIR}\")
  set(CMAKE_INSTALL_INCLUDEDIR \"${ARENA_INSTALL_INCLUDEDIR}\")
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  configure_file(\"${CMAKE_SOURCE_DIR}/cmake/arena-client.pc.in\"
                 \"${CMAKE_BINARY_DIR}/install-time/arena-client.pc\" @ONLY)
  configure_file(\"${CMAKE_SOURCE_DIR}/systemd/arenad.service.in\"
                 \"${CMAKE_BINARY_DIR}/install-time/arenad.service\" @ONLY)
  file(INSTALL DESTINATION \"\${_arena_prefix}/${ARENA_INSTALL_LIBDIR}/pkgconfig\"
       TYPE FILE FILES \"${CMAKE_BINARY_DIR}/install-time/arena-client.pc\")
  file(INSTALL DESTINATION \"${_arena_unitdir}\"
       TYPE FILE FILES \"${CMAKE_BINARY_DIR}/install-time/arenad.service\")
  file(INSTALL DESTINATION \"\${ARENAD_INSTALL_SYSCONF}/arenad\"
       TYPE FILE FILES \"${CMAKE_SOURCE_DIR}/systemd/arenad.conf\")
")

# CMake package: find_package(ArenaClient) gives ArenaClient::arena-client.
# Relocatable: the config file finds everything relative to itself.
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/ArenaClientConfig.cmake.in
  ${CMAKE_BINARY_DIR}/ArenaClientConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ArenaClient
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/ArenaClientConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/ArenaClientConfig.cmake
              ${CMAKE_BINARY_DIR}/ArenaClientConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ArenaClient)

# systemd units and snippets (sysusers.d and tmpfiles.d stay under the
# prefix: Debian 12 looks for them in /usr/lib as well).
install(FILES ${CMAKE_SOURCE_DIR}/systemd/arenad.socket DESTINATION ${ARENA_SYSTEMD_UNITDIR})
install(FILES ${CMAKE_SOURCE_DIR}/systemd/arenad.sysusers
        DESTINATION lib/sysusers.d RENAME arenad.conf)
install(FILES ${CMAKE_SOURCE_DIR}/systemd/arenad.tmpfiles
        DESTINATION lib/tmpfiles.d RENAME arenad.conf)

# Man pages, and the bash completion.
foreach(page arenad.8 arenactl.8 arenad.conf.5 arena.3)
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
  install(FILES ${CMAKE_SOURCE_DIR}/man/${page}
          DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
install(FILES ${CMAKE_BINARY_DIR}/share/bash-completion/completions/arenactl
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)

# `cmake --install` (and debhelper's install step) installs what is built
# and does not rebuild the whole tree first, so an install never waits on
# unrelated test targets.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY TRUE)
