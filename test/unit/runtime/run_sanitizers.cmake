# ctest driver: builds the runtime, photon-run and their tests with
# -DPHOTON_ENABLE_SANITIZERS=ON (ASan + UBSan) in a side build directory and runs the test
# binaries there, so that the ordinary test command exercises the sanitizer option.
#   cmake -DSRC=<source root> -DBIN=<side build dir> -DCXX=<c++ compiler> -DCC=<c compiler>
#         -P run_sanitizers.cmake
foreach(v SRC BIN CXX CC)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_sanitizers.cmake: -D${v}=... is required")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "sanitizer run failed (${rc}): ${cmd}")
  endif()
endfunction()

run(${CMAKE_COMMAND} -G Ninja -S ${SRC} -B ${BIN} -DCMAKE_BUILD_TYPE=RelWithDebInfo
    -DPHOTON_BUILD_COMPILER=OFF -DPHOTON_ENABLE_SANITIZERS=ON
    -DCMAKE_C_COMPILER=${CC} -DCMAKE_CXX_COMPILER=${CXX})
run(${CMAKE_COMMAND} --build ${BIN} -j 2 --target photon-runtime-tests photon-capi-tests photon-run-tests
    photon-hostile-capi-tests photon-device-tests)
set(ENV{ASAN_OPTIONS} "detect_leaks=1:abort_on_error=0")
set(ENV{UBSAN_OPTIONS} "print_stacktrace=1:halt_on_error=1")
foreach(t photon-runtime-tests photon-capi-tests photon-run-tests photon-hostile-capi-tests
          photon-device-tests)
  message(STATUS "running ${t} under ASan + UBSan")
  run(${BIN}/unittests/${t} --gtest_brief=1)
endforeach()
message(STATUS "runtime tests clean under ASan + UBSan")
