# Writes the linker version script of the shared library: every function and
# variable the public headers declare (esg_...), global; everything else,
# the internal esg_ helpers included, local. Run as
#   cmake -DHEADERS="a.h|b.h" -DOUTPUT=file.map -P make_export_map.cmake
string(REPLACE "|" ";" HEADERS "${HEADERS}")
set(names "")
foreach(header ${HEADERS})
  file(READ ${header} text)
  # Declarations: "esg_name(" for functions, "esg_name;" for extern variables.
  string(REGEX MATCHALL "[ *]esg_[a-z0-9_]+\\(" functions "${text}")
  string(REGEX MATCHALL "extern const [a-z_]+ esg_[a-z0-9_]+" variables "${text}")
  foreach(match ${functions} ${variables})
    string(REGEX REPLACE "^.*[ *](esg_[a-z0-9_]+)\\(?$" "\\1" name "${match}")
    # Function-pointer typedefs like (*esg_method_fn)( are types, not symbols.
    if(NOT name MATCHES "_fn$")
      list(APPEND names ${name})
    endif()
  endforeach()
endforeach()
list(REMOVE_DUPLICATES names)
list(SORT names)
set(map "/* Generated from the public headers by cmake/make_export_map.cmake. */\n")
string(APPEND map "EVENTSOURCING_GRPC_0 {\n  global:\n")
foreach(name ${names})
  string(APPEND map "    ${name};\n")
endforeach()
string(APPEND map "  local:\n    *;\n};\n")
file(WRITE ${OUTPUT} "${map}")
