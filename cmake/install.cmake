# install.cmake -- `cmake --install`, pkg-config and CMake package files, systemd
# units, man pages, the default configuration, and the .deb (CPack).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
include(${CMAKE_CURRENT_LIST_DIR}/ops.cmake)

if(TARGET arenad)
  install(TARGETS arenad RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
endif()
if(TARGET arenactl)
  install(TARGETS arenactl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
foreach(lib arena-client arena-client-static arena-preload)
  if(TARGET ${lib})
    install(TARGETS ${lib}
            LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
            ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  endif()
endforeach()
install(FILES ${CMAKE_SOURCE_DIR}/client/include/arena.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# Files that name install paths (arena-client.pc, arenad.service) are written
# at install time, so `cmake --install build --prefix DIR` and the .deb
# (prefix /usr) get paths that are true where the files land. The
# configuration goes to /etc for the prefix /usr (as GNUInstallDirs does) and
# to PREFIX/etc otherwise.
set(ARENA_INSTALL_LIBDIR ${CMAKE_INSTALL_LIBDIR})
set(ARENA_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR})
set(ARENA_INSTALL_SBINDIR ${CMAKE_INSTALL_SBINDIR})
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
  file(INSTALL DESTINATION \"\${_arena_prefix}/lib/systemd/system\"
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

# systemd units and snippets, relative to the prefix: /usr/lib/systemd/system
# for a package (Debian 12's /lib is /usr/lib), /usr/local/lib/... by default;
# systemd searches both.
set(SYSTEMD_UNIT_DIR lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/systemd/arenad.socket DESTINATION ${SYSTEMD_UNIT_DIR})
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
install(FILES ${CMAKE_SOURCE_DIR}/contrib/bash-completion/arenactl
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)

# .deb: cpack -G DEB in the build directory, after building. `make install`
# and cpack install what is built and do not rebuild the whole tree first, so
# a package (and the package test) never waits on unrelated test targets.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY TRUE)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME arenad)
set(CPACK_PACKAGE_VENDOR "arenad")
set(CPACK_PACKAGE_CONTACT "arenad developers <arenad@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "shared-memory allocation service with a lock-free client allocator")
# The package installs under /usr whatever prefix the tree was configured
# with: CPack runs the install with DESTDIR=staging and the prefix /usr, and
# the install-time files above (unit, .pc, /etc) follow that prefix.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6 (>= 2.36), libuv1 (>= 1.44), libprotobuf-c1 (>= 1.4), libsystemd0, libjson-c5")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/cmake/deb/conffiles
    ${CMAKE_SOURCE_DIR}/cmake/deb/postinst
    ${CMAKE_SOURCE_DIR}/cmake/deb/prerm
    ${CMAKE_SOURCE_DIR}/cmake/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
