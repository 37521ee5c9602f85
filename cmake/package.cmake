# `make package`: Debian packages by CPack, one per component of cmake/install.cmake:
#   photond            the daemon, photonctl, man pages, systemd user units
#   libphoton-client0  libphoton-client.so.0 (a package per soname, as Debian policy wants)
#   libphoton0         libphoton.so.0 (the embedding API with the daemon inside)
#   libphoton-dev      headers, the .so links, the CMake package, the pkg-config files
# Dependencies on Debian's libraries come from dpkg-shlibdeps; ours are stated below.
set(PHOTON_DEB_COMPONENTS daemon client embed dev)
set(PHOTON_DEB_daemon photond)
set(PHOTON_DEB_client libphoton-client${PROJECT_VERSION_MAJOR})
set(PHOTON_DEB_embed libphoton${PROJECT_VERSION_MAJOR})
set(PHOTON_DEB_dev libphoton-dev)

# Every package carries its copyright and changelog (Debian policy 12.5 and 12.7).
set(PHOTON_DEB_CHANGELOG ${PROJECT_BINARY_DIR}/packaging/changelog.gz)
add_custom_command(
  OUTPUT ${PHOTON_DEB_CHANGELOG}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/packaging
  COMMAND sh -c "gzip -9nc '${PROJECT_SOURCE_DIR}/packaging/debian/changelog' > '${PHOTON_DEB_CHANGELOG}'"
  DEPENDS ${PROJECT_SOURCE_DIR}/packaging/debian/changelog
  VERBATIM)
add_custom_target(photon_deb_changelog ALL DEPENDS ${PHOTON_DEB_CHANGELOG})
foreach(component IN LISTS PHOTON_DEB_COMPONENTS)
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/debian/copyright ${PHOTON_DEB_CHANGELOG}
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${PHOTON_DEB_${component}} COMPONENT ${component})
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME photond)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "photond maintainers <photond@example.org>" CACHE STRING
    "The Maintainer field of the Debian packages")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL ${PHOTON_DEB_COMPONENTS})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# dpkg-shlibdeps finds libphoton-client.so.0, which libphoton.so.0 needs, in CPack's staging tree
# (its dependency is stated below: the library is in no installed package).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS
    "${PROJECT_BINARY_DIR}/_CPack_Packages/${CMAKE_SYSTEM_NAME}/DEB/${CPACK_PACKAGE_NAME}-${CPACK_PACKAGE_VERSION}-${CMAKE_SYSTEM_NAME}/client/usr/${CMAKE_INSTALL_LIBDIR}")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_INCLUDE_TOPLEVEL_DIRECTORY OFF)

foreach(component IN LISTS PHOTON_DEB_COMPONENTS)
  string(TOUPPER ${component} upper)
  set(CPACK_DEBIAN_${upper}_PACKAGE_NAME ${PHOTON_DEB_${component}})
endforeach()
set(CPACK_DEBIAN_DAEMON_PACKAGE_SECTION net)
set(CPACK_DEBIAN_CLIENT_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_EMBED_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# The libraries' packages update the loader's cache through dpkg's ldconfig trigger; the scripts
# CPack writes to run ldconfig by hand are taken out after it (cmake/deb_ldconfig_trigger.cmake).
set(CPACK_DEBIAN_CLIENT_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/debian/triggers)
set(CPACK_DEBIAN_EMBED_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/debian/triggers)
set(CPACK_POST_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/cmake/deb_ldconfig_trigger.cmake)
set(CPACK_COMPONENT_EMBED_DEPENDS client)
set(CPACK_COMPONENT_DEV_DEPENDS client embed)
# Webhook authentication loads libcrypto when first used (src/webhooks/crypto_library.hpp), which
# dpkg-shlibdeps cannot see.
set(CPACK_DEBIAN_DAEMON_PACKAGE_DEPENDS "libssl3")
set(CPACK_DEBIAN_EMBED_PACKAGE_DEPENDS "libssl3")
# The headers include Boost.JSON's.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libboost-json1.81-dev")
set(CPACK_DEBIAN_DEV_PACKAGE_ARCHITECTURE_INDEPENDENT OFF)

# Debian's descriptions: a synopsis, then lines of at most 80 columns (CPack indents them).
set(CPACK_COMPONENT_DAEMON_DESCRIPTION "local daemon for cross-process coordination
photond gives the processes of one machine (command-line tools, tool servers,
web dashboards, shell scripts) one Unix socket per named service: pub/sub
channels, named locks with leases and fencing tokens, cron jobs, webhooks, and
methods written in C++ or as scripts.
.
This package holds the daemon photond and its command-line client photonctl.")
set(CPACK_COMPONENT_CLIENT_DESCRIPTION "client library of photond daemons
libphoton-client lets C++ programs publish and subscribe on photond's
channels, take its locks and call the methods of its photons.")
set(CPACK_COMPONENT_EMBED_DESCRIPTION "library to write a photond photon in C++
libphoton makes a C++ program the daemon of its own photon: its methods are
member functions, and every option of photond applies.")
set(CPACK_COMPONENT_DEV_DESCRIPTION "development files of libphoton and libphoton-client
Headers, the CMake package (find_package(photon): photon::client and
photon::photon) and the pkg-config files (photon-client, photon) to build
against the libraries of photond.")

include(CPack)
