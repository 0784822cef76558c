//===- WeightFormats.cpp - photon-compile --weights: blob conversion -----===//
//
// See include/photon/Target/WeightFormats.h and docs/compiler.md "Weight formats".
//
//===----------------------------------------------------------------------===//

#include "photon/Target/WeightFormats.h"
#include "photon/Dialect/PhotonOps.h"
#include "photon/weights_format.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/GlobPattern.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>
#include <map>
#include <vector>

using namespace mlir;
using namespace mlir::photon;
namespace W = ::photon::weights;

bool mlir::photon::isWeightFormatName(llvm::StringRef s) {
  return s == "f32" || s == "f16" || s == "bf16" || s == "q8" || s == "q4";
}


bool mlir::photon::convertWeightFormats(ModuleOp m, const std::string &in, const std::string &out,
                                        const std::string &format, const std::string &weightsFor,
                                        bool quiet, llvm::json::Object &manifest,
                                        std::string &err) {
  if (!isWeightFormatName(format)) {
    err = "unsupported --weights format '" + format + "' (expected f32, f16, bf16, q8 or q4)";
    return false;
  }
  std::vector<std::pair<llvm::GlobPattern, std::string>> rules;
  for (llvm::StringRef entry : llvm::split(weightsFor, ',')) {
    entry = entry.trim();
    if (entry.empty()) continue;
    auto [glob, fmt] = entry.rsplit('=');
    if (fmt.empty() || glob.empty() || !isWeightFormatName(fmt)) {
      err = "--weights-for entry '" + entry.str() +
            "' is not GLOB=FORMAT with FORMAT f32, f16, bf16, q8 or q4 (e.g. --weights-for "
            "'lm_head*=f32,*.wq=f16')";
      return false;
    }
    auto pat = llvm::GlobPattern::create(glob);
    if (!pat) {
      err = "--weights-for: bad glob '" + glob.str() + "': " + llvm::toString(pat.takeError());
      return false;
    }
    rules.emplace_back(std::move(*pat), fmt.str());
  }

  // The matmul weights: every photon.weight of that name is used only as a matmul weight.
  llvm::StringSet<> matmulOnly = matmulOnlyWeightNames(m);

  auto buf = llvm::MemoryBuffer::getFile(in, /*IsText=*/false, /*RequiresNullTerminator=*/false);
  if (!buf) {
    err = "cannot read weights blob '" + in + "': " + buf.getError().message();
    return false;
  }
  const char *base = (*buf)->getBufferStart();
  std::vector<W::TensorInfo> infos;
  if (!W::parseIndex(base, (*buf)->getBufferSize(), infos, err)) {
    err = "weights blob '" + in + "': " + err;
    return false;
  }

  // The format of each tensor ("" = copied as is).
  std::vector<std::string> fmts(infos.size());
  llvm::json::Object tensorFormats;
  std::map<std::string, int64_t> counts;
  for (size_t i = 0; i < infos.size(); ++i) {
    const W::TensorInfo &t = infos[i];
    // f16 / bf16 sources: a half-precision export's matmul weights (docs/importer.md).
    bool half = t.dtype == W::DType::F16 || t.dtype == W::DType::BF16;
    if (!matmulOnly.contains(t.name) || (t.dtype != W::DType::F32 && !half) ||
        t.shape.size() != 2)
      continue;
    std::string f = format;
    for (auto &[glob, rf] : rules)
      if (glob.match(t.name)) {
        f = rf;
        break;
      }

    if ((f == "q8" || f == "q4") && t.shape[1] % W::kQ8Group != 0) {
      if (!quiet)
        llvm::errs() << "photon-compile: note: weight '" << t.name << "' stays "
                     << (half ? W::dtypeName(t.dtype) : "f32") << ": its K = "
                     << t.shape[1] << " is not a multiple of the " << f << " group of "
                     << W::kQ8Group << "\n";
      f = "f32";
    }
    // A half weight asked for f32 (or left f32 above) or for its own format keeps the
    // exported values as they are (widening them would only double the bytes read).
    if (half && (f == "f32" || f == W::dtypeName(t.dtype))) {
      ++counts[W::dtypeName(t.dtype)];
      tensorFormats[t.name] = W::dtypeName(t.dtype);
      continue;
    }
    ++counts[f];
    if (f == "f32") continue;
    fmts[i] = f;
    tensorFormats[t.name] = f;
  }

  W::Writer writer;
  for (size_t i = 0; i < infos.size(); ++i) {
    const W::TensorInfo &t = infos[i];
    if (fmts[i].empty()) writer.declare(t.name, t.dtype, t.shape);
    else if (fmts[i] == "f16") writer.declare(t.name, W::DType::F16, t.shape);
    else if (fmts[i] == "bf16") writer.declare(t.name, W::DType::BF16, t.shape);
    else if (fmts[i] == "q8") {
      writer.declare(t.name, W::DType::I8, t.shape);
      writer.declare(t.name + W::kQ8ScalesSuffix, W::DType::F16,
                     {t.shape[0], t.shape[1] / W::kQ8Group});
    } else {
      writer.declare(t.name, W::DType::I8, {t.shape[0], t.shape[1] / 2});
      writer.declare(t.name + W::kQ4ScalesSuffix, W::DType::F16,
                     {t.shape[0], t.shape[1] / W::kQ8Group});
    }
  }
  std::string tmp = out + ".converting";
  if (!writer.open(tmp, err)) return false;
  for (size_t i = 0; i < infos.size(); ++i) {
    const W::TensorInfo &t = infos[i];
    const char *src = base + t.offset;
    if (fmts[i].empty()) {
      writer.writeData(src, t.bytes);
      writer.finishTensor();
      continue;
    }
    int64_t N = t.shape[0], K = t.shape[1];
    std::vector<float> row(K);
    // Row n of the source as f32 (a half source widened exactly).
    auto readRow = [&](int64_t n) {
      if (t.dtype == W::DType::F32) {
        std::memcpy(row.data(), src + n * K * 4, K * 4);
        return;
      }
      for (int64_t k = 0; k < K; ++k) {
        uint16_t h;
        std::memcpy(&h, src + (n * K + k) * 2, 2);
        row[k] = t.dtype == W::DType::F16 ? W::f16ToF32(h) : W::bf16ToF32(h);
      }
    };
    if (fmts[i] == "f16" || fmts[i] == "bf16") {
      std::vector<uint16_t> h(K);
      for (int64_t n = 0; n < N; ++n) {
        readRow(n);
        for (int64_t k = 0; k < K; ++k)
          h[k] = fmts[i] == "f16" ? W::f32ToF16(row[k]) : W::f32ToBF16(row[k]);
        writer.writeData(h.data(), K * 2);
      }
      writer.finishTensor();
      continue;
    }
    bool q4 = fmts[i] == "q4";
    int64_t rowBytes = q4 ? K / 2 : K;
    std::vector<int8_t> q(N * rowBytes);
    std::vector<uint16_t> d(N * (K / W::kQ8Group));
    for (int64_t n = 0; n < N; ++n) {
      readRow(n);
      if (q4)
        W::quantizeRowQ4(row.data(), K, reinterpret_cast<uint8_t *>(q.data()) + n * rowBytes,
                         d.data() + n * (K / W::kQ8Group));
      else
        W::quantizeRowQ8(row.data(), K, q.data() + n * K, d.data() + n * (K / W::kQ8Group));
    }
    writer.writeData(q.data(), q.size());
    writer.finishTensor();
    writer.writeData(d.data(), d.size() * 2);
    writer.finishTensor();
  }
  if (!writer.close(err)) return false;
  buf->reset(); // unmap before replacing the file it maps
  if (auto ec = llvm::sys::fs::rename(tmp, out)) {
    err = "cannot write weights blob '" + out + "': " + ec.message();
    return false;
  }
  manifest["format"] = format;
  llvm::json::Object c;
  for (auto &[f, n] : counts) c[f] = n;
  manifest["matmul_weights"] = std::move(c);
  manifest["tensor_formats"] = std::move(tensorFormats);
  return true;
}
