# The installed library, programs, headers, pkg-config file, CMake package,
# man pages, and the Debian package (CPack). `cmake --install build --prefix P`.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The library, shared and static, from the core and the gRPC layer. Only the
# functions and variables the public headers declare are exported from the
# shared library (a version script generated from include/esg/*.h).
file(GLOB ESG_PUBLIC_HEADERS ${PROJECT_SOURCE_DIR}/include/esg/*.h)
set(ESG_EXPORT_MAP ${PROJECT_BINARY_DIR}/eventsourcing_grpc.map)
string(REPLACE ";" "|" ESG_HEADER_LIST "${ESG_PUBLIC_HEADERS}") # one argument for the script
add_custom_command(
  OUTPUT ${ESG_EXPORT_MAP}
  COMMAND ${CMAKE_COMMAND} "-DHEADERS=${ESG_HEADER_LIST}" -DOUTPUT=${ESG_EXPORT_MAP}
          -P ${PROJECT_SOURCE_DIR}/cmake/make_export_map.cmake
  DEPENDS ${ESG_PUBLIC_HEADERS} ${PROJECT_SOURCE_DIR}/cmake/make_export_map.cmake
  COMMENT "Listing the public API for the shared library"
  VERBATIM)
add_custom_target(esg_export_map DEPENDS ${ESG_EXPORT_MAP})

foreach(kind SHARED STATIC)
  if(kind STREQUAL SHARED)
    set(target eventsourcing_grpc)
  else()
    set(target eventsourcing_grpc_static)
  endif()
  add_library(${target} ${kind} ${ESG_CORE_SOURCES} ${ESG_EXAMPLE_SOURCES} ${ESG_GRPC_SOURCES})
  target_include_directories(${target}
    PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${PROJECT_SOURCE_DIR}/src ${ESG_GENERATED_DIR} ${LIBPQ_INCLUDE_DIRS}
            ${MICROHTTPD_INCLUDE_DIRS})
  # libpq and libmicrohttpd are loaded at run time (dlopen) by the PostgreSQL backend and the
  # /metrics endpoint: see CMakeLists.txt and src/grpc/microhttpd.h.
  target_link_libraries(${target}
    PUBLIC Threads::Threads ${CMAKE_DL_LIBS}
    PRIVATE PkgConfig::JANSSON PkgConfig::YAJL PkgConfig::SQLITE3 PkgConfig::UUID PkgConfig::LIBCRYPTO
            PkgConfig::ZLIB PkgConfig::GRPC PkgConfig::PROTOBUF_C)
  set_target_properties(${target} PROPERTIES OUTPUT_NAME eventsourcing_grpc
                                             POSITION_INDEPENDENT_CODE ON)
endforeach()
set_target_properties(eventsourcing_grpc PROPERTIES
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
  LINK_DEPENDS ${ESG_EXPORT_MAP})
add_dependencies(eventsourcing_grpc esg_export_map)
target_link_options(eventsourcing_grpc PRIVATE "LINKER:--version-script=${ESG_EXPORT_MAP}"
                                                "LINKER:--no-undefined")
add_library(eventsourcing_grpc::eventsourcing_grpc ALIAS eventsourcing_grpc)

install(TARGETS eventsourcing_grpc EXPORT eventsourcing_grpc_targets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS eventsourcing_grpc_static ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/esg.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${ESG_PUBLIC_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/esg)
install(TARGETS eventsourcing_grpc_server eventsourcing_grpc_runner eventsourcing_grpc_client
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/eventsourcing_grpc_server.1
              ${PROJECT_SOURCE_DIR}/docs/man/eventsourcing_grpc_runner.1
              ${PROJECT_SOURCE_DIR}/docs/man/eventsourcing_grpc_client.1
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
# The protocol, for clients in other languages to generate their code from (reflection serves the
# same descriptors).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/proto/ DESTINATION ${CMAKE_INSTALL_DATADIR}/eventsourcing_grpc/proto
  FILES_MATCHING PATTERN "*.proto")
# The Grafana dashboard of the servers' metrics.
install(FILES ${PROJECT_SOURCE_DIR}/data/grafana/eventsourcing-grpc.json
  DESTINATION ${CMAKE_INSTALL_DATADIR}/eventsourcing_grpc/grafana)
# Bash completion: one file for the three programs, under each one's name (bash-completion
# loads a command's completion from the file of its name).
foreach(program eventsourcing_grpc_server eventsourcing_grpc_runner eventsourcing_grpc_client)
  install(FILES ${PROJECT_SOURCE_DIR}/data/bash-completion/eventsourcing_grpc
    DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME ${program})
endforeach()

# pkg-config: eventsourcing_grpc.pc (the static library's dependencies
# private), relocatable: the prefix is found from the .pc file's own folder,
# so an install under any --prefix works without editing it.
file(RELATIVE_PATH ESG_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
string(REGEX REPLACE "/$" "" ESG_PC_TO_PREFIX "${ESG_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/templates/eventsourcing_grpc.pc.in
               ${PROJECT_BINARY_DIR}/eventsourcing_grpc.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/eventsourcing_grpc.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# CMake: find_package(eventsourcing_grpc) gives eventsourcing_grpc::eventsourcing_grpc.
install(EXPORT eventsourcing_grpc_targets NAMESPACE eventsourcing_grpc::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/eventsourcing_grpc)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/templates/eventsourcing_grpcConfig.cmake.in
  ${PROJECT_BINARY_DIR}/eventsourcing_grpcConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/eventsourcing_grpc)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/eventsourcing_grpcConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/eventsourcing_grpcConfig.cmake
              ${PROJECT_BINARY_DIR}/eventsourcing_grpcConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/eventsourcing_grpc)

# The Debian package: `cpack -G DEB` in the build folder (scripts/make-deb.sh).
set(CPACK_PACKAGE_NAME eventsourcing-grpc-c)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "eventsourcing-grpc for C developers <esg-c@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Event-sourced applications as gRPC services, compatible with Python's eventsourcing-grpc")
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON) # runtime dependencies from the binaries (dpkg-shlibdeps)
# ... which cannot see libpq and libmicrohttpd, loaded with dlopen by the PostgreSQL backend and
# the /metrics endpoint.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libpq5, libmicrohttpd12")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
include(CPack)
