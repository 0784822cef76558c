// libFuzzer target: a weights blob -> weights::parseIndex (the header-only reader that the
// runtime, the compiler and the importer share). Oracle: every tensor it returns lies inside
// the blob and has the byte size its shape and dtype give.
#include "photon/weights_format.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::vector<photon::weights::TensorInfo> ts;
  std::string err;
  if (!photon::weights::parseIndex(data, size, ts, err)) {
    if (err.empty()) std::abort();
    return 0;
  }
  for (const auto &t : ts) {
    if (t.offset > size || t.bytes > size - t.offset) std::abort();
    uint64_t n = 1;
    for (int64_t d : t.shape) {
      if (d < 0) std::abort();
      n *= static_cast<uint64_t>(d);
    }
    if (n * photon::weights::dtypeBytes(t.dtype) != t.bytes) std::abort();
    // Touch the first and last byte (ASan reports a read outside the input).
    if (t.bytes) {
      volatile uint8_t a = data[t.offset], b = data[t.offset + t.bytes - 1];
      (void)a;
      (void)b;
    }
  }
  return 0;
}
