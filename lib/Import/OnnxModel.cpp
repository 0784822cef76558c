//===- OnnxModel.cpp - Loading and validating ONNX protobufs --------------===//

#include "OnnxModel.h"

#include "photon/Import/Importer.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <climits>
#include <cstring>

namespace photon {
namespace import {
using onnx::TensorProto;

size_t onnxElementBytes(int32_t t) {
  switch (t) {
  case TensorProto::FLOAT: return 4;
  case TensorProto::UINT8: return 1;
  case TensorProto::INT8: return 1;
  case TensorProto::UINT16: return 2;
  case TensorProto::INT16: return 2;
  case TensorProto::INT32: return 4;
  case TensorProto::INT64: return 8;
  case TensorProto::BOOL: return 1;
  case TensorProto::FLOAT16: return 2;
  case TensorProto::DOUBLE: return 8;
  case TensorProto::UINT32: return 4;
  case TensorProto::UINT64: return 8;
  case TensorProto::BFLOAT16: return 2;
  default: return 0;
  }
}

const char *onnxTypeName(int32_t t) {
  switch (t) {
  case TensorProto::FLOAT: return "float";
  case TensorProto::UINT8: return "uint8";
  case TensorProto::INT8: return "int8";
  case TensorProto::UINT16: return "uint16";
  case TensorProto::INT16: return "int16";
  case TensorProto::INT32: return "int32";
  case TensorProto::INT64: return "int64";
  case TensorProto::STRING: return "string";
  case TensorProto::BOOL: return "bool";
  case TensorProto::FLOAT16: return "float16";
  case TensorProto::DOUBLE: return "double";
  case TensorProto::UINT32: return "uint32";
  case TensorProto::UINT64: return "uint64";
  case TensorProto::COMPLEX64: return "complex64";
  case TensorProto::COMPLEX128: return "complex128";
  case TensorProto::BFLOAT16: return "bfloat16";
  default: return "unknown";
  }
}

bool OnnxModel::loadFile(llvm::StringRef path, std::string &error) {
  uint64_t fileSize = 0;
  if (std::error_code ec = llvm::sys::fs::file_size(path, fileSize)) {
    error = "cannot open ONNX model '" + path.str() + "': " + ec.message();
    return false;
  }
  if (fileSize >= static_cast<uint64_t>(INT_MAX)) {
    error = "ONNX model '" + path.str() + "' is " + std::to_string(fileSize) +
            " bytes; protobuf cannot parse a message of 2 GiB or more. Save the weights as "
            "external data (onnx.save_model(m, path, save_as_external_data=True)) and import "
            "again";
    return false;
  }
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                         /*RequiresNullTerminator=*/false);
  if (!buf) {
    error = "cannot read ONNX model '" + path.str() + "': " + buf.getError().message();
    return false;
  }
  llvm::SmallString<256> dir(path);
  llvm::sys::path::remove_filename(dir);
  if (dir.empty()) dir = ".";
  return loadBytes((*buf)->getBuffer(), dir, path, error);
}

bool OnnxModel::loadBytes(llvm::StringRef bytes, llvm::StringRef baseDir,
                          llvm::StringRef displayName, std::string &error) {
  path_ = displayName.str();
  baseDir_ = baseDir.str();
  allowExternal_ = !baseDir.empty();
  if (bytes.empty()) {
    error = "ONNX model '" + path_ + "' is empty (0 bytes)";
    return false;
  }
  google::protobuf::io::ArrayInputStream raw(bytes.data(), static_cast<int>(bytes.size()));
  google::protobuf::io::CodedInputStream coded(&raw);
  coded.SetTotalBytesLimit(INT_MAX);
  if (!proto_.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage()) {
    error = "cannot parse ONNX model '" + path_ +
            "': the file is truncated or is not an ONNX protobuf (re-export the model)";
    return false;
  }
  return validate(error);
}

bool OnnxModel::validate(std::string &error) {
  const std::string where = "ONNX model '" + path_ + "'";
  if (!proto_.has_ir_version() || proto_.ir_version() <= 0) {
    error = where + " has no ir_version: the file is corrupt or not an ONNX model";
    return false;
  }
  if (proto_.ir_version() > mlir::photon::kMaxIrVersion) {
    error = where + " has IR version " + std::to_string(proto_.ir_version()) +
            ", newer than the supported " + std::to_string(mlir::photon::kMaxIrVersion) +
            " (ONNX 1.12); export with an older ONNX / torch.onnx.export(opset_version=17)";
    return false;
  }
  if (!proto_.has_graph()) {
    error = where + " has no graph: the file is truncated or corrupt";
    return false;
  }
  opsets_.clear();
  for (const auto &op : proto_.opset_import()) {
    std::string d = op.domain() == "ai.onnx" ? "" : op.domain();
    opsets_[d] = op.version();
  }
  auto it = opsets_.find("");
  if (opsets_.empty()) {
    // IR < 3 had no opset_import at all. Reject: too old to matter.
    error = where + " imports no operator set (opset_import is missing): the file is " +
            "corrupt or predates ONNX 1.1";
    return false;
  }
  if (it == opsets_.end()) {
    // Only other domains (e.g. ai.onnx.preview.training): default-domain nodes are
    // reported by the unsupported-op scan.
  } else if (it->second > mlir::photon::kMaxOpset) {
    error = where + " uses ONNX opset " + std::to_string(it->second) +
            ", newer than the supported " + std::to_string(mlir::photon::kMaxOpset) +
            "; export with opset_version=" + std::to_string(mlir::photon::kMaxOpset);
    return false;
  }
  if (it != opsets_.end() && it->second < 1) {
    error = where + " declares an invalid default opset " + std::to_string(it->second);
    return false;
  }
  functions_.clear();
  for (const auto &fn : proto_.functions())
    functions_[{fn.domain(), fn.name()}] = &fn;
  return true;
}

std::optional<int64_t> OnnxModel::opsetOf(llvm::StringRef domain) const {
  std::string d = domain == "ai.onnx" ? "" : domain.str();
  auto it = opsets_.find(d);
  if (it == opsets_.end()) return std::nullopt;
  return it->second;
}

std::optional<int64_t> OnnxModel::opsetOf(llvm::StringRef domain,
                                          const onnx::FunctionProto *fn) const {
  if (fn) {
    for (const auto &op : fn->opset_import()) {
      llvm::StringRef d = op.domain();
      if (d == domain || (isDefaultDomain(d) && isDefaultDomain(domain)))
        return op.version();
    }
  }
  return opsetOf(domain);
}

const onnx::FunctionProto *OnnxModel::findFunction(llvm::StringRef domain,
                                                   llvm::StringRef name) const {
  auto it = functions_.find({domain.str(), name.str()});
  return it == functions_.end() ? nullptr : it->second;
}

std::string OnnxModel::metadata(llvm::StringRef key) const {
  for (const auto &p : proto_.metadata_props())
    if (p.key() == key) return p.value();
  return {};
}

bool OnnxModel::numElements(const TensorProto &t, int64_t &n, std::string &error) {
  n = 1;
  for (int64_t d : t.dims()) {
    if (d < 0) {
      error = "tensor '" + t.name() + "' has a negative dimension " + std::to_string(d);
      return false;
    }
    if (d != 0 && n > (INT64_MAX / 16) / d) {
      error = "tensor '" + t.name() + "' has an element count that overflows 64 bits";
      return false;
    }
    n *= d;
  }
  return true;
}

namespace {
template <typename Src, typename Dst>
void copyNarrow(const google::protobuf::RepeatedField<Src> &src, std::vector<char> &out) {
  out.resize(src.size() * sizeof(Dst));
  for (int i = 0; i < src.size(); ++i) {
    Dst v = static_cast<Dst>(src.Get(i));
    std::memcpy(out.data() + i * sizeof(Dst), &v, sizeof(Dst));
  }
}
} // namespace

bool OnnxModel::tensorBytes(const TensorProto &t, TensorBytes &out, std::string &error) const {
  const std::string name = "tensor '" + t.name() + "'";
  size_t eb = onnxElementBytes(t.data_type());
  if (eb == 0) {
    error = name + " has data type " + onnxTypeName(t.data_type()) +
            ", which photon-import does not support";
    return false;
  }
  int64_t n = 0;
  if (!numElements(t, n, error)) return false;
  const uint64_t expected = static_cast<uint64_t>(n) * eb;

  if (t.data_location() == TensorProto::EXTERNAL) {
    std::string location;
    uint64_t offset = 0, length = UINT64_MAX;
    for (const auto &kv : t.external_data()) {
      if (kv.key() == "location") location = kv.value();
      else if (kv.key() == "offset" || kv.key() == "length") {
        char *end = nullptr;
        unsigned long long v = std::strtoull(kv.value().c_str(), &end, 10);
        if (kv.value().empty() || *end != '\0') {
          error = name + " has a malformed external-data " + kv.key() + " '" + kv.value() + "'";
          return false;
        }
        (kv.key() == "offset" ? offset : length) = v;
      }
    }
    if (location.empty()) {
      error = name + " is stored as external data but has no 'location'";
      return false;
    }
    if (!allowExternal_) {
      error = name + " is stored in external file '" + location +
              "', but the model was not loaded from a file";
      return false;
    }
    if (llvm::sys::path::is_absolute(location)) {
      error = name + " refers to external data by an absolute path '" + location +
              "'; ONNX requires paths relative to the model's directory";
      return false;
    }
    llvm::SmallString<256> given(baseDir_);
    llvm::sys::path::append(given, location);
    // Confinement: the data file must lie inside the model's directory after `..` and
    // symlinks are resolved (a crafted location must not copy /etc/passwd into the weights).
    llvm::SmallString<256> realBase, full;
    if (std::error_code ec = llvm::sys::fs::real_path(baseDir_, realBase)) {
      error = name + ": cannot resolve the model's directory '" + baseDir_ + "' (" +
              ec.message() + ")";
      return false;
    }
    if (std::error_code ec = llvm::sys::fs::real_path(given, full)) {
      error = name + " is stored in external-data file '" + std::string(given) +
              "', which cannot be opened (" + ec.message() +
              "); keep the data file next to the model";
      return false;
    }
    std::string prefix = std::string(realBase);
    if (prefix != "/") prefix += "/";
    if (!llvm::StringRef(full).starts_with(prefix)) {
      error = name + " refers to external-data file '" + location + "', which resolves to '" +
              std::string(full) + "', outside the model's directory '" +
              std::string(realBase) + "'; refused (external data must lie inside the "
              "model's directory, after '..' and symlinks)";
      return false;
    }
    llvm::sys::fs::file_status fst;
    if (std::error_code ec = llvm::sys::fs::status(full, fst)) {
      error = name + " is stored in external-data file '" + std::string(full) +
              "', which cannot be opened (" + ec.message() + ")";
      return false;
    }
    if (!llvm::sys::fs::is_regular_file(fst)) {
      error = name + " is stored in external-data file '" + std::string(full) +
              "', which is not a regular file (a FIFO, device or directory is not read)";
      return false;
    }
    uint64_t fileSize = 0;
    if (std::error_code ec = llvm::sys::fs::file_size(full, fileSize)) {
      error = name + " is stored in external-data file '" + std::string(full) +
              "', which cannot be opened (" + ec.message() +
              "); keep the data file next to the model";
      return false;
    }
    if (length == UINT64_MAX) length = expected;
    if (length != expected) {
      error = name + " has external-data length " + std::to_string(length) +
              " bytes, but its shape and type need " + std::to_string(expected) + " bytes";
      return false;
    }
    if (offset > fileSize || length > fileSize - offset) {
      error = name + " lies outside its external-data file '" + std::string(full) + "' (" +
              std::to_string(offset) + " + " + std::to_string(length) + " > " +
              std::to_string(fileSize) + " bytes): the data file is truncated";
      return false;
    }
    if (length == 0) {
      out.view_ = "";
      out.viewSize_ = 0;
      return true;
    }
    auto buf = llvm::MemoryBuffer::getFileSlice(full, length, offset);
    if (!buf) {
      error = name + ": cannot map external-data file '" + std::string(full) +
              "': " + buf.getError().message();
      return false;
    }
    out.mapping_ = std::move(*buf);
    out.view_ = out.mapping_->getBufferStart();
    out.viewSize_ = out.mapping_->getBufferSize();
    return true;
  }

  if (t.has_raw_data()) {
    if (t.raw_data().size() != expected) {
      error = name + " holds " + std::to_string(t.raw_data().size()) +
              " bytes of raw data, but its shape and type need " + std::to_string(expected) +
              " bytes (shape/dtype mismatch or a corrupt file)";
      return false;
    }
    out.view_ = t.raw_data().data();
    out.viewSize_ = t.raw_data().size();
    return true;
  }

  int64_t count = -1;
  switch (t.data_type()) {
  case TensorProto::FLOAT:
    count = t.float_data_size();
    if (count == n) copyNarrow<float, float>(t.float_data(), out.owned_);
    break;
  case TensorProto::DOUBLE:
    count = t.double_data_size();
    if (count == n) copyNarrow<double, double>(t.double_data(), out.owned_);
    break;
  case TensorProto::INT64:
    count = t.int64_data_size();
    if (count == n) copyNarrow<int64_t, int64_t>(t.int64_data(), out.owned_);
    break;
  case TensorProto::UINT32:
  case TensorProto::UINT64:
    count = t.uint64_data_size();
    if (count == n) {
      if (eb == 8) copyNarrow<uint64_t, uint64_t>(t.uint64_data(), out.owned_);
      else copyNarrow<uint64_t, uint32_t>(t.uint64_data(), out.owned_);
    }
    break;
  case TensorProto::INT32:
    count = t.int32_data_size();
    if (count == n) copyNarrow<int32_t, int32_t>(t.int32_data(), out.owned_);
    break;
  case TensorProto::INT16:
  case TensorProto::UINT16:
  case TensorProto::FLOAT16:
  case TensorProto::BFLOAT16:
    count = t.int32_data_size();
    if (count == n) copyNarrow<int32_t, uint16_t>(t.int32_data(), out.owned_);
    break;
  case TensorProto::INT8:
  case TensorProto::UINT8:
  case TensorProto::BOOL:
    count = t.int32_data_size();
    if (count == n) copyNarrow<int32_t, uint8_t>(t.int32_data(), out.owned_);
    break;
  default: break;
  }
  if (count != n) {
    error = name + " holds " + std::to_string(count < 0 ? 0 : count) +
            " values, but its shape needs " + std::to_string(n) +
            " (shape/dtype mismatch or a corrupt file)";
    return false;
  }
  return true;
}

} // namespace import
} // namespace photon
