//===- photon-import.cpp - ONNX -> photon MLIR + weights blob ------------===//
//
//   photon-import model.onnx -o model.mlir --weights-out weights.bin
//
//===----------------------------------------------------------------------===//

#include "photon/Import/Importer.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/Support/FileUtilities.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;

static cl::OptionCategory cat("photon-import options");
static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.onnx>"), cl::Required,
                                      cl::cat(cat));
static cl::opt<std::string> outputFile("o", cl::desc("Output MLIR file ('-' = stdout)"),
                                       cl::value_desc("file"), cl::init("-"), cl::cat(cat));
static cl::opt<std::string> weightsOut(
    "weights-out",
    cl::desc("Write the weights blob (PHOTONW1) here; the IR names weights with photon.weight"),
    cl::value_desc("file"), cl::cat(cat));
static cl::opt<bool> listUnsupported(
    "list-unsupported",
    cl::desc("Only list the nodes no converter handles (op, domain, opset, node) and exit "
             "(status 1 if there are any)"),
    cl::cat(cat));
static cl::opt<bool> progress("progress", cl::desc("Print progress on stderr (big models)"),
                              cl::cat(cat));
static cl::opt<bool> explain(
    "explain",
    cl::desc("Print on stderr the model structure the importer found (family, levels, chunk "
             "sizes, widths, heads, head_dim, eps, RoPE) and which ONNX node became which "
             "piece, or why no structure was recognized"),
    cl::cat(cat));
static cl::opt<bool> raiseLocal(
    "raise-local",
    cl::desc("When no structure is recognized, raise the local computations of the upstream "
             "ops (norms, GELU, SwiGLU, linears) to photon ops (photon-raise-local), as "
             "photon-compile does"),
    cl::init(false), cl::cat(cat));
enum class StructureKind { Graph, Patterns };
static cl::opt<StructureKind> structure(
    "structure", cl::desc("How a graph without photon.* metadata is recognized"),
    cl::init(StructureKind::Graph),
    cl::values(clEnumValN(StructureKind::Graph, "graph",
                          "the first stage's recognizer over the ONNX graph (PHOTON, Block, "
                          "decoder-only), then the rewrite patterns for what it did not "
                          "recognize (default)"),
               clEnumValN(StructureKind::Patterns, "patterns",
                          "only the rewrite patterns over the imported ops "
                          "(photon-raise-local, photon-raise-structure: decoder-only models); "
                          "implies --raise-local")),
    cl::cat(cat));
static cl::opt<bool> check("check", cl::desc("Validate the model and exit; write nothing"),
                           cl::cat(cat));
enum class EmitKind { Photon, Upstream };
static cl::opt<EmitKind> emit(
    "emit", cl::desc("What to produce"), cl::init(EmitKind::Photon),
    cl::values(clEnumValN(EmitKind::Photon, "photon",
                          "photon ops and stack functions where the model follows the photon "
                          "ONNX convention (default)"),
               clEnumValN(EmitKind::Upstream, "upstream",
                          "upstream ops only (tensor/linalg/arith/math); functions inlined")),
    cl::cat(cat));
static cl::opt<bool> listOps("list-supported-ops",
                             cl::desc("Print the ONNX ops with a converter and exit"),
                             cl::cat(cat));
static cl::opt<bool> generic("mlir-print-op-generic", cl::desc("Print ops in generic form"),
                             cl::cat(cat));

int main(int argc, char **argv) {
  InitLLVM y(argc, argv);
  // --list-supported-ops needs no input; make the positional optional in that case.
  for (int i = 1; i < argc; ++i)
    if (StringRef(argv[i]) == "--list-supported-ops" || StringRef(argv[i]) == "-list-supported-ops") {
      for (const auto &[op, since] : mlir::photon::supportedOnnxOps())
        outs() << op << " " << since << "\n";
      return 0;
    }
  cl::HideUnrelatedOptions(cat);
  cl::ParseCommandLineOptions(
      argc, argv,
      "photon-import: ONNX (IR <= 8, opset <= 17) -> MLIR in the photon dialect plus a "
      "weights blob.\n\n"
      "  photon-import model.onnx -o model.mlir --weights-out weights.bin\n\n"
      "Every unsupported op of the model is listed in one error before any conversion.\n"
      "External-data tensors are memory-mapped one at a time (models over 2 GB work).\n");

  mlir::MLIRContext context;
  llvm::SourceMgr sm;
  mlir::SourceMgrDiagnosticHandler handler(sm, &context, errs());

  if (listUnsupported) {
    std::vector<mlir::photon::UnsupportedOp> ops;
    if (!mlir::photon::listUnsupportedOps(context, inputFile, ops)) return 2;
    for (const auto &u : ops)
      outs() << (u.domain.empty() ? std::string("ai.onnx") : u.domain) << "." << u.opType
             << "\topset " << u.opset << "\tnode '" << u.nodeName << "'\tin " << u.where
             << "\t" << u.reason << "\n";
    outs() << ops.size() << " unsupported node(s)\n";
    return ops.empty() ? 0 : 1;
  }

  mlir::photon::ImportOptions opts;
  opts.emit = emit == EmitKind::Photon ? mlir::photon::ImportEmit::Photon
                                       : mlir::photon::ImportEmit::Upstream;
  opts.weightsOut = weightsOut;
  opts.checkOnly = check;
  if (progress) opts.progress = &errs();
  if (explain) opts.explain = &errs();
  opts.raiseLocal = raiseLocal || structure == StructureKind::Patterns;
  opts.recognizeGraph = structure == StructureKind::Graph;
  auto module = mlir::photon::importOnnxFile(context, inputFile, opts);
  if (!module) return 1;
  if (check) return 0;

  std::string err;
  auto out = mlir::openOutputFile(outputFile, &err);
  if (!out) {
    errs() << "photon-import: cannot write '" << outputFile << "': " << err << "\n";
    return 1;
  }
  mlir::OpPrintingFlags flags;
  if (generic) flags.printGenericOpForm();
  module->print(out->os(), flags);
  out->os() << "\n";
  out->keep();
  return 0;
}
