//===- AttentionLowering.cpp - the registered attention kernel provider ----===//

#include "photon/Conversion/AttentionLowering.h"

#include <atomic>

namespace mlir {
namespace photon {

AttentionKernelProvider::~AttentionKernelProvider() = default;

static std::atomic<const AttentionKernelProvider *> registeredProvider{nullptr};

void setAttentionKernelProvider(const AttentionKernelProvider *provider) {
  registeredProvider.store(provider);
}

const AttentionKernelProvider *getAttentionKernelProvider() { return registeredProvider.load(); }

} // namespace photon
} // namespace mlir
