# Man pages photond(8) and photonctl(1), made by help2man from the programs' own --help and
# --version, so the pages and the help cannot disagree; part of the install rules. PHOTON_MAN_PAGES:
# AUTO (when help2man is installed), ON (required: the package preset) or OFF.
set(PHOTON_MAN_PAGES AUTO CACHE STRING "Generate man pages with help2man: ON, OFF or AUTO")
find_program(HELP2MAN_EXECUTABLE help2man)
if(PHOTON_MAN_PAGES STREQUAL "ON" AND NOT HELP2MAN_EXECUTABLE)
  message(FATAL_ERROR "PHOTON_MAN_PAGES=ON needs help2man (scripts/install-deps test installs it)")
endif()
if(NOT PHOTON_MAN_PAGES OR NOT HELP2MAN_EXECUTABLE)
  return()
endif()

set(PHOTON_MAN_DIR ${PROJECT_BINARY_DIR}/man)
# photon_man_page(TARGET SECTION SUMMARY HELP_OPTION): TARGET.SECTION.gz from `TARGET HELP_OPTION`,
# with the extra sections of docs/man/TARGET.h2m.
function(photon_man_page target section summary help_option)
  set(page ${PHOTON_MAN_DIR}/${target}.${section})
  set(include ${PROJECT_SOURCE_DIR}/docs/man/${target}.h2m)
  add_custom_command(
    OUTPUT ${page}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PHOTON_MAN_DIR}
    COMMAND ${CMAKE_COMMAND} -E env COLUMNS=100 PHOTON_DIR=/nonexistent
            ${HELP2MAN_EXECUTABLE} --no-info --section=${section} --name=${summary}
            --version-string=${PROJECT_VERSION} --help-option=${help_option}
            --include=${include} --output=${page} $<TARGET_FILE:${target}>
    # gzip -n: no name or time stamp in the file, so the package is reproducible.
    COMMAND gzip -9nf ${page}
    DEPENDS ${target} ${include}
    COMMENT "Writing the man page ${target}(${section})"
    VERBATIM)
  add_custom_target(${target}_man ALL DEPENDS ${page}.gz)
  install(FILES ${page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section} COMPONENT daemon)
endfunction()

# photond's one command is `serve`: its help is the page.
photon_man_page(photond 8 "local daemon for pub/sub channels, locks, cron jobs, webhooks and methods"
                "serve --help")
photon_man_page(photonctl 1 "command-line client of photond daemons" "--help")
