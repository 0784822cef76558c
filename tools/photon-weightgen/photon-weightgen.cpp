// photon-weightgen: a weights blob (PHOTONW1, docs/artifact.md) as a small recipe, and the
// same blob again from that recipe, bit for bit, on any x86-64 machine.
//
// The GPU check (scripts/gpu-pack.sh, scripts/gpu-check.sh) carries the mid-size benchmark
// models, whose ~360 MB of random weights would not fit its 64 MiB pack. Their values do not
// matter for speed, only their layout and scale do, so the pack holds a recipe instead:
//
//   photon-weightgen recipe IN.bin OUT.recipe [--seed N] [--min-bytes B]
//       copies IN's header and index, and for each tensor records either its value (every
//       element equal: norm gains, zero biases), its bytes (non-f32 tensors and tensors
//       smaller than B bytes, default 65536: start latents, small tables), or, for larger f32
//       tensors, the mean and standard deviation of its elements: `make` fills those with
//       uniform pseudo-random values of that mean and deviation.
//   photon-weightgen make RECIPE OUT.bin
//       writes the blob (same size, index and offsets as IN, zero padding) and prints
//       `bytes <N> fnv1a64:<hex>` (the manifest's checksum of the written file).
//
// The values come from splitmix64 (seeded by the recipe's seed and the tensor's name) through
// integer arithmetic and two IEEE float operations (a product and a sum, never contracted),
// so the blob does not depend on the machine, the C library or the compiler's math library.
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "photon/weights_format.h"

