# install.cmake -- `cmake --install`, pkg-config and CMake package files, systemd
# units, man pages, the default configuration, and the .deb (CPack).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

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

# pkg-config: arena-client.pc
configure_file(${CMAKE_SOURCE_DIR}/cmake/arena-client.pc.in
               ${CMAKE_BINARY_DIR}/arena-client.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/arena-client.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# CMake package: find_package(ArenaClient) gives ArenaClient::arena-client.
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
# for a package (Debian 12's /lib is /usr/lib), /usr/local/lib/... by default.
set(SYSTEMD_UNIT_DIR lib/systemd/system)
set(ARENAD_INSTALL_SBIN ${CMAKE_INSTALL_FULL_SBINDIR})
set(ARENAD_INSTALL_SYSCONF ${CMAKE_INSTALL_FULL_SYSCONFDIR})
configure_file(${CMAKE_SOURCE_DIR}/systemd/arenad.service.in
               ${CMAKE_BINARY_DIR}/systemd/arenad.service @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/systemd/arenad.service
              ${CMAKE_SOURCE_DIR}/systemd/arenad.socket
        DESTINATION ${SYSTEMD_UNIT_DIR})
install(FILES ${CMAKE_SOURCE_DIR}/systemd/arenad.sysusers
        DESTINATION lib/sysusers.d RENAME arenad.conf)
install(FILES ${CMAKE_SOURCE_DIR}/systemd/arenad.tmpfiles
        DESTINATION lib/tmpfiles.d RENAME arenad.conf)

# The commented default configuration, and man pages (when present).
if(EXISTS ${CMAKE_SOURCE_DIR}/systemd/arenad.conf)
  install(FILES ${CMAKE_SOURCE_DIR}/systemd/arenad.conf
          DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/arenad)
endif()
foreach(page arenad.8 arenactl.8 arenad.conf.5 arena.3)
  if(EXISTS ${CMAKE_SOURCE_DIR}/man/${page})
    string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
    install(FILES ${CMAKE_SOURCE_DIR}/man/${page}
            DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endif()
endforeach()

# .deb: cpack -G DEB in the build directory.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME arenad)
set(CPACK_PACKAGE_VENDOR "arenad")
set(CPACK_PACKAGE_CONTACT "arenad developers <arenad@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "shared-memory allocation service with a lock-free client allocator")
# Build the package from a tree configured with -DCMAKE_INSTALL_PREFIX=/usr, so
# that the configuration lands in /etc (GNUInstallDirs maps it so for /usr).
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6 (>= 2.36), libuv1 (>= 1.44), libprotobuf-c1 (>= 1.4), libsystemd0")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/cmake/deb/postinst
    ${CMAKE_SOURCE_DIR}/cmake/deb/prerm
    ${CMAKE_SOURCE_DIR}/cmake/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
