// photon-gpu-compare: the checker of scripts/gpu-check.sh, which compares what photon-run
// printed for a CUDA artifact on the GPU machine with what it printed for the CPU artifact of
// the same model when the pack was made (the GPU machine has no Python and no MLIR).
//
//   photon-gpu-compare tokens GOT.json WANT.json
//       photon-run --json outputs: every request's "tokens" must be equal.
//   photon-gpu-compare logits GOT.npy WANT.npy ATOL RTOL
//       photon-run --logits-out outputs (f32 .npy): |got - want| <= atol + rtol * |want|
//       elementwise, same shape.
// Prints one line (what was compared, the worst difference); exit 0 equal, 1 different,
// 2 bad input.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

bool readAll(const char *path, std::string &out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::stringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

// A little-endian f32 .npy (version 1 or 2, C order): shape and data.
bool readNpyF32(const char *path, std::vector<long> &shape, std::vector<float> &data,
                std::string &err) {
  std::string s;
  if (!readAll(path, s)) return err = std::string("cannot read ") + path, false;
  if (s.size() < 10 || s.compare(0, 6, "\x93NUMPY") != 0) return err = std::string(path) + ": not a .npy file", false;
  const int major = static_cast<unsigned char>(s[6]);
  size_t hlen, off;
  if (major == 1) {
    hlen = static_cast<unsigned char>(s[8]) | (static_cast<unsigned char>(s[9]) << 8);
    off = 10;
  } else {
    if (s.size() < 12) return err = std::string(path) + ": truncated header", false;
    hlen = 0;
    for (int i = 0; i < 4; ++i) hlen |= static_cast<size_t>(static_cast<unsigned char>(s[8 + i])) << (8 * i);
    off = 12;
  }
  if (off + hlen > s.size()) return err = std::string(path) + ": truncated header", false;
  const std::string h = s.substr(off, hlen);
  if (h.find("'descr': '<f4'") == std::string::npos)
    return err = std::string(path) + ": not little-endian f32", false;
  if (h.find("'fortran_order': False") == std::string::npos)
    return err = std::string(path) + ": Fortran order", false;
  const size_t a = h.find("'shape': ("), b = h.find(')', a);
  if (a == std::string::npos || b == std::string::npos) return err = std::string(path) + ": no shape", false;
  std::string dims = h.substr(a + 10, b - a - 10);
  size_t n = 1;
  shape.clear();
  std::stringstream ds(dims);
  std::string d;
  while (std::getline(ds, d, ','))
    if (d.find_first_not_of(' ') != std::string::npos) {
      shape.push_back(std::stol(d));
      n *= static_cast<size_t>(shape.back());
    }
  off += hlen;
  if (s.size() - off != n * 4)
    return err = std::string(path) + ": data size does not match the shape", false;
  data.resize(n);
  std::memcpy(data.data(), s.data() + off, n * 4);
  return true;
}

int compareTokens(const char *got, const char *want) {
  std::string a, b;
  if (!readAll(got, a) || !readAll(want, b)) {
    std::fprintf(stderr, "photon-gpu-compare: cannot read %s or %s\n", got, want);
    return 2;
  }
  nlohmann::json ja = nlohmann::json::parse(a, nullptr, false), jb = nlohmann::json::parse(b, nullptr, false);
  if (ja.is_discarded() || jb.is_discarded() || !ja.contains("requests") || !jb.contains("requests")) {
    std::fprintf(stderr, "photon-gpu-compare: %s or %s is not photon-run --json output\n", got, want);
    return 2;
  }
  const auto &ra = ja["requests"], &rb = jb["requests"];
  if (ra.size() != rb.size()) {
    std::printf("tokens: %zu requests, expected %zu\n", ra.size(), rb.size());
    return 1;
  }
  size_t total = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    std::vector<int> ta = ra[i].value("tokens", std::vector<int>()),
                     tb = rb[i].value("tokens", std::vector<int>());
    for (size_t k = 0; k < std::max(ta.size(), tb.size()); ++k)
      if (k >= ta.size() || k >= tb.size() || ta[k] != tb[k]) {
        std::printf("tokens: request %zu differs at token %zu (got %d, expected %d; %zu vs %zu tokens)\n",
                    i, k, k < ta.size() ? ta[k] : -1, k < tb.size() ? tb[k] : -1, ta.size(), tb.size());
        return 1;
      }
    total += ta.size();
  }
  std::printf("tokens: %zu requests, %zu tokens, all equal\n", ra.size(), total);
  return 0;
}

int compareLogits(const char *got, const char *want, double atol, double rtol) {
  std::vector<long> sa, sb;
  std::vector<float> a, b;
  std::string err;
  if (!readNpyF32(got, sa, a, err) || !readNpyF32(want, sb, b, err)) {
    std::fprintf(stderr, "photon-gpu-compare: %s\n", err.c_str());
    return 2;
  }
  if (sa != sb) {
    std::printf("logits: shapes differ\n");
    return 1;
  }
  size_t bad = 0;
  double worst = 0, worstRel = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (!(d <= atol + rtol * std::fabs(b[i]))) ++bad; // NaN counts as bad
    worst = std::max(worst, d);
    if (std::fabs(b[i]) > 0) worstRel = std::max(worstRel, d / std::fabs(b[i]));
  }
  std::printf("logits: %zu values, max abs diff %.3g, max rel diff %.3g, %zu outside atol %g + rtol %g\n",
              a.size(), worst, worstRel, bad, atol, rtol);
  return bad ? 1 : 0;
}

} // namespace

int main(int argc, char **argv) {
  if (argc == 4 && std::strcmp(argv[1], "tokens") == 0) return compareTokens(argv[2], argv[3]);
  if (argc == 6 && std::strcmp(argv[1], "logits") == 0)
    return compareLogits(argv[2], argv[3], std::atof(argv[4]), std::atof(argv[5]));
  std::fprintf(stderr, "usage: photon-gpu-compare tokens GOT.json WANT.json\n"
                       "       photon-gpu-compare logits GOT.npy WANT.npy ATOL RTOL\n");
  return 2;
}
