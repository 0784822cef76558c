//===- MatmulKernels.cpp - register-blocked kernels for x * W^T ----------===//
//
// photon-matmul-kernels: rewrites the bufferized `y[m, n] += sum_k x[m, k] * w[n, k]`
// linalg.generic that convert-photon-to-linalg emits for photon.linear, lm_head and the
// SwiGLU projections into a call of a kernel function, one per distinct operand type, so
// that the same shape (every layer, every stage) is compiled once (docs/compiler.md,
// "Matmul kernels"). The kernel picks one of two paths by the number of rows M of x:
//
// M < gemm-min-rows (decode): split-K GEMV, weights streamed once
//   for n in 0..N step R          (R weight rows; scf.parallel with `parallel`)
//     for m in 0..M               (every row of x reuses the R weight rows from L1)
//       acc[0..R) = 0 : vector<L x f32>
//       for k in 0..K step L: acc[i] = fma(x[m, k:k+L], w[n+i, k:k+L], acc[i])
//       y[m, n+i] += reduce_add(acc[i]) + scalar K tail
//
// M >= gemm-min-rows (prefill): packed GEMM. x is packed once per call into panels
// xp[p][k][0..PW) = x[p*PW + j, k] (PW = P*L rows of x, zero padded); weights keep the
// blob's [N, K] layout. The register tile is R weight rows x PW rows of x:
//   for n0 in 0..N step MC        (scf.parallel with `parallel`; MC x KC of W in L2)
//     for k0 in 0..K step KC
//       for p in panels           (KC x PW of xp in L1)
//         for n in n0..n0+MC step R
//           acc[i][q] = 0 : vector<L x f32>        (R*P accumulators in registers)
//           for k in k0..k0+KC: xv[q] = xp[p][k][qL..]; acc[i][q] += bcast(w[n+i, k]) * xv[q]
//           y[p*PW + j, n+i] += acc[i][j]         (transposed store, once per KC)
//
// A last panel of at most L rows runs a narrow tile of 2R weight rows x 1 vector (the wide
// tile would spend half or more of its FMAs on the zero padding).
//
// The generic's accumulator (zero fill or bias) stays in y, so the rewrite keeps the op's
// semantics up to the order of the floating-point additions.
//
// Groups: matmuls with the same operand types on the same x (q, k, v; gate, up), whose
// buffers no op between them touches (canRunAtLast), become one call at the last of them of
// `__photon_matmul..._<N>x<K>_x<G>(x, w_1..w_G, y_1..y_G[, r, g])`: x is packed or
// norm-scaled once, and the loops over (weight, row block) are one scf.parallel, i.e. one
// OpenMP region per group instead of a fork/join per matmul.
//
// Reduced-precision weights (photon-compile --weights, docs/compiler.md "Weight formats"):
// the generic reads w as f16 / bf16 (`arith.extf` in its body) or as q8 (i8 q and f16
// scales d per group of 32 along k, `sitofp(q) * extf(d)`). The kernels
// `__photon_matmul_{f16,bf16,q8}_<N>x<K>(x, w, y[, d])` keep both paths and widen in the
// dot product: the GEMV loads vector<L x f16|bf16|i8> and converts it to vector<L x f32>
// (vcvtph2ps with F16C; a shift for bf16; vpmovsxbd + vcvtdq2ps for i8); q8 sums one
// group's products in its own accumulator and adds it times the group's scale
// (acc = fma(sum_g x * q, d, acc)), one scale per 32 weights. The GEMM widens each
// broadcast weight scalar.
//
// The RMSNorm-fused form of photon-fuse-norm-matmul, y[m, n] += ((x[m, k] * r[m]) * g[k]) *
// w[n, k], gets kernels `__photon_matmul_rmsnorm_<N>x<K>(x, w, y, r, g)` with the same two
// paths: the GEMM applies r[m] * g[k] while packing x (the panels hold the normalized rows),
// the GEMV scales the M rows once into an [M, K] buffer and runs the unchanged split-K on it.
//
// This file matches the matmuls, groups them and builds one kernel function per operand
// types; the kernels' loops are emitted by MatmulKernelsGemv.cpp (split-K GEMV, weight
// reads) and MatmulKernelsGemm.cpp (packed GEMM), declared in MatmulKernelEmit.h.
//
//===----------------------------------------------------------------------===//

