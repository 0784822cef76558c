//===- photon-compile.cpp - ONNX / photon IR -> photon artifact ----------===//
//
//   photon-compile model.onnx --target cpu -o model.photon
//   photon-compile model.onnx --target cuda:sm_80,sm_90 -o model.photon
//   photon-compile model.mlir --weights model.weights.bin -o model.photon
//   photon-compile model.onnx --tokenizer tokenizer.model -o model.photon
//   photon-compile --list-targets
//
// The command line of the driver in lib/Target/Driver.cpp (compileModel): import, stage
// derivation, cache plan, convert-photon-to-linalg, then the TargetBackend that --target
// names (photon/Target/TargetBackend.h) lowers, emits and links model.so and says what
// the manifest's "target" holds. See docs/compiler.md and docs/adding-a-target.md.
//
//===----------------------------------------------------------------------===//

#include "photon/Target/Driver.h"
#include "photon/Target/WeightFormats.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

namespace cl = llvm::cl;

static cl::OptionCategory cat("photon-compile options");
static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.onnx | model.mlir>"),
                                      cl::Optional, cl::cat(cat));
static cl::opt<bool> listTargets("list-targets",
                                 cl::desc("Print the registered targets (--target) and exit"),
                                 cl::cat(cat));
static cl::opt<std::string> outputDir("o", cl::desc("Output artifact directory (default: "
                                                    "<input stem>.photon)"),
                                      cl::value_desc("dir"), cl::cat(cat));
static cl::list<std::string> weightsArgs(
    "weights",
    cl::desc("Either the format of the matmul weights, f32 (default), f16, bf16, q8 "
             "(symmetric int8, one f16 scale per group of 32 along K, as llama.cpp's q8_0) or "
             "q4 (4-bit, one f16 scale per group of 32, llama.cpp's q4_0 values; "
             "converted and packed at compile time; embeddings, norms and a tied LM head stay "
             "f32), or the weights blob (PHOTONW1) of a .mlir input (default: "
             "<input>.weights.bin or weights.bin beside it; a blob file named like a format "
             "is passed as ./NAME). Give it twice for both"),
    cl::value_desc("f32|f16|bf16|q8|q4|file"), cl::cat(cat));
static cl::opt<std::string> weightsFor(
    "weights-for",
    cl::desc("Per-tensor weight formats overriding --weights: GLOB=FORMAT[,GLOB=FORMAT...], "
             "first match wins, e.g. 'lm_head*=f32,*.w_down=f16'"),
    cl::value_desc("glob=format,..."), cl::cat(cat));
static cl::opt<std::string> tokenizer(
    "tokenizer",
    cl::desc("The tokenizer the artifact carries: byte (default), a SentencePiece model file, "
             "or a GPT-2 vocab.json with merges.txt beside it (copied into the artifact)"),
    cl::value_desc("byte|file"), cl::cat(cat));
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
static cl::opt<std::string> kvType(
    "kv",
    cl::desc("Element type of the KV caches (every level's paged cache and the token "
             "decoder's window): f32 (default) or f16 (half the cache bytes; attention "
             "still computes in f32)"),
    cl::value_desc("f32|f16"), cl::init("f32"), cl::cat(cat));
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

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  cl::HideUnrelatedOptions(cat);
  cl::ParseCommandLineOptions(
      argc, argv,
      "photon-compile: compile a PHOTON / Block Transformer / vanilla model (ONNX export or "
      "photon IR) ahead of time into an artifact directory (model.so, weights.bin, "
      "manifest.json; see docs/artifact.md).\n\n"
      "  photon-compile model.onnx --target cpu -o model.photon\n"
      "  photon-compile model.mlir --weights model.weights.bin -o model.photon --report\n"
      "  photon-compile model.onnx --weights q8 --weights-for 'lm_head*=f16' -o model.photon\n");
  if (listTargets) {
    mlir::photon::printTargetBackends(llvm::outs());
    return 0;
  }
  if (inputFile.empty()) {
    llvm::errs() << argv[0] << ": Not enough positional command line arguments specified!\n"
                 << "Must specify at least 1 positional argument: See: " << argv[0]
                 << " --help\n";
    return 1;
  }

  mlir::photon::CompileOptions o;
  o.input = inputFile;
  o.outputDir = outputDir;
  for (const std::string &w : weightsArgs) {
    if (mlir::photon::isWeightFormatName(w)) o.weightFormat = w;
    else o.weightsFile = w;
  }
  o.weightsFor = weightsFor;
  o.kvType = kvType;
  o.tokenizer = tokenizer;
  o.target = target;
  o.targetOptions.openmp = openmp;
  o.targetOptions.fusedAttention = fusedAttention;
  o.targetOptions.cpu = cpuName;
  o.targetOptions.features = cpuFeatures;
  o.targetOptions.cudaTensorCores = cudaTensorCores;
  o.targetOptions.cudaAllowTf32 = cudaAllowTf32;
  o.targetOptions.cudaToolkit = cudaToolkit;
  o.targetOptions.cudaRuntime = cudaRuntime;
  o.targetOptions.argv0 = argv[0];
  o.matmul = matmul;
  o.saveTemps = saveTemps;
  o.report = report;
  o.maxContext = maxContext;
  o.blockSize = blockSize;
  o.optLevel = optLevel;
  o.emit = emit;
  o.noDerive = noDerive;
  o.lengthMultiple = lengthMultiple;
  o.quiet = quiet;
  return mlir::photon::compileModel(o);
}
