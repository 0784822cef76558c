// The runtime's device-backend interface (runtime/src/device.h) and its host-side logic
// (device_plan.h), without a GPU: the upload plan and its execution, the device cache plan
// and budget accounting, the choice of backend from the manifest and the driver probe, the
// host backend (zero-copy) and the staged host backend, which behaves like a discrete device
// (own memory, explicit copies) so that the engine's device path runs here end to end.
#include "artifact.h"
#include "cache.h"
#include "cuda/cuda_device.h"
#include "device.h"
#include "device_plan.h"
#include "device_stage.h"
#include "engine.h"
#include "test_artifact.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <numeric>
#include <random>

using namespace photon::rt;

namespace {

constexpr uint64_t MiB = 1ull << 20;

bool driverInstalled() {
  void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h) dlclose(h);
  return h != nullptr;
}

// ------------------------------------------------------------------ upload plan

TEST(DeviceUploadPlan, SmallCopiesAreDirectLargeOnesStagedRoundRobin) {
  EXPECT_TRUE(planUpload(0).chunks.empty());
  UploadPlan small = planUpload(MiB);
  ASSERT_EQ(small.chunks.size(), 1u);
  EXPECT_FALSE(small.staged());
  EXPECT_EQ(small.chunks[0].slot, -1);
  EXPECT_EQ(small.chunks[0].bytes, MiB);

  // 40 MiB + 3 bytes through 2 slots of 16 MiB: 16, 16, 8 MiB + 3, slots 0 1 0, the third
  // waits for the first copy before it overwrites slot 0.
  UploadPlan p = planUpload(40 * MiB + 3, 16 * MiB, 2);
  ASSERT_TRUE(p.staged());
  ASSERT_EQ(p.chunks.size(), 3u);
  EXPECT_EQ(p.slots, 2);
  EXPECT_EQ(p.chunks[0].slot, 0);
  EXPECT_EQ(p.chunks[1].slot, 1);
  EXPECT_EQ(p.chunks[2].slot, 0);
  EXPECT_FALSE(p.chunks[0].waitForSlot);
  EXPECT_FALSE(p.chunks[1].waitForSlot);
  EXPECT_TRUE(p.chunks[2].waitForSlot);
  EXPECT_EQ(p.chunks[2].bytes, 8 * MiB + 3);
  uint64_t next = 0;
  for (const auto &c : p.chunks) {
    EXPECT_EQ(c.offset, next);
    EXPECT_LE(c.bytes, p.chunkBytes);
    next += c.bytes;
  }
  EXPECT_EQ(next, p.totalBytes);

  // One chunk's worth uses one slot; more slots than chunks are not allocated.
  EXPECT_EQ(planUpload(3 * MiB, 16 * MiB, 4).slots, 1);
}

// Records the steps of an upload and really copies the bytes (host memory as the "device").
struct RecordingSteps final : UploadSteps {
  std::vector<uint8_t> device;
  std::vector<std::vector<uint8_t>> slots;
  std::vector<std::string> log;
  int failAt = -1;
  explicit RecordingSteps(size_t bytes, int nslots, size_t slotBytes)
      : device(bytes, 0), slots(nslots, std::vector<uint8_t>(slotBytes)) {}
  Status direct(const uint8_t *src, uint64_t off, uint64_t n) override {
    log.push_back("direct " + std::to_string(off));
    std::memcpy(device.data() + off, src, n);
    return Status::ok();
  }
  Status waitSlot(int slot) override {
    log.push_back("wait " + std::to_string(slot));
    return Status::ok();
  }
  Status stageAndCopy(int slot, const uint8_t *src, uint64_t off, uint64_t n) override {
    if (static_cast<int>(log.size()) == failAt) return error(PHOTON_ERR_NO_DEVICE, "copy failed");
    log.push_back("copy " + std::to_string(slot) + " " + std::to_string(off));
    std::memcpy(slots[slot].data(), src, n);
    std::memcpy(device.data() + off, slots[slot].data(), n);
    return Status::ok();
  }
  Status finish() override {
    log.push_back("finish");
    return Status::ok();
  }
};

