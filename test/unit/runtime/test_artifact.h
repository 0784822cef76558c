// Writes artifact directories around the test model library (testmodel/testmodel.cpp) in the
// exact format of docs/artifact.md: manifest.json, model.so (a copy), weights.bin (PHOTONW1
// with the start latents), checksum included.
#ifndef PHOTON_TEST_ARTIFACT_H
#define PHOTON_TEST_ARTIFACT_H

#include "photon/weights_format.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace photon_test {

struct ArtifactOptions {
  std::string family = "photon"; // photon (L = 2), block (L = 1), vanilla
  int formatVersion = 1;
  std::string abi = "photon-abi-1";
  std::vector<std::string> features = {"sse2"};
  bool corruptWeights = false;
  std::string extraStageSymbol; // a stage whose symbol is missing from the library
};

/// rm -rf (test directories only).
inline void removeTree(const std::string &dir) {
  nftw(dir.c_str(),
       [](const char *p, const struct stat *, int, struct FTW *) { return ::remove(p); }, 16,
       FTW_DEPTH | FTW_PHYS);
}

/// Directories created by a test binary, removed at exit.
struct TempDirs {
  std::vector<std::string> dirs;
  ~TempDirs() {
    for (const auto &d : dirs) removeTree(d);
  }
  const std::string &add(const std::string &d) {
    dirs.push_back(d);
    return dirs.back();
  }
};
inline TempDirs &tempDirs() {
  static TempDirs t;
  return t;
}

