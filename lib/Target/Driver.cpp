//===- Driver.cpp - photon-compile's driver: ONNX / photon IR -> artifact -===//
//
// Imports (in-process), derives the generation stages, plans the caches, lowers to linalg,
// then hands the module to the TargetBackend of --target (lowering, code generation, link)
// and writes the artifact of docs/artifact.md. See docs/compiler.md.
//
//===----------------------------------------------------------------------===//

#include "photon/Target/Driver.h"
#include "photon/Target/WorkspaceManifest.h"
#include "photon/Dialect/PhotonDialect.h"
#include "photon/Target/CPU.h"
#include "photon/Target/ForwardOnly.h"
#include "photon/Target/Tokenizer.h"
#include "photon/Target/WeightFormats.h"
#include "photon/Transforms/CachePlan.h"
#include "photon/InitAllPasses.h"
#include "photon/weights_format.h"

#ifdef PHOTON_HAVE_IMPORTER
#include "photon/Import/Importer.h"
#endif

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <mutex>

#ifndef PHOTON_VERSION_STRING
#define PHOTON_VERSION_STRING "unknown"
#endif

using namespace mlir;
using namespace mlir::photon;

namespace {
struct Progress {
  bool quiet;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  void operator()(const llvm::Twine &what) const {
    if (quiet) return;
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    llvm::errs() << llvm::format("[%6.2fs] ", s) << what << "\n";
  }
};

bool saveIR(const std::string &saveTemps, ModuleOp m, const std::string &name) {
  if (saveTemps.empty()) return true;
  llvm::sys::fs::create_directories(saveTemps);
  llvm::SmallString<256> p(saveTemps);
  llvm::sys::path::append(p, name);
  std::error_code ec;
  llvm::raw_fd_ostream os(p, ec);
  if (ec) {
    llvm::errs() << "photon-compile: error: cannot write " << p << ": " << ec.message() << "\n";
    return false;
  }
  m.print(os);
  return true;
}

int fail(const llvm::Twine &msg) {
  llvm::errs() << "photon-compile: error: " << msg << "\n";
  return 1;
}

bool copyFile(const std::string &from, const std::string &to, std::string &err) {
  if (auto ec = llvm::sys::fs::copy_file(from, to)) {
    err = "cannot copy " + from + " to " + to + ": " + ec.message();
    return false;
  }
  return true;
}
} // namespace

void mlir::photon::registerBuiltinTargetBackends() {
  static std::once_flag once;
  std::call_once(once, [] {
    registerTargetBackend(createCPUTargetBackend());
    registerTargetBackend(createCudaTargetBackend());
  });
}

void mlir::photon::printTargetBackends(llvm::raw_ostream &os) {
  registerBuiltinTargetBackends();
  for (const TargetBackend *b : getTargetBackends())
    os << llvm::formatv("  {0,-10} {1}\n", b->getName(), b->getDescription());
}

