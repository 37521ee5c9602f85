# Run by CPack after it wrote the packages (CPACK_POST_BUILD_SCRIPTS): the shared libraries'
# packages keep dpkg's ldconfig trigger (packaging/debian/triggers) and lose the postinst and
# postrm that CPack writes to call ldconfig by hand, which Debian replaced by the trigger
# (lintian: maintscript-calls-ldconfig). Everything else in the package is left as CPack made it.
foreach(deb IN LISTS CPACK_PACKAGE_FILES)
  get_filename_component(name ${deb} NAME)
  if(NOT name MATCHES "^libphoton(-client)?[0-9]+_")
    continue()
  endif()
  set(tree ${deb}.tree)
  file(REMOVE_RECURSE ${tree})
  execute_process(COMMAND dpkg-deb --raw-extract ${deb} ${tree} COMMAND_ERROR_IS_FATAL ANY)
  if(NOT EXISTS ${tree}/DEBIAN/triggers)
    message(FATAL_ERROR "${name} has no ldconfig trigger")
  endif()
  file(REMOVE ${tree}/DEBIAN/postinst ${tree}/DEBIAN/postrm)
  execute_process(COMMAND dpkg-deb --root-owner-group --build ${tree} ${deb}
                  OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE_RECURSE ${tree})
endforeach()
