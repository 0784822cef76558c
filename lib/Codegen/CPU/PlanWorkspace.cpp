//===- PlanWorkspace.cpp - stage intermediates at planned offsets of one workspace ===//
//
// photon-plan-workspace: after bufferization (and photon-free-at-last-use, which puts every
// deallocation right after the buffer's last use) each stage call still mallocs and frees
// every intermediate. This pass gives each of them an offset in one workspace buffer the
// runtime allocates once per engine (and thread), so a stage call makes no malloc:
//
// 1. Candidates: `memref.alloc`s of identity layout outside any loop whose deallocation is
//    in the same block (upstream buffer-deallocation-pipeline placed it, photon-free-at-
//    last-use moved it to the last use), so [alloc, dealloc] in the function's pre-order is
//    the buffer's live interval.
// 2. Sizes: each buffer is at most `a + b x rows` bytes. Each dynamic size is bounded in the
//    function's argument dimensions, first by the upstream ValueBoundsConstraintSet (an EQ
//    bound linear in one argument dimension), else through the index arithmetic the lowering
//    emits (products, divisions and remainders by constants, reshapes, casts, views). The rows
//    are a product of atoms, argument dimensions named by the stage's `photon.arg_shapes`
//    (S, B, n; so equal symbols of two arguments are one atom): for a stage the atoms covering
//    most bytes, for a kernel all its atoms; a buffer over a subset of them fits (each atom is
//    at least 1). Other buffers stay heap allocations, counted with the reason.
// 3. Offsets `p + o x rows`: greedy first fit by decreasing size among buffers whose
//    intervals overlap (as MLC-LLM / TVM static memory planning), disjoint in both
//    coordinates (so for every row count), 64-byte aligned.
// 4. Rewrite: the workspace comes from thread-local globals that the exported
//    `photon_workspace_set(ptr, bytes)` sets. At entry a function computes what it needs
//    (fixed + per-row x rows); when the workspace is smaller (or not set) it mallocs that
//    once and frees it at return, so a short workspace costs speed, never correctness.
//    Each buffer becomes a `memref.view` of the workspace; its dealloc goes.
//    Kernel functions (private functions called only from stages, e.g. the matmul and
//    attention kernels) are planned the same way and place their scratch after the
//    calling stage's own bytes (`__photon_workspace_used`, set by the stage at entry).
// 5. The plan (bytes, rows, each kernel's scratch bounded in the stage's atoms at its call
//    sites, buffers left on the heap) is recorded in the
//    module attribute `photon.workspace_plan` for the manifest and --report.
//
//===----------------------------------------------------------------------===//

#include "photon/Codegen/CPU/Passes.h"
#include "photon/Codegen/CPU/Workspace.h"
#include "photon/Dialect/PhotonDialect.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/LoopLikeInterface.h"
#include "mlir/Interfaces/ValueBoundsOpInterface.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include <map>
#include <numeric>
#include "llvm/Support/raw_ostream.h"

