//===- TargetBackend.cpp - the registry of photon-compile's targets -------===//

#include "photon/Target/TargetBackend.h"

#include "llvm/ADT/StringExtras.h"

#include <mutex>

using namespace mlir;
using namespace mlir::photon;

TargetBackend::~TargetBackend() = default;

bool TargetBackend::matches(llvm::StringRef target) const {
  return target == getName() || target.starts_with((getName() + ":").str());
}

bool TargetBackend::parseTarget(llvm::StringRef target, TargetSpec &spec,
                                std::string &error) const {
  if (target != getName()) {
    error = ("--target " + getName() + " takes no architectures, got '" + target + "'").str();
    return false;
  }
  spec.text = target.str();
  spec.archs.clear();
  return true;
}

bool TargetBackend::emitObject(ModuleOp module, const std::vector<StageInfo> &stages,
                               const TargetSpec &, const CodegenOptions &codegen,
                               const std::string &objPath, const std::string &llvmIROut,
                               std::string &error) const {
  return photon::emitObject(module, stages, codegen, objPath, llvmIROut, error);
}

namespace {
struct Registry {
  std::mutex mu;
  std::vector<std::unique_ptr<TargetBackend>> backends;
};
Registry &registry() {
  static Registry r;
  return r;
}
} // namespace

void mlir::photon::registerTargetBackend(std::unique_ptr<TargetBackend> backend) {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (auto &b : r.backends)
    if (b->getName() == backend->getName()) {
      b = std::move(backend);
      return;
    }
  r.backends.push_back(std::move(backend));
}

const TargetBackend *mlir::photon::lookupTargetBackend(llvm::StringRef name) {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (auto &b : r.backends)
    if (b->getName() == name) return b.get();
  return nullptr;
}

const TargetBackend *mlir::photon::findTargetBackend(llvm::StringRef target) {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  // An exact name first (a backend "cpu-copy" is not "cpu:" anything, but be explicit).
  for (auto &b : r.backends)
    if (b->getName() == target) return b.get();
  for (auto &b : r.backends)
    if (b->matches(target)) return b.get();
  return nullptr;
}

std::vector<const TargetBackend *> mlir::photon::getTargetBackends() {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<const TargetBackend *> out;
  for (auto &b : r.backends) out.push_back(b.get());
  return out;
}
