//===- MatmulKernels.cpp - register-blocked kernels for x * W^T ----------===//
//
// photon-matmul-kernels: rewrites the bufferized `y[m, n] += sum_k x[m, k] * w[n, k]`
// linalg.generic that convert-photon-to-linalg emits for photon.linear, lm_head and the
// SwiGLU projections into explicit vector loops (docs/compiler.md, "Matmul kernels"):
//
//   for n in 0..N step 4          (4 weight rows; scf.parallel with `parallel`)
//     for m in 0..M               (every row of x reuses the 4 weight rows from L1)
//       acc[0..3] = 0 : vector<8xf32>
//       for k in 0..K8 step 8     (split-K: 8 lanes per weight row, accumulators in registers)
//         acc[i] = fma(x[m, k:k+8], w[n+i, k:k+8], acc[i])
//       s[i] = reduce_add(acc[i]) + sum over the K tail (scalar)
//       y[m, n+i] += s[i]
//   rows N4..N: the same with one weight row.
//
// Weights are [N, K] row-major (rows contiguous in K), the layout the split-K GEMV of
// cpu-codegen.md wants, so each weight byte is read once per call. The generic's
// accumulator (zero fill or bias) stays in y, so the rewrite keeps the op's semantics
// up to the order of the floating-point additions.
//
//===----------------------------------------------------------------------===//

#include "photon/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/Builders.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
namespace photon {
namespace {

constexpr int64_t kRows = 4;  // weight rows per block
constexpr int64_t kLanes = 8; // f32 lanes of one AVX2 register

/// True if `op` is y[m, n] += x[m, k] * w[n, k] on memrefs with f32 elements, a static
/// [N, K] weight and unit-stride rows of x and w.
bool isMatmulTranspose(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInputs() != 2 || op.getNumDpsInits() != 1)
    return false;
  if (op.getNumLoops() != 3) return false;
  auto it = op.getIteratorTypesArray();
  if (it[0] != utils::IteratorType::parallel || it[1] != utils::IteratorType::parallel ||
      it[2] != utils::IteratorType::reduction)
    return false;
  MLIRContext *ctx = op.getContext();
  auto d = [&](unsigned i) { return getAffineDimExpr(i, ctx); };
  auto maps = op.getIndexingMapsArray();
  if (maps[0] != AffineMap::get(3, 0, {d(0), d(2)}, ctx) ||
      maps[1] != AffineMap::get(3, 0, {d(1), d(2)}, ctx) ||
      maps[2] != AffineMap::get(3, 0, {d(0), d(1)}, ctx))
    return false;
  auto x = dyn_cast<MemRefType>(op.getDpsInputs()[0].getType());
  auto w = dyn_cast<MemRefType>(op.getDpsInputs()[1].getType());
  auto y = dyn_cast<MemRefType>(op.getDpsInits()[0].getType());
  if (!x || !w || !y) return false;
  Type f32 = Float32Type::get(ctx);
  if (x.getElementType() != f32 || w.getElementType() != f32 || y.getElementType() != f32)
    return false;
  if (!w.hasStaticShape() || !x.isLastDimUnitStride() || !w.isLastDimUnitStride()) return false;
  // body: %p = mulf %a0, %a1; %s = addf %a2, %p (either operand order); yield %s
  Block &body = op.getRegion().front();
  if (body.getOperations().size() != 3) return false;
  auto mul = dyn_cast<arith::MulFOp>(&body.front());
  auto add = dyn_cast<arith::AddFOp>(mul ? mul->getNextNode() : nullptr);
  auto yield = dyn_cast<linalg::YieldOp>(body.getTerminator());
  if (!mul || !add || !yield || yield.getNumOperands() != 1 || yield.getOperand(0) != add)
    return false;
  Value a0 = body.getArgument(0), a1 = body.getArgument(1), a2 = body.getArgument(2);
  bool mulOk = (mul.getLhs() == a0 && mul.getRhs() == a1) || (mul.getLhs() == a1 && mul.getRhs() == a0);
  bool addOk = (add.getLhs() == a2 && add.getRhs() == mul) || (add.getLhs() == mul && add.getRhs() == a2);
  return mulOk && addOk;
}

/// Emits the kernel for weight rows [n, n + rows) and every row of x.
void emitBlock(OpBuilder &b, Location loc, Value x, Value w, Value y, Value n, int64_t rows,
               int64_t K) {
  auto vt = VectorType::get({kLanes}, b.getF32Type());
  int64_t k8 = K - K % kLanes;
  Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
  Value c1 = arith::ConstantIndexOp::create(b, loc, 1);
  Value M = memref::DimOp::create(b, loc, x, 0);
  auto reassoc = arith::FastMathFlags::reassoc | arith::FastMathFlags::contract;
  scf::ForOp::create(b, loc, c0, M, c1, ValueRange{}, [&](OpBuilder &b, Location loc, Value m,
                                                           ValueRange) {
    SmallVector<Value> rowIdx;
    for (int64_t i = 0; i < rows; ++i)
      rowIdx.push_back(i == 0 ? n
                              : arith::AddIOp::create(b, loc, n,
                                                      arith::ConstantIndexOp::create(b, loc, i)));
    SmallVector<Value> sums;
    if (k8 > 0) {
      Value zero = arith::ConstantOp::create(b, loc, vt, DenseElementsAttr::get(vt, 0.0f));
      SmallVector<Value> init(rows, zero);
      Value ck8 = arith::ConstantIndexOp::create(b, loc, k8);
      Value cl = arith::ConstantIndexOp::create(b, loc, kLanes);
      auto kLoop = scf::ForOp::create(
          b, loc, c0, ck8, cl, init, [&](OpBuilder &b, Location loc, Value k, ValueRange acc) {
            Value xv = vector::LoadOp::create(b, loc, vt, x, ValueRange{m, k});
            SmallVector<Value> next;
            for (int64_t i = 0; i < rows; ++i) {
              Value wv = vector::LoadOp::create(b, loc, vt, w, ValueRange{rowIdx[i], k});
              next.push_back(vector::FMAOp::create(b, loc, xv, wv, acc[i]));
            }
            scf::YieldOp::create(b, loc, next);
          });
      for (int64_t i = 0; i < rows; ++i)
        sums.push_back(vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD,
                                                   kLoop.getResult(i), reassoc));
    } else {
      Value z = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f));
      sums.assign(rows, z);
    }
    if (k8 < K) {
      Value lo = arith::ConstantIndexOp::create(b, loc, k8);
      Value hi = arith::ConstantIndexOp::create(b, loc, K);
      auto tail = scf::ForOp::create(
          b, loc, lo, hi, c1, sums, [&](OpBuilder &b, Location loc, Value k, ValueRange acc) {
            Value xs = memref::LoadOp::create(b, loc, x, ValueRange{m, k});
            SmallVector<Value> next;
            for (int64_t i = 0; i < rows; ++i) {
              Value ws = memref::LoadOp::create(b, loc, w, ValueRange{rowIdx[i], k});
              next.push_back(math::FmaOp::create(b, loc, xs, ws, acc[i]));
            }
            scf::YieldOp::create(b, loc, next);
          });
      sums.assign(tail.getResults().begin(), tail.getResults().end());
    }
    for (int64_t i = 0; i < rows; ++i) {
      Value old = memref::LoadOp::create(b, loc, y, ValueRange{m, rowIdx[i]});
      Value s = arith::AddFOp::create(b, loc, old, sums[i]);
      memref::StoreOp::create(b, loc, s, y, ValueRange{m, rowIdx[i]});
    }
    scf::YieldOp::create(b, loc);
  });
}

