//===- photon-compile.cpp - ONNX / photon IR -> photon artifact ----------===//
//
//   photon-compile model.onnx --target cpu -o model.photon
//   photon-compile model.onnx --target cuda:sm_80,sm_90 -o model.photon
//   photon-compile model.mlir --weights model.weights.bin -o model.photon
//
// Imports (in-process), derives the generation stages, plans the caches, lowers to LLVM,
// emits an object for the target CPU, links model.so and writes the artifact of
// docs/artifact.md. See docs/compiler.md.
//
//===----------------------------------------------------------------------===//

#include "photon/Dialect/PhotonDialect.h"
#include "photon/Target/CPU.h"
#include "photon/Target/Cuda.h"
#include "photon/Target/ForwardOnly.h"
#include "photon/Transforms/CachePlan.h"
#include "photon/Transforms/Passes.h"
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

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/Timer.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory cat("photon-compile options");
static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.onnx | model.mlir>"),
                                      cl::Required, cl::cat(cat));
static cl::opt<std::string> outputDir("o", cl::desc("Output artifact directory (default: "
                                                    "<input stem>.photon)"),
                                      cl::value_desc("dir"), cl::cat(cat));
static cl::opt<std::string> weightsFile(
    "weights", cl::desc("Weights blob (PHOTONW1) of a .mlir input (default: <input>.weights.bin "
                        "or weights.bin beside it)"),
    cl::value_desc("file"), cl::cat(cat));
static cl::opt<std::string> target(
    "target",
    cl::desc("Target: cpu (default) or cuda:<archs>, e.g. cuda:sm_80 or cuda:sm_80,sm_90 "
             "(NVIDIA GPUs, sm_75 and newer; one cubin per architecture in each fatbin)"),
    cl::init("cpu"), cl::cat(cat));
static cl::opt<bool> cudaTensorCores("cuda-tensor-cores",
                                     cl::desc("cuda: mma.sync for f16 matmuls on sm_80+ "
                                              "(default on)"),
                                     cl::init(true), cl::cat(cat));
static cl::opt<bool> cudaAllowTf32("cuda-allow-tf32",
                                   cl::desc("cuda: let f32 matmuls use tf32 tensor cores"),
                                   cl::init(false), cl::cat(cat));
static cl::opt<std::string> cudaToolkit("cuda-toolkit",
                                        cl::desc("cuda: CUDA toolkit root with ptxas and "
                                                 "fatbinary (default: $CUDA_HOME, "
                                                 "/usr/local/cuda)"),
                                        cl::value_desc("dir"), cl::cat(cat));
static cl::opt<std::string> cudaRuntime("cuda-runtime",
                                        cl::desc("cuda: libphoton_cuda.so to link model.so "
                                                 "against and copy into the artifact "
                                                 "(default: the one built with photon-compile)"),
                                        cl::value_desc("file"), cl::cat(cat));
static cl::opt<std::string> cpuName("cpu", cl::desc("Target CPU (default: the host, e.g. znver3)"),
                                    cl::cat(cat));
static cl::opt<std::string> cpuFeatures("mattr",
                                        cl::desc("Target features (default: the CPU's, e.g. "
                                                 "+avx2,+fma)"),
                                        cl::cat(cat));
static cl::opt<std::string> saveTemps("save-temps",
                                      cl::desc("Keep the IR after each stage in this directory"),
                                      cl::value_desc("dir"), cl::cat(cat));
static cl::opt<bool> report("report", cl::desc("Print the cache plan and cost model"),
                            cl::cat(cat));
static cl::opt<int64_t> maxContext("max-context",
                                   cl::desc("Maximum context (tokens) the artifact serves"),
                                   cl::init(4096), cl::cat(cat));
static cl::opt<int64_t> blockSize("block-size", cl::desc("KV cache block size (units)"),
                                  cl::init(16), cl::cat(cat));
static cl::opt<int> optLevel("O",
                             cl::desc("LLVM optimization level (0-3; default 2: the matmul "
                                      "kernels are explicit vector code, and -O3 costs 2-5x "
                                      "the compile time for no measured gain)"),
                             cl::init(2),
                             cl::Prefix, cl::cat(cat));
static cl::opt<std::string> emit(
    "emit",
    cl::desc("Stop early and print IR to stdout: photon (after stage derivation), linalg "
             "(after convert-photon-to-linalg + stage wrappers), llvm (LLVM dialect)"),
    cl::init("artifact"), cl::cat(cat));
