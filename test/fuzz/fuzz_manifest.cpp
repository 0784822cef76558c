// libFuzzer target: manifest.json text -> parseManifest (JSON parser, every key's checks).
// Oracle: no crash, no sanitizer report, no hang; and a manifest that parses has values in
// the ranges the runtime relies on.
#include "artifact.h"

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  photon::rt::Manifest m;
  photon::rt::Status st = photon::rt::parseManifest(text, "manifest.json", m);
  if (st) {
    if (m.vocab < 1 || m.maxContext < 1 || m.formatVersion != PHOTON_ARTIFACT_FORMAT_VERSION)
      std::abort();
    if (m.tokensPerStep() < 1) std::abort();
    for (const auto &c : m.caches)
      if (c.blockSize < 1 || c.bytesPerUnit == 0) std::abort();
    for (const auto &s : m.stages)
      if (s.symbol.compare(0, 7, "photon_") != 0) std::abort();
  }
  return 0;
}
