# photon_add_pass_tablegen(<td> NAME <name> DOC <page>)
# TableGen of one group of passes (one Passes.td per pipeline step): Passes.h.inc with
# -name <name> (register<name>Passes()), the target <name>PassIncGen, and the pass
# documentation page docs/passes/<page>.md. The page is generated in every build;
# test/Transforms/docs-up-to-date.test compares it with the committed copy, and
# `ninja photon-pass-docs` (part of `ninja photon-docs`) copies it into docs/passes/.
function(photon_add_pass_tablegen td)
  cmake_parse_arguments(ARG "" "NAME;DOC" "" ${ARGN})
  set(LLVM_TARGET_DEFINITIONS ${td})
  mlir_tablegen(Passes.h.inc -gen-pass-decls -name ${ARG_NAME})
  add_public_tablegen_target(${ARG_NAME}PassIncGen)
  add_mlir_doc(Passes ${ARG_DOC} Passes/ -gen-pass-doc)
  add_custom_target(${ARG_DOC}-doc ALL DEPENDS ${ARG_DOC}DocGen)
  add_custom_target(${ARG_DOC}-copy
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_SOURCE_DIR}/docs/passes
    COMMAND ${CMAKE_COMMAND} -E copy ${CMAKE_CURRENT_BINARY_DIR}/${ARG_DOC}.md
            ${PROJECT_SOURCE_DIR}/docs/passes/${ARG_DOC}.md
    DEPENDS ${ARG_DOC}DocGen
    COMMENT "Regenerating docs/passes/${ARG_DOC}.md from ODS")
  if(NOT TARGET photon-pass-docs)
    add_custom_target(photon-pass-docs)
    if(TARGET photon-docs)
      add_dependencies(photon-docs photon-pass-docs)
    endif()
  endif()
  add_dependencies(photon-pass-docs ${ARG_DOC}-copy)
endfunction()
