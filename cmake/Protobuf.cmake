find_program(PROTOC_C_EXECUTABLE NAMES protoc-c protoc-gen-c REQUIRED)

# Every .proto lives beside the module that uses it and is compiled with
# protoc-c at build time into ${CMAKE_BINARY_DIR}/proto/<module path>/.
# Sources include the generated header by its bare name, e.g. "keys.pb-c.h";
# proto file names are therefore unique across the tree.
function(lp2p_protobuf_generate out_sources out_includes)
  file(GLOB_RECURSE protos CONFIGURE_DEPENDS
    RELATIVE ${CMAKE_SOURCE_DIR}
    ${CMAKE_SOURCE_DIR}/core/*.proto ${CMAKE_SOURCE_DIR}/noise/*.proto
    ${CMAKE_SOURCE_DIR}/muxer/*.proto ${CMAKE_SOURCE_DIR}/protocols/*.proto
    ${CMAKE_SOURCE_DIR}/kad/*.proto ${CMAKE_SOURCE_DIR}/mdns/*.proto
    ${CMAKE_SOURCE_DIR}/swarm/*.proto)
  set(srcs "")
  set(incs "")
  foreach(rel ${protos})
    get_filename_component(dir ${rel} DIRECTORY)
    get_filename_component(name ${rel} NAME_WE)
    set(outdir ${CMAKE_BINARY_DIR}/proto/${dir})
    file(MAKE_DIRECTORY ${outdir})
    add_custom_command(
      OUTPUT ${outdir}/${name}.pb-c.c ${outdir}/${name}.pb-c.h
      COMMAND ${PROTOC_C_EXECUTABLE} --c_out=${outdir} --proto_path=${CMAKE_SOURCE_DIR}/${dir}
              ${CMAKE_SOURCE_DIR}/${rel}
      DEPENDS ${CMAKE_SOURCE_DIR}/${rel}
      COMMENT "protoc-c ${rel}")
    list(APPEND srcs ${outdir}/${name}.pb-c.c)
    list(APPEND incs ${outdir})
  endforeach()
  list(REMOVE_DUPLICATES incs)
  set(${out_sources} ${srcs} PARENT_SCOPE)
  set(${out_includes} ${incs} PARENT_SCOPE)
endfunction()
