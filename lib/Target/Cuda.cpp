//===- Cuda.cpp - photon-compile's CUDA target ------------------------------===//
//
// The GPU lowering of lib/Codegen/CUDA applied to the compiler's stage functions, and the link of
// model.so against libphoton_cuda.so. Object emission reuses the CPU target's emitObject
// (the host code is x86 code calling mgpu*; the fatbins are data in .nv_fatbin).
//
//===----------------------------------------------------------------------===//

#include "photon/Target/Cuda.h"
#include "photon/Target/CPU.h"
#include "photon/Codegen/CUDA/CudaPipeline.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVM/NVVM/Target.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

#include <algorithm>
#include <cstdlib>

#ifndef PHOTON_CUDA_RUNTIME_BUILD_PATH
#define PHOTON_CUDA_RUNTIME_BUILD_PATH ""
#endif

namespace mlir {
namespace photon {

void registerCudaTarget(DialectRegistry &registry) {
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  ::photon::cuda::registerCudaDialects(registry);
}

bool isCudaTarget(const std::string &target) {
  return target == "cuda" || StringRef(target).starts_with("cuda:");
}

bool parseCudaTarget(const std::string &target, std::vector<std::string> &chips,
                     std::string &error) {
  chips.clear();
  StringRef t(target);
  if (!t.consume_front("cuda:") || t.trim().empty()) {
    error = "--target cuda needs the GPU architectures, e.g. --target cuda:sm_80 or "
            "--target cuda:sm_80,sm_90 (sm_75 and newer)";
    return false;
  }
  std::vector<std::string> parsed;
  if (!::photon::cuda::parseChips(t.str(), parsed, error)) {
    error = "--target '" + target + "': " + error;
    return false;
  }
  for (auto &c : parsed)
    if (std::find(chips.begin(), chips.end(), c) == chips.end()) chips.push_back(c);
  return true;
}

LogicalResult lowerStagesForCuda(ModuleOp module, const CudaCompileOptions &options) {
  ::photon::cuda::GpuTargetOptions t;
  t.chips = options.chips;
  t.format = "fatbin";
  t.tensorCores = options.tensorCores;
  t.allowTf32 = options.allowTf32;
  t.optLevel = options.deviceOptLevel;
  t.toolkitPath = options.toolkit;
  PassManager pm(module->getContext());
  ::photon::cuda::buildGpuLoweringPipeline(pm, t);
  return pm.run(module);
}

std::string findCudaRuntimeLibrary(const std::string &explicitPath, const char *argv0) {
  auto exists = [](const std::string &p) { return !p.empty() && llvm::sys::fs::exists(p); };
  if (!explicitPath.empty()) return exists(explicitPath) ? explicitPath : "";
  if (const char *env = std::getenv("PHOTON_CUDA_RUNTIME"); env && *env)
    return exists(env) ? std::string(env) : "";
  if (argv0) {
    static int anchor;
    std::string exe = llvm::sys::fs::getMainExecutable(argv0, &anchor);
    if (!exe.empty()) {
      llvm::SmallString<256> p(llvm::sys::path::parent_path(llvm::sys::path::parent_path(exe)));
      llvm::sys::path::append(p, "lib", "libphoton_cuda.so");
      if (exists(std::string(p))) return std::string(p);
    }
  }
  if (exists(PHOTON_CUDA_RUNTIME_BUILD_PATH)) return PHOTON_CUDA_RUNTIME_BUILD_PATH;
  return "";
}

bool linkCudaSharedLibrary(const std::string &objPath, const std::string &soPath,
                           const std::string &runtimeLib, std::string &error) {
  std::string driver = findLinkerProgram({"clang-22", "clang", "cc"});
  if (driver.empty()) {
    error = "no linker driver found (looked for clang-22, clang, cc): install clang-22";
    return false;
  }
  // The artifact carries its own copy of the CUDA runtime library (model.so's DT_NEEDED,
  // found through RUNPATH $ORIGIN); a process that already has libphoton_cuda.so loaded
  // (libphoton links it) reuses that one by soname.
  StringRef dir = llvm::sys::path::parent_path(soPath);
  llvm::SmallString<256> copy(dir);
  llvm::sys::path::append(copy, "libphoton_cuda.so");
  if (!llvm::sys::fs::equivalent(runtimeLib, std::string(copy))) {
    llvm::sys::fs::remove(copy);
    if (auto ec = llvm::sys::fs::copy_file(runtimeLib, copy)) {
      error = "cannot copy " + runtimeLib + " to " + std::string(copy) + ": " + ec.message();
      return false;
    }
  }
  std::string libDir = dir.empty() ? "." : dir.str();
  SmallVector<StringRef> args = {driver, "-shared", "-fuse-ld=lld", "-o", soPath, objPath,
                                 "-L", libDir, "-lphoton_cuda", "-lm",
                                 "-Wl,-rpath,$ORIGIN", "-Wl,--enable-new-dtags",
                                 "-Wl,-z,now", "-Wl,--no-undefined"};
  std::string msg;
  int rc = llvm::sys::ExecuteAndWait(driver, args, std::nullopt, {}, 0, 0, &msg);
  if (rc != 0) {
    args.erase(args.begin() + 2); // retry with the default linker (ld.lld may be missing)
    rc = llvm::sys::ExecuteAndWait(driver, args, std::nullopt, {}, 0, 0, &msg);
  }
  if (rc != 0) {
    error = "linking " + soPath + " against " + runtimeLib + " failed (" + driver +
            " exited with " + std::to_string(rc) + (msg.empty() ? "" : ": " + msg) + ")";
    return false;
  }
  return true;
}

} // namespace photon
} // namespace mlir
