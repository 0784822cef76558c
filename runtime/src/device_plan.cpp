#include "device_plan.h"

#include <algorithm>

namespace photon::rt {

UploadPlan planUpload(uint64_t total, uint64_t chunkBytes, int slots, uint64_t directLimit) {
  UploadPlan plan;
  plan.totalBytes = total;
  if (total == 0) return plan;
  if (total <= directLimit || chunkBytes == 0 || slots < 1) {
    plan.chunks.push_back({0, total, -1, false});
    return plan;
  }
  plan.chunkBytes = chunkBytes;
  const uint64_t n = (total + chunkBytes - 1) / chunkBytes;
  plan.slots = static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(slots), n));
  plan.chunks.reserve(static_cast<size_t>(n));
  for (uint64_t i = 0; i < n; ++i) {
    UploadChunk c;
    c.offset = i * chunkBytes;
    c.bytes = std::min(chunkBytes, total - c.offset);
    c.slot = static_cast<int>(i % static_cast<uint64_t>(plan.slots));
    c.waitForSlot = i >= static_cast<uint64_t>(plan.slots);
    plan.chunks.push_back(c);
  }
  return plan;
}

Status runUpload(const UploadPlan &plan, const uint8_t *src, UploadSteps &steps,
                 const UploadProgress &progress) {
  uint64_t done = 0;
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    const UploadChunk &c = plan.chunks[i];
    if (c.slot < 0) {
      PHOTON_RETURN_IF_ERROR(steps.direct(src + c.offset, c.offset, c.bytes));
    } else {
      if (c.waitForSlot) PHOTON_RETURN_IF_ERROR(steps.waitSlot(c.slot));
      PHOTON_RETURN_IF_ERROR(steps.stageAndCopy(c.slot, src + c.offset, c.offset, c.bytes));
    }
    done += c.bytes;
    if (progress && i + 1 < plan.chunks.size()) progress(done, plan.totalBytes);
  }
  PHOTON_RETURN_IF_ERROR(steps.finish());
  if (progress) progress(plan.totalBytes, plan.totalBytes);
  return Status::ok();
}

std::vector<int64_t> planDeviceCachePools(const std::vector<CacheLevelSpec> &levels,
                                          uint64_t budgetBytes) {
  std::vector<int64_t> blocks(levels.size(), 1);
  // Bytes per token of level l: bytesPerUnit / tokensPerUnit (as a double: the shares only).
  double sum = 0;
  std::vector<double> perToken(levels.size(), 0);
  for (size_t li = 0; li < levels.size(); ++li) {
    perToken[li] = static_cast<double>(levels[li].bytesPerUnit()) /
                   std::max(1, levels[li].tokensPerUnit);
    sum += perToken[li];
  }
  if (sum <= 0) return blocks;
  for (size_t li = 0; li < levels.size(); ++li) {
    const double share = static_cast<double>(budgetBytes) * (perToken[li] / sum);
    const uint64_t bb = levels[li].blockBytes();
    uint64_t nb = bb ? static_cast<uint64_t>(share / static_cast<double>(bb)) : 1;
    // The shares are rounded down, so the sum of the pools stays within the budget.
    while (nb > 0 && nb * bb > static_cast<uint64_t>(share)) --nb;
    blocks[li] = static_cast<int64_t>(std::min<uint64_t>(std::max<uint64_t>(nb, 1), 0x7fffffff));
  }
  return blocks;
}

uint64_t defaultDeviceCacheBudget(uint64_t freeBytesAfterWeights) {
  const uint64_t usable = freeBytesAfterWeights / 10 * 9;
  return usable > kDeviceHeadroomBytes ? usable - kDeviceHeadroomBytes : 0;
}

Status chooseBackend(const std::string &targetKind, const std::vector<std::string> &archs,
                     const std::function<DriverProbe()> &probe, const std::string &mpath,
                     DeviceKind &out) {
  if (targetKind == "cpu") {
    out = DeviceKind::Host;
    return Status::ok();
  }
  if (targetKind != "cuda")
    return error(PHOTON_ERR_TARGET, mpath + ": unknown target kind \"" + targetKind + "\"");
  std::string list;
  for (const auto &a : archs) list += (list.empty() ? "" : ",") + a;
  if (archs.empty())
    return error(PHOTON_ERR_FORMAT, mpath + ": target.kind is \"cuda\" but target.archs is "
                                            "missing or empty; recompile with photon-compile "
                                            "--target cuda:sm_XY");
  const DriverProbe p = probe ? probe() : DriverProbe{false, "no driver probe", false, ""};
  const std::string way = "; to run it on this machine's CPU instead, recompile with "
                          "photon-compile --target cpu";
  if (!p.usable)
    return error(PHOTON_ERR_NO_DEVICE, mpath + ": this artifact was compiled for CUDA (" + list +
                                           ") and cannot run here: " +
                                           (p.reason.empty() ? "no usable CUDA device" : p.reason) +
                                           way);
  if (!p.archMatches)
    return error(PHOTON_ERR_NO_DEVICE, mpath + ": this artifact was compiled for CUDA (" + list +
                                           ") and cannot run here: " +
                                           (p.archReason.empty() ? "the device's architecture "
                                                                   "is not among them"
                                                                 : p.archReason) +
                                           way);
  out = DeviceKind::Cuda;
  return Status::ok();
}

} // namespace photon::rt