TEST(DeviceUploadPlan, RunWaitsBeforeReusingASlotAndReportsProgress) {
  const uint64_t chunk = 1000, total = 4500;
  std::vector<uint8_t> src(total);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 7 + 1);
  UploadPlan p = planUpload(total, chunk, 2, /*directLimit=*/100);
  RecordingSteps steps(total, 2, chunk);
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  ASSERT_TRUE(runUpload(p, src.data(), steps, [&](uint64_t d, uint64_t t) {
                progress.push_back({d, t});
              }).isOk());
  EXPECT_EQ(steps.device, src);
  std::vector<std::string> want = {"copy 0 0",    "copy 1 1000", "wait 0", "copy 0 2000",
                                   "wait 1",      "copy 1 3000", "wait 0", "copy 0 4000",
                                   "finish"};
  EXPECT_EQ(steps.log, want);
  ASSERT_EQ(progress.size(), 5u);
  EXPECT_EQ(progress[0].first, 1000u);
  EXPECT_EQ(progress[3].first, 4000u);
  EXPECT_EQ(progress.back(), std::make_pair(total, total)); // once, after finish
  for (size_t i = 1; i < progress.size(); ++i) EXPECT_GT(progress[i].first, progress[i - 1].first);
}

TEST(DeviceUploadPlan, AFailedCopyStopsTheUploadWithItsStatus) {
  std::vector<uint8_t> src(5000, 3);
  UploadPlan p = planUpload(src.size(), 1000, 2, 100);
  RecordingSteps steps(src.size(), 2, 1000);
  steps.failAt = 3; // after copy, copy, wait
  bool finished = false;
  Status st = runUpload(p, src.data(), steps, [&](uint64_t d, uint64_t t) { finished |= d == t; });
  EXPECT_EQ(st.code(), PHOTON_ERR_NO_DEVICE);
  EXPECT_EQ(steps.log.back(), "wait 0");
  EXPECT_FALSE(finished);
}

// ------------------------------------------------------------------ device cache plan

std::vector<CacheLevelSpec> twoLevels() {
  CacheLevelSpec a, b;
  a.level = 1; a.layers = 2; a.kvHeads = 2; a.headDim = 8; a.blockSize = 16; a.tokensPerUnit = 1;
  b = a;
  b.level = 2; b.tokensPerUnit = 4; // one unit per 4 tokens: a quarter of level 1's bytes
  return {a, b};
}

TEST(DeviceCachePlan, BudgetSplitByBytesPerTokenAndNeverExceeded) {
  auto lv = twoLevels();
  const uint64_t bb = lv[0].blockBytes(); // K and V x 2 layers x 2 heads x 8 x 4 B x 16 = 4 KiB
  ASSERT_EQ(bb, 4096u);
  const uint64_t budget = 100 * bb;
  auto blocks = planDeviceCachePools(lv, budget);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0], 80); // 4/5 of the budget
  EXPECT_EQ(blocks[1], 20);
  EXPECT_LE((blocks[0] + blocks[1]) * bb, budget);
  // A budget under one block still gives every level one block.
  auto tiny = planDeviceCachePools(lv, 100);
  EXPECT_EQ(tiny[0], 1);
  EXPECT_EQ(tiny[1], 1);
  // Odd budgets round down per level.
  auto odd = planDeviceCachePools(lv, 37 * bb + 5);
  EXPECT_LE(static_cast<uint64_t>(odd[0] + odd[1]) * bb, 37 * bb + 5);
}

TEST(DeviceCachePlan, DefaultDeviceBudgetLeavesHeadroom) {
  EXPECT_EQ(defaultDeviceCacheBudget(0), 0u);
  EXPECT_EQ(defaultDeviceCacheBudget(kDeviceHeadroomBytes), 0u);
  const uint64_t free80 = 80ull << 30;
  EXPECT_EQ(defaultDeviceCacheBudget(free80), free80 / 10 * 9 - kDeviceHeadroomBytes);
}