static cl::opt<bool> noDerive("no-derive",
                              cl::desc("Compile only the stages already in the module"),
                              cl::cat(cat));
// For before/after measurements of the attention lowering only.
static cl::opt<bool> fusedAttention("fused-attention",
                                    cl::desc("CPU: fused, vectorized attention kernels "
                                             "(false: the linalg form)"),
                                    cl::init(true), cl::Hidden, cl::cat(cat));
static cl::opt<bool> openmp("openmp",
                            cl::desc("Run the parallel loops of every kernel on OpenMP threads "
                                     "(links libomp; OMP_NUM_THREADS picks the count). Off by "
                                     "default: the runtime batches sequences on its own threads"),
                            cl::init(false), cl::cat(cat));
static cl::opt<std::string> matmul(
    "matmul",
    cl::desc("Matmul kernels (x * W^T of linear, lm_head, SwiGLU): vector (split-K register "
             "kernels of photon-matmul-kernels, default) or generic (linalg loops vectorized "
             "by LLVM only)"),
    cl::init("vector"), cl::cat(cat));
static cl::opt<int64_t> lengthMultiple(
    "length-multiple",
    cl::desc("Forward-only artifacts (a graph whose hierarchy was not recognized): the "
             "sequence lengths the graph accepts are multiples of N (e.g. a PHOTON "
             "meta-context); the runtime refuses others (default 1)"),
    cl::init(1), cl::value_desc("N"), cl::cat(cat));
static cl::opt<bool> quiet("q", cl::desc("No progress lines"), cl::cat(cat));

