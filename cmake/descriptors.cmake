# The serialized FileDescriptorProto of each protocol file (protoc --descriptor_set_out, one file
# a set), embedded in ${ESG_GENERATED_DIR}/proto_descriptors.c for the reflection service
# (src/grpc/reflection_service.c). Sets ESG_DESCRIPTOR_SOURCE. Needs protos.cmake first.
find_program(PROTOC protoc REQUIRED)
set(descriptor_sets)
set(embed_arguments)
foreach(pair "${ESG_PROTO_DIR}|${ESG_PROTO_FILES}" "${ESG_GRPC_PROTO_DIR}|${ESG_GRPC_PROTO_FILES}")
  string(REPLACE "|" ";" parts "${pair}")
  list(POP_FRONT parts dir)
  foreach(proto ${parts})
    string(REGEX REPLACE "\\.proto$" ".desc" set_file ${proto})
    set(set_file ${ESG_GENERATED_DIR}/descriptors/${set_file})
    get_filename_component(set_dir ${set_file} DIRECTORY)
    add_custom_command(
      OUTPUT ${set_file}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${set_dir}
      COMMAND ${PROTOC} --proto_path=${dir} --descriptor_set_out=${set_file} ${proto}
      DEPENDS ${dir}/${proto}
      COMMENT "Describing ${proto}")
    list(APPEND descriptor_sets ${set_file})
    list(APPEND embed_arguments "${proto}=${set_file}")
  endforeach()
endforeach()
set(ESG_DESCRIPTOR_SOURCE ${ESG_GENERATED_DIR}/proto_descriptors.c)
string(REPLACE ";" "," embed_list "${embed_arguments}")
add_custom_command(
  OUTPUT ${ESG_DESCRIPTOR_SOURCE}
  COMMAND ${CMAKE_COMMAND} -DOUTPUT=${ESG_DESCRIPTOR_SOURCE} "-DFILES=${embed_list}"
          -P ${CMAKE_CURRENT_LIST_DIR}/embed_descriptors.cmake
  DEPENDS ${descriptor_sets} ${CMAKE_CURRENT_LIST_DIR}/embed_descriptors.cmake
  COMMENT "Embedding the protocols' descriptors")