struct MatmulKernelsPass : public PassWrapper<MatmulKernelsPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(MatmulKernelsPass)
  MatmulKernelsPass() = default;
  MatmulKernelsPass(const MatmulKernelsPass &o) : PassWrapper(o) {}
  explicit MatmulKernelsPass(bool par) { parallel = par; }
  Option<bool> parallel{*this, "parallel",
                        llvm::cl::desc("Make the loop over weight-row blocks an scf.parallel "
                                       "(OpenMP work sharing after convert-scf-to-openmp)"),
                        llvm::cl::init(false)};
  StringRef getArgument() const final { return "photon-matmul-kernels"; }
  StringRef getDescription() const final {
    return "Rewrite bufferized y += x * W^T generics as split-K vector kernels (4 weight rows "
           "x 8 lanes, accumulators in registers)";
  }
  void getDependentDialects(DialectRegistry &r) const override {
    r.insert<vector::VectorDialect, scf::SCFDialect, math::MathDialect, arith::ArithDialect,
             memref::MemRefDialect>();
  }
  void runOnOperation() override {
    SmallVector<linalg::GenericOp> ops;
    getOperation().walk([&](linalg::GenericOp op) {
      if (isMatmulTranspose(op)) ops.push_back(op);
    });
    for (auto op : ops) {
      OpBuilder b(op);
      Location loc = op.getLoc();
      Value x = op.getDpsInputs()[0], w = op.getDpsInputs()[1], y = op.getDpsInits()[0];
      auto wt = cast<MemRefType>(w.getType());
      int64_t N = wt.getDimSize(0), K = wt.getDimSize(1);
      int64_t n4 = N - N % kRows;
      if (n4 > 0) {
        Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
        Value cn4 = arith::ConstantIndexOp::create(b, loc, n4);
        Value cr = arith::ConstantIndexOp::create(b, loc, kRows);
        if (parallel) {
          scf::ParallelOp::create(b, loc, ValueRange{c0}, ValueRange{cn4}, ValueRange{cr},
                                  [&](OpBuilder &b, Location loc, ValueRange iv) {
                                    emitBlock(b, loc, x, w, y, iv[0], kRows, K);
                                  });
        } else {
          scf::ForOp::create(b, loc, c0, cn4, cr, ValueRange{},
                             [&](OpBuilder &b, Location loc, Value n, ValueRange) {
                               emitBlock(b, loc, x, w, y, n, kRows, K);
                               scf::YieldOp::create(b, loc);
                             });
        }
      }
      for (int64_t n = n4; n < N; ++n) {
        Value cn = arith::ConstantIndexOp::create(b, loc, n);
        emitBlock(b, loc, x, w, y, cn, 1, K);
      }
      op.erase();
    }
  }
};

} // namespace

std::unique_ptr<Pass> createMatmulKernelsPass(bool parallel) {
  return std::make_unique<MatmulKernelsPass>(parallel);
}
void registerMatmulKernelsPass() { PassRegistration<MatmulKernelsPass>(); }

} // namespace photon
} // namespace mlir
