// Loading a compiled artifact (docs/artifact.md): manifest.json, model.so, weights.bin.
#ifndef PHOTON_RUNTIME_ARTIFACT_H
#define PHOTON_RUNTIME_ARTIFACT_H

#include "device.h"
#include "status.h"
#include "tokenizer.h"

#include "photon/weights_format.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace photon::rt {

/// Size limits of the files the runtime reads whole (weights.bin is mmapped, not read).
constexpr uint64_t kMaxManifestBytes = 16ull << 20; // manifest.json
constexpr uint64_t kMaxDataFileBytes = 1ull << 30;  // tokenizer files and other data

struct StageArg {
  std::string name;
  std::string dtype;              // "f32", "i32", "i8"
  std::vector<std::string> shape; // symbolic ("B", "n*4") or numeric, as written
  std::string io;                 // "in", "out", "inout" (weights: empty)
};

struct StageSpec {
  std::string name;
  std::string symbol;
  std::vector<StageArg> args;
};

struct CacheSpec {
  int level = 0; // 1..L for photon/block; 1 for vanilla
  int layers = 0;
  int kvHeads = 0;
  int headDim = 0;
  std::string dtype = "f32"; // "f32" or "f16" (photon-compile --kv)
  int elementBytes = 4;      // 4 (f32) or 2 (f16)
  int blockSize = 0;       // units per block
  uint64_t bytesPerUnit = 0;
  int tokensPerUnit = 1;
  std::vector<std::string> modes;
  uint64_t blockBytes() const { return bytesPerUnit * static_cast<uint64_t>(blockSize); }
  bool usedIn(const std::string &mode) const;
};

struct Manifest {
  int formatVersion = 0;
  std::string abi;
  std::string compilerName, compilerVersion;
  std::string targetKind, targetTriple, targetCpu;
  std::vector<std::string> targetFeatures;
  std::vector<std::string> targetArchs; // target.kind "cuda": the GPU architectures (sm_XY)
  photon_family family = PHOTON_FAMILY_PHOTON;
  std::string familyName;
  int vocab = 0, width = 0, levels = 0, prefix = 0, maxContext = 0;
  // model.max_positions (learned absolute positions): no sequence may be longer; 0 = none.
  int maxPositions = 0;
  // family "forward": the sequence lengths the forward stage accepts are multiples of this.
  int lengthMultiple = 1;
  std::vector<int> chunkSizes;
  bool decoderShift = true; // token chunk k is fed Xhat(1)_{k-1} (docs/artifact.md)
  std::string tokenizerKind = "byte", tokenizerVocab, tokenizerMerges;
  std::string tokenizerModel; // kind "sentencepiece": the .model file inside the artifact
  std::string library = "model.so";
  std::string weightsFile = "weights.bin";
  uint64_t weightsBytes = 0;
  uint64_t checksum = 0;
  bool hasChecksum = false;
  std::map<int, std::string> startLatents;
  std::vector<CacheSpec> caches;
  std::vector<StageSpec> stages;
  // The stage workspace (photon-plan-workspace, docs/artifact.md): an engine thread needs
  // workspaceFixedBytes + workspaceBytesPerSequence x its batch; 0 and 0 when none is planned.
  int64_t workspaceFixedBytes = 0, workspaceBytesPerSequence = 0;

  const StageSpec *stage(const std::string &name) const;
  const CacheSpec *cache(int level) const;
  /// Tokens per top-level unit (C_1*...*C_L); 1 for vanilla; length_multiple for forward.
  int tokensPerStep() const;
};

/// Parses and validates manifest.json text; `file` names it in messages.
Status parseManifest(const std::string &text, const std::string &file, Manifest &out);

/// x86 CPU features by their LLVM names ("avx2", "fma", "avx512f", ...).
bool cpuHasFeature(const std::string &name, bool &known);
std::string hostCpuFeatureSummary();