#include "photon/Codegen/CPU/Passes.h"

#include "MatmulKernelEmit.h"
#include "MatmulMatch.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/DenseSet.h"
#include "mlir/Pass/Pass.h"

#include <map>
#include <numeric>

namespace mlir {
namespace photon {
#define GEN_PASS_DEF_PHOTONMATMULKERNELS
#include "photon/Codegen/CPU/Passes.h.inc"

namespace {

using namespace matmul_kernels;

/// True if `op` is y[m, n] += x[m, k] * w[n, k] on memrefs with f32 elements, a static
/// [N, K] weight and unit-stride rows of x and w.
bool isMatmulTranspose(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics() || !isMatmulTStructure(op)) return false;
  auto x = dyn_cast<MemRefType>(op.getDpsInputs()[0].getType());
  auto w = dyn_cast<MemRefType>(op.getDpsInputs()[1].getType());
  auto y = dyn_cast<MemRefType>(op.getDpsInits()[0].getType());
  if (!x || !w || !y) return false;
  if (!x.getElementType().isF32() || !w.getElementType().isF32() || !y.getElementType().isF32())
    return false;
  return w.hasStaticShape() && x.isLastDimUnitStride() && w.isLastDimUnitStride();
}

/// True if `op` is the RMSNorm-fused form photon-fuse-norm-matmul writes,
/// y[m, n] += ((x[m, k] * r[m]) * g[k]) * w[n, k], on memrefs with f32 elements, a static
/// [N, K] weight and unit-stride rows of x and w (inputs x, r, g, w; init y).
bool isNormMatmulTranspose(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics() || !isNormMatmulTStructure(op)) return false;
  for (Value v : op->getOperands()) {
    auto t = dyn_cast<MemRefType>(v.getType());
    if (!t || !t.getElementType().isF32()) return false;
  }
  auto x = cast<MemRefType>(op.getDpsInputs()[0].getType());
  auto w = cast<MemRefType>(op.getDpsInputs()[3].getType());
  return w.hasStaticShape() && x.isLastDimUnitStride() && w.isLastDimUnitStride();
}


/// True if `op` is y[m, n] += x[m, k] * W(n, k) with a reduced-precision weight
/// (matchDequantMatmulT) on memrefs: x, y f32; w f16 / bf16 (half) or i8 with f16 scales
/// d [N, K / group] (q8, K a multiple of group); static [N, K] weight, unit-stride rows.
bool isDequantMatmulTranspose(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics()) return false;
  int64_t group = 0;
  std::optional<WeightForm> form = matchDequantMatmulT(op, group);
  if (!form) return false;
  auto x = dyn_cast<MemRefType>(op.getDpsInputs()[0].getType());
  auto w = dyn_cast<MemRefType>(op.getDpsInputs()[1].getType());
  auto y = dyn_cast<MemRefType>(op.getDpsInits()[0].getType());
  if (!x || !w || !y || !x.getElementType().isF32() || !y.getElementType().isF32() ||
      !w.hasStaticShape() || !x.isLastDimUnitStride() || !w.isLastDimUnitStride())
    return false;
  Type we = w.getElementType();
  if (*form == WeightForm::Half) return we.isF16() || we.isBF16();
  auto d = dyn_cast<MemRefType>(op.getDpsInputs()[2].getType());
  int64_t N = w.getDimSize(0), K = w.getDimSize(1);
  if (*form == WeightForm::Q4) K *= 2; // two weights per byte
  return we.isInteger(8) && d && d.getElementType().isF16() && K % group == 0 &&
         d.hasStaticShape() && d.getDimSize(0) == N && d.getDimSize(1) == K / group &&
         d.isLastDimUnitStride();
}

