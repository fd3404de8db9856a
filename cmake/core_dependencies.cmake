# The libraries the event-sourcing core links, found with pkg-config: the main project and the
# fuzzing project (fuzz/CMakeLists.txt) include this file.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(YAJL REQUIRED IMPORTED_TARGET yajl)       # the JSON decoder's parser
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(UUID REQUIRED IMPORTED_TARGET uuid)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
pkg_check_modules(LIBCRYPTO REQUIRED IMPORTED_TARGET libcrypto) # AES-GCM of stored state
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)           # compression of stored state
