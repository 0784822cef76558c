//===- RaiseLocal.cpp - photon-raise-local: local raising patterns --------===//
//
// The importer's second stage (docs/importer.md, "Two stages"): rewrite patterns, one
// concern each, that raise the upstream spellings the ONNX converters write for local
// computations (linalg.generic elementwise ops and reductions, matmul contractions) into
// typed photon ops through their ODS builders. A pattern proves what it raises: the
// structure (which value is normalized, over which axis, with which weights) and the
// constants (eps, exponents, the mean's divisor); activations are checked numerically
// at sample points, so every spelling of the same function is accepted and a wrong
// constant is not. Near misses leave the upstream ops as they are.
//
//===----------------------------------------------------------------------===//

#include "photon/Import/Passes.h"

#include "RaiseLocalAttention.h"

#include "photon/Dialect/PhotonOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"

#include <cmath>
#include <optional>

namespace mlir {
namespace photon {

#define GEN_PASS_DEF_PHOTONRAISELOCAL
#include "photon/Import/Passes.h.inc"

namespace {

//===----------------------------------------------------------------------===//
// Views of the importer's upstream ops
//===----------------------------------------------------------------------===//

/// An elementwise linalg.generic: one result, every loop parallel, identity output map.
linalg::GenericOp elementwise(Value v) {
  auto g = v ? v.getDefiningOp<linalg::GenericOp>() : linalg::GenericOp();
  if (!g || g->getNumResults() != 1 || g.getNumDpsInits() != 1 || g.getNumReductionLoops() != 0)
    return {};
  if (!g.getIndexingMapsArray().back().isIdentity()) return {};
  return g;
}

/// The one computing op of a generic whose body is `op; linalg.yield op`.
Operation *single(linalg::GenericOp g) {
  Block *b = g.getBody();
  if (!b || b->getOperations().size() != 2) return nullptr;
  Operation *op = &b->front();
  auto y = dyn_cast<linalg::YieldOp>(b->getTerminator());
  if (!y || y->getNumOperands() != 1 || y->getOperand(0).getDefiningOp() != op) return nullptr;
  return op;
}

/// The single body op of elementwise `v`, if it is an OpTy.
template <typename OpTy> std::pair<linalg::GenericOp, OpTy> ew(Value v) {
  linalg::GenericOp g = elementwise(v);
  if (!g) return {};
  auto op = dyn_cast_or_null<OpTy>(single(g));
  if (!op) return {};
  return {g, op};
}

/// A float splat constant: an arith.constant scalar or a dense splat tensor.
std::optional<double> constantOf(Value v) {
  FloatAttr f;
  if (matchPattern(v, m_Constant(&f))) return f.getValueAsDouble();
  DenseFPElementsAttr d;
  if (matchPattern(v, m_Constant(&d)) && d.isSplat())
    return d.getSplatValue<APFloat>().convertToDouble();
  return std::nullopt;
}

/// A tensor of one element (static shape), read as a scalar.
bool oneElement(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && t.hasStaticShape() && t.getNumElements() == 1;
}

/// How a body operand of a generic reads its data.
struct Operand {
  Value tensor;       // the generic's input (null for a scalar from outside the body)
  AffineMap map;      // its indexing map
  std::optional<double> constant;
};

Operand operandOf(linalg::GenericOp g, Value bodyValue) {
  Operand o;
  if (auto a = dyn_cast<BlockArgument>(bodyValue)) {
    if (a.getOwner() != g.getBody() || a.getArgNumber() >= (unsigned)g.getNumDpsInputs())
      return o;
    OpOperand *in = g.getDpsInputOperand(a.getArgNumber());
    o.tensor = in->get();
    o.map = g.getMatchingIndexingMap(in);
    if (!isa<RankedTensorType>(o.tensor.getType())) {
      o.constant = constantOf(o.tensor); // a scalar input
      o.tensor = Value();
      return o;
    }
    if (o.map.getNumResults() == 0 || oneElement(o.tensor)) o.constant = constantOf(o.tensor);
    return o;
  }
  if (bodyValue.getParentBlock() != g.getBody()) o.constant = constantOf(bodyValue);
  return o;
}

bool isIdentityTensor(const Operand &o) { return o.tensor && o.map && o.map.isIdentity(); }

/// The operand reads `[.., D]` along the last loop only: a 1-D weight broadcast over rows.
WeightOp lastAxisWeight(const Operand &o, int64_t rank) {
  if (!o.tensor || o.map.getNumResults() != 1 || o.map.getNumDims() != rank) return {};
  if (o.map.getResult(0) != getAffineDimExpr(rank - 1, o.map.getContext())) return {};
  auto w = o.tensor.getDefiningOp<WeightOp>();
  if (!w || cast<ShapedType>(w.getType()).getRank() != 1) return {};
  return w;
}

/// The operand reads a `[.., 1]` row value broadcast along the last loop (keepdims).
bool rowBroadcast(const Operand &o, int64_t rank) {
  if (!o.tensor || o.map.getNumResults() != rank || o.map.getNumDims() != rank) return false;
  auto t = cast<RankedTensorType>(o.tensor.getType());
  if (t.getRank() != rank || t.getDimSize(rank - 1) != 1) return false;
  for (int64_t i = 0; i + 1 < rank; ++i)
    if (o.map.getResult(i) != getAffineDimExpr(i, o.map.getContext())) return false;
  auto c = dyn_cast<AffineConstantExpr>(o.map.getResult(rank - 1));
  return c && c.getValue() == 0;
}

/// Both body operands of a binary op, in both orders.
template <typename OpTy>
SmallVector<std::pair<Operand, Operand>, 2> operandPairs(linalg::GenericOp g, OpTy op) {
  Operand a = operandOf(g, op->getOperand(0)), b = operandOf(g, op->getOperand(1));
  return {{a, b}, {b, a}};
}

int64_t dimOf(Value v, int64_t i) { return cast<ShapedType>(v.getType()).getDimSize(i); }

bool near(double a, double b, double rel = 1e-5) {
  return std::fabs(a - b) <= rel * std::max(1.0, std::fabs(b));
}

/// The body of a reduction over the last loop: `out + in` or, with `squares`,
/// `out + in * in` (the converters' fused sum of squares).
bool isSumOverLastAxis(linalg::GenericOp sum, bool squares) {
  Block *body = sum.getBody();
  Value in = body->getArgument(0), acc = body->getArgument(1);
  auto y = dyn_cast<linalg::YieldOp>(body->getTerminator());
  if (!y || y->getNumOperands() != 1 || body->getOperations().size() != (squares ? 3u : 2u))
    return false;
  auto add = y->getOperand(0).getDefiningOp<arith::AddFOp>();
  if (!add) return false;
  Value term = in;
  if (squares) {
    auto mul = dyn_cast<arith::MulFOp>(body->front());
    if (!mul || mul.getLhs() != in || mul.getRhs() != in) return false;
    term = mul;
  }
  return (add.getLhs() == term && add.getRhs() == acc) || (add.getLhs() == acc && add.getRhs() == term);
}

/// The source of `tensor.expand_shape` to `[.., 1]` (a reduction's keepdims).
Value keptDims(Value m) {
  auto ex = m.getDefiningOp<tensor::ExpandShapeOp>();
  if (!ex) return {};
  auto rt = cast<RankedTensorType>(ex.getType());
  int64_t r = rt.getRank();
  if (r < 2 || rt.getDimSize(r - 1) != 1) return {};
  auto re = ex.getReassociationIndices();
  if (re.size() != (size_t)r - 1 || re.back() != ReassociationIndices{r - 2, r - 1}) return {};
  return ex.getSrc();
}

/// x of the reduction s = `sum(x)` or `sum(x * x)` over the last loop into a linalg.fill
/// 0; the axis size static.
Value sumGeneric(Value s, bool squares) {
  auto sum = s.getDefiningOp<linalg::GenericOp>();
  if (!sum || sum->getNumResults() != 1 || sum.getNumDpsInputs() != 1 ||
      sum.getNumDpsInits() != 1)
    return {};
  auto it = sum.getIteratorTypesArray();
  int64_t r = it.size();
  Value x = sum.getDpsInputs()[0];
  auto xt = dyn_cast<RankedTensorType>(x.getType());
  if (!xt || xt.getRank() != r || r < 2 || it.back() != utils::IteratorType::reduction)
    return {};
  for (int64_t i = 0; i + 1 < r; ++i)
    if (it[i] != utils::IteratorType::parallel) return {};
  auto maps = sum.getIndexingMapsArray();
  if (!maps[0].isIdentity() || maps[1].getNumDims() != r || maps[1].getNumResults() != r - 1)
    return {};
  for (int64_t i = 0; i + 1 < r; ++i)
    if (maps[1].getResult(i) != getAffineDimExpr(i, s.getContext())) return {};
  if (!isSumOverLastAxis(sum, squares)) return {};
  auto fill = sum.getDpsInits()[0].getDefiningOp<linalg::FillOp>();
  if (!fill || constantOf(fill.getInputs()[0]) != 0.0) return {};
  return ShapedType::isDynamic(xt.getDimSize(r - 1)) ? Value() : x;
}

/// x of `sum(x)` or `sum(x * x)` over the last axis, kept to [.., 1].
Value sumOfLastAxis(Value m, bool squares) {
  Value s = keptDims(m);
  return s ? sumGeneric(s, squares) : Value();
}

/// s = v * f as `v / c` (f = 1 / c), `v * c` or `c * v`, c a scalar constant.
std::optional<std::pair<Value, double>> scaled(Value s) {
  linalg::GenericOp g = elementwise(s);
  Operation *op = g ? single(g) : nullptr;
  if (!op || !isa<arith::DivFOp, arith::MulFOp>(op)) return std::nullopt;
  Operand a = operandOf(g, op->getOperand(0)), c = operandOf(g, op->getOperand(1));
  if (isa<arith::MulFOp>(op) && !isIdentityTensor(a)) std::swap(a, c);
  if (!isIdentityTensor(a) || !c.constant || *c.constant == 0) return std::nullopt;
  return std::make_pair(a.tensor, isa<arith::DivFOp>(op) ? 1.0 / *c.constant : *c.constant);
}

/// m = mean(x) over the last axis with keepdims: ReduceMean as the converters write it (a
/// sum over the last loop, divided by the axis size or multiplied by its inverse, kept to
/// [.., 1]), or ReduceSum with keepdims followed by that division. Returns x.
Value meanOfLastAxis(Value m) {
  Value x;
  double f = 0;
  if (Value s = keptDims(m)) {
    if (auto sc = scaled(s)) {
      x = sumGeneric(sc->first, /*squares=*/false);
      f = sc->second;
    }
  } else if (auto sc = scaled(m)) {
    x = sumOfLastAxis(sc->first, /*squares=*/false);
    f = sc->second;
  }
  if (!x) return {};
  auto xt = cast<RankedTensorType>(x.getType());
  return near(f * (double)xt.getDimSize(xt.getRank() - 1), 1.0) ? x : Value();
}

/// s = x^2 as `x * x` or `powf(x, 2)`; returns x.
Value squareOf(Value s) {
  linalg::GenericOp g = elementwise(s);
  Operation *op = g ? single(g) : nullptr;
  if (!op) return {};
  Operand a = operandOf(g, op->getOperand(0));
  if (!isIdentityTensor(a)) return {};
  if (isa<arith::MulFOp>(op)) {
    if (op->getOperand(0) == op->getOperand(1)) return a.tensor;
    Operand b = operandOf(g, op->getOperand(1));
    return isIdentityTensor(b) && b.tensor == a.tensor ? a.tensor : Value();
  }
  if (isa<math::PowFOp>(op)) {
    Operand b = operandOf(g, op->getOperand(1));
    return b.constant && *b.constant == 2.0 ? a.tensor : Value();
  }
  return {};
}

/// v = 1 / sqrt(t) as rsqrt(t), 1 / sqrt(t) or powf(t, -0.5); returns t.
Value rsqrtOf(Value v) {
  linalg::GenericOp g = elementwise(v);
  Operation *op = g ? single(g) : nullptr;
  if (!op) return {};
  if (isa<math::RsqrtOp>(op)) {
    Operand a = operandOf(g, op->getOperand(0));
    return isIdentityTensor(a) ? a.tensor : Value();
  }
  if (isa<math::PowFOp>(op)) {
    Operand a = operandOf(g, op->getOperand(0)), e = operandOf(g, op->getOperand(1));
    return isIdentityTensor(a) && e.constant && *e.constant == -0.5 ? a.tensor : Value();
  }
  if (isa<arith::DivFOp>(op)) {
    Operand one = operandOf(g, op->getOperand(0)), s = operandOf(g, op->getOperand(1));
    if (!one.constant || *one.constant != 1.0 || !isIdentityTensor(s)) return {};
    auto [sg, sq] = ew<math::SqrtOp>(s.tensor);
    if (!sq) return {};
    Operand t = operandOf(sg, sq.getOperand());
    return isIdentityTensor(t) ? t.tensor : Value();
  }
  return {};
}

/// n = x / sqrt(mean(x^2) + eps), x over the rows of n; `x / sqrt(.)` or `x * rsqrt(.)`.
/// Returns x and eps.
std::optional<std::pair<Value, double>> normalized(Value n) {
  linalg::GenericOp g = elementwise(n);
  Operation *op = g ? single(g) : nullptr;
  if (!op) return std::nullopt;
  int64_t r = cast<ShapedType>(n.getType()).getRank();
  Value x, t;
  if (isa<arith::DivFOp>(op)) {
    Operand a = operandOf(g, op->getOperand(0)), s = operandOf(g, op->getOperand(1));
    if (!isIdentityTensor(a) || !rowBroadcast(s, r)) return std::nullopt;
    auto [sg, sq] = ew<math::SqrtOp>(s.tensor);
    if (!sq) return std::nullopt;
    Operand in = operandOf(sg, sq.getOperand());
    if (!isIdentityTensor(in)) return std::nullopt;
    x = a.tensor;
    t = in.tensor;
  } else if (auto mul = dyn_cast<arith::MulFOp>(op)) {
    for (auto [a, s] : operandPairs(g, mul))
      if (isIdentityTensor(a) && rowBroadcast(s, r))
        if (Value tt = rsqrtOf(s.tensor)) {
          x = a.tensor;
          t = tt;
          break;
        }
  }
  if (!x) return std::nullopt;
  // t = mean(x^2) + eps.
  auto [ag, add] = ew<arith::AddFOp>(t);
  if (!add) return std::nullopt;
  for (auto [m, e] : operandPairs(ag, add)) {
    if (!isIdentityTensor(m) || !e.constant) continue;
    Value sq = meanOfLastAxis(m.tensor);
    if (sq && squareOf(sq) == x && *e.constant > 0) return std::make_pair(x, *e.constant);
  }
  return std::nullopt;
}

/// d = x - mean(x) over the last axis; returns x.
Value centred(Value d) {
  auto [g, sub] = ew<arith::SubFOp>(d);
  if (!sub) return {};
  int64_t r = cast<ShapedType>(d.getType()).getRank();
  Operand x = operandOf(g, sub.getLhs()), m = operandOf(g, sub.getRhs());
  if (!isIdentityTensor(x) || !rowBroadcast(m, r)) return {};
  return meanOfLastAxis(m.tensor) == x.tensor ? x.tensor : Value();
}

//===----------------------------------------------------------------------===//
// Elementwise cones, evaluated at sample points
//===----------------------------------------------------------------------===//

/// The elementwise generics between a root value and one leaf tensor: every operand of a
/// generic of the cone is a scalar constant or the identity read of another generic of the
/// cone, or of the leaf. Evaluates the cone as a scalar function of the leaf.
struct Cone {
  Value leaf;
  llvm::SetVector<Operation *> generics;
  int erf = 0, tanh = 0, exp = 0;