/// The kernel arguments of a matched generic: x, w, y (+ d for q8 / q4, + r, g for the
/// RMSNorm-fused form).
SmallVector<Value> kernelArgs(linalg::GenericOp op) {
  if (op.getNumDpsInputs() == 3)
    return {op.getDpsInputs()[0], op.getDpsInputs()[1], op.getDpsInits()[0], op.getDpsInputs()[2]};
  if (op.getNumDpsInputs() == 4)
    return {op.getDpsInputs()[0], op.getDpsInputs()[3], op.getDpsInits()[0], op.getDpsInputs()[1],
            op.getDpsInputs()[2]};
  return {op.getDpsInputs()[0], op.getDpsInputs()[1], op.getDpsInits()[0]};
}

/// The buffer a memref view is taken of (through view-like ops).
Value rootOf(Value v) {
  while (auto view = v.getDefiningOp<ViewLikeOpInterface>()) v = view.getViewSource();
  return v;
}

/// Whether roots `a` and `b` may be the same memory: equal, or both function arguments.
bool mayAlias(Value a, Value b) {
  return a == b || (isa<BlockArgument>(a) && isa<BlockArgument>(b));
}

/// Whether the matmuls `members` (in block order; the last one is where the fused call
/// goes) may run together at the last one's place: no op between the first and the last
/// is another matched matmul or writes or frees the group's x (r, g), and no op between
/// member i and the last reads or writes y_i or writes or frees w_i; ops whose effects are
/// unknown (calls) stop the group. The outputs must be distinct buffers.
bool canRunAtLast(ArrayRef<linalg::GenericOp> members, const llvm::DenseSet<Operation *> &matched) {
  Operation *last = members.back();
  llvm::SmallPtrSet<Operation *, 4> memberOps;
  for (linalg::GenericOp m : members) memberOps.insert(m);
  auto aliasesAny = [](ArrayRef<Value> roots, Value v) {
    Value r = rootOf(v);
    return llvm::any_of(roots, [&](Value x) { return mayAlias(x, r); });
  };
  // roots the op `it` must not read (yRoots) or write (yRoots, inRoots)
  auto conflicts = [&](Operation *it, ArrayRef<Value> yRoots, ArrayRef<Value> inRoots) {
    return it->walk([&](Operation *op) {
               if (isMemoryEffectFree(op)) return WalkResult::advance();
               auto iface = dyn_cast<MemoryEffectOpInterface>(op);
               if (!iface)
                 return op->hasTrait<OpTrait::HasRecursiveMemoryEffects>() ? WalkResult::advance()
                                                                           : WalkResult::interrupt();
               SmallVector<MemoryEffects::EffectInstance> effects;
               iface.getEffects(effects);
               for (auto &e : effects) {
                 if (isa<MemoryEffects::Allocate>(e.getEffect())) continue;
                 Value v = e.getValue();
                 if (!v || aliasesAny(yRoots, v)) return WalkResult::interrupt();
                 if (!isa<MemoryEffects::Read>(e.getEffect()) && aliasesAny(inRoots, v))
                   return WalkResult::interrupt();
               }
               return WalkResult::advance();
             })
        .wasInterrupted();
  };
  SmallVector<Value> shared; // x (r, g): the same values in every member
  SmallVector<Value> a0 = kernelArgs(members.front());
  shared.push_back(rootOf(a0[0]));
  for (size_t a = 3; a < a0.size(); ++a) shared.push_back(rootOf(a0[a]));
  for (size_t i = 0; i + 1 < members.size(); ++i) {
    SmallVector<Value> ai = kernelArgs(members[i]);
    SmallVector<Value> yRoots = {rootOf(ai[2])};
    SmallVector<Value> inRoots = shared;
    inRoots.push_back(rootOf(ai[1]));
    for (Operation *it = members[i]->getNextNode(); it && it != last; it = it->getNextNode()) {
      if (memberOps.contains(it)) continue;
      if (matched.contains(it) || conflicts(it, yRoots, inRoots)) return false;
    }
  }
  for (size_t i = 0; i < members.size(); ++i)
    for (size_t j = i + 1; j < members.size(); ++j)
      if (mayAlias(rootOf(kernelArgs(members[i])[2]), rootOf(kernelArgs(members[j])[2])))
        return false;
  return true;
}