inline std::string readAll(const std::string &p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void startLatent(int level, float *out) { // as testmodel.cpp
  for (int k = 0; k < 8; ++k) out[k] = static_cast<float>(0.1 * level + 0.03 * k);
}

inline std::string cacheJson(int level, int tokensPerUnit, const char *modes) {
  return "{\"level\": " + std::to_string(level) +
         ", \"layers\": 1, \"kv_heads\": 1, \"head_dim\": 2, \"dtype\": \"f32\", \"block_size\": 4, "
         "\"bytes_per_unit\": 16, \"tokens_per_unit\": " + std::to_string(tokensPerUnit) +
         ", \"modes\": " + modes + "}";
}

inline std::string stageJson(const std::string &name, const std::string &symbol,
                             const std::vector<std::string> &args) {
  std::string s = "{\"name\": \"" + name + "\", \"symbol\": \"" + symbol + "\", \"args\": [";
  s += "{\"name\": \"weights\", \"dtype\": \"i8\", \"shape\": [\"W\"]}";
  for (const auto &a : args) s += ", " + a;
  return s + "]}";
}

inline bool writeArtifact(const std::string &dir, const ArtifactOptions &o, std::string &err) {
  if (mkdir(dir.c_str(), 0755) == 0) tempDirs().add(dir);
  // weights.bin
  photon::weights::Writer w;
  bool vanilla = o.family == "vanilla";
  int levels = o.family == "photon" ? 2 : 1;
  if (!vanilla)
    for (int l = 1; l <= levels; ++l) w.declare("dec" + std::to_string(l) + ".start", photon::weights::DType::F32, {8});
  w.declare("lm_head", photon::weights::DType::F32, {256, 8});
  if (!w.open(dir + "/weights.bin", err)) return false;
  if (!vanilla)
    for (int l = 1; l <= levels; ++l) {
      float s[8];
      startLatent(l, s);
      w.writeData(s, sizeof s);
      w.finishTensor();
    }
  std::vector<float> head(256 * 8, 0.25f);
  w.writeData(head.data(), head.size() * 4);
  w.finishTensor();
  if (!w.close(err)) return false;
  std::string blob = readAll(dir + "/weights.bin");
  uint64_t sum = photon::weights::fnv1a64(blob.data(), blob.size());
  if (o.corruptWeights) {
    blob[blob.size() - 1] ^= 1;
    std::ofstream(dir + "/weights.bin", std::ios::binary) << blob;
  }
  // model.so
  std::string so = readAll(PHOTON_TESTMODEL_LIB);
  if (so.empty()) { err = "cannot read " + std::string(PHOTON_TESTMODEL_LIB); return false; }
  // Write beside and rename: a library still mapped from an earlier load stays intact.
  std::ofstream(dir + "/model.so.tmp", std::ios::binary) << so;
  std::rename((dir + "/model.so.tmp").c_str(), (dir + "/model.so").c_str());

  const std::string tok1 = "{\"name\": \"tokens\", \"dtype\": \"i32\", \"shape\": [\"B\", \"n*4\"], \"io\": \"in\"}";
  const std::string pool = "{\"name\": \"pool\", \"dtype\": \"f32\", \"shape\": [\"NB\", 1, 2, 4, 1, 2], \"io\": \"inout\"}";
  const std::string table = "{\"name\": \"table\", \"dtype\": \"i32\", \"shape\": [\"B\", \"MB\"], \"io\": \"in\"}";
  const std::string lens = "{\"name\": \"lens\", \"dtype\": \"i32\", \"shape\": [\"B\"], \"io\": \"in\"}";
  const std::string outBn = "{\"name\": \"out\", \"dtype\": \"f32\", \"shape\": [\"B\", \"n\", 8], \"io\": \"out\"}";
  std::vector<std::string> stages, caches;
  std::string model;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(sum));
  if (vanilla) {
    model = "{\"family\": \"vanilla\", \"vocab\": 256, \"width\": 8, \"max_context\": 64, \"tokenizer\": {\"kind\": \"byte\"}}";
    caches.push_back(cacheJson(1, 1, "[\"hiergen\"]"));
    stages.push_back(stageJson("lm_step", "photon_lm_step",
        {"{\"name\": \"tokens\", \"dtype\": \"i32\", \"shape\": [\"B\", \"n\"], \"io\": \"in\"}", pool, table, lens,
         "{\"name\": \"logits\", \"dtype\": \"f32\", \"shape\": [\"B\", \"n\", 256], \"io\": \"out\"}"}));
    stages.push_back(stageJson("forward", "photon_forward_vanilla",
        {"{\"name\": \"tokens\", \"dtype\": \"i32\", \"shape\": [\"B\", \"T\"], \"io\": \"in\"}",
         "{\"name\": \"logits\", \"dtype\": \"f32\", \"shape\": [\"B\", \"T\", 256], \"io\": \"out\"}"}));
  } else {
    bool block = o.family == "block";
    model = std::string("{\"family\": \"") + o.family + "\", \"vocab\": 256, \"width\": 8, \"levels\": " +
            std::to_string(levels) + ", \"chunk_sizes\": " + (block ? "[4]" : "[4, 4]") +
            ", \"prefix\": 2, \"max_context\": 64, \"tokenizer\": {\"kind\": \"byte\"}}";
    caches.push_back(cacheJson(1, 4, "[\"hiergen\"]"));
    if (!block) caches.push_back(cacheJson(2, 16, "[\"hiergen\", \"recgen\"]"));
    stages.push_back(stageJson("encode_1", "photon_encode_1", {tok1, pool, table, lens, outBn}));
    if (!block) {
      stages.push_back(stageJson("encode_2", "photon_encode_2",
          {"{\"name\": \"x\", \"dtype\": \"f32\", \"shape\": [\"B\", \"n*4\", 8], \"io\": \"in\"}", pool, table, lens, outBn}));
      stages.push_back(stageJson("latent_2", "photon_latent_2",
          {"{\"name\": \"prev\", \"dtype\": \"f32\", \"shape\": [\"B\", 8], \"io\": \"in\"}",
           "{\"name\": \"out\", \"dtype\": \"f32\", \"shape\": [\"B\", 4, 8], \"io\": \"out\"}"}));
    }
    stages.push_back(stageJson("token_step", "photon_token_step",
        {"{\"name\": \"prev\", \"dtype\": \"f32\", \"shape\": [\"S\", 8], \"io\": \"in\"}",
         "{\"name\": \"tokens\", \"dtype\": \"i32\", \"shape\": [\"S\", 4], \"io\": \"in\"}",
         "{\"name\": \"pos\", \"dtype\": \"i32\", \"shape\": [\"S\"], \"io\": \"in\"}",
         "{\"name\": \"logits\", \"dtype\": \"f32\", \"shape\": [\"S\", 256], \"io\": \"out\"}"}));
    stages.push_back(stageJson("forward", block ? "photon_forward_block" : "photon_forward",
        {"{\"name\": \"tokens\", \"dtype\": \"i32\", \"shape\": [\"B\", \"T\"], \"io\": \"in\"}",
         "{\"name\": \"logits\", \"dtype\": \"f32\", \"shape\": [\"B\", \"T\", 256], \"io\": \"out\"}"}));
  }
  if (!o.extraStageSymbol.empty())
    stages.push_back(stageJson("extra", o.extraStageSymbol, {}));
  std::string feats;
  for (const auto &f : o.features) feats += (feats.empty() ? "\"" : ", \"") + f + "\"";
  std::string m = "{\n \"format\": \"photon-artifact\", \"format_version\": " + std::to_string(o.formatVersion) +
                  ", \"abi\": \"" + o.abi + "\",\n \"compiler\": {\"name\": \"test\", \"version\": \"0\"},\n"
                  " \"target\": {\"kind\": \"cpu\", \"triple\": \"x86_64-pc-linux-gnu\", \"cpu\": \"x86-64\", \"features\": [" + feats + "]},\n"
                  " \"model\": " + model + ",\n \"library\": \"model.so\",\n"
                  " \"weights\": {\"file\": \"weights.bin\", \"bytes\": " + std::to_string(blob.size()) +
                  ", \"checksum\": \"fnv1a64:" + hex + "\"},\n";
  if (!vanilla) {
    m += " \"start_latents\": {\"1\": \"dec1.start\"";
    if (levels == 2) m += ", \"2\": \"dec2.start\"";
    m += "},\n";
  }
  m += " \"caches\": [";
  for (size_t i = 0; i < caches.size(); ++i) m += (i ? ", " : "") + caches[i];
  m += "],\n \"stages\": [";
  for (size_t i = 0; i < stages.size(); ++i) m += (i ? ",\n  " : "\n  ") + stages[i];
  m += "]\n}\n";
  std::ofstream(dir + "/manifest.json") << m;
  return true;
}

} // namespace photon_test

#endif