  bool build(Value root, Value stop = {}, int budget = 16) {
    leaf = {};
    generics.clear();
    erf = tanh = exp = 0;
    SmallVector<Value> work{root};
    Type rootType = root.getType();
    while (!work.empty()) {
      Value v = work.pop_back_val();
      linalg::GenericOp g = v == stop ? linalg::GenericOp() : elementwise(v);
      if (!g || v.getType() != rootType) {
        if (leaf && leaf != v) return false;
        leaf = v;
        continue;
      }
      if (!generics.insert(g)) continue;
      if ((int)generics.size() > budget) return false;
      for (Operation &op : g.getBody()->without_terminator()) {
        if (isa<math::ErfOp>(op)) ++erf;
        else if (isa<math::TanhOp>(op)) ++tanh;
        else if (isa<math::ExpOp>(op)) ++exp;
        else if (!isa<arith::AddFOp, arith::SubFOp, arith::MulFOp, arith::DivFOp, arith::NegFOp,
                      arith::ConstantOp, math::SqrtOp, math::RsqrtOp, math::PowFOp>(op))
          return false;
      }
      for (OpOperand *in : g.getDpsInputOperands()) {
        Operand o;
        o.tensor = in->get();
        o.map = g.getMatchingIndexingMap(in);
        if (!isa<RankedTensorType>(o.tensor.getType()) || o.map.getNumResults() == 0 ||
            oneElement(o.tensor)) {
          if (!constantOf(o.tensor)) return false;
          continue;
        }
        if (!o.map.isIdentity()) return false;
        work.push_back(o.tensor);
      }
      // The output operand must not be read (elementwise ops ignore it).
      if (!g.getBody()->getArguments().back().use_empty()) return false;
    }
    return leaf && leaf != root;
  }