struct MatmulKernelsPass : public impl::PhotonMatmulKernelsBase<MatmulKernelsPass> {
  using Base::Base;
  /// The pass's options as the generated struct the kernel builders take.
  PhotonMatmulKernelsOptions options() const {
    PhotonMatmulKernelsOptions o;
    o.parallel = parallel;
    o.lanes = lanes;
    o.rows = rows;
    o.gemmMinRows = gemmMinRows;
    o.gemmRows = gemmRows;
    o.gemmVecs = gemmVecs;
    o.gemmKC = gemmKC;
    o.gemmMC = gemmMC;
    o.parallelMinWeights = parallelMinWeights;
    o.parallelChunks = parallelChunks;
    o.prefetchRows = prefetchRows;
    o.gemvMRows = gemvMRows;
    return o;
  }
  void runOnOperation() override {
    ModuleOp module = getOperation();
    PhotonMatmulKernelsOptions o = options();
    if (o.lanes < 1 || o.rows < 1 || o.gemmRows < 1 || o.gemmVecs < 1 || o.gemmKC < 1 ||
        o.gemmMC < 1 || o.parallelChunks < 1 || o.prefetchRows < 0 ||
        o.gemvMRows < 1) {
      module.emitError("photon-matmul-kernels: sizes must be positive");
      return signalPassFailure();
    }
    SmallVector<linalg::GenericOp> ops;
    module.walk([&](linalg::GenericOp op) {
      if (isMatmulTranspose(op) || isNormMatmulTranspose(op) || isDequantMatmulTranspose(op))
        ops.push_back(op);
    });
    // Matmuls of the same types on the same x (q, k, v; gate, up) form a group: one
    // kernel call for all of them, so x is packed (or norm-scaled) once and their rows
    // share one parallel loop (one OpenMP region instead of one per matmul).
    llvm::DenseSet<Operation *> matched(ops.begin(), ops.end());
    llvm::DenseSet<Operation *> grouped;
    SmallVector<SmallVector<linalg::GenericOp>> groups;
    auto typesOf = [](ArrayRef<Value> args) {
      SmallVector<Type> types;
      for (Value v : args) types.push_back(v.getType());
      return types;
    };
    for (size_t i = 0; i < ops.size(); ++i) {
      if (grouped.contains(ops[i])) continue;
      SmallVector<linalg::GenericOp> group = {ops[i]};
      grouped.insert(ops[i]);
      SmallVector<Value> a0 = kernelArgs(ops[i]);
      // q8 / q4 (x, w, y, d) stay one matmul per call
      bool groupable = a0.size() != 4;
      for (size_t j = i + 1; groupable && j < ops.size(); ++j) {
        if (ops[j]->getBlock() != ops[i]->getBlock()) break;
        SmallVector<Value> aj = kernelArgs(ops[j]);
        if (typesOf(aj) != typesOf(a0) || aj[0] != a0[0] ||
            (a0.size() == 5 && (aj[3] != a0[3] || aj[4] != a0[4])))
          break;
        group.push_back(ops[j]);
        if (!canRunAtLast(group, matched)) {
          group.pop_back();
          break;
        }
        grouped.insert(ops[j]);
      }
      groups.push_back(group);
    }
    SymbolTable symbols(module);
    std::map<std::string, func::FuncOp> kernels;
    for (auto &group : groups) {
      // kernel arguments: x, w_1..w_G, y_1..y_G (+ d for q8 / q4, + r, g for the
      // RMSNorm-fused form)
      SmallVector<Value> first = kernelArgs(group.front());
      SmallVector<Value> args = {first[0]};
      for (auto op : group) args.push_back(kernelArgs(op)[1]);
      for (auto op : group) args.push_back(kernelArgs(op)[2]);
      args.append(first.begin() + 3, first.end());
      SmallVector<Type> types = typesOf(first);
      std::string key;
      llvm::raw_string_ostream ks(key);
      for (Type t : types) ks << t << ";";
      ks << group.size();
      func::FuncOp &fn = kernels[key];
      if (!fn) fn = buildKernel(module, symbols, group.front().getLoc(), types, group.size(), o);
      OpBuilder b(group.back());
      func::CallOp::create(b, group.back().getLoc(), fn, args);
      for (auto op : group) op.erase();
    }
  }
  /// `types`: one matmul's operand types (x, w, y[, d | r, g]); the kernel takes G
  /// weights and G outputs of those types.
  func::FuncOp buildKernel(ModuleOp module, SymbolTable &symbols, Location loc,
                           ArrayRef<Type> types, int64_t G, const PhotonMatmulKernelsOptions &o) {
    auto wt = cast<MemRefType>(types[1]);
    // q4 (x, w, y, d with d [N, K / 32] and w [N, K / 2]): two weights per byte
    bool q4 = types.size() == 4 &&
              wt.getDimSize(1) == 16 * cast<MemRefType>(types[3]).getDimSize(1);
    int64_t N = wt.getDimSize(0), K = wt.getDimSize(1) * (q4 ? 2 : 1);
    OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
    bool norm = types.size() == 5; // RMSNorm-fused: x, w, y, r, g
    bool q8 = types.size() == 4;   // x, w (i8), y, d
    Type we = wt.getElementType();
    std::string prefix = norm ? "__photon_matmul_rmsnorm_"
                         : q4 ? "__photon_matmul_q4_"
                         : q8 ? "__photon_matmul_q8_"
                         : we.isF16() ? "__photon_matmul_f16_"
                         : we.isBF16() ? "__photon_matmul_bf16_"
                                       : "__photon_matmul_";
    SmallVector<Type> argTypes = {types[0]};
    argTypes.append(G, types[1]);
    argTypes.append(G, types[2]);
    argTypes.append(types.begin() + 3, types.end());
    std::string name = prefix + std::to_string(N) + "x" + std::to_string(K);
    if (G > 1) name += "_x" + std::to_string(G);
    auto fn = func::FuncOp::create(b, loc, name, FunctionType::get(b.getContext(), argTypes, {}));
    symbols.insert(fn); // renames on a clash
    fn.setPrivate();
    // one copy per shape: keep LLVM from inlining it back into every caller
    fn->setAttr("passthrough", b.getArrayAttr({b.getStringAttr("noinline")}));
    Block *entry = fn.addEntryBlock();
    b.setInsertionPointToStart(entry);
    Value x = entry->getArgument(0);
    SmallVector<Value> ws, ys;
    for (int64_t i = 0; i < G; ++i) {
      ws.push_back(entry->getArgument(1 + i));
      ys.push_back(entry->getArgument(1 + G + i));
    }
    Value r = norm ? entry->getArgument(1 + 2 * G) : Value(),
          g = norm ? entry->getArgument(2 + 2 * G) : Value();
    Value d = q8 ? entry->getArgument(3) : Value();
    int64_t group = q8 ? K / cast<MemRefType>(types[3]).getDimSize(1) : 0;
    // the q8 GEMV steps k by whole groups of whole vectors; otherwise its k loop by lanes
    PhotonMatmulKernelsOptions ko = o;
    if (q8 && group % ko.lanes != 0) ko.lanes = std::gcd(group, ko.lanes);
    if (q4) ko.lanes = std::gcd<int64_t>(16, ko.lanes); // a vector within one nibble half
    bool par = o.parallel && G * N * K >= o.parallelMinWeights;
    auto gemv = [&](OpBuilder &b, Location loc) {
      if (norm) emitNormSplitK(b, loc, x, r, g, ws, ys, N, K, o, par);
      else emitSplitK(b, loc, x, ws, ys, N, K, ko, par, d, group);
    };
    if (o.gemmMinRows > 0) {
      Value M = memref::DimOp::create(b, loc, x, 0);
      Value big = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, M,
                                        cidx(b, loc, o.gemmMinRows));
      scf::IfOp::create(
          b, loc, big,
          [&](OpBuilder &b, Location loc) {
            emitGemm(b, loc, x, ws, ys, N, K, o, par, r, g, d, group);
            scf::YieldOp::create(b, loc);
          },
          [&](OpBuilder &b, Location loc) {
            gemv(b, loc);
            scf::YieldOp::create(b, loc);
          });
    } else {
      gemv(b, loc);
    }
    func::ReturnOp::create(b, loc);
    return fn;
  }
};

} // namespace

} // namespace photon
} // namespace mlir
