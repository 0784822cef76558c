//===- GpuMergeFatbin.cpp - per-chip cubins -> one fatbin (photon-gpu-merge-fatbin) -===//
#include "photon/Codegen/CUDA/CudaPipeline.h"
#include "photon/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>

using namespace mlir;

namespace photon::cuda {
#define GEN_PASS_DEF_PHOTONGPUMERGEFATBIN
#include "photon/Codegen/CUDA/Passes.h.inc"

namespace {

/// Merges the per-chip cubins of each gpu.binary into one fatbin with `fatbinary`, so
/// that the host object embeds one image the driver picks the right cubin from.
/// photon-gpu-merge-fatbin (Passes.td); option toolkit.
struct GpuMergeFatbinPass : public impl::PhotonGpuMergeFatbinBase<GpuMergeFatbinPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<gpu::BinaryOp> binaries;
    getOperation().walk([&](gpu::BinaryOp b) { binaries.push_back(b); });
    for (gpu::BinaryOp bin : binaries)
      if (bin.getObjectsAttr().size() > 1 && failed(merge(bin)))
        return signalPassFailure();
  }

  LogicalResult merge(gpu::BinaryOp bin) {
    std::string root = toolkitRoot(toolkit);
    llvm::ErrorOr<std::string> fatbinary =
        llvm::sys::findProgramByName("fatbinary", {root + "/bin"});
    if (!fatbinary)
      return bin->emitError("photon-gpu-merge-fatbin: `fatbinary` not found in ")
             << root << "/bin; install the CUDA toolkit or pass toolkit=<path>";
    SmallVector<std::string> files;
    SmallVector<std::string> args = {*fatbinary, "--64"};
    llvm::scope_exit cleanup([&] {
      for (const std::string &f : files)
        llvm::sys::fs::remove(f);
    });
    Attribute firstTarget;
    DictionaryAttr firstProps;
    for (Attribute a : bin.getObjectsAttr()) {
      auto obj = cast<gpu::ObjectAttr>(a);
      auto target = dyn_cast<NVVM::NVVMTargetAttr>(obj.getTarget());
      if (!target || obj.getFormat() != gpu::CompilationTarget::Binary)
        return bin->emitError("photon-gpu-merge-fatbin: expected NVVM cubin objects "
                              "(gpu-module-to-binary format=bin)");
      if (!firstTarget) {
        firstTarget = target;
        firstProps = obj.getProperties();
      }
      SmallString<128> path;
      int fd;
      if (llvm::sys::fs::createTemporaryFile("photon-" + target.getChip(), "cubin", fd, path))
        return bin->emitError("photon-gpu-merge-fatbin: cannot create a temporary file");
      files.push_back(path.str().str());
      {
        llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
        os << obj.getObject().getValue();
      }
      args.push_back("--image3=kind=elf,sm=" + target.getChip().drop_front(3).str() +
                     ",file=" + path.str().str());
    }
    SmallString<128> out;
    if (llvm::sys::fs::createTemporaryFile("photon-merged", "fatbin", out))
      return bin->emitError("photon-gpu-merge-fatbin: cannot create a temporary file");
    files.push_back(out.str().str());
    args.push_back("--create=" + out.str().str());
    SmallVector<StringRef> argRefs(args.begin(), args.end());
    std::string err;
    int rc = llvm::sys::ExecuteAndWait(*fatbinary, argRefs, std::nullopt, {}, 0, 0, &err);
    if (rc != 0)
      return bin->emitError("photon-gpu-merge-fatbin: fatbinary failed (exit ")
             << rc << ")" << (err.empty() ? "" : ": ") << err;
    auto buf = llvm::MemoryBuffer::getFile(out, /*IsText=*/false);
    if (!buf)
      return bin->emitError("photon-gpu-merge-fatbin: cannot read ") << out;
    MLIRContext *ctx = bin.getContext();
    NamedAttrList props;
    if (firstProps)
      props.append(firstProps.getValue());
    SmallVector<Attribute> chips;
    for (Attribute a : bin.getObjectsAttr())
      chips.push_back(StringAttr::get(
          ctx, cast<NVVM::NVVMTargetAttr>(cast<gpu::ObjectAttr>(a).getTarget()).getChip()));
    props.set(kChipsPropertyName, ArrayAttr::get(ctx, chips));
    auto merged = gpu::ObjectAttr::get(
        ctx, firstTarget, gpu::CompilationTarget::Fatbin,
        StringAttr::get(ctx, (*buf)->getBuffer()), props.getDictionary(ctx), nullptr);
    bin.setObjectsAttr(ArrayAttr::get(ctx, {merged}));
    return success();
  }
};

} // namespace
} // namespace photon::cuda
