//===- WorkspaceManifest.h - the stage workspace plan as the manifest gives it -*- C++ -*-===//
//
// photon-plan-workspace records its plan in the module (photon/Codegen/CPU/Workspace.h);
// this turns it into the manifest's per-stage `workspace` entries, the artifact's
// `workspace` object (what the runtime allocates once per engine thread) and the lines of
// `photon-compile --report` (docs/artifact.md, docs/compiler.md).
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_TARGET_WORKSPACEMANIFEST_H
#define PHOTON_TARGET_WORKSPACEMANIFEST_H

#include "mlir/IR/BuiltinOps.h"
#include "photon/Target/CPU.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <string>
#include <vector>

namespace mlir {
namespace photon {

struct StageWorkspace {
  std::string stage;
  int64_t fixedBytes = 0;      ///< its own static buffers + the largest kernel's fixed part
  int64_t rowBytes = 0;        ///< its own bytes per row
  std::string rows;            ///< its row expression in the manifest's symbols ("S", "B*n")
  int64_t bytesPerSequence = -1; ///< per sequence of a decode step; -1: not bounded per sequence
  int64_t planned = 0, heap = 0; ///< buffers in the workspace / left on the heap
};

struct WorkspaceSummary {
  std::vector<StageWorkspace> stages;
  int64_t fixedBytes = 0;       ///< the largest fixed part of a bounded stage
  int64_t bytesPerSequence = 0; ///< the largest per-sequence part of a bounded stage
  bool planned = false;         ///< the module has a plan (model.so exports photon_workspace_set)
};

/// Reads the plan of `module` (after photon-plan-workspace) for `stages`. `perSequence`
/// gives each row symbol's value for one sequence of a decode step (B = 1, n = 1, S = the
/// token streams per sequence); a stage whose rows use another symbol (T, MB) is not
/// bounded per sequence (its calls with larger rows allocate their need). The artifact's
/// figures are the largest over the decode-path stages (token_step is not one when the
/// window-cache stages token_start / token_next exist).
WorkspaceSummary readWorkspacePlan(ModuleOp module, const std::vector<StageInfo> &stages,
                                   const std::map<std::string, int64_t> &perSequence);

/// The manifest's top-level `workspace` object and the entry of one stage.
llvm::json::Object workspaceJson(const WorkspaceSummary &w);
llvm::json::Object stageWorkspaceJson(const StageWorkspace &s);

/// The --report lines.
void printWorkspaceReport(const WorkspaceSummary &w, llvm::raw_ostream &os);

} // namespace photon
} // namespace mlir

#endif // PHOTON_TARGET_WORKSPACEMANIFEST_H