  std::optional<double> eval(Value root, double x) {
    llvm::DenseMap<Value, double> env;
    return evalTensor(root, x, env);
  }

private:
  std::optional<double> evalTensor(Value v, double x, llvm::DenseMap<Value, double> &env) {
    if (v == leaf) return x;
    if (auto it = env.find(v); it != env.end()) return it->second;
    if (auto c = constantOf(v)) return c;
    linalg::GenericOp g = elementwise(v);
    if (!g || !generics.count(g)) return std::nullopt;
    llvm::DenseMap<Value, double> local;
    for (OpOperand *in : g.getDpsInputOperands()) {
      auto a = evalTensor(in->get(), x, env);
      if (!a) return std::nullopt;
      local[g.getBody()->getArgument(in->getOperandNumber())] = *a;
    }
    auto get = [&](Value u) -> std::optional<double> {
      if (auto it = local.find(u); it != local.end()) return it->second;
      return constantOf(u);
    };
    for (Operation &op : g.getBody()->getOperations()) {
      if (auto y = dyn_cast<linalg::YieldOp>(op)) {
        auto r = get(y->getOperand(0));
        if (r) env[v] = *r;
        return r;
      }
      if (isa<arith::ConstantOp>(op)) continue;
      SmallVector<double, 2> a;
      for (Value u : op.getOperands()) {
        auto d = get(u);
        if (!d) return std::nullopt;
        a.push_back(*d);
      }
      double r;
      if (isa<arith::AddFOp>(op)) r = a[0] + a[1];
      else if (isa<arith::SubFOp>(op)) r = a[0] - a[1];
      else if (isa<arith::MulFOp>(op)) r = a[0] * a[1];
      else if (isa<arith::DivFOp>(op)) r = a[0] / a[1];
      else if (isa<arith::NegFOp>(op)) r = -a[0];
      else if (isa<math::ErfOp>(op)) r = std::erf(a[0]);
      else if (isa<math::TanhOp>(op)) r = std::tanh(a[0]);
      else if (isa<math::ExpOp>(op)) r = std::exp(a[0]);
      else if (isa<math::SqrtOp>(op)) r = std::sqrt(a[0]);
      else if (isa<math::RsqrtOp>(op)) r = 1.0 / std::sqrt(a[0]);
      else if (isa<math::PowFOp>(op)) r = std::pow(a[0], a[1]);
      else return std::nullopt;
      local[op.getResult(0)] = r;
    }
    return std::nullopt;
  }
};

constexpr double kSamples[] = {-3.0, -1.5, -0.5, 0.25, 1.0, 2.5};

/// Does the cone compute f at every sample point (within 1e-5 relative)?
template <typename F> bool computes(Cone &c, Value root, F f) {
  for (double x : kSamples) {
    auto y = c.eval(root, x);
    if (!y || !near(*y, f(x))) return false;
  }
  return true;
}

/// Finds the cone below `root` that computes f of one leaf: the whole elementwise cone
/// first, then the cones that stop at one of its values (the function's argument may
/// itself be elementwise, e.g. an unraised bias add). `accept` checks the cone's ops.
template <typename F, typename A> bool findCone(Cone &c, Value root, F f, A accept) {
  if (!c.build(root)) {
    // The whole cone holds something else (a non-scalar broadcast, another op): try the
    // cones stopping at each elementwise value reachable from root.
  } else if (accept(c) && computes(c, root, f)) {
    return true;
  }
  SmallVector<Value> cands;
  llvm::SetVector<Operation *> seen;
  SmallVector<Value> work{root};
  while (!work.empty() && cands.size() < 16) {
    Value v = work.pop_back_val();
    linalg::GenericOp g = elementwise(v);
    if (!g || v.getType() != root.getType() || !seen.insert(g)) continue;
    if (v != root) cands.push_back(v);
    for (Value in : g.getDpsInputs()) work.push_back(in);
  }
  for (Value stop : cands)
    if (c.build(root, stop) && c.leaf == stop && accept(c) && computes(c, root, f)) return true;
  return false;
}

double geluErf(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double geluTanh(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
double silu(double x) { return x / (1.0 + std::exp(-x)); }

//===----------------------------------------------------------------------===//
// The patterns
//===----------------------------------------------------------------------===//

/// x[.., K] times a constant W: linalg.fill 0, then a generic `out += x * w` whose maps
/// are the matmul's (x: (.., k), w: (k, n), out: (.., n)); W a `photon.weight` [K, N], or
/// the linalg.transpose of an [N, K] one -> photon.linear(x, [N, K]).
struct RaiseLinear : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::GenericOp g, PatternRewriter &rewriter) const override {
    if (g->getNumResults() != 1 || g.getNumDpsInputs() != 2 || g.getNumDpsInits() != 1)
      return failure();
    auto it = g.getIteratorTypesArray();
    int64_t n = it.size(), r = n - 1; // r = the result's rank
    if (r < 2 || it.back() != utils::IteratorType::reduction || g.getNumReductionLoops() != 1)
      return failure();
    MLIRContext *ctx = getContext();
    auto d = [&](int64_t i) { return getAffineDimExpr(i, ctx); };
    SmallVector<AffineExpr> xs, os;
    for (int64_t i = 0; i + 2 < n; ++i) xs.push_back(d(i));
    os = xs;
    xs.push_back(d(n - 1));
    os.push_back(d(n - 2));
    auto maps = g.getIndexingMapsArray();
    // W read as [K, N] (MatMul, Gemm) or as [N, K] (Gemm with transB = 1).
    bool readNK = maps[1] == AffineMap::get(n, 0, {d(n - 2), d(n - 1)}, ctx);
    if (maps[0] != AffineMap::get(n, 0, xs, ctx) ||
        (!readNK && maps[1] != AffineMap::get(n, 0, {d(n - 1), d(n - 2)}, ctx)) ||
        maps[2] != AffineMap::get(n, 0, os, ctx))
      return failure();
    // Body: out + x * w.
    Block *b = g.getBody();
    if (b->getOperations().size() != 3) return failure();
    auto mul = dyn_cast<arith::MulFOp>(b->front());
    auto add = dyn_cast<arith::AddFOp>(*std::next(b->begin()));
    if (!mul || !add) return failure();
    Value ax = b->getArgument(0), aw = b->getArgument(1), acc = b->getArgument(2);
    if (!((mul.getLhs() == ax && mul.getRhs() == aw) || (mul.getLhs() == aw && mul.getRhs() == ax)))
      return failure();
    if (!((add.getLhs() == acc && add.getRhs() == mul) || (add.getLhs() == mul && add.getRhs() == acc)))
      return failure();
    if (cast<linalg::YieldOp>(b->getTerminator())->getOperand(0) != add) return failure();
    auto fill = g.getDpsInits()[0].getDefiningOp<linalg::FillOp>();
    if (!fill || constantOf(fill.getInputs()[0]) != 0.0) return failure();
    // The weight, as [N, K]; x [.., K] and the result [.., N] static in K and N.
    Value x = g.getDpsInputs()[0], w = g.getDpsInputs()[1], wt;
    auto wty = dyn_cast<RankedTensorType>(w.getType());
    if (!wty || wty.getRank() != 2 || !wty.hasStaticShape() ||
        dimOf(x, r - 1) != wty.getDimSize(readNK ? 1 : 0) ||
        dimOf(g->getResult(0), r - 1) != wty.getDimSize(readNK ? 0 : 1) ||
        cast<ShapedType>(x.getType()).getElementType() != wty.getElementType())
      return failure();
    for (int64_t i = 0; i + 1 < r; ++i)
      if (dimOf(x, i) != dimOf(g->getResult(0), i)) return failure();
    if (readNK) {
      if (w.getDefiningOp<WeightOp>()) wt = w;
    } else if (auto tr = w.getDefiningOp<linalg::TransposeOp>()) {
      if (tr.getPermutation() == ArrayRef<int64_t>{1, 0} && tr.getInput().getDefiningOp<WeightOp>())
        wt = tr.getInput();
    } else if (w.getDefiningOp<WeightOp>()) {
      auto t = cast<RankedTensorType>(w.getType());
      Value init = tensor::EmptyOp::create(rewriter, g.getLoc(),
                                           ArrayRef<int64_t>{t.getDimSize(1), t.getDimSize(0)},
                                           t.getElementType());
      wt = linalg::TransposeOp::create(rewriter, g.getLoc(), w, init, ArrayRef<int64_t>{1, 0})
               ->getResult(0);
    }
    if (!wt) return failure();
    auto lin = LinearOp::create(rewriter, g.getLoc(), x, wt, Value());
    rewriter.replaceOp(g, lin.getResult());
    return success();
  }
};

/// photon.linear(x, w) + b, b a 1-D photon.weight read along the last axis ->
/// photon.linear(x, w, b).
struct RaiseLinearBias : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::GenericOp g, PatternRewriter &rewriter) const override {
    auto [eg, add] = ew<arith::AddFOp>(g->getNumResults() == 1 ? g->getResult(0) : Value());
    if (!add) return failure();
    int64_t r = cast<ShapedType>(g->getResult(0).getType()).getRank();
    for (auto [y, bias] : operandPairs(eg, add)) {
      if (!isIdentityTensor(y)) continue;
      auto lin = y.tensor.getDefiningOp<LinearOp>();
      WeightOp b = lastAxisWeight(bias, r);
      if (!lin || lin.getB() || !b) continue; // other users keep the bias-free linear
      if (lin.getType() != g->getResult(0).getType() ||
          dimOf(b.getResult(), 0) != dimOf(lin.getResult(), r - 1))
        continue;
      auto nl = LinearOp::create(rewriter, g.getLoc(), lin.getX(), lin.getW(), b.getResult());
      rewriter.replaceOp(g, nl.getResult());
      return success();
    }
    return failure();
  }
};

/// gain * x / sqrt(mean(x^2) + eps) -> photon.rms_norm(x, gain, eps). A mean-centred x
/// (x = y - mean(y)) is a LayerNorm's, left to RaiseLayerNorm.
struct RaiseRMSNorm : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::GenericOp g, PatternRewriter &rewriter) const override {
    auto [eg, mul] = ew<arith::MulFOp>(g->getNumResults() == 1 ? g->getResult(0) : Value());
    if (!mul) return failure();
    int64_t r = cast<ShapedType>(g->getResult(0).getType()).getRank();
    for (auto [n, gain] : operandPairs(eg, mul)) {
      WeightOp w = lastAxisWeight(gain, r);
      if (!w || !isIdentityTensor(n)) continue;
      auto xe = normalized(n.tensor);
      if (!xe || centred(xe->first)) continue;
      if (xe->first.getType() != g->getResult(0).getType() ||
          dimOf(w.getResult(), 0) != dimOf(xe->first, r - 1))
        continue;
      auto op = RMSNormOp::create(rewriter, g.getLoc(), xe->first, w.getResult(), (float)xe->second);
      rewriter.replaceOp(g, op.getResult());
      return success();
    }
    return failure();
  }
};

