//===- Workspace.h - the stage workspace's names, shared by compiler and driver -*- C++ -*-===//
//
// photon-plan-workspace (lib/Codegen/CPU/PlanWorkspace.cpp) places the intermediates of every
// stage function in one workspace buffer that the runtime allocates once per engine and hands
// to model.so through `photon_workspace_set(ptr, bytes)` (per thread). The pass records its
// plan in a module attribute the artifact writer turns into the manifest's `workspace`
// entries (docs/artifact.md). These are the names both sides use.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_CODEGEN_CPU_WORKSPACE_H
#define PHOTON_CODEGEN_CPU_WORKSPACE_H

#include <cstdint>

namespace mlir {
namespace photon {
namespace workspace {

/// The function model.so exports: `void photon_workspace_set(void *ptr, int64_t bytes)`
/// sets the calling thread's workspace (null / 0: none; every stage then allocates its
/// intermediates on the heap, one malloc per call).
inline constexpr const char *kSetterSymbol = "photon_workspace_set";
/// Thread-local globals holding the workspace: base pointer, capacity (bytes) and the bytes
/// the running stage function uses itself (its kernels place their scratch after them).
inline constexpr const char *kPtrGlobal = "__photon_workspace_ptr";
inline constexpr const char *kCapGlobal = "__photon_workspace_bytes";
inline constexpr const char *kUsedGlobal = "__photon_workspace_used";

/// Module attribute with the plan: a dictionary from function name to a dictionary with
/// the keys below.
inline constexpr const char *kPlanAttr = "photon.workspace_plan";
inline constexpr const char *kFixedBytes = "fixed_bytes";   ///< i64: static-size region
inline constexpr const char *kRowBytes = "row_bytes";       ///< i64: bytes per row
/// array of strings: the rows are the product of these atoms, argument dimensions named by
/// the stage's `photon.arg_shapes` symbols (`S`, `B`, `n`) or `a<arg>.<dim>` (dim -1: an
/// index argument) where no symbol names them.
inline constexpr const char *kRows = "rows";
inline constexpr const char *kPlanned = "planned";          ///< i64: buffers placed
inline constexpr const char *kHeap = "heap";                ///< i64: buffers left on the heap
inline constexpr const char *kHeapReasons = "heap_reasons"; ///< array of strings
/// Stage functions only: the scratch of the kernels they call, bounded in the stage's atoms
/// at each call site (array of {fixed_bytes, row_bytes, rows, callee}).
inline constexpr const char *kKernels = "kernels";
inline constexpr const char *kCallee = "callee";

/// Alignment of every buffer in the workspace (bytes).
inline constexpr int64_t kAlignment = 64;

} // namespace workspace
} // namespace photon
} // namespace mlir

#endif // PHOTON_CODEGEN_CPU_WORKSPACE_H
