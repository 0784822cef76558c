# `cmake --install <build> --prefix P`: libphoton and its public headers, the tools, a CMake
# package (find_package(photon) -> imported target photon::runtime) and photon.pc.
#
#   P/lib/libphoton.so*, libphoton_cuda.so     the runtime (libphoton links libphoton_cuda)
#   P/lib/libphoton_sentencepiece.so           SentencePiece tokenizers (dlopen'd by libphoton)
#   P/include/photon/*.h, photon.hpp           photon.h, photon.hpp, cuda.h, version.h, ...
#   P/bin/photon-{compile,opt,import,run,bench} the tools that were built
#   P/lib/cmake/photon/photonConfig.cmake      find_package(photon)
#   P/lib/pkgconfig/photon.pc                  pkg-config --cflags --libs photon
#
# Included last by the top-level CMakeLists.txt, when every target exists. Skipped in the
# sanitizer build (its libraries carry -fsanitize link options that no consumer wants).
if(PHOTON_ENABLE_SANITIZERS OR NOT TARGET photon)
  return()
endif()

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(PHOTON_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/photon)

# The runtime: installed binaries find libphoton_cuda beside libphoton, the tools find
# both in ../lib.
set_target_properties(photon PROPERTIES EXPORT_NAME runtime INSTALL_RPATH "\$ORIGIN")
set_target_properties(photon_cuda PROPERTIES EXPORT_NAME cuda INSTALL_RPATH "\$ORIGIN")
install(TARGETS photon photon_cuda
  EXPORT photonTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The SentencePiece shim, opened by libphoton with dlopen from its own directory.
install(TARGETS photon_sentencepiece
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime)

install(FILES
    ${PROJECT_SOURCE_DIR}/runtime/include/photon/photon.h
    ${PROJECT_SOURCE_DIR}/runtime/include/photon/photon.hpp
    ${PROJECT_SOURCE_DIR}/runtime/include/photon/cuda.h
    ${PROJECT_SOURCE_DIR}/runtime/include/photon/cuda_mgpu.h
    ${PROJECT_SOURCE_DIR}/runtime/include/photon/weights_format.h
    ${PROJECT_BINARY_DIR}/runtime/include/photon/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/photon COMPONENT runtime)

# The tools that this build has (the compiler's only with PHOTON_BUILD_COMPILER).
foreach(tool photon-compile photon-opt photon-import photon-run photon-bench photon-serve)
  if(TARGET ${tool})
    get_target_property(_rpath ${tool} INSTALL_RPATH)
    if(NOT _rpath)
      set_target_properties(${tool} PROPERTIES INSTALL_RPATH "\$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
    endif()
    # Keep the directories of libraries linked from outside the build (libMLIR.so).
    set_target_properties(${tool} PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
  endif()
endforeach()

# CMake package.
install(EXPORT photonTargets
  NAMESPACE photon::
  FILE photonTargets.cmake
  DESTINATION ${PHOTON_INSTALL_CMAKEDIR} COMPONENT runtime)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/photonConfig.cmake.in
  ${PROJECT_BINARY_DIR}/photonConfig.cmake
  INSTALL_DESTINATION ${PHOTON_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/photonConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/photonConfig.cmake ${PROJECT_BINARY_DIR}/photonConfigVersion.cmake
  DESTINATION ${PHOTON_INSTALL_CMAKEDIR} COMPONENT runtime)

# pkg-config. The prefix is taken from the .pc file's own location, so the installed tree
# can be moved (pkg-config substitutes ${pcfiledir}).
file(RELATIVE_PATH PHOTON_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
configure_file(${CMAKE_CURRENT_LIST_DIR}/photon.pc.in ${PROJECT_BINARY_DIR}/photon.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/photon.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT runtime)
