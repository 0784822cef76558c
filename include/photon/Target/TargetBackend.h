//===- TargetBackend.h - photon-compile's target interface --------*- C++ -*-===//
//
// A target backend turns the linalg stage functions that convert-photon-to-linalg and
// addStageWrappers produce into model.so and says what the manifest's "target" object
// holds. photon-compile looks its --target string up in a registry of backends: CPU
// (lib/Target/CPU.cpp) and CUDA (lib/Target/Cuda.cpp) are the two built-in ones; another is
// added by implementing this class and calling registerTargetBackend before compiling.
// docs/adding-a-target.md walks through one.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_TARGET_TARGETBACKEND_H
#define PHOTON_TARGET_TARGETBACKEND_H

#include "photon/Target/CPU.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/JSON.h"

#include <memory>
#include <string>
#include <vector>

namespace mlir {
class DialectRegistry;
namespace photon {

/// The photon-compile options a backend may read (the target-neutral ones stay with the
/// driver).
struct TargetOptions {
  bool openmp = false;         ///< --openmp (only where supportsOpenMP())
  bool fusedAttention = true;  ///< --fused-attention (only where supportsFusedAttention())
  bool vectorMatmul = true;    ///< --matmul vector (false: generic)
  std::string cpu;             ///< --cpu of the host code (empty: the host)
  std::string features;        ///< --mattr of the host code (empty: the CPU's)
  bool cudaTensorCores = true; ///< --cuda-tensor-cores
  bool cudaAllowTf32 = false;  ///< --cuda-allow-tf32
  std::string cudaToolkit;     ///< --cuda-toolkit
  std::string cudaRuntime;     ///< --cuda-runtime
  const char *argv0 = nullptr; ///< the compiler's executable (finds files installed beside it)
};

/// A parsed --target string, e.g. "cuda:sm_80,sm_90" -> archs {sm_80, sm_90}.
struct TargetSpec {
  std::string text;               ///< as given on the command line
  std::vector<std::string> archs; ///< what follows "<name>:", split at ','
};

using ProgressFn = llvm::function_ref<void(const llvm::Twine &)>;

class TargetBackend {
public:
  virtual ~TargetBackend();

  /// The --target name ("cpu", "cuda") and a one-line description (--list-targets).
  virtual llvm::StringRef getName() const = 0;
  virtual llvm::StringRef getDescription() const = 0;
  /// How the "supported:" list of an unknown --target spells it (default: the name).
  virtual std::string getSyntax() const { return getName().str(); }

  /// Whether this backend owns `target` (default: "<name>" or "<name>:...").
  virtual bool matches(llvm::StringRef target) const;
  /// Parses a --target string this backend matches. Default: exactly "<name>", no
  /// architectures. On failure returns false with a message (without "error: ").
  virtual bool parseTarget(llvm::StringRef target, TargetSpec &spec, std::string &error) const;

  /// Capability checks.
  /// Forward-only artifacts (an ONNX graph without a recognized hierarchy).
  virtual bool supportsForwardOnly() const { return false; }
  /// --openmp kernels.
  virtual bool supportsOpenMP() const { return false; }
  /// The fused, vectorized CPU attention kernels of convert-photon-to-linalg (false: the
  /// linalg form, which the backend's pipeline lowers itself).
  virtual bool supportsFusedAttention() const { return false; }

  /// Dialects and extensions the backend's lowering needs in the context.
  virtual void registerDialects(DialectRegistry &registry) const {}

  /// Lowers the module of linalg stage functions (after convert-photon-to-linalg and
  /// addStageWrappers) to the LLVM dialect. On failure returns failure() with the message
  /// photon-compile prints in `error`.
  virtual LogicalResult lowerToLLVM(ModuleOp module, const TargetSpec &spec,
                                    const TargetOptions &options, ProgressFn progress,
                                    std::string &error) const = 0;

  /// Code generation: the LLVM-dialect module to an object file. Default: the host code of
  /// lib/Target/CPU.cpp (emitObject: `photon_<stage>(void **)` entry points, photon_abi).
  virtual bool emitObject(ModuleOp module, const std::vector<StageInfo> &stages,
                          const TargetSpec &spec, const CodegenOptions &codegen,
                          const std::string &objPath, const std::string &llvmIROut,
                          std::string &error) const;

  /// Links the object into `soPath` (model.so); may copy files the library needs into the
  /// artifact directory.
  virtual bool link(const std::string &objPath, const std::string &soPath,
                    const TargetSpec &spec, const TargetOptions &options,
                    std::string &error) const = 0;

  /// The manifest's "target" object (docs/artifact.md). Its "kind" must be one the runtime
  /// loads ("cpu" or "cuda" today).
  virtual llvm::json::Object manifestTarget(const TargetSpec &spec, const TargetOptions &options,
                                            const CodegenOptions &codegen) const = 0;
};

/// Adds a backend to the registry (a second one with the same name replaces the first).
void registerTargetBackend(std::unique_ptr<TargetBackend> backend);
/// The backend registered under `name`, or null.
const TargetBackend *lookupTargetBackend(llvm::StringRef name);
/// The backend that matches a --target string, or null.
const TargetBackend *findTargetBackend(llvm::StringRef target);
/// Every registered backend, in registration order.
std::vector<const TargetBackend *> getTargetBackends();

/// The built-in backends (lib/Target/CPU.cpp, lib/Target/Cuda.cpp); photon/Target/Driver.h's
/// registerBuiltinTargetBackends registers both.
std::unique_ptr<TargetBackend> createCPUTargetBackend();
std::unique_ptr<TargetBackend> createCudaTargetBackend();

} // namespace photon
} // namespace mlir

#endif // PHOTON_TARGET_TARGETBACKEND_H
