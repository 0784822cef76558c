# ctest driver for the importer's libFuzzer target (tools/photon-import-fuzz): builds it in a
# side build directory with -DPHOTON_BUILD_FUZZERS=ON (the importer instrumented with
# ASan + coverage; docs/importer.md), then fuzzes for SECONDS over a writable corpus seeded
# from the fixtures' models and test/hostile's ONNX inputs, and replays regressions/import/.
#   cmake -DSRC=<source root> -DBIN=<side build dir> -DCXX=... -DCC=... -DMLIR_DIR=...
#         -DSECONDS=60 -P run_import_fuzz.cmake
foreach(v SRC BIN CXX CC MLIR_DIR SECONDS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_import_fuzz.cmake: -D${v}=... is required")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "import fuzzing failed (${rc}): ${cmd}")
  endif()
endfunction()

if(NOT EXISTS ${BIN}/build.ninja)
  run(${CMAKE_COMMAND} -G Ninja -S ${SRC} -B ${BIN} -DCMAKE_BUILD_TYPE=Release
      -DPHOTON_BUILD_FUZZERS=ON -DMLIR_DIR=${MLIR_DIR}
      -DCMAKE_C_COMPILER=${CC} -DCMAKE_CXX_COMPILER=${CXX} -DLLVM_USE_LINKER=lld)
endif()
run(${CMAKE_COMMAND} --build ${BIN} -j 2 --target photon-import-fuzz)

set(corpus ${BIN}/import-fuzz-corpus)
file(MAKE_DIRECTORY ${corpus} ${BIN}/import-fuzz-findings)
file(GLOB seeds ${SRC}/test/fixtures/*/model.onnx ${SRC}/test/hostile/Inputs/*.onnx)
file(COPY ${seeds} DESTINATION ${corpus}/seeds)
set(ENV{ASAN_OPTIONS} "detect_leaks=0")
file(GLOB regressions ${SRC}/test/fuzz/regressions/import/*)
if(regressions)
  run(${BIN}/bin/photon-import-fuzz -runs=1 ${regressions})
endif()
run(${BIN}/bin/photon-import-fuzz -max_total_time=${SECONDS} -timeout=30 -rss_limit_mb=4096
    -print_final_stats=1 -artifact_prefix=${BIN}/import-fuzz-findings/ ${corpus} ${corpus}/seeds)
message(STATUS "photon-import-fuzz: ${SECONDS} s without a finding")
