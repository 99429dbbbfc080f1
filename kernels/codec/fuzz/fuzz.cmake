# Fuzz target of the payload decoder, built with Debian's clang (libFuzzer, ASan, UBSan)
# beside the main build, and run for a bounded time as the CTest test codec_fuzz.
# New inputs the fuzzer finds go to the build tree; the committed seed corpus is
# kernels/codec/fuzz/corpus (add a new crash reproducer there after fixing it).
find_program(COVENANT_CLANGXX NAMES clang++ clang++-16 clang++-15 clang++-14)
set(COVENANT_FUZZ_SECONDS 60 CACHE STRING "seconds the codec_fuzz test runs the fuzzer")
if(COVENANT_CLANGXX)
  set(_dir ${CMAKE_CURRENT_SOURCE_DIR})
  set(_fuzz_sources ${_dir}/fuzz/fuzz_decode.cc ${_dir}/src/wire.cc ${_dir}/src/compress_cpu.cc
                    ${_dir}/src/decode_cpu.cc ${_dir}/src/capi.cc ${_dir}/src/cuda_stub.cc)
  set(_fuzz_bin ${CMAKE_CURRENT_BINARY_DIR}/codec_fuzz_decoder)
  add_custom_command(
    OUTPUT ${_fuzz_bin}
    COMMAND ${COVENANT_CLANGXX} -std=c++17 -g -O1 -ffp-contract=off
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
            -I${_dir}/include -I${_dir}/src ${_fuzz_sources} -o ${_fuzz_bin}
    DEPENDS ${_fuzz_sources} ${_dir}/src/layout.h ${_dir}/src/record.h ${_dir}/src/wire.h
            ${_dir}/src/quant.h ${_dir}/src/parallel.h ${_dir}/src/backend.h
            ${_dir}/include/covenant_codec.h
    COMMENT "Building the codec fuzz target with ${COVENANT_CLANGXX}"
    VERBATIM)
  add_custom_target(codec_fuzz ALL DEPENDS ${_fuzz_bin})
  add_test(NAME codec_fuzz
           COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1
                   sh -c "mkdir -p fuzz-corpus && exec '${_fuzz_bin}' -max_total_time=${COVENANT_FUZZ_SECONDS} -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 fuzz-corpus '${_dir}/fuzz/corpus'"
           WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(codec_fuzz PROPERTIES LABELS fuzz TIMEOUT 600)
else()
  message(STATUS "codec: no clang++ found, the fuzz target is not built (apt-get install clang)")
endif()