namespace mlir {
namespace photon {
#define GEN_PASS_DEF_PHOTONPLANWORKSPACE
#include "photon/Codegen/CPU/Passes.h.inc"

namespace {
using namespace workspace;

bool isEntryArg(Value v, func::FuncOp f) {
  auto ba = dyn_cast<BlockArgument>(v);
  return ba && ba.getOwner() == &f.getBody().front();
}

/// An upper bound `a + b * (product of atoms)` with rational coefficients (over `den`);
/// atoms are argument dimensions of the function, named by the stage's `photon.arg_shapes`
/// symbol where it has one (so `S` of two arguments is one atom) or `a<arg>.<dim>`.
struct Lin {
  int64_t a = 0, b = 0, den = 1;
  SmallVector<std::string> atoms; ///< sorted
  void norm() {
    int64_t g = std::gcd(std::gcd(a, b), den);
    if (g > 1) a /= g, b /= g, den /= g;
    if (b == 0) atoms.clear();
  }
  int64_t aBytes(int64_t eb) const { return (a * eb + den - 1) / den; }
  int64_t bBytes(int64_t eb) const { return (b * eb + den - 1) / den; }
  std::string key() const { return llvm::join(atoms, "*"); }
};

Lin constant(int64_t c) { return Lin{c, 0, 1, {}}; }
Lin add(const Lin &x, const Lin &y, bool &ok) {
  if (x.b && y.b && x.atoms != y.atoms) ok = false;
  Lin r{x.a * y.den + y.a * x.den, x.b * y.den + y.b * x.den, x.den * y.den,
        x.b ? x.atoms : y.atoms};
  r.norm();
  return r;
}
/// (ax + bx M)(ay + by N) <= ax ay + ((ax + bx)(ay + by) - ax ay) M N for atoms >= 1.
Lin mul(const Lin &x, const Lin &y) {
  Lin r;
  r.a = x.a * y.a;
  r.b = (x.a + x.b) * (y.a + y.b) - x.a * y.a;
  r.den = x.den * y.den;
  r.atoms = x.atoms;
  r.atoms.append(y.atoms.begin(), y.atoms.end());
  llvm::sort(r.atoms);
  r.norm();
  return r;
}
Lin floorDiv(Lin x, int64_t c) {
  x.den *= c;
  x.norm();
  return x;
}
/// Is `sub` (a multiset of atoms) contained in `all`?
bool subsetOf(ArrayRef<std::string> sub, ArrayRef<std::string> all) {
  SmallVector<std::string> rest(all.begin(), all.end());
  for (const std::string &s : sub) {
    auto it = llvm::find(rest, s);
    if (it == rest.end()) return false;
    rest.erase(it);
  }
  return true;
}

/// The atoms of one function: name -> (argument, dimension (-1 for an index argument),
/// divisor: a dimension named `n*4` is 4 x the atom `n`).
struct Atoms {
  func::FuncOp f;
  ArrayAttr shapes; ///< photon.arg_shapes of a stage wrapper, or null
  std::map<std::string, std::tuple<int64_t, int64_t, int64_t>> where;
  /// Argument dimension (arg, dim) as a bound: a number, `X`, `X*c`, or `a<arg>.<dim>`.
  Lin atom(int64_t arg, int64_t dim) {
    std::string n;
    if (shapes && dim >= 0 && arg < (int64_t)shapes.size())
      if (auto l = dyn_cast<ArrayAttr>(shapes[arg]); l && dim < (int64_t)l.size())
        if (auto s = dyn_cast<StringAttr>(l[dim])) n = s.str();
    int64_t c = 1;
    StringRef name(n);
    if (!name.empty() && name.find_first_not_of("0123456789") == StringRef::npos) {
      int64_t v = 0;
      if (!name.getAsInteger(10, v)) return constant(v);
    }
    if (auto [lhs, rhs] = name.split('*'); !rhs.empty() && !rhs.getAsInteger(10, c) && c > 0) {
      name = lhs;
    } else {
      c = 1;
    }
    std::string key = name.empty() || name.contains('*') || name.contains('?')
                          ? "a" + std::to_string(arg) + "." + std::to_string(dim)
                          : name.str();
    if (key != name) c = 1;
    where.emplace(key, std::make_tuple(arg, dim, c));
    return Lin{0, c, 1, {key}};
  }
};

/// The stage's `photon.arg_shapes` (the wrapper carries the stage's), or null.
ArrayAttr argShapes(func::FuncOp f) {
  PhotonDialect *d = getPhotonDialect(f.getContext());
  return d ? d->getArgShapesAttrHelper().getAttr(f) : ArrayAttr();
}

int64_t constIndex(Value v) {
  if (auto c = getConstantIntValue(v)) return *c;
  return -1;
}

FailureOr<Lin> boundDim(Value shaped, int64_t dim, Atoms &at, int depth);

/// An upper bound of the index value `v` in the function's argument dimensions: first the
/// upstream ValueBoundsConstraintSet (an EQ bound linear in one argument dimension), then
/// the index arithmetic the lowering emits (products, divisions by constants, reshapes).
FailureOr<Lin> boundValue(Value v, Atoms &at, int depth = 0) {
  if (depth > 32) return failure();
  if (auto c = getConstantIntValue(v)) return constant(*c);
  if (isEntryArg(v, at.f)) return at.atom(cast<BlockArgument>(v).getArgNumber(), -1);
  {
    AffineMap map;
    ValueDimList ops;
    auto stop = [&](Value x, std::optional<int64_t>, ValueBoundsConstraintSet &) {
      return isEntryArg(x, at.f);
    };
    if (succeeded(ValueBoundsConstraintSet::computeBound(
            map, ops, presburger::BoundType::EQ, ValueBoundsConstraintSet::Variable(v), stop,
            /*closedUB=*/true)) &&
        map.getNumResults() == 1) {
      AffineExpr e = map.getResult(0);
      if (auto c = dyn_cast<AffineConstantExpr>(e)) return constant(c.getValue());
      if (ops.size() == 1 && e.isPureAffine()) {
        // c * x + k: evaluate at x = 0 and 1.
        auto at0 = e.replaceDimsAndSymbols({getAffineConstantExpr(0, v.getContext())},
                                           {getAffineConstantExpr(0, v.getContext())});
        auto at1 = e.replaceDimsAndSymbols({getAffineConstantExpr(1, v.getContext())},
                                           {getAffineConstantExpr(1, v.getContext())});
        auto k0 = dyn_cast<AffineConstantExpr>(at0), k1 = dyn_cast<AffineConstantExpr>(at1);
        auto [x, d] = ops[0];
        if (k0 && k1 && k1.getValue() >= k0.getValue() && isEntryArg(x, at.f)) {
          int64_t arg = cast<BlockArgument>(x).getArgNumber();
          bool ok = true;
          Lin r = add(constant(k0.getValue()),
                      mul(constant(k1.getValue() - k0.getValue()), at.atom(arg, d ? *d : -1)), ok);
          if (ok) return r;
        }
      }
    }
  }
  Operation *def = v.getDefiningOp();
  if (!def) return failure();
  auto two = [&](Value x, Value y, auto fn) -> FailureOr<Lin> {
    FailureOr<Lin> l = boundValue(x, at, depth + 1), r = boundValue(y, at, depth + 1);
    if (failed(l) || failed(r)) return failure();
    return fn(*l, *r);
  };
  if (auto m = dyn_cast<arith::MulIOp>(def))
    return two(m.getLhs(), m.getRhs(), [](Lin x, Lin y) -> FailureOr<Lin> { return mul(x, y); });
  if (auto m = dyn_cast<arith::AddIOp>(def))
    return two(m.getLhs(), m.getRhs(), [](Lin x, Lin y) -> FailureOr<Lin> {
      bool ok = true;
      Lin r = add(x, y, ok);
      if (!ok) return failure();
      return r;
    });
  auto divisor = [&](Value x) { return constIndex(x); };
  if (isa<arith::DivUIOp, arith::DivSIOp, arith::FloorDivSIOp>(def)) {
    int64_t c = divisor(def->getOperand(1));
    FailureOr<Lin> x = boundValue(def->getOperand(0), at, depth + 1);
    if (c <= 0 || failed(x)) return failure();
    return floorDiv(*x, c);
  }
  if (isa<arith::RemUIOp, arith::RemSIOp>(def)) { // x mod c < c
    int64_t c = divisor(def->getOperand(1));
    if (c <= 0) return failure();
    return constant(c - 1);
  }
  if (isa<arith::CeilDivUIOp, arith::CeilDivSIOp>(def)) {
    int64_t c = divisor(def->getOperand(1));
    FailureOr<Lin> x = boundValue(def->getOperand(0), at, depth + 1);
    if (c <= 0 || failed(x)) return failure();
    bool ok = true;
    return floorDiv(add(*x, constant(c - 1), ok), c);
  }
  if (auto c = dyn_cast<arith::IndexCastOp>(def)) return boundValue(c.getIn(), at, depth + 1);
  if (auto d = dyn_cast<memref::DimOp>(def)) {
    int64_t k = constIndex(d.getIndex());
    if (k < 0) return failure();
    return boundDim(d.getSource(), k, at, depth + 1);
  }
  return failure();
}

/// An upper bound of dimension `dim` of the memref `shaped`.
FailureOr<Lin> boundDim(Value shaped, int64_t dim, Atoms &at, int depth) {
  if (depth > 32) return failure();
  auto t = dyn_cast<MemRefType>(shaped.getType());
  if (!t || dim < 0 || dim >= t.getRank()) return failure();
  if (!t.isDynamicDim(dim)) return constant(t.getDimSize(dim));
  if (isEntryArg(shaped, at.f)) return at.atom(cast<BlockArgument>(shaped).getArgNumber(), dim);
  Operation *def = shaped.getDefiningOp();
  if (!def) return failure();
  if (auto c = dyn_cast<memref::CollapseShapeOp>(def)) {
    Lin r = constant(1);
    SmallVector<ReassociationIndices> groups = c.getReassociationIndices();
    for (int64_t s : groups[dim]) {
      FailureOr<Lin> x = boundDim(c.getSrc(), s, at, depth + 1);
      if (failed(x)) return failure();
      r = mul(r, *x);
    }
    return r;
  }
  if (auto e = dyn_cast<memref::ExpandShapeOp>(def)) {
    OpFoldResult o = e.getMixedOutputShape()[dim];
    if (auto c = getConstantIntValue(o)) return constant(*c);
    return boundValue(cast<Value>(o), at, depth + 1);
  }
  if (auto a = dyn_cast<memref::AllocOp>(def)) return boundValue(a.getDynamicSizes()[t.getDynamicDimIndex(dim)], at, depth + 1);
  if (auto c = dyn_cast<memref::CastOp>(def)) return boundDim(c.getSource(), dim, at, depth + 1);
  if (auto v = dyn_cast<memref::ViewOp>(def)) return boundValue(v.getSizes()[t.getDynamicDimIndex(dim)], at, depth + 1);
  // Anything else: ask the upstream analysis directly.
  AffineMap map;
  ValueDimList ops;
  auto stop = [&](Value x, std::optional<int64_t>, ValueBoundsConstraintSet &) { return isEntryArg(x, at.f); };
  if (failed(ValueBoundsConstraintSet::computeBound(map, ops, presburger::BoundType::EQ,
                                                    ValueBoundsConstraintSet::Variable(shaped, dim),
                                                    stop, true)) ||
      ops.size() != 1 || map.getNumResults() != 1 ||
      (map.getResult(0) != getAffineDimExpr(0, map.getContext()) &&
       map.getResult(0) != getAffineSymbolExpr(0, map.getContext())))
    return failure();
  auto [x, d] = ops[0];
  if (!isEntryArg(x, at.f)) return failure();
  return at.atom(cast<BlockArgument>(x).getArgNumber(), d ? *d : -1);
}

struct Buffer {
  memref::AllocOp alloc;
  SmallVector<memref::DeallocOp> deallocs;
  int64_t a = 0, b = 0; ///< bytes <= a + b * rows (both multiples of 64)
  std::string key;      ///< the atoms of its rows ("" for a static size)
  int64_t start = 0, end = 0;
  int64_t p = 0, o = 0; ///< offset = p + o * rows
};

struct FunctionPlan {
  func::FuncOp func;
  std::vector<Buffer> placed;
  SmallVector<std::string> rows; ///< the function's row atoms
  std::map<std::string, std::tuple<int64_t, int64_t, int64_t>> where;
  int64_t fixedBytes = 0, rowBytes = 0;
  int64_t heap = 0;
  SmallVector<std::string> heapReasons;
  bool any() const { return !placed.empty(); }
};

int64_t alignUp(int64_t v) { return (v + kAlignment - 1) / kAlignment * kAlignment; }

int64_t elementBytes(Type t) {
  if (t.isIndex()) return 8;
  if (t.isIntOrFloat() && t.getIntOrFloatBitWidth() % 8 == 0) return t.getIntOrFloatBitWidth() / 8;
  return 0;
}

/// Greedy first fit (largest first) among buffers live at the same time, in two coordinates
/// at once: a buffer of `a + b * rows` bytes at `p + o * rows` is disjoint from another for
/// every row count when one ends before the other starts in both coordinates. Returns
/// (fixed, per-row) extents.
std::pair<int64_t, int64_t> place(std::vector<Buffer *> &bufs) {
  llvm::sort(bufs, [](Buffer *x, Buffer *y) {
    if (x->b != y->b) return x->b > y->b;
    if (x->a != y->a) return x->a > y->a;
    return x->start < y->start;
  });
  std::vector<Buffer *> done;
  int64_t fixed = 0, perRow = 0;
  for (Buffer *b : bufs) {
    std::vector<Buffer *> live;
    for (Buffer *o : done)
      if (!(o->end < b->start || b->end < o->start)) live.push_back(o);
    llvm::sort(live, [](Buffer *x, Buffer *y) {
      return std::make_pair(x->o, x->p) < std::make_pair(y->o, y->p);
    });
    int64_t p = 0, o = 0;
    for (Buffer *l : live) {
      if (o + b->b <= l->o && p + b->a <= l->p) break; // fits before it
      bool disjoint = (o + b->b <= l->o && p + b->a <= l->p) || (l->o + l->b <= o && l->p + l->a <= p);
      if (disjoint) continue;
      o = std::max(o, l->o + l->b);
      p = std::max(p, l->p + l->a);
    }
    // A second pass: the moves above may have created overlaps with earlier entries.
    bool moved = true;
    while (moved) {
      moved = false;
      for (Buffer *l : live) {
        bool disjoint = (o + b->b <= l->o && p + b->a <= l->p) || (l->o + l->b <= o && l->p + l->a <= p);
        if (!disjoint) {
          o = std::max(o, l->o + l->b);
          p = std::max(p, l->p + l->a);
          moved = true;
        }
      }
    }
    b->p = p;
    b->o = o;
    fixed = std::max(fixed, p + b->a);
    perRow = std::max(perRow, o + b->b);
    done.push_back(b);
  }
  return {fixed, perRow};
}

bool inLoop(Operation *op, func::FuncOp f) {
  for (Operation *p = op->getParentOp(); p && p != f; p = p->getParentOp())
    if (isa<LoopLikeOpInterface>(p)) return true;
  return false;
}

/// Plans the allocations of `f`. Fails (with an error) on an allocation asking for more
/// alignment than the workspace gives.
FailureOr<FunctionPlan> planFunction(func::FuncOp f, bool unionRows) {
  FunctionPlan plan;
  plan.func = f;
  Atoms at{f, argShapes(f), {}};
  DenseMap<Operation *, int64_t> pos;
  int64_t n = 0;
  f.walk<WalkOrder::PreOrder>([&](Operation *op) { pos[op] = n++; });

  // Deallocations reaching an allocation through a view, cast or extracted base buffer (or in
  // another block): such a buffer stays on the heap (a view of the workspace must not be freed).
  DenseSet<Operation *> indirectlyFreed;
  f.walk([&](memref::DeallocOp d) {
    Value v = d.getMemref();
    bool direct = true;
    while (Operation *def = v.getDefiningOp()) {
      if (auto a = dyn_cast<memref::AllocOp>(def)) {
        if (!direct || a->getBlock() != d->getBlock()) indirectlyFreed.insert(a);
        break;
      }
      direct = false;
      if (auto vl = dyn_cast<ViewLikeOpInterface>(def)) v = vl.getViewSource();
      else if (auto md = dyn_cast<memref::ExtractStridedMetadataOp>(def)) v = md.getSource();
      else break;
    }
  });

  std::vector<Buffer> cands;
  bool bad = false;
  auto heap = [&](memref::AllocOp a, const Twine &why) {
    ++plan.heap;
    std::string s;
    llvm::raw_string_ostream os(s);
    os << a.getType() << ": " << why;
    plan.heapReasons.push_back(s);
  };
  f.walk([&](memref::AllocOp a) {
    if (auto al = a.getAlignment(); al && (*al > kAlignment || kAlignment % *al != 0)) {
      a.emitError() << "asks for a " << *al << "-byte alignment; the workspace aligns its "
                    << "buffers to " << kAlignment << " bytes";
      bad = true;
      return;
    }
    MemRefType t = a.getType();
    if (!t.getLayout().isIdentity() || t.getMemorySpace()) return heap(a, "layout or memory space");
    if (inLoop(a, f)) return heap(a, "allocated in a loop");
    if (indirectlyFreed.contains(a)) return heap(a, "freed through a view or in another block");
    Buffer b;
    b.alloc = a;
    for (Operation *u : a->getUsers())
      if (auto d = dyn_cast<memref::DeallocOp>(u); d && d->getBlock() == a->getBlock())
        b.deallocs.push_back(d);
    if (b.deallocs.empty()) return heap(a, "no deallocation in its block");
    int64_t eb = elementBytes(t.getElementType());
    if (!eb) return heap(a, "element type");
    Lin size = constant(1);
    for (int64_t i = 0; i < t.getRank(); ++i) {
      FailureOr<Lin> d = t.isDynamicDim(i) ? boundValue(a.getDynamicSizes()[t.getDynamicDimIndex(i)], at)
                                           : FailureOr<Lin>(constant(t.getDimSize(i)));
      if (failed(d)) {
        return heap(a, "a size with no bound in the arguments' dimensions");
      }
      size = mul(size, *d);
    }
    b.a = alignUp(size.aBytes(eb));
    b.b = alignUp(size.bBytes(eb));
    b.key = size.key();
    b.start = pos[a];
    for (auto d : b.deallocs) b.end = std::max(b.end, pos[d]);
    cands.push_back(std::move(b));
  });
  if (bad) return failure();

  // The rows: the atoms covering most bytes per row; buffers over a subset of them fit
  // (every atom is at least 1).
  llvm::StringMap<int64_t> perKey;
  for (Buffer &b : cands)
    if (!b.key.empty()) perKey[b.key] += b.b;
  std::string rowKey;
  int64_t best = -1;
  for (auto &kv : perKey)
    if (kv.second > best || (kv.second == best && kv.first() < rowKey)) {
      best = kv.second;
      rowKey = kv.first().str();
    }
  SmallVector<std::string> rowAtoms;
  if (!rowKey.empty())
    for (StringRef s : llvm::split(rowKey, '*')) rowAtoms.push_back(s.str());
  if (unionRows) {
    // A kernel: rows = every atom of its buffers (at its most frequent per buffer), so a
    // buffer of fewer rows (e.g. per query token besides per sequence) fits too; its calls map
    // the atoms into the stage's symbols (one token per decode step).
    std::map<std::string, size_t> most;
    for (Buffer &b : cands) {
      std::map<std::string, size_t> here;
      if (!b.key.empty())
        for (StringRef s : llvm::split(b.key, '*')) ++here[s.str()];
      for (auto &[k, v] : here) most[k] = std::max(most[k], v);
    }
    rowAtoms.clear();
    for (auto &[k, v] : most)
      for (size_t i = 0; i < v; ++i) rowAtoms.push_back(k);
  }
  std::vector<Buffer *> chosen;
  for (Buffer &b : cands) {
    SmallVector<std::string> atoms;
    if (!b.key.empty())
      for (StringRef s : llvm::split(b.key, '*')) atoms.push_back(s.str());
    if (subsetOf(atoms, rowAtoms)) chosen.push_back(&b);
    else heap(b.alloc, "rows " + b.key + " other than the function's " + rowKey);
  }
  auto [fixed, perRow] = place(chosen);
  plan.fixedBytes = alignUp(fixed);
  plan.rowBytes = alignUp(perRow);
  plan.rows = rowAtoms;
  for (const std::string &r : rowAtoms) plan.where[r] = at.where[r];
  for (Buffer *b : chosen) plan.placed.push_back(*b);
  return plan;
}

DictionaryAttr linAttr(MLIRContext *ctx, ArrayRef<std::string> rows, int64_t fixed,
                       int64_t perRow, ArrayRef<NamedAttribute> extra = {}) {
  Builder b(ctx);
  SmallVector<Attribute> names;
  for (const std::string &r : rows) names.push_back(b.getStringAttr(r));
  SmallVector<NamedAttribute> attrs{b.getNamedAttr(kFixedBytes, b.getI64IntegerAttr(fixed)),
                                    b.getNamedAttr(kRowBytes, b.getI64IntegerAttr(perRow)),
                                    b.getNamedAttr(kRows, b.getArrayAttr(names))};
  attrs.append(extra.begin(), extra.end());
  return b.getDictionaryAttr(attrs);
}

struct PlanWorkspacePass : public impl::PhotonPlanWorkspaceBase<PlanWorkspacePass> {
  LLVM::GlobalOp ptrG, capG, usedG;