/// (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) * gain + bias -> photon.layer_norm.
struct RaiseLayerNorm : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::GenericOp g, PatternRewriter &rewriter) const override {
    auto [eg, add] = ew<arith::AddFOp>(g->getNumResults() == 1 ? g->getResult(0) : Value());
    if (!add) return failure();
    int64_t r = cast<ShapedType>(g->getResult(0).getType()).getRank();
    for (auto [p, bias] : operandPairs(eg, add)) {
      WeightOp b = lastAxisWeight(bias, r);
      if (!b || !isIdentityTensor(p)) continue;
      auto [mg, mul] = ew<arith::MulFOp>(p.tensor);
      if (!mul) continue;
      for (auto [n, gain] : operandPairs(mg, mul)) {
        WeightOp w = lastAxisWeight(gain, r);
        if (!w || !isIdentityTensor(n)) continue;
        auto de = normalized(n.tensor);
        if (!de) continue;
        Value x = centred(de->first);
        if (!x) continue;
        int64_t dx = dimOf(x, r - 1);
        if (x.getType() != g->getResult(0).getType() || dimOf(w.getResult(), 0) != dx ||
            dimOf(b.getResult(), 0) != dx)
          continue;
        auto op = LayerNormOp::create(rewriter, g.getLoc(), x, w.getResult(), b.getResult(),
                                      (float)de->second);
        rewriter.replaceOp(g, op.getResult());
        return success();
      }
    }
    return failure();
  }
};

