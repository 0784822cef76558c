//===- CPU.h - photon's CPU back end: stage entry points, object, library -===//
//
// The steps after convert-photon-to-linalg that produce docs/artifact.md's model.so:
// tensor-level stage wrappers with the ABI's argument order, the LLVM module with the
// `photon_<stage>(void **)` entry points, -O3 and object emission for the target CPU, and
// the shared-library link.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_TARGET_CPU_H
#define PHOTON_TARGET_CPU_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <string>
#include <vector>

namespace llvm {
class Module;
class LLVMContext;
} // namespace llvm

namespace mlir {
namespace photon {

/// One stage entry point as the manifest lists it.
struct StageArg {
  std::string name;  ///< "weights", "tokens", "pool", ...
  std::string dtype; ///< "i8", "i32", "f32"
  std::vector<std::string> shape; ///< static sizes as numbers, dynamic ones as symbols
  std::string io;    ///< "in", "inout", "out" ("" for weights)
};
struct StageInfo {
  std::string name;   ///< "forward", "encode_1", ...
  std::string symbol; ///< "photon_forward"
  std::vector<StageArg> args;
};

/// For every function marked `photon.stage = "<name>"` (tensor arguments and results,
/// weights blob as argument 0 after convert-photon-to-linalg) adds
/// `__photon_stage_<name>` with memref arguments in the ABI order (weights, inputs,
/// outputs) and `llvm.emit_c_interface`; records the signature in `stages`.
LogicalResult addStageWrappers(ModuleOp module, std::vector<StageInfo> &stages);

/// Host CPU name and its features (LLVM spelling, e.g. "+avx2,+fma,...").
std::string hostCPU();
std::string hostFeatures(const std::string &cpu);
/// f32 lanes of the widest vector register the kernels should use for `cpu` (empty: the
/// host) with `features` (empty: the CPU's): 16 with AVX-512F, else 8.
int64_t f32VectorLanes(const std::string &cpu, const std::string &features,
                       const std::string &triple = "x86_64-pc-linux-gnu");

struct CodegenOptions {
  std::string triple = "x86_64-pc-linux-gnu";
  std::string cpu;      ///< empty: host
  std::string features; ///< empty: host features when cpu is the host, else the CPU's own
  int optLevel = 3;
  /// Partitions of the LLVM module optimized and compiled on as many threads (0: one per
  /// hardware thread, at most 4). The objects are merged into one relocatable object.
  unsigned codegenThreads = 0;
};

/// Translates an LLVM-dialect module, adds `photon_<stage>(void **args)` for every stage
/// and `photon_abi()`, runs the -O<optLevel> pipeline for the target and writes an object
/// file. On failure returns false and sets `error`. `llvmIROut`, when not empty, receives
/// the optimized LLVM IR (for --save-temps).
bool emitObject(ModuleOp llvmDialectModule, const std::vector<StageInfo> &stages,
                const CodegenOptions &opts, const std::string &objPath,
                const std::string &llvmIROut, std::string &error);

/// The first of `names` found in LLVM 22's bin directory, /usr/bin or PATH; "" if none.
std::string findLinkerProgram(llvm::ArrayRef<const char *> names);

/// Links `objPath` into a shared library with the system linker (clang-22 driver).
/// `openmp` adds libomp (the library then runs its parallel loops on OpenMP threads).
bool linkSharedLibrary(const std::string &objPath, const std::string &soPath, bool openmp,
                       std::string &error);

/// The features written to the manifest: the subset of {avx, avx2, fma, avx512f, f16c}
/// the target has, without '+'.
std::vector<std::string> manifestFeatures(const std::string &features);

/// The features written to the manifest for code generated for `cpu` with `features`
/// (LLVM's "+a,-b" form, e.g. --mattr) on `triple`: every x86 extension the runtime checks
/// (docs/artifact.md) that this CPU model plus these features enable, by LLVM's names,
/// without '+'. Unlike manifestFeatures this also covers a --cpu other than the host's (the
/// host's feature list is not used then, so the CPU model's own features must be listed).
std::vector<std::string> manifestFeatures(const std::string &cpu, const std::string &features,
                                          const std::string &triple);

} // namespace photon
} // namespace mlir

#endif // PHOTON_TARGET_CPU_H