namespace {
struct Progress {
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  void operator()(const llvm::Twine &what) {
    if (quiet) return;
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    llvm::errs() << llvm::format("[%6.2fs] ", s) << what << "\n";
  }
};

bool saveIR(ModuleOp m, const std::string &name) {
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

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  cl::HideUnrelatedOptions(cat);
  cl::ParseCommandLineOptions(
      argc, argv,
      "photon-compile: compile a PHOTON / Block Transformer / vanilla model (ONNX export or "
      "photon IR) ahead of time into an artifact directory (model.so, weights.bin, "
      "manifest.json; see docs/artifact.md).\n\n"
      "  photon-compile model.onnx --target cpu -o model.photon\n"
      "  photon-compile model.mlir --weights model.weights.bin -o model.photon --report\n");
  Progress progress;

  const bool cuda = mlir::photon::isCudaTarget(target);
  std::vector<std::string> cudaChips;
  if (cuda) {
    std::string err;
    if (!mlir::photon::parseCudaTarget(target, cudaChips, err)) return fail(err);
    if (openmp) return fail("--openmp is a CPU option; it does not apply to --target cuda");
  } else if (target != "cpu") {
    return fail("unsupported --target '" + target + "' (supported: cpu, cuda:sm_XY[,sm_XY...])");
  }
  if (!llvm::sys::fs::exists(inputFile)) return fail("input '" + inputFile + "' does not exist");
  if (matmul != "vector" && matmul != "generic")
    return fail("unsupported --matmul '" + matmul + "' (expected vector or generic)");

  DialectRegistry registry;
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerAllToLLVMIRTranslations(registry);
  mlir::photon::registerCudaTarget(registry);
#ifdef PHOTON_HAVE_IMPORTER
  mlir::photon::registerImportDialects(registry);
#endif
  registry.insert<mlir::photon::PhotonDialect>();
  registerAllPasses();
  mlir::photon::registerPhotonPasses();
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  llvm::SourceMgr smgr;
  SourceMgrDiagnosticHandler diag(smgr, &ctx);

  llvm::SmallString<256> stem(llvm::sys::path::stem(inputFile));
  std::string out = outputDir.empty() ? (stem + ".photon").str() : outputDir.getValue();
  std::string tmpWeights;

  OwningOpRef<ModuleOp> module;
  StringRef ext = llvm::sys::path::extension(inputFile);
  std::string weights = weightsFile;
  if (ext == ".onnx") {
#ifdef PHOTON_HAVE_IMPORTER
    llvm::sys::fs::create_directories(out);
    llvm::SmallString<256> w(out);
    llvm::sys::path::append(w, "weights.bin");
    mlir::photon::ImportOptions io;
    io.weightsOut = std::string(w);
    if (!quiet) io.progress = &llvm::errs();
    progress("importing " + inputFile);
    module = mlir::photon::importOnnxFile(ctx, inputFile, io);
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
  if (!saveIR(*module, "00-input.mlir")) return 1;

  // An ONNX model whose hierarchy was not recognized compiles as a forward-only artifact:
  // the graph's teacher-forced logits, no generation stages (docs/importer.md, 4d). A .mlir
  // input is photon IR written for the compiler: without a hierarchy it is an error below.
  std::optional<mlir::photon::ForwardOnlyInfo> forwardOnly;
  if (ext == ".onnx" &&
      !(*module)->hasAttr(mlir::photon::PhotonDialect::HierarchyAttrHelper::getNameStr())) {
    if (cuda) return fail("'" + inputFile + "' has no recognized hierarchy: forward-only "
                          "artifacts are compiled for --target cpu only");
    if (lengthMultiple < 1) return fail("--length-multiple must be >= 1");
    auto fo = mlir::photon::makeForwardOnly(*module);
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
  if (!noDerive && !forwardOnly) {
    PassManager pm(&ctx);
    mlir::photon::PhotonDeriveStagesOptions o;
    o.blockSize = blockSize;
    pm.addPass(mlir::photon::createPhotonDeriveStages(o));
    progress("deriving the generation stages");
    if (failed(pm.run(*module))) return fail("photon-derive-stages failed");
  }
  if (!saveIR(*module, "01-stages.mlir")) return 1;
  // Cache plan + cost model (before lowering: it reads the photon ops).
  FailureOr<mlir::photon::CachePlan> plan = failure();
  if (!forwardOnly) {
    plan = mlir::photon::planCaches(*module, blockSize);
    if (failed(plan)) return fail("cache planning failed (see the errors above)");
    if (report) mlir::photon::printReport(*plan, llvm::outs());
  } else if (report) {
    llvm::outs() << "forward-only artifact: no caches, no generation stages (vocab "
                 << forwardOnly->vocab << ")\n";
  }
  if (emit == "photon") {
    module->print(llvm::outs());
    return 0;
  }

  // Lower the photon ops.
  {
    PassManager pm(&ctx);
    mlir::photon::ConvertPhotonToLinalgOptions o;
    o.weightsFile = weights;
    // The GPU pipeline tiles and fuses the linalg form of attention itself.
    o.fusedAttention = fusedAttention && !cuda;
    // With OpenMP kernels, decode attention over a long cache splits its kv heads between
    // the threads too (it reads as many bytes as the weights at a few thousand tokens).
    o.parallelDecodeMinKeys = openmp && !cuda ? 256 : 0;
    pm.addPass(mlir::photon::createConvertPhotonToLinalg(o));
    progress("lowering photon ops to linalg");
    if (failed(pm.run(*module))) return fail("convert-photon-to-linalg failed");
  }
  std::vector<mlir::photon::StageInfo> stages;
  if (failed(mlir::photon::addStageWrappers(*module, stages))) return fail("no stages to compile");
  if (!saveIR(*module, "02-linalg.mlir")) return 1;
  if (emit == "linalg") {
    module->print(llvm::outs());
    return 0;
  }
  if (cuda) {
    mlir::photon::CudaCompileOptions co;
    co.chips = cudaChips;
    co.tensorCores = cudaTensorCores;
    co.allowTf32 = cudaAllowTf32;
    co.toolkit = cudaToolkit;
    progress("lowering to GPU kernels for " + llvm::join(cudaChips, ",") +
             " (ptxas + fatbinary) and host code in the LLVM dialect");
    if (failed(mlir::photon::lowerStagesForCuda(*module, co)))
      return fail("the GPU lowering failed (see the errors above)");
  } else {
    PassManager pm(&ctx);
    mlir::photon::MatmulKernelOptions kernels;
    kernels.lanes = mlir::photon::f32VectorLanes(cpuName, cpuFeatures);
    mlir::photon::buildPhotonLowerToLLVMPipeline(pm, openmp, matmul == "vector", kernels);
    progress("bufferizing and lowering to the LLVM dialect");
    if (failed(pm.run(*module))) return fail("lowering to the LLVM dialect failed");
  }
  if (!saveIR(*module, "03-llvm.mlir")) return 1;
  if (emit == "llvm") {
    module->print(llvm::outs());
    return 0;
  }
  if (emit != "artifact") return fail("unknown --emit '" + emit + "' (photon, linalg, llvm)");
  if (weights.empty())
    return fail("no weights blob: pass --weights FILE (the PHOTONW1 blob photon-import wrote)");

  if (auto ec = llvm::sys::fs::create_directories(out))
    return fail("cannot create '" + out + "': " + ec.message());
  mlir::photon::CodegenOptions cg;
  cg.cpu = cpuName.empty() ? mlir::photon::hostCPU() : cpuName.getValue();
  cg.features = cpuFeatures.empty() ? mlir::photon::hostFeatures(cg.cpu) : cpuFeatures.getValue();
  cg.optLevel = optLevel;
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
  progress("optimizing (-O" + llvm::Twine(optLevel) + ") and emitting code for " + cg.cpu);
  if (!mlir::photon::emitObject(*module, stages, cg, std::string(obj), irOut, err)) return fail(err);
  progress("linking model.so");
  if (cuda) {
    std::string rt = mlir::photon::findCudaRuntimeLibrary(cudaRuntime, argv[0]);
    if (rt.empty())
      return fail("libphoton_cuda.so not found (model.so of a CUDA artifact links it): build "
                  "the photon_cuda target or pass --cuda-runtime FILE");
    if (!mlir::photon::linkCudaSharedLibrary(std::string(obj), std::string(so), rt, err))
      return fail(err);
  } else if (!mlir::photon::linkSharedLibrary(std::string(obj), std::string(so), openmp, err)) {
    return fail(err);
  }
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
  llvm::json::Array feats;
  for (auto &f : mlir::photon::manifestFeatures(cg.features)) feats.push_back(f);
  if (cuda) {
    llvm::json::Array archs;
    for (auto &c : cudaChips) archs.push_back(c);
    // The host code (stage entry points calling the mgpu* functions) is x86 code for the
    // same triple/CPU as a CPU artifact's; the kernels are fatbins for `archs`.
    m["target"] = llvm::json::Object{{"kind", "cuda"},
                                     {"archs", std::move(archs)},
                                     {"triple", cg.triple},
                                     {"cpu", cg.cpu},
                                     {"features", std::move(feats)},
                                     {"runtime", "libphoton_cuda.so"}};
  } else {
    m["target"] = llvm::json::Object{{"kind", "cpu"},
                                     {"triple", cg.triple},
                                     {"cpu", cg.cpu},
                                     {"features", std::move(feats)},
                                     {"threads", openmp ? "openmp" : "none"}};
  }
  llvm::json::Object model;
  if (forwardOnly) {
    model["family"] = "forward";
    model["vocab"] = forwardOnly->vocab;
    model["length_multiple"] = lengthMultiple.getValue();
    model["onnx_tokens_input"] = forwardOnly->tokensInput;
    model["onnx_logits_output"] = forwardOnly->logitsOutput;
  } else {
    model = mlir::photon::hierarchyJson(*plan);
  }
  model["max_context"] = maxContext.getValue();
  m["model"] = std::move(model);
  m["library"] = "model.so";
  char hex[32];
  snprintf(hex, sizeof(hex), "fnv1a64:%016llx", (unsigned long long)checksum);
  m["weights"] = llvm::json::Object{{"file", "weights.bin"},
                                    {"bytes", (int64_t)(*wbuf)->getBufferSize()},
                                    {"checksum", hex}};
  m["start_latents"] = forwardOnly ? llvm::json::Object{} : mlir::photon::startLatentsJson(*plan);
  m["caches"] = forwardOnly ? llvm::json::Array{} : mlir::photon::cachesJson(*plan);
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
    st.push_back(llvm::json::Object{{"name", s.name}, {"symbol", s.symbol}, {"args", std::move(args)}});
  }
  m["stages"] = std::move(st);
  if (!forwardOnly) m["cost_model"] = mlir::photon::costModelJson(*plan);
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(man, ec);
    if (ec) return fail("cannot write " + man + ": " + ec.message());
    os << llvm::formatv("{0:2}", llvm::json::Value(std::move(m))) << "\n";
  }
  progress("wrote " + out + " (" + llvm::Twine(stages.size()) + " stages)");
  return 0;
}
