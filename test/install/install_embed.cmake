# ctest install-embed (test/install/CMakeLists.txt): cmake -DSRC= -DBIN= -DWORK= -DARTIFACT=
# -DCC= -DGENERATOR= -P install_embed.cmake
cmake_minimum_required(VERSION 3.20)

function(run)
  cmake_parse_arguments(A "" "OUT;WHAT" "COMMAND;ENV" ${ARGN})
  if(A_ENV)
    set(A_COMMAND ${CMAKE_COMMAND} -E env ${A_ENV} ${A_COMMAND})
  endif()
  execute_process(COMMAND ${A_COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install-embed: ${A_WHAT} failed (${rc}):\n${A_COMMAND}\n${out}\n${err}")
  endif()
  if(A_OUT)
    set(${A_OUT} "${out}" PARENT_SCOPE)
  endif()
endfunction()

function(expect text regex what)
  if(NOT text MATCHES "${regex}")
    message(FATAL_ERROR "install-embed: ${what}: expected /${regex}/ in:\n${text}")
  endif()
endfunction()

if(NOT EXISTS "${ARTIFACT}/manifest.json")
  message("install-embed: skipped: no compiled fixture artifact ${ARTIFACT} (build the fixtures)")
  return()
endif()

set(PREFIX ${WORK}/prefix)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

# 1. Install.
run(WHAT "cmake --install" COMMAND ${CMAKE_COMMAND} --install ${BIN} --prefix ${PREFIX})
foreach(f include/photon/photon.h include/photon/photon.hpp include/photon/version.h
          lib/cmake/photon/photonConfig.cmake lib/cmake/photon/photonTargets.cmake
          lib/pkgconfig/photon.pc bin/photon-run)
  if(NOT EXISTS ${PREFIX}/${f})
    message(FATAL_ERROR "install-embed: ${PREFIX}/${f} was not installed")
  endif()
endforeach()
file(GLOB libs ${PREFIX}/lib/libphoton.so*)
if(NOT libs)
  message(FATAL_ERROR "install-embed: libphoton.so was not installed in ${PREFIX}/lib")
endif()
# The installed tool runs from the prefix (its RPATH finds the installed libphoton).
run(WHAT "installed photon-run --help" OUT help COMMAND ${PREFIX}/bin/photon-run --help)
expect("${help}" "usage: photon-run" "installed photon-run --help")

# 2. examples/embed against the installed package only.
set(EB ${WORK}/embed-build)
run(WHAT "configure examples/embed" COMMAND ${CMAKE_COMMAND} -S ${SRC}/examples/embed -B ${EB}
    -G "${GENERATOR}" -DCMAKE_C_COMPILER=${CC} -DCMAKE_PREFIX_PATH=${PREFIX}
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_BUILD_TYPE=Release)
file(STRINGS ${EB}/CMakeCache.txt photon_dir REGEX "^photon_DIR:")
expect("${photon_dir}" "^photon_DIR:PATH=${PREFIX}/" "find_package(photon) resolved outside the prefix")
run(WHAT "build examples/embed" COMMAND ${CMAKE_COMMAND} --build ${EB})
run(WHAT "run photon-embed" OUT out COMMAND ${EB}/photon-embed ${ARTIFACT} "Once upon a time" 16)
message("${out}")
expect("${out}" "libphoton [0-9]+\\.[0-9]+\\.[0-9]+ \\(header [0-9]" "version line")
expect("${out}" "\ngenerated 16 tokens\n" "token count")
string(REGEX MATCHALL "token [0-9]+\n" toks "${out}")
list(LENGTH toks ntok)
if(NOT ntok EQUAL 16)
  message(FATAL_ERROR "install-embed: expected 16 token lines, got ${ntok}")
endif()

# 3. pkg-config.
find_program(PKG_CONFIG NAMES pkg-config pkgconf)
if(PKG_CONFIG)
  run(WHAT "pkg-config" OUT flags ENV PKG_CONFIG_PATH=${PREFIX}/lib/pkgconfig
      COMMAND ${PKG_CONFIG} --cflags --libs photon)
  string(STRIP "${flags}" flags)
  message("pkg-config --cflags --libs photon: ${flags}")
  expect("${flags}" "-lphoton" "pkg-config --libs")
  expect("${flags}" "-I[^ ]*/include" "pkg-config --cflags")
  separate_arguments(flag_list UNIX_COMMAND "${flags}")
  run(WHAT "cc with pkg-config flags" COMMAND ${CC} ${SRC}/examples/embed/main.c -o ${WORK}/embed-pc ${flag_list})
  run(WHAT "run the pkg-config build" OUT out2 COMMAND ${WORK}/embed-pc ${ARTIFACT} "Once upon a time" 4)
  expect("${out2}" "\ngenerated 4 tokens\n" "pkg-config build: token count")
else()
  message("install-embed: pkg-config not found; the .pc file is installed but not checked")
endif()
message("install-embed: ok")
