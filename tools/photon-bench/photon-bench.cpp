// photon-bench: the paper's PF/DE protocol on compiled photon artifacts, with the machine's
// measured limits. See docs/benchmarks.md for the protocol and every field of the JSON.
//
// Each measurement runs in a forked child (the model is loaded once in the parent and the
// mmapped weights are shared): the child's peak RSS is then the peak of that run alone, and a
// crash or hang of one run cannot take the others down.
#include "bench.h"

using namespace bench;

int main(int argc, char **argv) {
  Bench B;
  int rc = parseOptions(argc, argv, B.o);
  if (rc >= 0) return rc;
  rc = setup(B);
  if (rc >= 0) return rc;
  emit(B, false);  // the machine limits and the sgemm reference

  if (B.o.suite == "paper" || B.o.suite == "quick") runPaperSuite(B);
  if (B.o.suite == "sweep") runSweepSuite(B);
  if (B.o.suite == "roofline") runRooflineSuite(B);
  runPeers(B);

  emit(B, true);
  for (auto &c : B.cells) finishCell(B, c);
  printSummary(B);
  if (B.jsonWriteFailed) return 2;
  for (auto &m : B.models) photon_model_free(m.handle);
  return B.anyFailed ? 1 : 0;
}