TEST(DeviceCachePlan, CacheManagerOnADevicePagesUnderTheSplitBudget) {
  auto dev = stagedHostBackend();
  auto lv = twoLevels();
  const uint64_t bb = lv[0].blockBytes();
  CacheManager cm;
  ASSERT_TRUE(cm.init(lv, 100 * bb, dev).isOk());
  EXPECT_TRUE(cm.onDevice());
  EXPECT_EQ(cm.poolBlocks(0), 80);
  EXPECT_EQ(cm.poolBlocks(1), 20);
  // Real memory: the pools together are the budget, not budget x levels as on the host.
  EXPECT_EQ(cm.poolBytes(), 100 * bb);
  EXPECT_EQ(dev->allocatedBytes(), 100 * bb);
  EXPECT_TRUE(dev->owns(DevicePtr::fromHost(cm.pool(0)), 80 * bb));

  // 60 blocks at level 1 and 30 at level 2 fit the total (90 of 100) but not level 2's pool.
  SeqCache s;
  bool everFits = true;
  Status st = cm.reserve(s, {60 * 16, 30 * 16}, 960, everFits);
  EXPECT_EQ(st.code(), PHOTON_ERR_OUT_OF_BUDGET);
  EXPECT_FALSE(everFits);
  EXPECT_NE(st.message().find("level-2 pool has 20 of 20 blocks left"), std::string::npos)
      << st.message();
  EXPECT_EQ(cm.reservedBytes(), 0u);

  // Two sequences of 10 + 10 blocks; a third of 10 + 10 must wait (level 2 full), and fits
  // once one finishes.
  SeqCache a, b, c;
  ASSERT_TRUE(cm.reserve(a, {160, 160}, 160, everFits).isOk());
  ASSERT_TRUE(cm.reserve(b, {160, 160}, 160, everFits).isOk());
  st = cm.reserve(c, {160, 160}, 160, everFits);
  EXPECT_EQ(st.code(), PHOTON_ERR_OUT_OF_BUDGET);
  EXPECT_TRUE(everFits) << st.message();
  EXPECT_NE(st.message().find("waits"), std::string::npos) << st.message();

  // Pages: blocks are written through the backend, copied on the device, read back.
  ASSERT_TRUE(cm.ensure(a, 0, 20).isOk()); // 2 blocks
  std::vector<float> block(bb / 4);
  std::iota(block.begin(), block.end(), 1.0f);
  const DevicePtr pool0 = DevicePtr::fromHost(cm.pool(0));
  for (int k = 0; k < 2; ++k)
    ASSERT_TRUE(dev->upload(pool0 + static_cast<uint64_t>(a.tables[0][k]) * bb, block.data(), bb,
                            nullptr).isOk());
  cm.setLength(a, 0, 20);
  SeqCache d;
  cm.release(b);
  ASSERT_TRUE(cm.reserve(d, {160, 160}, 160, everFits).isOk());
  ASSERT_TRUE(cm.copyLevel(a, d, 0).isOk());
  EXPECT_EQ(d.lens[0], 20);
  ASSERT_EQ(d.tables[0].size(), 2u);
  for (int k = 0; k < 2; ++k) {
    EXPECT_NE(d.tables[0][k], a.tables[0][k]);
    std::vector<float> back(bb / 4, 0.0f);
    ASSERT_TRUE(dev->download(back.data(), pool0 + static_cast<uint64_t>(d.tables[0][k]) * bb, bb,
                              nullptr).isOk());
    EXPECT_EQ(back, block);
  }
  std::string why;
  EXPECT_TRUE(cm.checkInvariants(why)) << why;
  cm.release(a);
  cm.release(d);
  EXPECT_EQ(cm.reservedBytes(), 0u);
}

TEST(DeviceCachePlan, HostPoolsStillMapTheWholeBudgetPerLevel) {
  auto lv = twoLevels();
  const uint64_t bb = lv[0].blockBytes();
  CacheManager cm;
  ASSERT_TRUE(cm.init(lv, 100 * bb).isOk());
  EXPECT_FALSE(cm.onDevice());
  EXPECT_EQ(cm.poolBlocks(0), 100);
  EXPECT_EQ(cm.poolBlocks(1), 100);
  SeqCache s;
  bool everFits = false;
  // 60 + 30 blocks: fits the host's shared budget (no per-level pools there).
  EXPECT_TRUE(cm.reserve(s, {60 * 16, 30 * 16}, 960, everFits).isOk());
  cm.release(s);
}

// ------------------------------------------------------------------ backends

