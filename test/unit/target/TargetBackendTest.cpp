//===- TargetBackendTest.cpp - a minimal out-of-tree TargetBackend --------===//
//
// docs/adding-a-target.md's example: "cpu-copy" reuses the CPU target's public pieces
// (the lowering pipeline, host code generation, the system linker) under another name,
// is registered through photon/Target/TargetBackend.h, and compiles a fixture through
// compileModel, the driver photon-compile runs. The artifact must load in the runtime.
//
//===----------------------------------------------------------------------===//

#include "photon/Target/CPU.h"
#include "photon/Target/Driver.h"
#include "photon/Target/TargetBackend.h"
#include "photon/Codegen/CPU/Passes.h"

#include "photon/photon.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::photon;

namespace {

class CpuCopyBackend final : public TargetBackend {
public:
  llvm::StringRef getName() const override { return "cpu-copy"; }
  llvm::StringRef getDescription() const override {
    return "the CPU code generation under another name (test/unit/target)";
  }
  bool supportsForwardOnly() const override { return true; }

  LogicalResult lowerToLLVM(ModuleOp module, const TargetSpec &, const TargetOptions &o,
                            ProgressFn progress, std::string &error) const override {
    PassManager pm(module.getContext());
    MatmulKernelOptions kernels;
    kernels.lanes = f32VectorLanes(o.cpu, o.features);
    buildPhotonLowerToLLVMPipeline(pm, /*openmp=*/false, o.vectorMatmul, kernels);
    progress("cpu-copy: lowering to the LLVM dialect");
    if (failed(pm.run(module))) {
      error = "cpu-copy: lowering failed";
      return failure();
    }
    return success();
  }
  // emitObject: the default (host code of lib/Target/CPU.cpp).
  bool link(const std::string &objPath, const std::string &soPath, const TargetSpec &,
            const TargetOptions &, std::string &error) const override {
    return linkSharedLibrary(objPath, soPath, /*openmp=*/false, error);
  }
  llvm::json::Object manifestTarget(const TargetSpec &, const TargetOptions &,
                                    const CodegenOptions &cg) const override {
    llvm::json::Array feats;
    for (auto &f : manifestFeatures(cg.features)) feats.push_back(f);
    // "kind" is what the runtime loads: host code, so "cpu". "backend" is informative.
    return llvm::json::Object{{"kind", "cpu"},         {"backend", "cpu-copy"},
                              {"triple", cg.triple},   {"cpu", cg.cpu},
                              {"features", std::move(feats)}, {"threads", "none"}};
  }
};

void registerCpuCopy() {
  registerBuiltinTargetBackends();
  if (!lookupTargetBackend("cpu-copy")) registerTargetBackend(std::make_unique<CpuCopyBackend>());
}

TEST(TargetBackend, RegistryListsBuiltinsAndTheNewBackend) {
  registerCpuCopy();
  std::vector<std::string> names;
  for (const TargetBackend *b : getTargetBackends()) names.push_back(b->getName().str());
  ASSERT_GE(names.size(), 3u);
  EXPECT_EQ(names[0], "cpu");
  EXPECT_EQ(names[1], "cuda");
  EXPECT_NE(std::find(names.begin(), names.end(), "cpu-copy"), names.end());
  EXPECT_EQ(findTargetBackend("cpu-copy")->getName(), "cpu-copy");
  EXPECT_EQ(findTargetBackend("cpu")->getName(), "cpu");
  EXPECT_EQ(findTargetBackend("cuda:sm_80")->getName(), "cuda");
  EXPECT_EQ(findTargetBackend("tpu"), nullptr);

  std::string listing;
  llvm::raw_string_ostream os(listing);
  printTargetBackends(os);
  EXPECT_NE(listing.find("cpu-copy"), std::string::npos) << listing;

  TargetSpec spec;
  std::string err;
  EXPECT_FALSE(lookupTargetBackend("cpu-copy")->parseTarget("cpu-copy:x", spec, err));
  EXPECT_TRUE(lookupTargetBackend("cpu-copy")->parseTarget("cpu-copy", spec, err)) << err;
}

TEST(TargetBackend, CapabilityChecksRefuseOpenMP) {
  registerCpuCopy();
  CompileOptions o;
  o.input = PHOTON_SOURCE_DIR "/test/fixtures/vanilla/model.onnx";
  o.target = "cpu-copy";
  o.targetOptions.openmp = true;
  o.quiet = true;
  EXPECT_EQ(compileModel(o), 1); // "--openmp is a CPU option; ... --target cpu-copy"
}

TEST(TargetBackend, CompilesAFixtureThatLoads) {
  registerCpuCopy();
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("photon-target-test", dir));
  llvm::SmallString<128> out(dir);
  llvm::sys::path::append(out, "vanilla.photon");

  CompileOptions o;
  o.input = PHOTON_SOURCE_DIR "/test/fixtures/vanilla/model.onnx";
  o.outputDir = std::string(out);
  o.target = "cpu-copy";
  o.quiet = true;
  ASSERT_EQ(compileModel(o), 0);

  llvm::SmallString<128> man(out);
  llvm::sys::path::append(man, "manifest.json");
  auto buf = llvm::MemoryBuffer::getFile(man);
  ASSERT_TRUE(bool(buf));
  auto json = llvm::json::parse((*buf)->getBuffer());
  ASSERT_TRUE(bool(json)) << llvm::toString(json.takeError());
  const llvm::json::Object *target = json->getAsObject()->getObject("target");
  ASSERT_NE(target, nullptr);
  EXPECT_EQ(target->getString("kind"), std::optional<llvm::StringRef>("cpu"));
  EXPECT_EQ(target->getString("backend"), std::optional<llvm::StringRef>("cpu-copy"));

  photon_model *model = nullptr;
  ASSERT_EQ(photon_model_load(out.c_str(), nullptr, &model), PHOTON_OK) << photon_last_error();
  photon_model_info info{};
  info.struct_size = sizeof(info);
  ASSERT_EQ(photon_model_get_info(model, &info), PHOTON_OK) << photon_last_error();
  EXPECT_EQ(info.family, PHOTON_FAMILY_VANILLA);
  EXPECT_GT(info.vocab, 0);
  photon_model_free(model);
  llvm::sys::fs::remove_directories(dir);
}

} // namespace