/// The LayerNormalization op as the converter writes it: d = x - mean(x) (as above);
/// r = rsqrt(sum(d * d) / D + eps) in one generic over the [.., 1] sums; then one generic
/// `d * r * w + b` -> photon.layer_norm.
struct RaiseLayerNormOp : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::GenericOp g, PatternRewriter &rewriter) const override {
    if (!elementwise(g->getNumResults() == 1 ? g->getResult(0) : Value()) ||
        g.getNumDpsInputs() != 4)
      return failure();
    Block *body = g.getBody();
    if (body->getOperations().size() != 4) return failure();
    auto m1 = dyn_cast<arith::MulFOp>(body->front());
    auto m2 = dyn_cast<arith::MulFOp>(*std::next(body->begin()));
    auto ad = dyn_cast<arith::AddFOp>(*std::next(body->begin(), 2));
    if (!m1 || !m2 || !ad || body->getTerminator()->getOperand(0) != ad) return failure();
    auto other = [](Operation *op, Value v) -> Value {
      return op->getOperand(0) == v ? op->getOperand(1)
                                    : (op->getOperand(1) == v ? op->getOperand(0) : Value());
    };
    Value wv = other(m2, m1), bv = other(ad, m2);
    if (!wv || !bv) return failure();
    int64_t r = cast<ShapedType>(g->getResult(0).getType()).getRank();
    Operand d = operandOf(g, m1.getLhs()), s = operandOf(g, m1.getRhs());
    if (!isIdentityTensor(d)) std::swap(d, s);
    WeightOp w = lastAxisWeight(operandOf(g, wv), r), b = lastAxisWeight(operandOf(g, bv), r);
    if (!isIdentityTensor(d) || !rowBroadcast(s, r) || !w || !b) return failure();
    Value x = centred(d.tensor);
    if (!x) return failure();
    // s = rsqrt(sum(d * d) / D + eps).
    linalg::GenericOp sg = elementwise(s.tensor);
    if (!sg || sg.getNumDpsInputs() != 1 || sg.getBody()->getOperations().size() != 4)
      return failure();
    Block *sb = sg.getBody();
    auto div = dyn_cast<arith::DivFOp>(sb->front());
    auto eps = dyn_cast<arith::AddFOp>(*std::next(sb->begin()));
    auto rs = dyn_cast<math::RsqrtOp>(*std::next(sb->begin(), 2));
    if (!div || !eps || !rs || sb->getTerminator()->getOperand(0) != rs ||
        rs.getOperand() != eps.getResult() || div.getLhs() != sb->getArgument(0))
      return failure();
    Value ev = other(eps, div);
    auto k = constantOf(div.getRhs());
    auto e = ev ? constantOf(ev) : std::nullopt;
    Operand in = operandOf(sg, div.getLhs());
    int64_t dx = dimOf(x, r - 1);
    if (!k || !e || *e <= 0 || !near(*k, (double)dx) || !isIdentityTensor(in) ||
        sumOfLastAxis(in.tensor, /*squares=*/true) != d.tensor)
      return failure();
    if (x.getType() != g->getResult(0).getType() || dimOf(w.getResult(), 0) != dx ||
        dimOf(b.getResult(), 0) != dx)
      return failure();
    auto op = LayerNormOp::create(rewriter, g.getLoc(), x, w.getResult(), b.getResult(), (float)*e);
    rewriter.replaceOp(g, op.getResult());
    return success();
  }
};

