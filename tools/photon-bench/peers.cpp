// photon-bench's peers: benchmarks/peers/run_peers.py (PyTorch, ONNX Runtime, llama.cpp) on the
// vanilla model with the same settings; its JSON is carried into photon-bench's.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench.h"

#ifndef PHOTON_BENCH_PEERS_SCRIPT
#define PHOTON_BENCH_PEERS_SCRIPT "benchmarks/peers/run_peers.py"
#endif

namespace bench {

void runPeers(Bench &B) {
  const Options &o = B.o;
  const std::vector<Model> &models = B.models;
  const std::vector<SettingDef> &settings = B.settings;
  const std::deque<Cell> &cells = B.cells;
  std::string &peersError = B.peersError;
  Json &peersJson = B.peersJson;
  bool &peersRan = B.peersRan;
  if (o.peers.empty() || !(o.suite == "paper" || o.suite == "quick")) return;
  const Model *van = nullptr;
  for (auto &m : models)
    if (m.info.family == PHOTON_FAMILY_VANILLA) van = &m;
  std::string dir = o.peerModel;
  if (dir.empty() && van) {
    dir = van->path;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    if (dir.size() > 7 && dir.compare(dir.size() - 7, 7, ".photon") == 0) dir.resize(dir.size() - 7);
  }
  int threads = o.peerThreads;
  if (threads <= 0) {
    threads = 1;
    for (auto &c : cells)
      if (c.family == "vanilla") threads = std::max(threads, threadsFrom(c.runs));
  }
  struct stat sb;
  if (dir.empty() || stat(dir.c_str(), &sb) != 0) {
    peersError = "no peer model directory (--peer-model DIR with step.onnx and model-f32/f16.gguf)";
  } else {
    std::string peersOut = o.json.empty() ? "/tmp/photon-bench-peers-" + std::to_string(getpid()) + ".json"
                                          : o.json + ".peers.json";
    std::string list, lens, sets;
    for (auto &p : o.peers) list += (list.empty() ? "" : ",") + p;
    for (auto &s : settings) {
      lens += (lens.empty() ? "" : ",") + s.name + "=" + std::to_string(s.prompt) + "/" + std::to_string(s.gen);
      sets += (sets.empty() ? "" : ",") + s.name;
    }
    std::string script = o.peersScript.empty() ? PHOTON_BENCH_PEERS_SCRIPT : o.peersScript;
    std::string cmd = "/usr/bin/python3 '" + script + "' --model '" + dir + "' --peers " + list +
                      " --threads " + std::to_string(threads) + " --settings " + sets + " --lengths " + lens +
                      " --out '" + peersOut + "' " + o.peerArgs + " 1>&2";
    if (o.verbose) std::fprintf(stderr, "peers: %s\n", cmd.c_str());
    std::fflush(stderr);
    int rc = std::system(cmd.c_str());
    std::string text, err;
    if (!readFile(peersOut, text)) {
      peersError = "run_peers.py wrote no JSON (exit status " + std::to_string(rc) + ")";
    } else {
      if (!parseJson(text, peersJson, err)) peersError = "run_peers.py's JSON: " + err;
      else peersRan = true;
    }
    if (rc != 0 && peersRan) peersError = "run_peers.py exit status " + std::to_string(rc) + " (see peers.errors)";
  }
  if (!peersError.empty()) std::fprintf(stderr, "photon-bench: peers: %s\n", peersError.c_str());
}

}  // namespace bench
