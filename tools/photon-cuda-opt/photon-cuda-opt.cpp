//===- photon-cuda-opt.cpp - mlir-opt with photon's GPU lowering -----------------===//
//
// Runs photon-gpu-lowering / photon-gpu-kernels and the passes they are made of, plus
// all upstream passes, on .mlir files. `photon-cuda-opt --help` lists them.
//
//===----------------------------------------------------------------------------===//
#include "photon/Codegen/CUDA/CudaPipeline.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  photon::cuda::registerCudaPasses();
  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  mlir::registerAllToLLVMIRTranslations(registry);
  photon::cuda::registerCudaDialects(registry);
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "photon-cuda-opt: photon's GPU lowering (linalg -> NVVM -> fatbin)\n",
      registry));
}
