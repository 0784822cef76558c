//===- WorkspaceManifest.cpp - the stage workspace plan in the manifest and --report ===//

#include "photon/Target/WorkspaceManifest.h"
#include "photon/Codegen/CPU/Workspace.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"

namespace mlir {
namespace photon {

namespace {
int64_t intOf(DictionaryAttr d, const char *key) {
  auto a = d ? dyn_cast_or_null<IntegerAttr>(d.get(key)) : IntegerAttr();
  return a ? a.getInt() : 0;
}
/// The rows' atoms and their product for one sequence (-1 when an atom is not bounded).
int64_t rowsPerSequence(DictionaryAttr d, const std::map<std::string, int64_t> &perSeq,
                        std::string &names) {
  int64_t v = 1;
  std::vector<std::string> ns;
  auto rows = d ? dyn_cast_or_null<ArrayAttr>(d.get(workspace::kRows)) : ArrayAttr();
  if (rows)
    for (Attribute a : rows) {
      auto s = dyn_cast<StringAttr>(a);
      if (!s) return -1;
      ns.push_back(s.str());
      auto it = perSeq.find(s.str());
      if (it == perSeq.end()) v = -1;
      else if (v >= 0) v *= it->second;
    }
  names = llvm::join(ns, "*");
  return v;
}
} // namespace

WorkspaceSummary readWorkspacePlan(ModuleOp module, const std::vector<StageInfo> &stages,
                                   const std::map<std::string, int64_t> &perSequence) {
  WorkspaceSummary w;
  auto plan = dyn_cast_or_null<DictionaryAttr>(module->getAttr(workspace::kPlanAttr));
  if (!plan) return w;
  w.planned = true;
  bool hasWindowStages = false;
  for (const StageInfo &s : stages) hasWindowStages |= s.name == "token_next";
  for (const StageInfo &s : stages) {
    auto d = dyn_cast_or_null<DictionaryAttr>(plan.get("__photon_stage_" + s.name));
    if (!d) continue;
    StageWorkspace sw;
    sw.stage = s.name;
    sw.rowBytes = intOf(d, workspace::kRowBytes);
    sw.planned = intOf(d, workspace::kPlanned);
    sw.heap = intOf(d, workspace::kHeap);
    int64_t rows = rowsPerSequence(d, perSequence, sw.rows);
    int64_t kFixed = 0, kPerSeq = 0;
    bool bounded = rows >= 0;
    if (auto ks = dyn_cast_or_null<ArrayAttr>(d.get(workspace::kKernels)))
      for (Attribute a : ks) {
        auto k = dyn_cast<DictionaryAttr>(a);
        std::string names;
        int64_t kr = rowsPerSequence(k, perSequence, names);
        kFixed = std::max(kFixed, intOf(k, workspace::kFixedBytes));
        if (kr < 0) bounded = false;
        else kPerSeq = std::max(kPerSeq, intOf(k, workspace::kRowBytes) * kr);
      }
    sw.fixedBytes = intOf(d, workspace::kFixedBytes) + kFixed;
    // With the window-cache stages (token_start / token_next) the engine never calls
    // token_step on the decode path (docs/runtime.md): it does not size the workspace.
    bool decodePath = !(s.name == "token_step" && hasWindowStages);
    if (bounded && decodePath) {
      sw.bytesPerSequence = sw.rowBytes * rows + kPerSeq;
      w.fixedBytes = std::max(w.fixedBytes, sw.fixedBytes);
      w.bytesPerSequence = std::max(w.bytesPerSequence, sw.bytesPerSequence);
    }
    w.stages.push_back(std::move(sw));
  }
  return w;
}

llvm::json::Object stageWorkspaceJson(const StageWorkspace &s) {
  llvm::json::Object o{{"fixed_bytes", s.fixedBytes},
                       {"bytes_per_row", s.rowBytes},
                       {"rows", s.rows},
                       {"buffers_planned", s.planned},
                       {"buffers_heap", s.heap}};
  if (s.bytesPerSequence >= 0) o["bytes_per_sequence"] = s.bytesPerSequence;
  else o["bytes_per_sequence"] = nullptr;
  return o;
}

llvm::json::Object workspaceJson(const WorkspaceSummary &w) {
  return llvm::json::Object{{"setter", workspace::kSetterSymbol},
                            {"alignment", workspace::kAlignment},
                            {"fixed_bytes", w.fixedBytes},
                            {"bytes_per_sequence", w.bytesPerSequence}};
}

void printWorkspaceReport(const WorkspaceSummary &w, llvm::raw_ostream &os) {
  if (!w.planned) return;
  os << "stage workspace (photon-plan-workspace; one per engine thread, "
     << w.fixedBytes << " B + " << w.bytesPerSequence << " B per sequence):\n";
  os << llvm::format("  %-14s %10s %10s %-8s %10s %8s %6s\n", "stage", "fixed B", "B/row", "rows",
                     "B/seq", "planned", "heap");
  for (const StageWorkspace &s : w.stages)
    os << llvm::format("  %-14s %10lld %10lld %-8s %10s %8lld %6lld\n", s.stage.c_str(),
                       (long long)s.fixedBytes, (long long)s.rowBytes,
                       s.rows.empty() ? "-" : s.rows.c_str(),
                       s.bytesPerSequence >= 0 ? std::to_string(s.bytesPerSequence).c_str()
                                               : "unbounded",
                       (long long)s.planned, (long long)s.heap);
}

} // namespace photon
} // namespace mlir
