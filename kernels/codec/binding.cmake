# N-API addon (kernels/binding/codec_addon.cc) built against the headers of the local Node
# installation and node-addon-api from node_modules; nothing is downloaded. The result is
# kernels/build/codec/covenant_codec.node, loaded by kernels/binding/codec.ts.
set(_root ${CMAKE_CURRENT_SOURCE_DIR}/../..)
find_path(COVENANT_NODE_INCLUDE node_api.h PATHS /usr/include/node /usr/local/include/node NO_DEFAULT_PATH)
find_path(COVENANT_NAPI_INCLUDE napi.h PATHS ${_root}/node_modules/node-addon-api NO_DEFAULT_PATH)
if(COVENANT_NODE_INCLUDE AND COVENANT_NAPI_INCLUDE)
  add_library(covenant_codec_node MODULE ${_root}/kernels/binding/codec_addon.cc)
  target_include_directories(covenant_codec_node SYSTEM PRIVATE ${COVENANT_NODE_INCLUDE} ${COVENANT_NAPI_INCLUDE})
  target_compile_definitions(covenant_codec_node PRIVATE NAPI_VERSION=8 NAPI_CPP_EXCEPTIONS
                                                         NODE_ADDON_API_DISABLE_DEPRECATED)
  target_link_libraries(covenant_codec_node PRIVATE covenant_codec)
  # Node resolves its own symbols in the host process.
  target_link_options(covenant_codec_node PRIVATE -Wl,--unresolved-symbols=ignore-all)
  set_target_properties(covenant_codec_node PROPERTIES PREFIX "" SUFFIX ".node" OUTPUT_NAME covenant_codec
                                                       CXX_VISIBILITY_PRESET hidden)
else()
  message(STATUS "codec: Node or node-addon-api headers not found, the N-API addon is not built")
endif()