  Value loadGlobal(OpBuilder &b, Location loc, LLVM::GlobalOp g, Type t) {
    auto ptrTy = LLVM::LLVMPointerType::get(b.getContext());
    Value a = LLVM::AddressOfOp::create(b, loc, g);
    Value tl = LLVM::ThreadlocalAddressOp::create(b, loc, ptrTy, a);
    return LLVM::LoadOp::create(b, loc, t, tl);
  }
  void storeGlobal(OpBuilder &b, Location loc, LLVM::GlobalOp g, Value v) {
    auto ptrTy = LLVM::LLVMPointerType::get(b.getContext());
    Value a = LLVM::AddressOfOp::create(b, loc, g);
    Value tl = LLVM::ThreadlocalAddressOp::create(b, loc, ptrTy, a);
    LLVM::StoreOp::create(b, loc, v, tl);
  }

  void createGlobals(ModuleOp m) {
    MLIRContext *ctx = m.getContext();
    OpBuilder b = OpBuilder::atBlockBegin(m.getBody());
    Location loc = m.getLoc();
    auto ptrTy = LLVM::LLVMPointerType::get(ctx);
    auto i64 = b.getI64Type();
    auto mk = [&](StringRef name, Type t, Attribute v) {
      return LLVM::GlobalOp::create(b, loc, t, /*isConstant=*/false, LLVM::Linkage::Internal,
                                    name, v, /*alignment=*/8, /*addrSpace=*/0,
                                    /*dsoLocal=*/true, /*thread_local_=*/true);
    };
    ptrG = mk(kPtrGlobal, ptrTy, Attribute());
    {
      Block *init = b.createBlock(&ptrG.getInitializerRegion());
      OpBuilder ib = OpBuilder::atBlockBegin(init);
      Value z = LLVM::ZeroOp::create(ib, loc, ptrTy);
      LLVM::ReturnOp::create(ib, loc, z);
    }
    b.setInsertionPointAfter(ptrG);
    capG = mk(kCapGlobal, i64, b.getI64IntegerAttr(0));
    usedG = mk(kUsedGlobal, i64, b.getI64IntegerAttr(0));
    // void photon_workspace_set(void *ptr, int64_t bytes)
    auto fnTy = LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(ctx), {ptrTy, i64});
    auto fn = LLVM::LLVMFuncOp::create(b, loc, kSetterSymbol, fnTy);
    Block *entry = fn.addEntryBlock(b);
    OpBuilder fb = OpBuilder::atBlockBegin(entry);
    storeGlobal(fb, loc, ptrG, entry->getArgument(0));
    storeGlobal(fb, loc, capG, entry->getArgument(1));
    storeGlobal(fb, loc, usedG, LLVM::ConstantOp::create(fb, loc, i64, fb.getI64IntegerAttr(0)));
    LLVM::ReturnOp::create(fb, loc, ValueRange{});
  }

