// Header-only reader and writer of the photon weights blob (PHOTONW1).
//
// The format is specified in docs/artifact.md. The importer writes it, the compiler reads
// (and re-writes it packed), the runtime memory-maps it. This header depends on the C++
// standard library only, so that the runtime stays free of MLIR and LLVM.
#ifndef PHOTON_WEIGHTS_FORMAT_H
#define PHOTON_WEIGHTS_FORMAT_H

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace photon {
namespace weights {

constexpr char kMagic[8] = {'P', 'H', 'O', 'T', 'O', 'N', 'W', '1'};
constexpr uint32_t kVersion = 1;
constexpr uint64_t kAlignment = 64;
constexpr uint64_t kHeaderBytes = 32;

enum class DType : uint8_t { F32 = 0, F16 = 1, BF16 = 2, I32 = 3, I64 = 4, I8 = 5 };

inline size_t dtypeBytes(DType t) {
  switch (t) {
  case DType::F32: return 4;
  case DType::F16: return 2;
  case DType::BF16: return 2;
  case DType::I32: return 4;
  case DType::I64: return 8;
  case DType::I8: return 1;
  }
  return 0;
}

inline const char *dtypeName(DType t) {
  switch (t) {
  case DType::F32: return "f32";
  case DType::F16: return "f16";
  case DType::BF16: return "bf16";
  case DType::I32: return "i32";
  case DType::I64: return "i64";
  case DType::I8: return "i8";
  }
  return "?";
}

/// Reduced-precision weight formats (photon-compile --weights, docs/artifact.md "Weight
/// formats"). A matmul weight W [N, K] is stored as:
///   f32, f16, bf16: one tensor `name` of that dtype, [N, K] (f16/bf16 rounded to nearest even);
///   q8: tensor `name` of dtype i8 [N, K] (q) and tensor `name` + kQ8ScalesSuffix of dtype
///       f16 [N, K / 32] (d), W[n, k] = q[n, k] * d[n, k / 32]: symmetric, one f16 scale per
///       group of kQ8Group consecutive k (llama.cpp's q8_0 without its interleaving),
///       d = max|W[n, group]| / 127, q = round(W / d) in [-127, 127].
///   q4: tensor `name` of dtype i8 [N, K / 2] (p, two 4-bit values per byte) and tensor
///       `name` + kQ4ScalesSuffix of dtype f16 [N, K / 32] (d), llama.cpp's q4_0 values:
///       in group g of 32 k, byte p[n, 16 g + j] (j < 16) holds k = 32 g + j in its low nibble
///       and k = 32 g + 16 + j in its high nibble, W[n, k] = (nibble - 8) * d[n, g],
///       d = m / -8 where m is the group's value of largest magnitude.
constexpr int64_t kQ8Group = 32;
constexpr const char *kQ8ScalesSuffix = ".q8_scales";
constexpr const char *kQ4ScalesSuffix = ".q4_scales";

/// IEEE binary16 bits of `f`, rounded to nearest even (overflow to inf, NaN kept).
inline uint16_t f32ToF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u); // rounds to >= 65520: inf
  if (ax < 0x38800000u) {                                               // f16 subnormal or zero
    if (ax < 0x33000000u) return static_cast<uint16_t>(sign);          // < 2^-25: rounds to 0
    uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e; // 14..24 (value = m * 2^(e-150), unit 2^-24)
    uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = ((ax - 0x38000000u) >> 13);
  uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

/// The float value of IEEE binary16 bits.
inline float f16ToF32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ffu, x;
  if (e == 0) {
    float v = static_cast<float>(m) * (1.0f / 16777216.0f); // m * 2^-24
    std::memcpy(&x, &v, 4);
    x |= sign;
  } else if (e == 31) {
    x = sign | 0x7f800000u | (m << 13);
  } else {
    x = sign | ((e + 112) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

/// bfloat16 bits of `f`, rounded to nearest even (NaN kept quiet).
inline uint16_t f32ToBF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

inline float bf16ToF32(uint16_t h) {
  uint32_t x = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

/// q8 of one row of K floats (K a multiple of kQ8Group): q[K], d[K / kQ8Group] (f16 bits).
/// The scale is rounded to f16 first and q computed with the rounded scale.
inline void quantizeRowQ8(const float *w, int64_t K, int8_t *q, uint16_t *d) {
  for (int64_t g = 0; g < K / kQ8Group; ++g) {
    const float *src = w + g * kQ8Group;
    float amax = 0;
    for (int64_t i = 0; i < kQ8Group; ++i) amax = std::max(amax, src[i] < 0 ? -src[i] : src[i]);
    uint16_t dh = f32ToF16(amax / 127.0f);
    float dv = f16ToF32(dh);
    float inv = dv > 0 ? 1.0f / dv : 0.0f;
    d[g] = dh;
    for (int64_t i = 0; i < kQ8Group; ++i) {
      float v = src[i] * inv;
      long r = std::lround(v);
      q[g * kQ8Group + i] = static_cast<int8_t>(std::max(-127L, std::min(127L, r)));
    }
  }
}

/// q4 of one row of K floats (K a multiple of kQ8Group): p[K / 2], d[K / kQ8Group] (f16
/// bits), with the f16-rounded scale.
inline void quantizeRowQ4(const float *w, int64_t K, uint8_t *p, uint16_t *d) {
  for (int64_t g = 0; g < K / kQ8Group; ++g) {
    const float *src = w + g * kQ8Group;
    float amax = 0, m = 0;
    for (int64_t i = 0; i < kQ8Group; ++i) {
      float a = src[i] < 0 ? -src[i] : src[i];
      if (a > amax) { amax = a; m = src[i]; }
    }
    uint16_t dh = f32ToF16(m / -8.0f);
    float dv = f16ToF32(dh);
    float inv = dv != 0 ? 1.0f / dv : 0.0f;
    d[g] = dh;
    auto nib = [&](float v) {
      long r = std::lround(v * inv) + 8;
      return static_cast<uint8_t>(std::max(0L, std::min(15L, r)));
    };
    for (int64_t j = 0; j < kQ8Group / 2; ++j)
      p[g * kQ8Group / 2 + j] = static_cast<uint8_t>(nib(src[j]) | (nib(src[j + kQ8Group / 2]) << 4));
  }
}

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t offset = 0; // from the start of the file
  uint64_t bytes = 0;
  int64_t numElements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

inline uint64_t alignUp(uint64_t v, uint64_t a = kAlignment) { return (v + a - 1) / a * a; }

/// FNV-1a 64-bit over a byte range; the manifest's weights checksum.
inline uint64_t fnv1a64(const void *data, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  const auto *p = static_cast<const unsigned char *>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

namespace detail {
template <typename T> inline bool read(const uint8_t *&p, const uint8_t *end, T &out) {
  if (static_cast<size_t>(end - p) < sizeof(T)) return false;
  std::memcpy(&out, p, sizeof(T));
  p += sizeof(T);
  return true;
}
template <typename T> inline void write(std::vector<uint8_t> &buf, T v) {
  const auto *b = reinterpret_cast<const uint8_t *>(&v);
  buf.insert(buf.end(), b, b + sizeof(T));
}
} // namespace detail

/// Parses the header and index of a blob held in memory (typically mmapped).
/// Returns false and sets `error` on a malformed blob; never reads past `size`.
inline bool parseIndex(const void *data, size_t size, std::vector<TensorInfo> &out,
                       std::string &error) {
  const auto *base = static_cast<const uint8_t *>(data);
  if (size < kHeaderBytes || std::memcmp(base, kMagic, 8) != 0) {
    error = "not a photon weights blob (expected magic PHOTONW1)";
    return false;
  }
  const uint8_t *p = base + 8, *end = base + size;
  uint32_t version = 0, count = 0;
  uint64_t indexBytes = 0, dataOffset = 0;
  detail::read(p, end, version);
  detail::read(p, end, count);
  detail::read(p, end, indexBytes);
  detail::read(p, end, dataOffset);
  if (version != kVersion) {
    error = "weights blob version " + std::to_string(version) + " is not supported (expected " +
            std::to_string(kVersion) + "); re-run photon-import";
    return false;
  }
  if (indexBytes > size - kHeaderBytes || dataOffset > size) {
    error = "weights blob is truncated (index of " + std::to_string(indexBytes) +
            " bytes does not fit in " + std::to_string(size) + " bytes)";
    return false;
  }
  const uint8_t *idxEnd = base + kHeaderBytes + indexBytes;
  // Every record takes at least kMinRecordBytes of the index: a count the index cannot hold
  // is refused before anything is allocated for it (a hostile count never reaches reserve).
  constexpr uint64_t kMinRecordBytes = 2 + 1 + 1 + 8 + 8;
  if (static_cast<uint64_t>(count) > indexBytes / kMinRecordBytes) {
    error = "weights blob declares " + std::to_string(count) + " tensors, but its index of " +
            std::to_string(indexBytes) + " bytes holds at most " +
            std::to_string(indexBytes / kMinRecordBytes) + "; the file is corrupt: re-run "
            "photon-import";
    return false;
  }
  out.clear();
  out.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    TensorInfo t;
    uint16_t nameLen = 0;
    uint8_t dtype = 0, rank = 0;
    if (!detail::read(p, idxEnd, nameLen) || static_cast<size_t>(idxEnd - p) < nameLen) {
      error = "weights blob index is corrupt at record " + std::to_string(i);
      return false;
    }
    t.name.assign(reinterpret_cast<const char *>(p), nameLen);
    p += nameLen;
    if (!detail::read(p, idxEnd, dtype) || !detail::read(p, idxEnd, rank) || dtype > 5) {
      error = "weights blob index is corrupt at tensor '" + t.name + "'";
      return false;
    }
    t.dtype = static_cast<DType>(dtype);
    t.shape.resize(rank);
    for (uint8_t r = 0; r < rank; ++r)
      if (!detail::read(p, idxEnd, t.shape[r])) {
        error = "weights blob index is corrupt at tensor '" + t.name + "'";
        return false;
      }
    if (!detail::read(p, idxEnd, t.offset) || !detail::read(p, idxEnd, t.bytes)) {
      error = "weights blob index is corrupt at tensor '" + t.name + "'";
      return false;
    }
    bool dimsOk = true;
    uint64_t elems = 1;
    for (int64_t d : t.shape) {
      // Each dimension is non-negative and the product fits in the file (no overflow).
      if (d < 0 || (d > 0 && elems > size / static_cast<uint64_t>(d))) { dimsOk = false; break; }
      elems *= static_cast<uint64_t>(d);
    }
    if (!dimsOk) {
      error = "tensor '" + t.name + "' has a negative dimension or more elements than the "
              "weights blob holds";
      return false;
    }
    if (t.offset > size || t.bytes > size - t.offset ||
        t.bytes != elems * dtypeBytes(t.dtype)) {
      error = "tensor '" + t.name + "' lies outside the weights blob or has a wrong byte size";
      return false;
    }
    out.push_back(std::move(t));
  }
  return true;
}

/// Streams tensors into a blob file. Tensors are added one at a time (data may come from
/// an mmapped external-data file), so a model larger than memory can be written.
class Writer {
public:
  /// Declare every tensor first (name, dtype, shape), then call `open` and `writeData`
  /// for each in declaration order, then `close`.
  void declare(const std::string &name, DType dtype, const std::vector<int64_t> &shape) {
    TensorInfo t;
    t.name = name;
    t.dtype = dtype;
    t.shape = shape;
    t.bytes = static_cast<uint64_t>(t.numElements()) * dtypeBytes(dtype);
    tensors_.push_back(std::move(t));
  }
  const std::vector<TensorInfo> &tensors() const { return tensors_; }

  bool open(const std::string &path, std::string &error) {
    std::vector<uint8_t> index;
    for (const auto &t : tensors_) {
      detail::write<uint16_t>(index, static_cast<uint16_t>(t.name.size()));
      index.insert(index.end(), t.name.begin(), t.name.end());
      detail::write<uint8_t>(index, static_cast<uint8_t>(t.dtype));
      detail::write<uint8_t>(index, static_cast<uint8_t>(t.shape.size()));
      for (int64_t d : t.shape) detail::write<int64_t>(index, d);
      detail::write<uint64_t>(index, 0); // offset, patched below
      detail::write<uint64_t>(index, t.bytes);
    }
    uint64_t dataOffset = alignUp(kHeaderBytes + index.size());
    uint64_t cursor = dataOffset;
    size_t pos = 0;
    for (auto &t : tensors_) {
      t.offset = cursor;
      cursor = alignUp(cursor + t.bytes);
      pos += 2 + t.name.size() + 2 + 8 * t.shape.size();
      std::memcpy(index.data() + pos, &t.offset, 8);
      pos += 16;
    }
    file_ = std::fopen(path.c_str(), "wb");
    if (!file_) {
      error = "cannot write weights blob '" + path + "': " + std::strerror(errno);
      return false;
    }
    std::vector<uint8_t> header;
    header.insert(header.end(), kMagic, kMagic + 8);
    detail::write<uint32_t>(header, kVersion);
    detail::write<uint32_t>(header, static_cast<uint32_t>(tensors_.size()));
    detail::write<uint64_t>(header, index.size());
    detail::write<uint64_t>(header, dataOffset);
    put(header.data(), header.size());
    put(index.data(), index.size());
    padTo(dataOffset);
    next_ = 0;
    return ok_;
  }

  /// Appends the data of the next declared tensor; may be called several times per tensor
  /// with consecutive pieces. `finishTensor` pads to the next tensor's offset.
  void writeData(const void *data, size_t n) { put(data, n); }
  void finishTensor() {
    if (next_ < tensors_.size()) padTo(tensors_[next_].offset + tensors_[next_].bytes);
    ++next_;
    if (next_ < tensors_.size()) padTo(tensors_[next_].offset);
  }

  bool close(std::string &error) {
    if (file_ && std::fclose(file_) != 0) ok_ = false;
    file_ = nullptr;
    if (!ok_) error = "failed writing the weights blob (disk full?)";
    return ok_;
  }
  uint64_t bytesWritten() const { return written_; }

private:
  void put(const void *d, size_t n) {
    if (!file_ || n == 0) return;
    if (std::fwrite(d, 1, n, file_) != n) ok_ = false;
    written_ += n;
  }
  void padTo(uint64_t off) {
    static const uint8_t zeros[kAlignment] = {};
    while (written_ < off) put(zeros, std::min<uint64_t>(kAlignment, off - written_));
  }
  std::vector<TensorInfo> tensors_;
  std::FILE *file_ = nullptr;
  uint64_t written_ = 0;
  size_t next_ = 0;
  bool ok_ = true;
};

} // namespace weights
} // namespace photon

#endif // PHOTON_WEIGHTS_FORMAT_H