struct LoadOptions {
  bool verifyChecksum = true;
  bool checkCpu = true;
  /// The device backend to run on; empty: chosen from the manifest (createBackend in
  /// device.h). A backend given here must pass its capability check for the artifact.
  std::shared_ptr<DeviceBackend> backend;
  /// Progress of the weights' upload to a device (bytes done, bytes total).
  UploadProgress uploadProgress;
};

using StageFn = void (*)(void **);

class Model {
public:
  ~Model();
  Model(const Model &) = delete;
  Model &operator=(const Model &) = delete;

  static Status load(const std::string &dir, const LoadOptions &opts, std::unique_ptr<Model> &out);

  const Manifest &manifest() const { return manifest_; }
  const std::string &dir() const { return dir_; }
  /// Entry point of a stage, or nullptr if the artifact does not have it.
  StageFn stage(const std::string &name) const;
  /// The weights as the stages take them: the mmapped blob on the host backend (zero-copy),
  /// a device address (not to be dereferenced) on a device backend.
  const uint8_t *weights() const { return static_cast<const uint8_t *>(weightsDevice_.raw()); }
  DevicePtr weightsDevice() const { return weightsDevice_; }
  /// The mmapped weights.bin on the host (the index, start latents).
  const uint8_t *hostWeights() const { return weights_; }
  size_t weightsSize() const { return weightsSize_; }
  /// Where the stages run: weights, cache pools and stage buffers live in its memory.
  const std::shared_ptr<DeviceBackend> &backend() const { return backend_; }
  /// The backend's name, kept for the lifetime of the model (photon_model_info.device).
  const std::string &deviceName() const { return deviceName_; }
  const std::vector<weights::TensorInfo> &tensors() const { return tensors_; }
  /// Start latent s_l (width floats inside the mmapped blob), nullptr if absent.
  const float *startLatent(int level) const;
  const Tokenizer &tokenizer() const { return *tokenizer_; }
  /// True when the library was compiled with --openmp (its matmul kernels share their
  /// weight rows among OpenMP threads).
  bool parallel() const { return ompSetNumThreads_ != nullptr; }
  /// Threads the next parallel kernel started from the calling thread uses (1 for a
  /// sequential library). OpenMP's default: OMP_NUM_THREADS, else every core.
  int computeThreads() const;
  /// Sets the calling thread's OpenMP thread count (no-op for a sequential library).
  void setComputeThreads(int n) const;
  /// Whether model.so takes a stage workspace (exports photon_workspace_set).
  bool hasWorkspace() const { return workspaceSet_ != nullptr; }
  /// Hands the calling thread's stage workspace to model.so (no-op without one): the stages
  /// place their intermediates in it instead of allocating them per call.
  void setWorkspace(void *ptr, int64_t bytes) const {
    if (workspaceSet_) workspaceSet_(ptr, bytes);
  }

private:
  Model() = default;
  Manifest manifest_;
  std::string dir_;
  void *lib_ = nullptr;
  uint8_t *weights_ = nullptr;
  size_t weightsSize_ = 0;
  std::shared_ptr<DeviceBackend> backend_;
  DevicePtr weightsDevice_; // == weights_ on the host backend
  std::string deviceName_;
  std::vector<weights::TensorInfo> tensors_;
  std::map<std::string, StageFn> stages_;
  std::map<int, const float *> startLatents_;
  std::unique_ptr<Tokenizer> tokenizer_;
  void (*ompSetNumThreads_)(int) = nullptr;
  void (*workspaceSet_)(void *, int64_t) = nullptr;
  int (*ompGetMaxThreads_)() = nullptr;
};

/// Reads a whole regular file into `out`. A FIFO, device, directory or socket is refused
/// (never waited on), and so is a file of more than `maxBytes` (checked before and while
/// reading: nothing grows without end).
Status readFile(const std::string &path, std::string &out, uint64_t maxBytes = kMaxDataFileBytes);
/// Opens a regular file for reading without blocking (a FIFO is refused, not waited on);
/// `what` names it in messages ("weights"). On success the caller owns `fd`.
Status openRegularFile(const std::string &path, const char *what, int &fd, uint64_t &size);

} // namespace photon::rt

#endif