  /// Rewrites `plan.func`: workspace at entry, views for the placed buffers, the fallback
  /// allocation freed at every return. `stage`: the function sets the bytes it uses.
  void rewrite(FunctionPlan &plan, bool stage) {
    func::FuncOp f = plan.func;
    MLIRContext *ctx = f.getContext();
    Location loc = f.getLoc();
    OpBuilder b = OpBuilder::atBlockBegin(&f.getBody().front());
    auto i64 = b.getI64Type();
    auto idx = b.getIndexType();
    auto ptrTy = LLVM::LLVMPointerType::get(ctx);
    Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
    if (!plan.any()) {
      if (stage) storeGlobal(b, loc, usedG, LLVM::ConstantOp::create(b, loc, i64, b.getI64IntegerAttr(0)));
      return;
    }
    Value rows = arith::ConstantIndexOp::create(b, loc, 1);
    for (const std::string &r : plan.rows) {
      auto [arg, dim, div] = plan.where[r];
      Value v = f.getArgument(arg);
      if (dim >= 0) v = memref::DimOp::create(b, loc, v, dim);
      if (div > 1) v = arith::DivUIOp::create(b, loc, v, arith::ConstantIndexOp::create(b, loc, div));
      rows = arith::MulIOp::create(b, loc, rows, v);
    }
    Value fixed = arith::ConstantIndexOp::create(b, loc, plan.fixedBytes);
    Value need = arith::AddIOp::create(
        b, loc, fixed,
        arith::MulIOp::create(b, loc, arith::ConstantIndexOp::create(b, loc, plan.rowBytes), rows));
    Value base = stage ? c0
                       : arith::IndexCastOp::create(b, loc, idx, loadGlobal(b, loc, usedG, i64)).getResult();
    Value cap64 = loadGlobal(b, loc, capG, i64);
    Value cap = arith::IndexCastOp::create(b, loc, idx, cap64);
    Value endB = arith::AddIOp::create(b, loc, base, need);
    Value ok = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ule, endB, cap);
    auto wsTy = MemRefType::get({ShapedType::kDynamic}, b.getI8Type());
    auto ifOp = scf::IfOp::create(b, loc, TypeRange{wsTy, idx}, ok, /*withElse=*/true);
    {
      OpBuilder tb = ifOp.getThenBodyBuilder();
      Value p = loadGlobal(tb, loc, ptrG, ptrTy);
      auto arr = LLVM::LLVMArrayType::get(i64, 1);
      auto st = LLVM::LLVMStructType::getLiteral(ctx, {ptrTy, ptrTy, i64, arr, arr});
      Value d = LLVM::PoisonOp::create(tb, loc, st);
      d = LLVM::InsertValueOp::create(tb, loc, d, p, ArrayRef<int64_t>{0});
      d = LLVM::InsertValueOp::create(tb, loc, d, p, ArrayRef<int64_t>{1});
      d = LLVM::InsertValueOp::create(tb, loc, d,
                                      LLVM::ConstantOp::create(tb, loc, i64, tb.getI64IntegerAttr(0)),
                                      ArrayRef<int64_t>{2});
      d = LLVM::InsertValueOp::create(tb, loc, d, cap64, ArrayRef<int64_t>{3, 0});
      d = LLVM::InsertValueOp::create(tb, loc, d,
                                      LLVM::ConstantOp::create(tb, loc, i64, tb.getI64IntegerAttr(1)),
                                      ArrayRef<int64_t>{4, 0});
      Value m = UnrealizedConversionCastOp::create(tb, loc, TypeRange{wsTy}, ValueRange{d}).getResult(0);
      scf::YieldOp::create(tb, loc, ValueRange{m, base});
    }
    {
      OpBuilder eb = ifOp.getElseBodyBuilder();
      Value a = memref::AllocOp::create(eb, loc, wsTy, ValueRange{need}, eb.getI64IntegerAttr(kAlignment));
      scf::YieldOp::create(eb, loc, ValueRange{a, c0});
    }
    Value ws = ifOp.getResult(0), wsBase = ifOp.getResult(1);
    if (stage) {
      Value used = arith::SelectOp::create(b, loc, ok, need, c0);
      storeGlobal(b, loc, usedG, arith::IndexCastOp::create(b, loc, i64, used));
    }
    for (Buffer &buf : plan.placed) {
      OpBuilder vb(buf.alloc);
      Value off = arith::AddIOp::create(
          vb, loc, wsBase,
          arith::AddIOp::create(
              vb, loc, arith::ConstantIndexOp::create(vb, loc, buf.p),
              arith::MulIOp::create(vb, loc, rows, arith::ConstantIndexOp::create(vb, loc, buf.o))));
      Value v = memref::ViewOp::create(vb, buf.alloc.getLoc(), buf.alloc.getType(), ws, off,
                                       buf.alloc.getDynamicSizes());
      for (memref::DeallocOp d : buf.deallocs) d.erase();
      buf.alloc.replaceAllUsesWith(v);
      buf.alloc.erase();
    }
    f.walk([&](func::ReturnOp r) {
      OpBuilder rb(r);
      Value notOk = arith::XOrIOp::create(rb, loc, ok, arith::ConstantIntOp::create(rb, loc, 1, 1));
      auto free = scf::IfOp::create(rb, loc, TypeRange{}, notOk, /*withElse=*/false);
      OpBuilder fb = free.getThenBodyBuilder();
      memref::DeallocOp::create(fb, loc, ws);
    });
  }

