# The language and warning settings of every build of the sources: the main project and the
# fuzzing project (fuzz/CMakeLists.txt) include this file.
set(CMAKE_C_STANDARD 17)
set(CMAKE_C_STANDARD_REQUIRED ON)
set(CMAKE_C_EXTENSIONS OFF)
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE RelWithDebInfo)
endif()
add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
                    -Wformat=2 -Wvla -Wpointer-arith)
# POSIX 2008 (pthreads, strtod_l, getrandom via glibc) with strict C17 otherwise.
add_compile_definitions(_POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)