TEST(DeviceHostBackend, ZeroCopyWeightsAndRoundTrips) {
  auto host = hostBackend();
  EXPECT_TRUE(host->hostAddressable());
  EXPECT_EQ(host->name(), "host");
  std::vector<uint8_t> blob(3 * MiB + 11);
  for (size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<uint8_t>(i ^ (i >> 8));
  const uint64_t before = host->allocatedBytes();
  DevicePtr w;
  uint64_t last = 0;
  ASSERT_TRUE(host->placeWeights(blob.data(), blob.size(), [&](uint64_t d, uint64_t) { last = d; },
                                 w).isOk());
  EXPECT_EQ(w.raw(), blob.data()); // in place
  EXPECT_EQ(last, blob.size());
  EXPECT_EQ(host->allocatedBytes(), before);
  EXPECT_FALSE(host->owns(w, 1)); // the caller's mapping, not an allocation

  DevicePtr p;
  ASSERT_TRUE(host->allocate(blob.size(), "test buffer", p).isOk());
  EXPECT_EQ(host->allocatedBytes(), before + blob.size());
  EXPECT_TRUE(host->owns(p + 5, 100));
  EXPECT_FALSE(host->owns(p + blob.size(), 1));
  int calls = 0;
  ASSERT_TRUE(host->upload(p, blob.data(), blob.size(), nullptr,
                           [&](uint64_t, uint64_t) { ++calls; }).isOk());
  EXPECT_EQ(calls, 1); // 3 MiB: one staged chunk of 16 MiB, reported once
  std::vector<uint8_t> back(blob.size());
  ASSERT_TRUE(host->download(back.data(), p, back.size(), nullptr).isOk());
  EXPECT_EQ(back, blob);
  ASSERT_TRUE(host->memset(p, 0xAB, 64, nullptr).isOk());
  ASSERT_TRUE(host->copy(p + 64, p, 64, nullptr).isOk());
  ASSERT_TRUE(host->download(back.data(), p + 64, 64, nullptr).isOk());
  for (int i = 0; i < 64; ++i) EXPECT_EQ(back[i], 0xAB);
  DeviceMemoryInfo mi;
  ASSERT_TRUE(host->memoryInfo(mi).isOk());
  EXPECT_GT(mi.totalBytes, 0u);
  EXPECT_LE(mi.freeBytes, mi.totalBytes);
  host->free(p);
  EXPECT_EQ(host->allocatedBytes(), before);
  EXPECT_EQ(host->allocate(0, "nothing", p).code(), PHOTON_ERR_INVALID_ARGUMENT);
}

TEST(DeviceHostBackend, StagedBackendCopiesTheWeightsIntoOneAllocation) {
  auto dev = stagedHostBackend();
  EXPECT_FALSE(dev->hostAddressable());
  std::vector<uint8_t> blob(20 * MiB + 1, 7);
  blob[20 * MiB] = 9;
  std::vector<uint64_t> seen;
  DevicePtr w;
  ASSERT_TRUE(dev->placeWeights(blob.data(), blob.size(),
                                [&](uint64_t d, uint64_t) { seen.push_back(d); }, w).isOk());
  EXPECT_NE(w.raw(), blob.data());
  EXPECT_EQ(dev->allocatedBytes(), blob.size());
  EXPECT_TRUE(dev->owns(w, blob.size()));
  ASSERT_EQ(seen.size(), 2u); // 16 MiB, then everything after finish
  EXPECT_EQ(seen[0], 16 * MiB);
  EXPECT_EQ(seen[1], blob.size());
  uint8_t lastByte = 0;
  ASSERT_TRUE(dev->download(&lastByte, w + 20 * MiB, 1, nullptr).isOk());
  EXPECT_EQ(lastByte, 9);
  dev->free(w);
  EXPECT_EQ(dev->allocatedBytes(), 0u);
}

// ------------------------------------------------------------------ choice of backend

TEST(DeviceChoice, CpuArtifactsNeverProbeTheDriver) {
  bool probed = false;
  DeviceKind k = DeviceKind::Cuda;
  ASSERT_TRUE(chooseBackend("cpu", {}, [&] { probed = true; return DriverProbe{}; }, "m.json", k)
                  .isOk());
  EXPECT_EQ(k, DeviceKind::Host);
  EXPECT_FALSE(probed);
  Status st = chooseBackend("tpu", {}, {}, "m.json", k);
  EXPECT_EQ(st.code(), PHOTON_ERR_TARGET);
  EXPECT_NE(st.message().find("unknown target kind \"tpu\""), std::string::npos);
}

TEST(DeviceChoice, CudaArtifactsNeedAUsableDriverAndAMatchingArchitecture) {
  DeviceKind k = DeviceKind::Host;
  Status st = chooseBackend("cuda", {}, {}, "m.json", k);
  EXPECT_EQ(st.code(), PHOTON_ERR_FORMAT);
  EXPECT_NE(st.message().find("--target cuda:sm_XY"), std::string::npos);

  DriverProbe none;
  none.reason = "no CUDA driver (libcuda.so.1 not found: x)";
  st = chooseBackend("cuda", {"sm_80", "sm_90"}, [&] { return none; }, "m.json", k);
  EXPECT_EQ(st.code(), PHOTON_ERR_NO_DEVICE);
  EXPECT_NE(st.message().find("m.json: this artifact was compiled for CUDA (sm_80,sm_90) and "
                              "cannot run here: no CUDA driver (libcuda.so.1 not found: x)"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("photon-compile --target cpu"), std::string::npos);

  DriverProbe other;
  other.usable = true;
  other.archReason = "device 0 is sm_86; recompile with photon-compile --target cuda:sm_86";
  st = chooseBackend("cuda", {"sm_80"}, [&] { return other; }, "m.json", k);
  EXPECT_EQ(st.code(), PHOTON_ERR_NO_DEVICE);
  EXPECT_NE(st.message().find("--target cuda:sm_86"), std::string::npos) << st.message();

  DriverProbe good;
  good.usable = good.archMatches = true;
  ASSERT_TRUE(chooseBackend("cuda", {"sm_80"}, [&] { return good; }, "m.json", k).isOk());
  EXPECT_EQ(k, DeviceKind::Cuda);
}

TEST(DeviceCuda, WithoutADriverTheProbeAndTheBackendSayWhy) {
  if (driverInstalled()) GTEST_SKIP() << "a CUDA driver is installed here";
  DriverProbe p = cuda::probeDriver(0, {"sm_80"});
  EXPECT_FALSE(p.usable);
  EXPECT_NE(p.reason.find("no CUDA driver"), std::string::npos) << p.reason;
  std::shared_ptr<DeviceBackend> b;
  Status st = cuda::createCudaBackend(0, b);
  EXPECT_EQ(st.code(), PHOTON_ERR_NO_DEVICE);
  EXPECT_FALSE(b);
}

// ------------------------------------------------------------------ the engine's device path

std::string writeTestArtifact(const std::string &family, const std::string &tag) {
  static int counter = 0;
  std::string dir = ::testing::TempDir() + "photon-device-" + family + "-" + tag + "-" +
                    std::to_string(getpid()) + "-" + std::to_string(counter++);
  photon_test::ArtifactOptions o;
  o.family = family;
  std::string err;
  EXPECT_TRUE(photon_test::writeArtifact(dir, o, err)) << err;
  return dir;
}

std::map<uint64_t, std::vector<int32_t>> generate(const Model &m, photon_mode mode,
                                                  const std::vector<std::vector<int32_t>> &prompts,
                                                  std::vector<uint64_t> &ids) {
  EngineOptions eo;
  eo.mode = mode;
  eo.memoryBudget = 8 * MiB;
  std::unique_ptr<Engine> e;
  Status st = Engine::create(m, eo, e);
  EXPECT_TRUE(st.isOk()) << st.message();
  std::map<uint64_t, std::vector<int32_t>> out;
  if (!st.isOk()) return out;
  SamplingParams p;
  p.maxTokens = 19;
  ids.clear();
  for (const auto &pr : prompts) {
    uint64_t id = 0;
    EXPECT_TRUE(e->submit(pr, p, id).isOk());
    ids.push_back(id);
  }
  st = e->run([&](uint64_t id, const int32_t *t, size_t n, photon_finish) {
    out[id].insert(out[id].end(), t, t + n);
    return true;
  });
  EXPECT_TRUE(st.isOk()) << st.message();
  EXPECT_EQ(e->cache().inUseBytes(), 0u);
  return out;
}

TEST(DeviceEngine, StagedBackendGeneratesTheHostBackendsTokens) {
  std::mt19937 rng(3);
  std::vector<std::vector<int32_t>> prompts;
  for (size_t len : {1, 7, 16, 33}) {
    std::vector<int32_t> pr(len);
    for (auto &t : pr) t = static_cast<int32_t>(rng() % 256);
    prompts.push_back(pr);
  }
  for (const char *fam : {"photon", "block", "vanilla"}) {
    for (photon_mode mode : {PHOTON_MODE_HIERGEN, PHOTON_MODE_RECGEN}) {
      if (mode == PHOTON_MODE_RECGEN && std::string(fam) != "photon") continue;
      const std::string dir = writeTestArtifact(fam, "host");
      std::unique_ptr<Model> host, staged;
      ASSERT_TRUE(Model::load(dir, {}, host).isOk());
      LoadOptions lo;
      lo.backend = stagedHostBackend();
      uint64_t uploaded = 0;
      lo.uploadProgress = [&](uint64_t d, uint64_t) { uploaded = d; };
      Status st = Model::load(dir, lo, staged);
      ASSERT_TRUE(st.isOk()) << st.message();
      EXPECT_EQ(uploaded, staged->weightsSize());
      EXPECT_NE(staged->weights(), staged->hostWeights()); // the stages read the copy
      EXPECT_EQ(host->weights(), host->hostWeights());     // zero-copy

      std::vector<uint64_t> idsHost, idsDev;
      auto a = generate(*host, mode, prompts, idsHost);
      auto b = generate(*staged, mode, prompts, idsDev);
      for (size_t i = 0; i < prompts.size(); ++i) {
        EXPECT_EQ(a[idsHost[i]].size(), 19u) << fam;
        EXPECT_EQ(a[idsHost[i]], b[idsDev[i]]) << fam << " mode " << mode << " prompt " << i;
      }
      // forward (teacher-forced logits) through the device path equals the host's.
      const int tps = host->manifest().tokensPerStep();
      std::vector<int32_t> toks(static_cast<size_t>(4 * tps));
      for (auto &t : toks) t = static_cast<int32_t>(rng() % 256);
      std::vector<float> la(toks.size() * 256), lb(toks.size() * 256);
      if (host->stage("forward")) {
        ASSERT_TRUE(forwardLogits(*host, toks.data(), 1, static_cast<int32_t>(toks.size()),
                                  la.data()).isOk());
        ASSERT_TRUE(forwardLogits(*staged, toks.data(), 1, static_cast<int32_t>(toks.size()),
                                  lb.data()).isOk());
        EXPECT_EQ(la, lb) << fam;
      }
    }
  }
}

TEST(DeviceEngine, StageRunnerMovesOnlyTheEnginesBuffers) {
  const std::string dir = writeTestArtifact("vanilla", "runner");
  LoadOptions lo;
  lo.backend = stagedHostBackend();
  std::unique_ptr<Model> m;
  ASSERT_TRUE(Model::load(dir, lo, m).isOk());
  StageRunner r(*m);
  ASSERT_TRUE(r.init().isOk());
  const int tps = m->manifest().tokensPerStep();
  std::vector<int32_t> toks(static_cast<size_t>(2 * tps), 5);
  std::vector<float> logits(toks.size() * 256, -1.0f);
  StageArgs a(3);
  a.add(m->weights(), {static_cast<int64_t>(m->weightsSize())});
  a.add(toks.data(), {1, static_cast<int64_t>(toks.size())});
  a.add(logits.data(), {1, static_cast<int64_t>(toks.size()), 256});
  StageFn fwd = m->stage("forward");
  ASSERT_NE(fwd, nullptr);
  ASSERT_TRUE(r.run(fwd, a).isOk());
  // Tokens in, logits out; the weights stayed on the device.
  EXPECT_EQ(r.bytesIn(), toks.size() * 4);
  EXPECT_EQ(r.bytesOut(), logits.size() * 4);
  EXPECT_GE(r.scratchBytes(), (toks.size() + logits.size()) * 4);
  EXPECT_NE(logits[0], -1.0f);
  // A second call of the same shape reuses the stage buffers.
  const uint64_t held = r.scratchBytes();
  StageArgs b(3);
  b.add(m->weights(), {static_cast<int64_t>(m->weightsSize())});
  b.add(toks.data(), {1, static_cast<int64_t>(toks.size())});
  b.add(logits.data(), {1, static_cast<int64_t>(toks.size()), 256});
  ASSERT_TRUE(r.run(fwd, b).isOk());
  EXPECT_EQ(r.scratchBytes(), held);
  // Weights that are not device memory are refused, not read from the host.
  StageArgs c(3);
  c.add(m->hostWeights(), {static_cast<int64_t>(m->weightsSize())});
  c.add(toks.data(), {1, static_cast<int64_t>(toks.size())});
  c.add(logits.data(), {1, static_cast<int64_t>(toks.size()), 256});
  Status st = r.run(fwd, c);
  EXPECT_EQ(st.code(), PHOTON_ERR_INTERNAL);
  EXPECT_NE(st.message().find("not in device memory"), std::string::npos) << st.message();
}

TEST(DeviceCApi, ModelInfoNamesTheDeviceAndTheUploadReportsProgress) {
  const std::string dir = writeTestArtifact("photon", "capi");
  struct Seen {
    std::vector<std::pair<uint64_t, uint64_t>> calls;
  } seen;
  photon_load_options o;
  photon_load_options_defaults(&o);
  o.upload_progress = [](uint64_t d, uint64_t t, void *u) {
    static_cast<Seen *>(u)->calls.push_back({d, t});
  };
  o.upload_user = &seen;
  for (const char *backend : {"host", "host-staged"}) {
    setenv("PHOTON_DEVICE_BACKEND", backend, 1);
    seen.calls.clear();
    photon_model *m = nullptr;
    ASSERT_EQ(photon_model_load(dir.c_str(), &o, &m), PHOTON_OK) << photon_last_error();
    photon_model_info info;
    info.struct_size = sizeof info;
    ASSERT_EQ(photon_model_get_info(m, &info), PHOTON_OK);
    EXPECT_STREQ(info.device, backend);
    EXPECT_EQ(info.device_memory, std::string(backend) == "host" ? 0 : 1);
    if (info.device_memory) EXPECT_GT(info.device_total_bytes, 0u);
    ASSERT_FALSE(seen.calls.empty()) << backend;
    EXPECT_EQ(seen.calls.back(), std::make_pair(info.weights_bytes, info.weights_bytes));
    photon_model_free(m);
  }
  setenv("PHOTON_DEVICE_BACKEND", "gpu-please", 1);
  photon_model *m = nullptr;
  EXPECT_EQ(photon_model_load(dir.c_str(), &o, &m), PHOTON_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(photon_last_error()).find("host, host-staged"), std::string::npos);
  unsetenv("PHOTON_DEVICE_BACKEND");
}

TEST(DeviceEngine, CudaArtifactWithoutADriverIsRefusedWithTheDriversReason) {
  if (driverInstalled()) GTEST_SKIP() << "a CUDA driver is installed here";
  const std::string dir = writeTestArtifact("vanilla", "cuda");
  std::string mf = photon_test::readAll(dir + "/manifest.json");
  const std::string from = "\"kind\": \"cpu\"";
  auto pos = mf.find(from);
  ASSERT_NE(pos, std::string::npos);
  mf.replace(pos, from.size(), "\"kind\": \"cuda\", \"archs\": [\"sm_80\", \"sm_90\"]");
  std::ofstream(dir + "/manifest.json", std::ios::binary | std::ios::trunc) << mf;
  std::unique_ptr<Model> m;
  Status st = Model::load(dir, {}, m);
  EXPECT_EQ(st.code(), PHOTON_ERR_NO_DEVICE);
  EXPECT_NE(st.message().find("compiled for CUDA (sm_80,sm_90) and cannot run here: no CUDA "
                              "driver (libcuda.so.1 not found"),
            std::string::npos)
      << st.message();
  EXPECT_FALSE(m);
  // The host backend refuses it too when forced.
  LoadOptions lo;
  lo.backend = hostBackend();
  st = Model::load(dir, lo, m);
  EXPECT_EQ(st.code(), PHOTON_ERR_TARGET);
  EXPECT_NE(st.message().find("target kind \"cuda\""), std::string::npos) << st.message();
}

} // namespace
