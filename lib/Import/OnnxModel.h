//===- OnnxModel.h - Loading and validating ONNX protobufs ------*- C++ -*-===//
//
// Reads an .onnx file with Debian's libonnx protobuf (onnx/onnx-ml.pb.h) and gives access
// to tensor bytes, including external-data tensors, which are memory-mapped one at a time
// so that weights are never all in memory.
//
//===----------------------------------------------------------------------===//
#ifndef PHOTON_LIB_IMPORT_ONNXMODEL_H
#define PHOTON_LIB_IMPORT_ONNXMODEL_H

// onnx_pb.h defines ONNX_API and includes onnx/onnx-ml.pb.h (ONNX_ML=1).
#include "onnx/onnx_pb.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace photon {
namespace import {

/// Bytes of one tensor: either a view into the protobuf / an mmapped side file, or an
/// owned copy (for tensors stored in typed repeated fields).
class TensorBytes {
public:
  const char *data() const { return view_ ? view_ : owned_.data(); }
  size_t size() const { return view_ ? viewSize_ : owned_.size(); }
  llvm::ArrayRef<char> ref() const { return {data(), size()}; }

private:
  friend class OnnxModel;
  const char *view_ = nullptr;
  size_t viewSize_ = 0;
  std::vector<char> owned_;
  std::unique_ptr<llvm::MemoryBuffer> mapping_;
};

/// Bytes per element of an ONNX TensorProto data type in its raw (little-endian) layout,
/// 0 for types the importer does not handle (strings, complex, 4-bit, float8).
size_t onnxElementBytes(int32_t dataType);
/// Short name of an ONNX data type ("float", "int64", ...).
const char *onnxTypeName(int32_t dataType);

class OnnxModel {
public:
  /// Parses a file. On failure returns false and sets `error` to a complete sentence
  /// (what is wrong, what to do).
  bool loadFile(llvm::StringRef path, std::string &error);
  /// Parses bytes; external data is resolved relative to baseDir (empty: not allowed).
  bool loadBytes(llvm::StringRef bytes, llvm::StringRef baseDir, llvm::StringRef displayName,
                 std::string &error);

  const onnx::ModelProto &proto() const { return proto_; }
  const std::string &path() const { return path_; }

  /// Opset of a domain ("" and "ai.onnx" are the default domain); nullopt if not imported.
  std::optional<int64_t> opsetOf(llvm::StringRef domain) const;
  std::optional<int64_t> opsetOf(llvm::StringRef domain,
                                 const onnx::FunctionProto *fn) const;

  /// Model-local function by (domain, name), or nullptr.
  const onnx::FunctionProto *findFunction(llvm::StringRef domain, llvm::StringRef name) const;

  /// Number of elements of a tensor (checks dims are non-negative and do not overflow).
  static bool numElements(const onnx::TensorProto &t, int64_t &n, std::string &error);

  /// Reads the bytes of a tensor in the raw little-endian layout of its data type. External
  /// data is memory-mapped (only that slice). Checks the byte count against the shape.
  bool tensorBytes(const onnx::TensorProto &t, TensorBytes &out, std::string &error) const;

  /// Metadata property, or empty.
  std::string metadata(llvm::StringRef key) const;

private:
  bool validate(std::string &error);

  onnx::ModelProto proto_;
  std::string path_;
  std::string baseDir_;
  bool allowExternal_ = true;
  std::map<std::string, int64_t> opsets_;
  std::map<std::pair<std::string, std::string>, const onnx::FunctionProto *> functions_;
};

/// True if `domain` is ONNX's default operator domain.
inline bool isDefaultDomain(llvm::StringRef domain) {
  return domain.empty() || domain == "ai.onnx";
}

} // namespace import
} // namespace photon

#endif // PHOTON_LIB_IMPORT_ONNXMODEL_H