namespace {

namespace wf = photon::weights;

constexpr char kRecipeMagic[8] = {'P', 'H', 'O', 'T', 'O', 'N', 'W', 'R'};
constexpr uint32_t kRecipeVersion = 1;
enum Kind : uint8_t { kBytes = 0, kConstant = 1, kUniformF32 = 2 };

[[noreturn]] void fail(const std::string &msg) {
  std::fprintf(stderr, "photon-weightgen: error: %s\n", msg.c_str());
  std::exit(1);
}

bool readFile(const std::string &path, std::vector<uint8_t> &out) {
  std::FILE *f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  std::fseek(f, 0, SEEK_END);
  long n = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  if (n < 0) {
    std::fclose(f);
    return false;
  }
  out.resize(static_cast<size_t>(n));
  bool ok = std::fread(out.data(), 1, out.size(), f) == out.size();
  std::fclose(f);
  return ok;
}

uint64_t splitmix64(uint64_t &state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform on mean +- halfWidth: an odd multiple of 1/2 in (-2^23, 2^23) (exact in f32),
// times halfWidth / 2^23, plus the mean. volatile keeps the product and the sum two roundings.
void fillUniform(float *dst, int64_t n, uint64_t seed, float mean, float halfWidth) {
  uint64_t state = seed;
  const float scale = halfWidth * (1.0f / 8388608.0f);
  for (int64_t i = 0; i < n; ++i) {
    int32_t r = static_cast<int32_t>(splitmix64(state) >> 40) - (1 << 23); // [-2^23, 2^23)
    volatile float s = static_cast<float>(r) + 0.5f;
    volatile float p = s * scale;
    dst[i] = p + mean;
  }
}

struct Out {
  std::FILE *f = nullptr;
  uint64_t written = 0, fnv = 0xcbf29ce484222325ull;
  void put(const void *d, size_t n) {
    if (n == 0) return;
    if (std::fwrite(d, 1, n, f) != n) fail(std::string("write failed: ") + std::strerror(errno));
    fnv = wf::fnv1a64(d, n, fnv);
    written += n;
  }
  void padTo(uint64_t off) {
    static const uint8_t zeros[4096] = {};
    while (written < off) put(zeros, static_cast<size_t>(std::min<uint64_t>(sizeof zeros, off - written)));
  }
};

template <typename T> void append(std::vector<uint8_t> &buf, T v) {
  const auto *b = reinterpret_cast<const uint8_t *>(&v);
  buf.insert(buf.end(), b, b + sizeof(T));
}

template <typename T> T take(const std::vector<uint8_t> &buf, size_t &pos) {
  if (buf.size() - pos < sizeof(T)) fail("the recipe is truncated");
  T v;
  std::memcpy(&v, buf.data() + pos, sizeof(T));
  pos += sizeof(T);
  return v;
}

uint64_t tensorSeed(uint64_t seed, const std::string &name) {
  uint64_t s = seed ^ wf::fnv1a64(name.data(), name.size());
  return splitmix64(s);
}

int recipe(const std::string &in, const std::string &out, uint64_t seed, uint64_t minBytes) {
  std::vector<uint8_t> blob;
  if (!readFile(in, blob)) fail("cannot read '" + in + "': " + std::strerror(errno));
  std::vector<wf::TensorInfo> ts;
  std::string err;
  if (!wf::parseIndex(blob.data(), blob.size(), ts, err)) fail(in + ": " + err);
  uint64_t dataOffset;
  std::memcpy(&dataOffset, blob.data() + 24, 8);
  for (size_t i = 1; i < ts.size(); ++i)
    if (ts[i].offset < ts[i - 1].offset + ts[i - 1].bytes)
      fail(in + ": tensors are not stored in index order without overlap");
  if (!ts.empty() && ts[0].offset < dataOffset) fail(in + ": a tensor starts before the data offset");

  std::vector<uint8_t> r;
  r.insert(r.end(), kRecipeMagic, kRecipeMagic + 8);
  append<uint32_t>(r, kRecipeVersion);
  append<uint32_t>(r, static_cast<uint32_t>(ts.size()));
  append<uint64_t>(r, seed);
  append<uint64_t>(r, blob.size());
  append<uint64_t>(r, dataOffset);
  r.insert(r.end(), blob.begin(), blob.begin() + static_cast<long>(dataOffset));
  uint64_t kept = 0, generated = 0, constants = 0;
  for (const auto &t : ts) {
    const uint8_t *p = blob.data() + t.offset;
    size_t eb = wf::dtypeBytes(t.dtype);
    bool constant = t.bytes >= eb;
    for (uint64_t k = eb; constant && k < t.bytes; k += eb) constant = std::memcmp(p, p + k, eb) == 0;
    if (constant && t.bytes > eb) {
      append<uint8_t>(r, kConstant);
      r.insert(r.end(), p, p + eb);
      ++constants;
    } else if (t.dtype == wf::DType::F32 && t.bytes >= minBytes) {
      const auto *f = reinterpret_cast<const float *>(p);
      int64_t n = t.numElements();
      double sum = 0, sq = 0;
      for (int64_t k = 0; k < n; ++k) sum += f[k];
      double mean = sum / static_cast<double>(n);
      for (int64_t k = 0; k < n; ++k) sq += (f[k] - mean) * (f[k] - mean);
      double sd = std::sqrt(sq / static_cast<double>(n));
      if (!std::isfinite(mean) || !std::isfinite(sd)) fail(in + ": tensor '" + t.name + "' is not finite");
      append<uint8_t>(r, kUniformF32);
      append<float>(r, static_cast<float>(mean));
      append<float>(r, static_cast<float>(sd * std::sqrt(3.0))); // uniform: sd = halfWidth / sqrt(3)
      generated += t.bytes;
    } else {
      append<uint8_t>(r, kBytes);
      r.insert(r.end(), p, p + t.bytes);
      kept += t.bytes;
    }
  }
  std::FILE *f = std::fopen(out.c_str(), "wb");
  if (!f || std::fwrite(r.data(), 1, r.size(), f) != r.size() || std::fclose(f) != 0)
    fail("cannot write '" + out + "': " + std::strerror(errno));
  std::printf("tensors %zu: %" PRIu64 " constant, %" PRIu64 " bytes kept, %" PRIu64
              " bytes generated; recipe %zu bytes\n",
              ts.size(), constants, kept, generated, r.size());
  return 0;
}

int make(const std::string &in, const std::string &out) {
  std::vector<uint8_t> r;
  if (!readFile(in, r)) fail("cannot read '" + in + "': " + std::strerror(errno));
  if (r.size() < 8 || std::memcmp(r.data(), kRecipeMagic, 8) != 0) fail(in + ": not a photon-weightgen recipe");
  size_t pos = 8;
  if (take<uint32_t>(r, pos) != kRecipeVersion) fail(in + ": unsupported recipe version");
  uint32_t count = take<uint32_t>(r, pos);
  uint64_t seed = take<uint64_t>(r, pos), size = take<uint64_t>(r, pos), dataOffset = take<uint64_t>(r, pos);
  if (dataOffset > r.size() - pos || dataOffset > size) fail(in + ": the recipe is truncated");
  const uint8_t *head = r.data() + pos;
  // The index, checked like any blob's against the size the blob will have. parseIndex reads
  // the header and the index only, which lie inside the recipe's first dataOffset bytes
  // (checked first), and checks every tensor's extent against `size`.
  uint64_t indexBytes = 0;
  if (dataOffset < wf::kHeaderBytes) fail(in + ": the recipe is truncated");
  std::memcpy(&indexBytes, head + 16, 8);
  if (indexBytes > dataOffset - wf::kHeaderBytes) fail(in + ": the index does not fit before the data");
  std::vector<wf::TensorInfo> ts;
  std::string err;
  if (!wf::parseIndex(head, static_cast<size_t>(size), ts, err)) fail(in + ": " + err);
  if (ts.size() != count) fail(in + ": tensor count does not match the index");
  pos += dataOffset;

  Out o;
  o.f = std::fopen(out.c_str(), "wb");
  if (!o.f) fail("cannot write '" + out + "': " + std::strerror(errno));
  o.put(head, static_cast<size_t>(dataOffset));
  std::vector<uint8_t> buf;
  for (const auto &t : ts) {
    o.padTo(t.offset);
    if (o.written != t.offset) fail(in + ": tensor '" + t.name + "' overlaps the previous one");
    uint8_t kind = take<uint8_t>(r, pos);
    size_t eb = wf::dtypeBytes(t.dtype);
    buf.resize(static_cast<size_t>(t.bytes));
    if (kind == kBytes) {
      if (r.size() - pos < t.bytes) fail(in + ": the recipe is truncated");
      o.put(r.data() + pos, static_cast<size_t>(t.bytes));
      pos += t.bytes;
      continue;
    }
    if (kind == kConstant) {
      if (r.size() - pos < eb) fail(in + ": the recipe is truncated");
      for (uint64_t k = 0; k < t.bytes; k += eb) std::memcpy(buf.data() + k, r.data() + pos, eb);
      pos += eb;
    } else if (kind == kUniformF32 && t.dtype == wf::DType::F32) {
      float mean = take<float>(r, pos), half = take<float>(r, pos);
      fillUniform(reinterpret_cast<float *>(buf.data()), t.numElements(), tensorSeed(seed, t.name), mean, half);
    } else {
      fail(in + ": tensor '" + t.name + "' has an unknown recipe kind");
    }
    o.put(buf.data(), buf.size());
  }
  o.padTo(size);
  if (pos != r.size()) fail(in + ": trailing bytes after the last tensor");
  if (std::fclose(o.f) != 0) fail("cannot write '" + out + "': " + std::strerror(errno));
  std::printf("bytes %" PRIu64 " fnv1a64:%016" PRIx64 "\n", o.written, o.fnv);
  return 0;
}

const char *kUsage =
    "usage: photon-weightgen recipe IN.bin OUT.recipe [--seed N] [--min-bytes B]\n"
    "       photon-weightgen make RECIPE OUT.bin\n"
    "A weights blob as a small recipe (constants, small tensors verbatim, the mean and deviation\n"
    "of each f32 tensor of at least B bytes, default 65536), and the blob again from it, bit for\n"
    "bit (`make` prints its size and FNV-1a checksum). Seed default 1.\n";

} // namespace

int main(int argc, char **argv) {
  std::vector<std::string> pos;
  uint64_t seed = 1, minBytes = 65536;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto num = [&](const char *what) {
      if (i + 1 >= argc) fail(std::string(what) + " needs a value");
      char *end = nullptr;
      errno = 0;
      unsigned long long v = std::strtoull(argv[++i], &end, 10);
      if (errno || !end || *end || argv[i][0] == '-') fail(std::string(what) + " needs a non-negative integer");
      return static_cast<uint64_t>(v);
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--seed") {
      seed = num("--seed");
    } else if (a == "--min-bytes") {
      minBytes = num("--min-bytes");
    } else if (!a.empty() && a[0] == '-') {
      std::fputs(kUsage, stderr);
      fail("unknown option " + a);
    } else {
      pos.push_back(a);
    }
  }
  if (pos.size() == 3 && pos[0] == "recipe") return recipe(pos[1], pos[2], seed, minBytes);
  if (pos.size() == 3 && pos[0] == "make") return make(pos[1], pos[2]);
  std::fputs(kUsage, stderr);
  return 2;
}