  void runOnOperation() override {
    ModuleOp m = getOperation();
    MLIRContext *ctx = m.getContext();
    for (const char *s : {kSetterSymbol, kPtrGlobal, kCapGlobal, kUsedGlobal})
      if (SymbolTable::lookupSymbolIn(m, s)) {
        m.emitError() << "the module already defines '@" << s
                      << "': photon-plan-workspace runs once per module";
        return signalPassFailure();
      }
    const StringRef cIface = LLVM::LLVMDialect::getEmitCWrapperAttrName();
    SmallVector<func::FuncOp> stages, kernels;
    for (func::FuncOp f : m.getOps<func::FuncOp>()) {
      if (f.isExternal()) continue;
      if (f->hasAttr(cIface) && f.isPublic()) stages.push_back(f);
      else kernels.push_back(f);
    }
    if (stages.empty()) return;
    DenseSet<Operation *> stageSet;
    for (func::FuncOp s : stages) stageSet.insert(s);

    // Kernels: planned when every call comes from a stage (their scratch then follows the
    // stage's own bytes).
    std::vector<FunctionPlan> kernelList;
    DenseMap<Operation *, size_t> kernelIndex;
    SmallVector<NamedAttribute> planAttrs;
    Builder ab(ctx);
    auto record = [&](FunctionPlan &p, ArrayRef<NamedAttribute> extra) {
      SmallVector<Attribute> reasons;
      for (auto &r : p.heapReasons) reasons.push_back(ab.getStringAttr(r));
      SmallVector<NamedAttribute> e{ab.getNamedAttr(kPlanned, ab.getI64IntegerAttr(p.placed.size())),
                                    ab.getNamedAttr(kHeap, ab.getI64IntegerAttr(p.heap)),
                                    ab.getNamedAttr(kHeapReasons, ab.getArrayAttr(reasons))};
      e.append(extra.begin(), extra.end());
      planAttrs.push_back(ab.getNamedAttr(p.func.getSymName(),
                                          linAttr(ctx, p.rows, p.fixedBytes, p.rowBytes, e)));
    };
    for (func::FuncOp k : kernels) {
      auto uses = SymbolTable::getSymbolUses(k, m);
      bool onlyStages = uses.has_value();
      if (uses)
        for (const SymbolTable::SymbolUse &u : *uses) {
          auto call = dyn_cast<func::CallOp>(u.getUser());
          if (!call || !stageSet.contains(call->getParentOfType<func::FuncOp>())) onlyStages = false;
        }
      if (!onlyStages) continue;
      FailureOr<FunctionPlan> p = planFunction(k, /*unionRows=*/true);
      if (failed(p)) return signalPassFailure();
      if (!p->any() && p->heap == 0) continue;
      kernelIndex[k] = kernelList.size();
      kernelList.push_back(std::move(*p));
    }
    std::vector<FunctionPlan> stagePlans;
    for (func::FuncOp s : stages) {
      FailureOr<FunctionPlan> p = planFunction(s, /*unionRows=*/false);
      if (failed(p)) return signalPassFailure();
      stagePlans.push_back(*p);
    }
    // Kernel scratch in each stage's arguments: the kernel's rows bound at each call site.
    for (FunctionPlan &sp : stagePlans) {
      SmallVector<Attribute> ks;
      sp.func.walk([&](func::CallOp call) {
        auto callee = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(call, call.getCalleeAttr());
        auto it = callee ? kernelIndex.find(callee) : kernelIndex.end();
        if (it == kernelIndex.end() || !kernelList[it->second].any()) return;
        FunctionPlan &kp = kernelList[it->second];
        Atoms at{sp.func, argShapes(sp.func), {}};
        Lin prod = constant(1);
        bool ok = true;
        for (const std::string &r : kp.rows) {
          auto [arg, dim, div] = kp.where[r];
          Value operand = call.getOperand(arg);
          FailureOr<Lin> x = dim < 0 ? boundValue(operand, at) : boundDim(operand, dim, at, 0);
          if (failed(x)) {
            ok = false;
            break;
          }
          prod = mul(prod, *x);
        }
        if (!ok) {
          ++sp.heap;
          sp.heapReasons.push_back(("scratch of @" + callee.getSymName() +
                                    ": rows with no bound in the stage's arguments").str());
          return;
        }
        // need <= fixed + row_bytes * prod
        int64_t fixedK = kp.fixedBytes + prod.aBytes(kp.rowBytes);
        int64_t rowK = prod.bBytes(kp.rowBytes);
        ks.push_back(linAttr(ctx, prod.atoms, fixedK, rowK,
                             {ab.getNamedAttr(kCallee, FlatSymbolRefAttr::get(callee))}));
      });
      record(sp, {ab.getNamedAttr(kKernels, ab.getArrayAttr(ks))});
    }
    for (FunctionPlan &kp : kernelList) record(kp, {});

    createGlobals(m);
    for (FunctionPlan &kp : kernelList) rewrite(kp, /*stage=*/false);
    for (FunctionPlan &sp : stagePlans) rewrite(sp, /*stage=*/true);
    llvm::sort(planAttrs, [](const NamedAttribute &a, const NamedAttribute &b) {
      return a.getName().strref() < b.getName().strref();
    });
    m->setAttr(kPlanAttr, DictionaryAttr::get(ctx, planAttrs));
  }
};

} // namespace
} // namespace photon
} // namespace mlir
