//===- RaiseStructure.h - photon-raise-structure: shared pieces -*- C++ -*-===//
//
// What the structure patterns of photon-raise-structure share (RaiseStructure.cpp: the
// decoder-only model; RaiseStructureHierarchy.cpp: PHOTON and Block models): the token-data
// analysis, the row-wise proof, the residual-stack walk and its outlining into a stack
// function, sizes evaluated for samples of the dynamic sizes, and the graph function's
// finishing as @forward. Private to the
// photon-raise-structure sources, in namespace `raise_structure`.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_IMPORT_RAISESTRUCTURE_H
#define PHOTON_IMPORT_RAISESTRUCTURE_H

#include "photon/Dialect/PhotonAttrs.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/PatternMatch.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"

#include <optional>
#include <string>

namespace mlir {
namespace photon {
namespace raise_structure {

/// The op's name and the ONNX node it came from, for messages.
std::string nodeOf(Operation *op);

/// The op of `entry` that holds `op` (itself, or the op whose region it is in).
Operation *topLevel(Operation *op, Block *entry);

/// The values of `f` computed from the data of its arguments (not from their sizes only).
llvm::DenseSet<Value> tokenData(func::FuncOp f);

/// The token-data values an op reads: operands and values captured by its regions.
SmallVector<Value> dataInputs(Operation *op, const llvm::DenseSet<Value> &data);

/// Empty when every token-data op of `f` (of `only`, when given: a set closed under the
/// producers of its token-data inputs but `rowInputs`, taken as [rows.., features])
/// keeps each token's row to itself (causal attention, RoPE and learned positions
/// excepted); otherwise why not. With two samples of the sizes, a size the graph
/// computes that is the same in both counts as static.
class SizeSample;
std::string rowWise(func::FuncOp f, const llvm::DenseSet<Value> &data,
                    const llvm::DenseSet<Operation *> *only = nullptr,
                    ArrayRef<Value> rowInputs = {}, SizeSample *s0 = nullptr,
                    SizeSample *s1 = nullptr);

/// A stack of residual blocks ending in a final norm: `r_i = h_i + mlp(norm(h_i))`,
/// `h_i = r_(i-1) + attn(norm(r_(i-1)))` down to its input `r_0`.
struct FoundStack {
  Operation *finalNorm = nullptr;
  llvm::SetVector<Operation *> ops; // the blocks' ops and the final norm
  Value input;
  int layers = 0;
  std::string breakWhy; // where the walk down stopped, when it stopped early
};

/// Walks the blocks below `finalNorm` (an RMSNorm / LayerNorm); empty on success,
/// otherwise why they are no stack.
std::string findStack(Operation *finalNorm, const llvm::DenseSet<Value> &data, FoundStack &out);

/// Outlines a found stack of `f` into a private function `name` (made unique) with
/// `photon.role` / `photon.level`, called where the stack was; the shape values, weights
/// and constants it reads are cloned into it. `sizesOfTokens`: a size of the token ids
/// (or of a value typed like the stack's input) may stand for the same axis of the
/// stack's input (decoder-only models, whose every token tensor has the token rows);
/// otherwise the stack may read no size of token data outside it. Null and `why` set
/// when the stack reads token data other than its input or is used outside.
func::CallOp outlineStack(PatternRewriter &rewriter, func::FuncOp f, const FoundStack &stack,
                          const llvm::DenseSet<Value> &data, StringRef name, StringRef role,
                          int64_t level, bool sizesOfTokens, std::string &why);

/// The graph function as the compiler's @forward: named `forward`, `photon.stage =
/// "forward"`, token ids i32 (an int64 input is widened inside); the module gets `h`.
LogicalResult finishForward(ModuleOp module, func::FuncOp f, HierarchyAttr h);

/// The sizes of a graph function's tensors, and the integer values of its shape
/// arithmetic, for given sizes of its first argument: the graph's own size computations
/// (Shape, Gather, Concat, Reshape's -1, Slice's clamping) evaluated on integers
/// (RaiseStructureSizes.cpp). A reshape's meaning depends on the sizes the graph computes
/// for it; the patterns take it from two such samples of the dynamic batch and sequence.
class SizeSample {
public:
  /// The two samples of the token ids' [batch, sequence] every pattern uses: the
  /// sequence a multiple of every chunk product up to 64 but 11, 13, ...
  static constexpr int64_t kBatch[2] = {2, 3}, kSequence[2] = {20160, 40320};

  SizeSample(func::FuncOp f, ArrayRef<int64_t> argShape);
  /// Sample k (0 or 1) of f's token ids.
  SizeSample(func::FuncOp f, int k) : SizeSample(f, {kBatch[k], kSequence[k]}) {}
  /// The sizes of a ranked tensor, when they can be evaluated.
  std::optional<SmallVector<int64_t>> shape(Value v);
  /// An integer or index scalar.
  std::optional<int64_t> scalar(Value v);
  /// A size, offset or stride of a tensor op.
  std::optional<int64_t> size(OpFoldResult s);

private:
  llvm::DenseMap<Value, SmallVector<int64_t>> shapes;
  llvm::DenseMap<Value, int64_t> scalars;
  int budget = 100000;

  std::optional<SmallVector<int64_t>> sizes(ArrayRef<OpFoldResult> s);
  std::optional<SmallVector<int64_t>> computeShape(Value v, RankedTensorType t);
  /// Element `lin` (row-major) of an integer tensor of sizes.
  std::optional<int64_t> element(Value t, int64_t lin);
  std::optional<int64_t> lookup(Value v, const llvm::DenseMap<Value, int64_t> &env);
  std::optional<int64_t> extract(tensor::ExtractOp ex, const llvm::DenseMap<Value, int64_t> &env);
  std::optional<int64_t> computeScalar(Value v);
  static std::optional<int64_t> apply(Operation &op, ArrayRef<int64_t> a);
};

/// Empty when every attention of the stack reads [batch, positions, heads, head_dim]
/// with the batch and positions of the stack's input (no heads merged into the batch:
/// the step versions bind one cache row per sequence); otherwise why not.
std::string attentionRowsMatch(const FoundStack &stack, SizeSample &s0, SizeSample &s1);

/// Attention over heads merged into the batch axis as the attention of H heads it is
/// (RaiseStructureHeads.cpp).
void addMergedHeadsPattern(RewritePatternSet &patterns);

/// What the hierarchy pattern raised: the graph function and its hierarchy, for
/// finishForward once the patterns are done.
struct HierarchyFound {
  func::FuncOp forward;
  HierarchyAttr hierarchy;
};

/// A PHOTON (any L) or Block Transformer (L = 1) model's structure
/// (RaiseStructureHierarchy.cpp); `why` receives the reason
/// the last match failed, `found` what a match raised.
void addHierarchyPattern(RewritePatternSet &patterns, std::string *why, HierarchyFound *found);

} // namespace raise_structure
} // namespace photon
} // namespace mlir

#endif // PHOTON_IMPORT_RAISESTRUCTURE_H
