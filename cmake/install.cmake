# What `cmake --install` (and `make install`, `make package`) puts where, by GNUInstallDirs. The
# components are the Debian packages of cmake/package.cmake: daemon (photond, photonctl, man pages,
# systemd units), client (libphoton-client.so.0), embed (libphoton.so.0), dev (headers, the .so
# links, the CMake package and the pkg-config files). docs/operations.md says how to use them.
include(CMakePackageConfigHelpers)

install(TARGETS photond photonctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT daemon)

install(TARGETS photon_client EXPORT photon-targets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT client NAMELINK_COMPONENT dev)
install(TARGETS photon EXPORT photon-targets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT embed NAMELINK_COMPONENT dev)
install(DIRECTORY include/photon DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
        FILES_MATCHING PATTERN "*.hpp")

# find_package(photon): photon::client and photon::photon, relocatable (paths relative to the
# package's own directory, so `cmake --install --prefix DIR` anywhere works).
set(PHOTON_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/photon)
install(EXPORT photon-targets NAMESPACE photon:: DESTINATION ${PHOTON_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/photon-config.cmake.in
                              ${PROJECT_BINARY_DIR}/photon-config.cmake
                              INSTALL_DESTINATION ${PHOTON_CMAKE_DIR})
# Before 1.0 a minor version may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/photon-config-version.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/photon-config.cmake ${PROJECT_BINARY_DIR}/photon-config-version.cmake
        DESTINATION ${PHOTON_CMAKE_DIR} COMPONENT dev)

# photon-client.pc and photon.pc, written at install time: their prefix is the one installed to
# (`--prefix`, or /usr in a package), not the one configured.
foreach(pc photon-client photon)
  install(CODE "
    set(prefix \"\${CMAKE_INSTALL_PREFIX}\")
    set(PROJECT_VERSION \"${PROJECT_VERSION}\")
    set(CMAKE_INSTALL_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
    set(CMAKE_INSTALL_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
    configure_file(\"${PROJECT_SOURCE_DIR}/cmake/${pc}.pc.in\" \"${PROJECT_BINARY_DIR}/pkgconfig/${pc}.pc\" @ONLY)
    file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig\" TYPE FILE
         FILES \"${PROJECT_BINARY_DIR}/pkgconfig/${pc}.pc\")
  " COMPONENT dev)
endforeach()

# The systemd user units, where packaging/systemd/ has them.
if(EXISTS ${PROJECT_SOURCE_DIR}/packaging/systemd)
  install(DIRECTORY packaging/systemd/ DESTINATION lib/systemd/user COMPONENT daemon
          FILES_MATCHING PATTERN "*.service" PATTERN "*.socket")
endif()
