// libFuzzer target: an artifact directory (manifest.json + weights.bin from the input, split
// at the first "\n--weights--\n"; no model.so) -> Model::load: manifest checks, target
// checks, stage table, regular-file and confinement checks, weights mmap, index and start
// latents, up to the library (absent: a clean error). Oracle: no crash, no hang, and a
// failure always has a message.
#include "artifact.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace {
std::string dir() {
  static std::string d = [] {
    char tmpl[] = "/tmp/photon-fuzz-loader-XXXXXX";
    const char *p = mkdtemp(tmpl);
    if (!p) std::abort();
    return std::string(p);
  }();
  return d;
}
void put(const std::string &path, const std::string &bytes) {
  std::FILE *f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string in(reinterpret_cast<const char *>(data), size);
  const std::string sep = "\n--weights--\n";
  size_t k = in.find(sep);
  std::string manifest = k == std::string::npos ? in : in.substr(0, k);
  std::string weights = k == std::string::npos ? std::string() : in.substr(k + sep.size());
  put(dir() + "/manifest.json", manifest);
  put(dir() + "/weights.bin", weights);
  photon::rt::LoadOptions o;
  o.checkCpu = false; // feature lists are data here; the host check is not under test
  std::unique_ptr<photon::rt::Model> m;
  photon::rt::Status st = photon::rt::Model::load(dir(), o, m);
  if (!st && st.message().empty()) std::abort();
  if (st) std::abort(); // there is no model.so: loading must fail
  return 0;
}
