//===- GpuInsertDealloc.cpp - free host-side buffers after their last use ----------===//
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
#define GEN_PASS_DEF_PHOTONGPUINSERTDEALLOC
#include "photon/Codegen/CUDA/Passes.h.inc"

namespace {

/// Frees the device buffers of intermediates: every host `memref.alloc` (one that is not
/// inside a kernel's scf.forall) that does not leave its function gets a `memref.dealloc`
/// after its last use, which photon-gpu-map-to-launch turns into `gpu.dealloc` with the
/// `gpu.alloc`. Upstream ownership-based deallocation is not used: where it cannot decide
/// aliasing statically it emits a host-side helper reading i1/index buffers, which would
/// live in device memory here. The analysis is conservative instead: a buffer that may be
/// returned (through views, casts, region results or a callee returning its argument) or
/// that reaches an op it does not understand is not freed.
struct GpuInsertDeallocPass : public impl::PhotonGpuInsertDeallocBase<GpuInsertDeallocPass> {
  using Base::Base;

  /// Per function: for each memref result, the argument numbers it may alias (-1: any).
  DenseMap<Operation *, SmallVector<SmallVector<int>>> returnsArg;

  static bool isView(Operation *op) {
    return isa<ViewLikeOpInterface, memref::CastOp, memref::ExpandShapeOp,
               memref::CollapseShapeOp, memref::ReinterpretCastOp>(op);
  }

  /// The values aliasing `root` (views of views...). Returns false if an alias escapes
  /// the function or reaches something not understood.
  bool collectAliases(Value root, SymbolTable &symbols, SmallVectorImpl<Value> &aliases,
                      bool &returned) {
    SmallVector<Value> work = {root};
    DenseSet<Value> seen;
    bool ok = true;
    while (!work.empty()) {
      Value v = work.pop_back_val();
      if (!seen.insert(v).second)
        continue;
      aliases.push_back(v);
      for (OpOperand &use : v.getUses()) {
        Operation *user = use.getOwner();
        if (isa<func::ReturnOp>(user)) {
          returned = true;
          continue;
        }
        if (isView(user)) {
          for (Value r : user->getResults())
            if (isa<BaseMemRefType>(r.getType()))
              work.push_back(r);
          continue;
        }
        if (auto call = dyn_cast<func::CallOp>(user)) {
          auto callee = symbols.lookup<func::FuncOp>(call.getCallee());
          auto it = callee ? returnsArg.find(callee) : returnsArg.end();
          for (auto [i, r] : llvm::enumerate(call.getResults())) {
            if (!isa<BaseMemRefType>(r.getType()))
              continue;
            if (it == returnsArg.end()) {
              ok = false; // unknown callee: may return its argument
              continue;
            }
            for (int a : it->second[i])
              if (a < 0 || a == static_cast<int>(use.getOperandNumber()))
                work.push_back(r);
          }
          continue;
        }
        if (isa<scf::YieldOp, scf::ForOp, scf::IfOp, scf::WhileOp, cf::BranchOp,
                cf::CondBranchOp>(user) &&
            !user->getParentOfType<scf::ForallOp>())
          ok = false; // flows into a region result / block argument: not tracked
        if (llvm::any_of(user->getResultTypes(),
                         [](Type t) { return isa<BaseMemRefType>(t); }))
          ok = false; // an op (not a known view) whose memref result may alias
        if (auto mem = dyn_cast<MemoryEffectOpInterface>(user))
          if (mem.getEffectOnValue<MemoryEffects::Free>(v))
            ok = false; // already freed
        // Everything else reads or writes through the buffer (copies, linalg, loads,
        // kernels' forall bodies) without keeping it.
      }
    }
    return ok;
  }

  void summarize(func::FuncOp f) {
    SmallVector<SmallVector<int>> res(f.getNumResults());
    f.walk([&](func::ReturnOp ret) {
      for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
        if (!isa<BaseMemRefType>(v.getType()))
          continue;
        // Walk back through views to the root.
        Value cur = v;
        while (Operation *def = cur.getDefiningOp()) {
          if (!isView(def))
            break;
          cur = def->getOperand(0);
        }
        if (auto arg = dyn_cast<BlockArgument>(cur)) {
          if (arg.getOwner()->isEntryBlock() && arg.getOwner()->getParentOp() == f)
            res[i].push_back(arg.getArgNumber());
          else
            res[i].push_back(-1);
        } else if (!isa<memref::AllocOp>(cur.getDefiningOp())) {
          auto call = dyn_cast<func::CallOp>(cur.getDefiningOp());
          // A callee's result: fresh only if that callee returns fresh buffers.
          auto it = call ? returnsArg.find(SymbolTable::lookupNearestSymbolFrom(
                               f, call.getCalleeAttr()))
                         : returnsArg.end();
          if (it == returnsArg.end() ||
              !it->second[cast<OpResult>(cur).getResultNumber()].empty())
            res[i].push_back(-1);
        }
      }
    });
    returnsArg[f] = std::move(res);
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    // Callees before callers (the call graph of stage functions is acyclic); functions
    // in a cycle or declarations stay unknown.
    SmallVector<func::FuncOp> order;
    DenseSet<Operation *> visiting, visited;
    std::function<void(func::FuncOp)> visit = [&](func::FuncOp f) {
      if (visited.contains(f) || visiting.contains(f))
        return;
      visiting.insert(f);
      f.walk([&](func::CallOp c) {
        if (auto callee = symbols.lookup<func::FuncOp>(c.getCallee()))
          visit(callee);
      });
      visiting.erase(f);
      visited.insert(f);
      order.push_back(f);
    };
    for (auto f : module.getOps<func::FuncOp>())
      visit(f);
    for (func::FuncOp f : order) {
      if (!f.isExternal())
        summarize(f);
    }
    IRRewriter rewriter(&getContext());
    for (func::FuncOp f : order) {
      if (f.isExternal())
        continue;
      // Fresh buffers: host allocs and results of callees that return fresh buffers.
      SmallVector<Value> roots;
      f.walk([&](Operation *op) {
        if (op->getParentOfType<scf::ForallOp>() || op->getParentOfType<gpu::LaunchOp>())
          return;
        if (isa<memref::AllocOp>(op))
          roots.push_back(op->getResult(0));
        if (auto call = dyn_cast<func::CallOp>(op)) {
          auto callee = symbols.lookup<func::FuncOp>(call.getCallee());
          auto it = callee ? returnsArg.find(callee) : returnsArg.end();
          if (it == returnsArg.end())
            return;
          for (auto [i, r] : llvm::enumerate(call.getResults()))
            if (isa<MemRefType>(r.getType()) && it->second[i].empty())
              roots.push_back(r);
        }
      });
      for (Value root : roots) {
        SmallVector<Value> aliases;
        bool returned = false;
        if (!collectAliases(root, symbols, aliases, returned) || returned)
          continue;
        Block *block = root.getParentBlock();
        Operation *last = root.getDefiningOp();
        bool inBlock = true;
        for (Value a : aliases)
          for (Operation *user : a.getUsers()) {
            Operation *anc = block->findAncestorOpInBlock(*user);
            if (!anc) {
              inBlock = false;
              continue;
            }
            if (last->isBeforeInBlock(anc))
              last = anc;
          }
        if (!inBlock || last->hasTrait<OpTrait::IsTerminator>())
          continue;
        rewriter.setInsertionPointAfter(last);
        memref::DeallocOp::create(rewriter, root.getLoc(), root);
      }
    }
  }
};

} // namespace
} // namespace photon::cuda