int mlir::photon::compileModel(const CompileOptions &opts) {
  registerBuiltinTargetBackends();
  Progress progress{opts.quiet};
  const std::string &inputFile = opts.input;
  const std::string &saveTemps = opts.saveTemps;
  const TargetOptions &to = opts.targetOptions;

  const TargetBackend *backend = findTargetBackend(opts.target);
  if (!backend) {
    std::vector<std::string> syntax;
    for (const TargetBackend *b : getTargetBackends()) syntax.push_back(b->getSyntax());
    return fail("unsupported --target '" + opts.target + "' (supported: " +
                llvm::join(syntax, ", ") + ")");
  }
  TargetSpec spec;
  {
    std::string err;
    if (!backend->parseTarget(opts.target, spec, err)) return fail(err);
  }
  if (to.openmp && !backend->supportsOpenMP())
    return fail("--openmp is a CPU option; it does not apply to --target " + backend->getName());
  if (!llvm::sys::fs::exists(inputFile)) return fail("input '" + inputFile + "' does not exist");
  if (opts.matmul != "vector" && opts.matmul != "generic")
    return fail("unsupported --matmul '" + opts.matmul + "' (expected vector or generic)");
  if (opts.kvType != "f32" && opts.kvType != "f16")
    return fail("unsupported --kv '" + opts.kvType + "': the KV caches are stored as f32 "
                "(default) or f16");
  if (opts.kvType != "f32" && backend->getName() != "cpu")
    return fail("--kv " + opts.kvType + ": reduced-precision caches are compiled for --target "
                "cpu only");
  TargetOptions targetOptions = to;
  targetOptions.vectorMatmul = opts.matmul == "vector";

  DialectRegistry registry;
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerAllToLLVMIRTranslations(registry);
  for (const TargetBackend *b : getTargetBackends()) b->registerDialects(registry);
#ifdef PHOTON_HAVE_IMPORTER
  registerImportDialects(registry);
#endif
  registry.insert<PhotonDialect>();
  static std::once_flag passesOnce;
  std::call_once(passesOnce, [] {
    registerAllPasses();
    registerPhotonPasses();
  });
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  llvm::SourceMgr smgr;
  SourceMgrDiagnosticHandler diag(smgr, &ctx);

  llvm::SmallString<256> stem(llvm::sys::path::stem(inputFile));
  std::string out = opts.outputDir.empty() ? (stem + ".photon").str() : opts.outputDir;

  OwningOpRef<ModuleOp> module;
  StringRef ext = llvm::sys::path::extension(inputFile);
  std::string weights = opts.weightsFile;
  if (ext == ".onnx") {
#ifdef PHOTON_HAVE_IMPORTER
    llvm::sys::fs::create_directories(out);
    llvm::SmallString<256> w(out);
    llvm::sys::path::append(w, "weights.bin");
    ImportOptions io;
    io.weightsOut = std::string(w);
    if (!opts.quiet) io.progress = &llvm::errs();
    progress("importing " + inputFile);
    module = importOnnxFile(ctx, inputFile, io);
    if (!module) return fail("import of '" + inputFile + "' failed (see the errors above)");
    weights = std::string(w);
#else
    return fail("this photon-compile was built without the ONNX importer; import with "
                "photon-import and pass the .mlir and --weights");
#endif
  } else {
    auto file = llvm::MemoryBuffer::getFile(inputFile);
    if (!file) return fail("cannot read '" + inputFile + "'");
    smgr.AddNewSourceBuffer(std::move(*file), llvm::SMLoc());
    module = parseSourceFile<ModuleOp>(smgr, &ctx);
    if (!module) return fail("cannot parse '" + inputFile + "' (see the errors above)");
    if (weights.empty()) {
      for (std::string cand : {(llvm::Twine(inputFile) + ".weights.bin").str(),
                               (llvm::Twine(llvm::sys::path::parent_path(inputFile)) +
                                (llvm::sys::path::parent_path(inputFile).empty() ? "" : "/") +
                                stem + ".weights.bin").str()})
        if (llvm::sys::fs::exists(cand)) {
          weights = cand;
          break;
        }
    }
  }
  if (!saveIR(saveTemps, *module, "00-input.mlir")) return 1;

  // An ONNX model whose hierarchy was not recognized compiles as a forward-only artifact:
  // the graph's teacher-forced logits, no generation stages (docs/importer.md, 4d). A .mlir
  // input is photon IR written for the compiler: without a hierarchy it is an error below.
  std::optional<ForwardOnlyInfo> forwardOnly;
  if (ext == ".onnx" && !(*module)->hasAttr(PhotonDialect::HierarchyAttrHelper::getNameStr())) {
    if (!backend->supportsForwardOnly()) {
      std::vector<std::string> able;
      for (const TargetBackend *b : getTargetBackends())
        if (b->supportsForwardOnly()) able.push_back(b->getName().str());
      return fail("'" + inputFile + "' has no recognized hierarchy: forward-only "
                  "artifacts are compiled for --target " + llvm::join(able, ", ") + " only");
    }
    if (opts.lengthMultiple < 1) return fail("--length-multiple must be >= 1");
    auto fo = makeForwardOnly(*module);
    if (failed(fo)) return fail("cannot compile '" + inputFile + "' as a forward-only artifact "
                                "(see the errors above)");
    forwardOnly = *fo;
    llvm::errs() << "photon-compile: note: no PHOTON, Block or decoder-only structure was "
                    "recognized in '" << inputFile << "' (the importer's remark above says "
                    "why): compiling a forward-only artifact. It computes the teacher-forced "
                    "logits of output '" << fo->logitsOutput << "' from input '"
                 << fo->tokensInput << "' (photon-run --eval, --logits-out) but cannot "
                    "generate.";
    for (auto &s : fo->suppliedInputs) llvm::errs() << " Input " << s << ".";
    llvm::errs() << "\n";
  }

  // Stage derivation.
  if (!opts.noDerive && !forwardOnly) {
    PassManager pm(&ctx);
    PhotonDeriveStagesOptions o;
    o.blockSize = opts.blockSize;
    o.kvType = opts.kvType;
    pm.addPass(createPhotonDeriveStages(o));
    progress("deriving the generation stages");
    if (failed(pm.run(*module))) return fail("photon-derive-stages failed");
  }
  if (opts.kvType != "f32" && (opts.noDerive || forwardOnly))
    return fail("--kv " + opts.kvType + " sets the element type of the caches the stage "
                "derivation creates; " + (forwardOnly ? "a forward-only artifact has no caches"
                                                      : "--no-derive keeps the input's") +
                " (drop the option)");
  if (!saveIR(saveTemps, *module, "01-stages.mlir")) return 1;
  // Cache plan + cost model (before lowering: it reads the photon ops).
  FailureOr<CachePlan> plan = failure();
  if (!forwardOnly) {
    plan = planCaches(*module, opts.blockSize);
    if (failed(plan)) return fail("cache planning failed (see the errors above)");
    if (opts.report) printReport(*plan, llvm::outs());
  } else if (opts.report) {
    llvm::outs() << "forward-only artifact: no caches, no generation stages (vocab "
                 << forwardOnly->vocab << ")\n";
  }
  if (opts.emit == "photon") {
    module->print(llvm::outs());
    return 0;
  }

  // Reduced-precision weights: the blob's matmul weights converted before the lowering
  // reads its index (docs/compiler.md, "Weight formats").
  llvm::json::Object weightFormats;
  if (opts.weightFormat != "f32" || !opts.weightsFor.empty()) {
    if (forwardOnly)
      return fail("--weights " + opts.weightFormat + " / --weights-for need a recognized "
                  "hierarchy; a forward-only artifact keeps f32 weights (drop the option)");
    if (backend->getName() != "cpu")
      return fail("--weights " + opts.weightFormat + " / --weights-for: reduced-precision "
                  "weights are compiled for --target cpu only");
    if (weights.empty())
      return fail("no weights blob to convert: pass the blob of a .mlir input with --weights FILE");
    if (auto ec = llvm::sys::fs::create_directories(out))
      return fail("cannot create '" + out + "': " + ec.message());
    llvm::SmallString<256> wConv(out);
    llvm::sys::path::append(wConv, "weights.bin");
    std::string err;
    progress("converting the matmul weights to " + opts.weightFormat);
    if (!convertWeightFormats(*module, weights, std::string(wConv), opts.weightFormat,
                              opts.weightsFor, opts.quiet, weightFormats, err))
      return fail(err);
    weights = std::string(wConv);
  }

  // Lower the photon ops.
  {
    PassManager pm(&ctx);
    ConvertPhotonToLinalgOptions o;
    o.weightsFile = weights;
    // A backend without the CPU attention kernels (the GPU pipeline) tiles and fuses the
    // linalg form of attention itself.
    o.fusedAttention = to.fusedAttention && backend->supportsFusedAttention();
    // With OpenMP kernels, decode attention over a long cache splits its kv heads between
    // the threads too (it reads as many bytes as the weights at a few thousand tokens).
    o.parallelDecodeMinKeys = to.openmp && backend->supportsOpenMP() ? 256 : 0;
    pm.addPass(createConvertPhotonToLinalg(o));
    progress("lowering photon ops to linalg");
    if (failed(pm.run(*module))) return fail("convert-photon-to-linalg failed");
  }
  std::vector<StageInfo> stages;
  if (failed(addStageWrappers(*module, stages))) return fail("no stages to compile");
  if (!saveIR(saveTemps, *module, "02-linalg.mlir")) return 1;
  if (opts.emit == "linalg") {
    module->print(llvm::outs());
    return 0;
  }
  {
    std::string err;
    if (failed(backend->lowerToLLVM(*module, spec, targetOptions, progress, err)))
      return fail(err);
  }
  if (!saveIR(saveTemps, *module, "03-llvm.mlir")) return 1;
  // The stage workspace photon-plan-workspace planned, per sequence of a decode step (one
  // unit: B = 1, n = 1; S = the token streams of one sequence).
  WorkspaceSummary ws = readWorkspacePlan(
      *module, stages,
      {{"B", 1}, {"n", 1}, {"S", forwardOnly ? 1 : plan->tokenStreams}});
  if (opts.report) printWorkspaceReport(ws, llvm::outs());
  if (opts.emit == "llvm") {
    module->print(llvm::outs());
    return 0;
  }
  if (opts.emit != "artifact")
    return fail("unknown --emit '" + opts.emit + "' (photon, linalg, llvm)");
  if (weights.empty())
    return fail("no weights blob: pass --weights FILE (the PHOTONW1 blob photon-import wrote)");

  if (auto ec = llvm::sys::fs::create_directories(out))
    return fail("cannot create '" + out + "': " + ec.message());
  CodegenOptions cg;
  cg.cpu = to.cpu.empty() ? hostCPU() : to.cpu;
  cg.features = to.features.empty() ? hostFeatures(cg.cpu) : to.features;
  cg.optLevel = opts.optLevel;
  llvm::SmallString<256> obj(out), so(out), wOut(out), man(out);
  llvm::sys::path::append(obj, "model.o");
  llvm::sys::path::append(so, "model.so");
  llvm::sys::path::append(wOut, "weights.bin");
  llvm::sys::path::append(man, "manifest.json");
  std::string err;
  std::string irOut;
  if (!saveTemps.empty()) {
    llvm::SmallString<256> p(saveTemps);
    llvm::sys::path::append(p, "04-optimized.ll");
    irOut = std::string(p);
  }
  progress("optimizing (-O" + llvm::Twine(opts.optLevel) + ") and emitting code for " + cg.cpu);
  if (!backend->emitObject(*module, stages, spec, cg, std::string(obj), irOut, err))
    return fail(err);
  progress("linking model.so");
  if (!backend->link(std::string(obj), std::string(so), spec, targetOptions, err))
    return fail(err);
  llvm::sys::fs::remove(obj);

  // Weights: copied into the artifact (the importer may have written them there already).
  if (!llvm::sys::fs::equivalent(weights, std::string(wOut))) {
    if (!copyFile(weights, std::string(wOut), err)) return fail(err);
  }
  auto wbuf = llvm::MemoryBuffer::getFile(wOut, false, false);
  if (!wbuf) return fail("cannot read back " + wOut);
  uint64_t checksum = ::photon::weights::fnv1a64((*wbuf)->getBufferStart(), (*wbuf)->getBufferSize());

  // Manifest.
  llvm::json::Object m;
  m["format"] = "photon-artifact";
  m["format_version"] = 1;
  m["abi"] = "photon-abi-1";
  m["compiler"] = llvm::json::Object{{"name", "photon-compile"},
                                     {"version", PHOTON_VERSION_STRING},
                                     {"mlir", LLVM_VERSION_STRING}};
  m["target"] = backend->manifestTarget(spec, targetOptions, cg);
  llvm::json::Object model;
  if (forwardOnly) {
    model["family"] = "forward";
    model["vocab"] = forwardOnly->vocab;
    model["length_multiple"] = opts.lengthMultiple;
    model["onnx_tokens_input"] = forwardOnly->tokensInput;
    model["onnx_logits_output"] = forwardOnly->logitsOutput;
  } else {
    model = hierarchyJson(*plan);
  }
  llvm::json::Object tokenizer;
  int64_t vocab = forwardOnly ? forwardOnly->vocab : plan->hierarchy.vocab;
  if (!addTokenizer(opts.tokenizer, vocab, out, tokenizer, err)) return fail(err);
  model["tokenizer"] = std::move(tokenizer);
  // Learned positions: the model has no position past its table's rows.
  model["max_context"] = !forwardOnly && plan->maxPositions > 0
                             ? std::min<int64_t>(opts.maxContext, plan->maxPositions)
                             : opts.maxContext;
  m["model"] = std::move(model);
  m["library"] = "model.so";
  char hex[32];
  snprintf(hex, sizeof(hex), "fnv1a64:%016llx", (unsigned long long)checksum);
  m["weights"] = llvm::json::Object{{"file", "weights.bin"},
                                    {"bytes", (int64_t)(*wbuf)->getBufferSize()},
                                    {"checksum", hex}};
  if (!weightFormats.empty())
    (*m["weights"].getAsObject())["formats"] = llvm::json::Value(std::move(weightFormats));
  m["start_latents"] = forwardOnly ? llvm::json::Object{} : startLatentsJson(*plan);
  m["caches"] = forwardOnly ? llvm::json::Array{} : cachesJson(*plan);
  llvm::json::Array st;
  for (auto &s : stages) {
    llvm::json::Array args;
    for (auto &a : s.args) {
      llvm::json::Array shape;
      for (auto &d : a.shape) {
        char *end = nullptr;
        long long v = strtoll(d.c_str(), &end, 10);
        if (!d.empty() && end && *end == 0) shape.push_back((int64_t)v);
        else shape.push_back(d);
      }
      llvm::json::Object o{{"name", a.name}, {"dtype", a.dtype}, {"shape", std::move(shape)}};
      if (!a.io.empty()) o["io"] = a.io;
      args.push_back(std::move(o));
    }
    llvm::json::Object so{{"name", s.name}, {"symbol", s.symbol}, {"args", std::move(args)}};
    for (const StageWorkspace &w : ws.stages)
      if (w.stage == s.name) so["workspace"] = stageWorkspaceJson(w);
    st.push_back(std::move(so));
  }
  m["stages"] = std::move(st);
  if (ws.planned) m["workspace"] = workspaceJson(ws);
  if (!forwardOnly) {
    llvm::json::Object cm = costModelJson(*plan);
    // The planned workspace is per-sequence memory too (docs/compiler.md, "Stage workspace"),
    // once per engine thread that runs stages: RecGen's overlapped top-level step runs on a
    // second thread with a second workspace (docs/runtime.md), so its total counts that too.
    if (ws.planned)
      if (auto *nc = cm.getObject("non_cache_bytes_per_sequence")) {
        (*nc)["stage_workspace"] = ws.bytesPerSequence;
        if (auto t = nc->getInteger("total")) {
          (*nc)["total"] = *t + ws.bytesPerSequence;
          if (plan->hierarchy.family == "photon") {
            // That thread runs the top-level encoder stage alone, and touches only its part.
            int64_t overlap = ws.bytesPerSequence;
            std::string top = "encode_" + std::to_string(plan->hierarchy.levels);
            for (const StageWorkspace &w : ws.stages)
              if (w.stage == top && w.bytesPerSequence >= 0) overlap = w.bytesPerSequence;
            (*nc)["recgen_overlap_workspace"] = overlap;
            (*nc)["recgen_total"] = *t + ws.bytesPerSequence + overlap;
          }
        }
      }
    m["cost_model"] = std::move(cm);
  }
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(man, ec);
    if (ec) return fail("cannot write " + man + ": " + ec.message());
    os << llvm::formatv("{0:2}", llvm::json::Value(std::move(m))) << "\n";
  }
  progress("wrote " + out + " (" + llvm::Twine(stages.size()) + " stages)");
  return 0;
}