/// An elementwise cone with scalar constants and exactly one erf (or tanh) that equals
/// GELU (or its tanh approximation) at the sample points -> photon.gelu.
struct RaiseGelu : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::GenericOp g, PatternRewriter &rewriter) const override {
    if (!elementwise(g->getNumResults() == 1 ? g->getResult(0) : Value())) return failure();
    Value root = g->getResult(0);
    Cone c;
    bool tanh = false;
    if (findCone(c, root, geluErf, [](Cone &k) { return k.erf == 1 && !k.tanh && !k.exp; })) {
    } else if (findCone(c, root, geluTanh,
                        [](Cone &k) { return k.tanh == 1 && !k.erf && !k.exp; })) {
      tanh = true;
    } else {
      return failure();
    }
    rewriter.replaceOp(g, GeluOp::create(rewriter, g.getLoc(), c.leaf, tanh).getResult());
    return success();
  }
};

/// photon.linear(silu(photon.linear(x, wg)) * photon.linear(x, wu), wd) -> photon.swiglu,
/// the SiLU an elementwise cone equal to t * sigmoid(t) at the sample points.
struct RaiseSwiGLU : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearOp down, PatternRewriter &rewriter) const override {
    if (down.getB()) return failure();
    auto [mg, mul] = ew<arith::MulFOp>(down.getX());
    if (!mul) return failure();
    for (auto [s, u] : operandPairs(mg, mul)) {
      if (!isIdentityTensor(s) || !isIdentityTensor(u)) continue;
      auto up = u.tensor.getDefiningOp<LinearOp>();
      if (!up || up.getB()) continue;
      Cone c;
      if (!findCone(c, s.tensor, silu, [](Cone &k) { return !k.erf && !k.tanh; })) continue;
      auto gate = c.leaf.getDefiningOp<LinearOp>();
      if (!gate || gate.getB() || gate.getX() != up.getX()) continue;
      // The weights' shapes are the linears' own ([F, D], [F, D], [D, F]): gate and up
      // read x [.., D] and give the same [.., F]; down maps it back to the result.
      if (up.getX().getType() != down.getType() || gate.getType() != up.getType()) continue;
      auto op = SwiGLUOp::create(rewriter, down.getLoc(), up.getX(), gate.getW(), up.getW(),
                                 down.getW());
      rewriter.replaceOp(down, op.getResult());
      return success();
    }
    return failure();
  }
};

struct PhotonRaiseLocalPass : impl::PhotonRaiseLocalBase<PhotonRaiseLocalPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populatePhotonRaiseLocalPatterns(patterns);
    // Not converging within the driver's iterations leaves valid IR with fewer ops raised:
    // not an error of the model.
    (void)applyPatternsGreedily(getOperation(), std::move(patterns));
  }
};

} // namespace

void populatePhotonRaiseLocalPatterns(RewritePatternSet &patterns) {
  patterns.add<RaiseLinear, RaiseLinearBias, RaiseRMSNorm, RaiseLayerNorm, RaiseLayerNormOp,
               RaiseGelu, RaiseSwiGLU>(patterns.getContext());
  populateRaiseLocalAttentionPatterns(patterns);
}

} // namespace photon
} // namespace mlir
