//===- DeviceAlloc.h - host buffers as device memory -----*- C++ -*-===//
//
// Shared by photon-gpu-map-to-launch and photon-gpu-host-loops-to-kernels: both move host
// buffers that kernels read or write to device memory.
//
//===----------------------------------------------------------------------===//
#ifndef PHOTON_LIB_CUDA_DEVICEALLOC_H
#define PHOTON_LIB_CUDA_DEVICEALLOC_H

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/PatternMatch.h"

namespace photon::cuda {
using namespace mlir;

/// Replaces a host memref.alloc / memref.alloca by a synchronous gpu.alloc of the same type
/// (wait, alloc, wait) at its place and returns the device buffer.
template <typename AllocLikeOp>
Value replaceWithDeviceAlloc(RewriterBase &rewriter, AllocLikeOp a) {
  Location loc = a.getLoc();
  auto tokTy = gpu::AsyncTokenType::get(a.getContext());
  rewriter.setInsertionPoint(a);
  Value t0 = gpu::WaitOp::create(rewriter, loc, tokTy, ValueRange{}).getAsyncToken();
  auto alloc = gpu::AllocOp::create(rewriter, loc, a.getType(), tokTy, ValueRange{t0},
                                    a.getDynamicSizes(), a.getSymbolOperands(),
                                    /*hostShared=*/false);
  gpu::WaitOp::create(rewriter, loc, Type(), ValueRange{alloc.getAsyncToken()});
  Value mem = alloc.getMemref();
  rewriter.replaceOp(a, mem);
  return mem;
}

/// A synchronous gpu.dealloc of `mem` (wait, dealloc, wait) at the rewriter's point.
inline void createDeviceDealloc(RewriterBase &rewriter, Location loc, Value mem) {
  auto tokTy = gpu::AsyncTokenType::get(rewriter.getContext());
  Value t0 = gpu::WaitOp::create(rewriter, loc, tokTy, ValueRange{}).getAsyncToken();
  Value t1 = gpu::DeallocOp::create(rewriter, loc, tokTy, ValueRange{t0}, mem).getAsyncToken();
  gpu::WaitOp::create(rewriter, loc, Type(), ValueRange{t1});
}

} // namespace photon::cuda

#endif
