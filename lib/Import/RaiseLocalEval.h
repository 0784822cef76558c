//===- RaiseLocalEval.h - photon-raise-local: element evaluation -*- C++ -*-===//
//
// The helpers the attention and RoPE patterns of photon-raise-local share
// (RaiseLocalAttention.cpp, RaiseLocalRoPE.cpp; defined in RaiseLocalEval.cpp):
// Elements, which follows single elements of tensors back through the
// data-movement ops and evaluates masks, tables and dynamic sizes element by
// element; views of the elementwise linalg.generic ops the ONNX converters write
// (their body ops, the tensor a body value reads); and the transpose the patterns
// build their layouts with. They live in namespace `raise_local`, private to the
// photon-raise-local sources.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_IMPORT_RAISELOCALEVAL_H
#define PHOTON_IMPORT_RAISELOCALEVAL_H

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/PatternMatch.h"

#include "llvm/ADT/DenseMap.h"

#include "RaiseStructure.h"

#include <cmath>
#include <memory>
#include <optional>

namespace mlir {
namespace photon {
namespace raise_local {

/// An element index of a tensor.
using Idx = SmallVector<int64_t, 6>;

/// The value of a float constant: a scalar, or a splat tensor.
std::optional<double> floatConstant(Value v);

/// v's type as a ranked tensor, or null.
RankedTensorType tensorTy(Value v);

//===----------------------------------------------------------------------===//
// Following elements through data-movement ops
//===----------------------------------------------------------------------===//

/// Single elements of tensors: where a data-movement op copied them from
/// (tensor.cast, linalg.transpose, static tensor.extract_slice, tensor.concat,
/// expand_shape, collapse_shape, tensor.reshape, a linalg.generic yielding its
/// one input: Expand and broadcasts), and the values of those computed from
/// constants and loop indices (linalg.generic bodies with linalg.index, arith
/// ops, tensor.extract, fills, dense constants, tensor.from_elements). Dynamic
/// sizes are evaluated where they are computed from constants (the shape
/// arithmetic of Expand, Reshape, Concat). Integers and booleans are held as
/// doubles.
struct Elements {
  int budget = 50000;
  /// The nesting of shape / at / value, bounded: sizes and elements computed through more
  /// than kMaxDepth ops (e.g. along a whole model's residual stream) are not evaluated.
  static constexpr int kMaxDepth = 200;
  int depth = 0;
  struct Nest {
    int &d;
    explicit Nest(int &d) : d(d) { ++d; }
    ~Nest() { --d; }
  };
  llvm::DenseMap<Value, SmallVector<int64_t>> shapes;
  /// While evaluating a size: a dynamic `tensor.dim` reads a sample value (two
  /// sets); a size is only taken if it comes out the same for both, i.e. it
  /// does not depend on the dynamic (batch, sequence) sizes, as in torch's `B *
  /// M * H * hd / (B * M * hd)`: axis i of any tensor reads 3 + 2i or 7 + 4i.
  /// With `graphSamples`, in a function of token ids, the sizes are those the
  /// graph computes from SizeSample's two samples of the ids (sets 1, 2), so that
  /// one size read off two tensors is one value (a mask built from the sequence
  /// length and from a key cache's length), the axis rule where they cannot be
  /// computed.
  int sampleSet = 0;
  bool graphSamples = false;
  std::shared_ptr<raise_structure::SizeSample> samples[2];
  Operation *samplesOf = nullptr;
  std::optional<int64_t> sampledDim(tensor::DimOp d, int set);

  template <typename F> std::optional<int64_t> size(F f) {
    int saved = sampleSet;
    sampleSet = 1;
    auto a = f();
    sampleSet = 2;
    auto b = a ? f() : std::nullopt;
    sampleSet = saved;
    if (!a || !b || *a != *b || *a < 0 || *a != std::floor(*a))
      return std::nullopt;
    return (int64_t)*a;
  }

  /// v's shape, with the dynamic sizes that evaluate to constants filled in.
  SmallVector<int64_t> shape(Value v);

  /// Is `idx` an element of v (its rank, within the sizes shape knows)?
  bool inBounds(Value v, ArrayRef<int64_t> idx);

  /// The tensor and element that the op defining v copied element `idx` of v
  /// from, one data-movement op back.
  std::optional<std::pair<Value, Idx>> moveBack(Value v, ArrayRef<int64_t> idx);

  /// The elements element `idx` of `v` is a copy of, v's first, following
  /// data-movement ops back.
  SmallVector<std::pair<Value, Idx>> chain(Value v, Idx idx);

  /// The last of chain(v, idx): the element no data-movement op copied.
  std::pair<Value, Idx> source(Value v, Idx idx);

  /// The value of element `idx` of v, if it is computed from constants and
  /// loop indices.
  std::optional<double> at(Value v, Idx idx);

  /// A scalar computed outside a body: constants, and arith ops and
  /// tensor.extract of them.
  std::optional<double> value(Value v);

private:
  /// A scalar read by a body: a body value, a constant, or a value computed
  /// outside.
  std::optional<double> scalar(Value v, const llvm::DenseMap<Value, double> &env);

  /// What the body `b` yields at the loop indices `loops`, its arguments bound
  /// in `env`.
  std::optional<double> body(Block *b, ArrayRef<int64_t> loops,
                             llvm::DenseMap<Value, double> &env);

  /// op applied to the scalars `a` (its operands; 0 for a tensor operand).
  std::optional<double> apply(Operation &op, ArrayRef<double> a);
};

//===----------------------------------------------------------------------===//
// Views of the converters' ops
//===----------------------------------------------------------------------===//

/// An elementwise linalg.generic: one result, all loops parallel, identity
/// output map.
linalg::GenericOp elementwise(Value v);

/// The body ops of a generic, without the terminator.
SmallVector<Operation *> bodyOps(linalg::GenericOp g);

/// The value a generic's body yields.
Value yielded(linalg::GenericOp g);

/// The generic's input read by body value `a` (a block argument of an input),
/// with its map.
struct Read {
  Value tensor;
  AffineMap map;
  std::optional<double> scalar; // a scalar constant (a splat, a one-element tensor, a scalar)
};

Read readOf(linalg::GenericOp g, Value a);

bool identityRead(const Read &r);

//===----------------------------------------------------------------------===//
// Layouts
//===----------------------------------------------------------------------===//

/// x transposed by `perm` (result axis i = x axis perm[i]); a transpose of a
/// transpose is composed, and an identity is no op.
Value transposed(PatternRewriter &rw, Location loc, Value x, ArrayRef<int64_t> perm);

} // namespace raise_local
} // namespace photon
} // namespace mlir

#endif // PHOTON_IMPORT_RAISELOCALEVAL_H
