# ---- The gRPC layer: protocol, server, client ----
pkg_check_modules(GRPC REQUIRED IMPORTED_TARGET grpc)
pkg_check_modules(PROTOBUF_C REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(MICROHTTPD REQUIRED IMPORTED_TARGET libmicrohttpd) # the /metrics endpoint (its header:
# the library is loaded at run time, microhttpd.c)
set(ESG_GENERATED_DIR ${PROJECT_BINARY_DIR}/generated)
include(${CMAKE_CURRENT_LIST_DIR}/protos.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/descriptors.cmake)

set(ESG_GRPC_SOURCES
  src/grpc/wire.c
  src/grpc/grpc_log.c
  src/grpc/credentials.c
  src/grpc/server.c
  src/grpc/unread_replies.c
  src/grpc/application_service.c
  src/grpc/health_service.c
  src/grpc/node_service.c
  src/grpc/reflection_service.c
  src/grpc/server_metrics.c
  src/grpc/metrics_server.c
  src/grpc/microhttpd.c
  src/grpc/client.c
  src/grpc/target.c
  src/grpc/subscription.c
  src/grpc/node.c
  src/grpc/runner.c
  ${ESG_PROTO_SOURCES}
  ${ESG_DESCRIPTOR_SOURCE}
)
add_library(esg_grpc STATIC ${ESG_GRPC_SOURCES})
target_include_directories(esg_grpc
  PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  PRIVATE ${PROJECT_SOURCE_DIR}/src ${ESG_GENERATED_DIR} ${MICROHTTPD_INCLUDE_DIRS})
target_link_libraries(esg_grpc PUBLIC esg_core PkgConfig::GRPC PRIVATE PkgConfig::PROTOBUF_C
                      PkgConfig::LIBCRYPTO) # certificates checked at start (credentials.c)
set_target_properties(esg_grpc PROPERTIES POSITION_INDEPENDENT_CODE ON)

# ---- Console programs ----
# They link the shared library, whose esg_ symbols the applications they load
# by topic (user_counters.so, say) then find in the process.
foreach(program eventsourcing_grpc_server eventsourcing_grpc_runner eventsourcing_grpc_client)
  string(REPLACE "eventsourcing_grpc_" "" short ${program})
  add_executable(${program} src/cli/${short}_main.c)
  target_link_libraries(${program} PRIVATE eventsourcing_grpc)
  target_include_directories(${program} PRIVATE ${PROJECT_SOURCE_DIR}/src) # grpc/exit_codes.h
  # --version prints the project's version, set once in project().
  target_compile_definitions(${program} PRIVATE ESG_VERSION="${PROJECT_VERSION}")
  # Installed under any prefix, they find the library beside them.
  set_target_properties(${program} PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
endforeach()
# The client shows undecodable stored state as base64 (OpenSSL's encoder), and checks that
# the rest is JSON with jansson.
target_link_libraries(eventsourcing_grpc_client PRIVATE PkgConfig::LIBCRYPTO PkgConfig::JANSSON)
