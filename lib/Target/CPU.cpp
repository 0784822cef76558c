//===- CPU.cpp - stage wrappers, LLVM IR, object file, shared library ----===//

#include "photon/Target/CPU.h"
#include "photon/Dialect/PhotonDialect.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/Bitcode/BitcodeWriter.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/Transforms/Utils/SplitModule.h"

#include <thread>

using namespace mlir;

namespace mlir {
namespace photon {

/// The LLVM global holding photon_abi()'s string.
static constexpr llvm::StringLiteral kAbiStringGlobal = "photon.abi";

static std::string dtypeOf(Type t) {
  if (t.isF32()) return "f32";
  if (t.isF16()) return "f16";
  if (t.isBF16()) return "bf16";
  if (t.isInteger(32)) return "i32";
  if (t.isInteger(64)) return "i64";
  if (t.isInteger(8)) return "i8";
  return "?";
}

static std::vector<std::string> stringList(Attribute a) {
  std::vector<std::string> out;
  if (auto arr = dyn_cast_or_null<ArrayAttr>(a))
    for (Attribute e : arr)
      if (auto s = dyn_cast<StringAttr>(e)) out.push_back(s.str());
  return out;
}

LogicalResult addStageWrappers(ModuleOp module, std::vector<StageInfo> &stages) {
  MLIRContext *ctx = module.getContext();
  OpBuilder b(ctx);
  PhotonDialect *dialect = getPhotonDialect(ctx);
  auto stageAttr = dialect->getStageAttrHelper();
  SmallVector<func::FuncOp> stageFuncs;
  for (auto f : module.getOps<func::FuncOp>())
    if (stageAttr.getAttr(f) && !f.isExternal()) stageFuncs.push_back(f);
  if (stageFuncs.empty())
    return module.emitError("no function is marked `photon.stage`: nothing to compile "
                            "(expected at least @forward with photon.stage = \"forward\")");
  for (auto f : stageFuncs) {
    std::string stage = stageAttr.getAttr(f).str();
    auto ft = f.getFunctionType();
    if (ft.getNumInputs() == 0 || !isa<MemRefType>(ft.getInput(0)))
      return f.emitError("stage '") << stage
                                    << "' has no weights argument: run convert-photon-to-linalg first";
    auto argNames = stringList(dialect->getArgNamesAttrHelper().getAttr(f));
    auto resNames = stringList(dialect->getResultNamesAttrHelper().getAttr(f));
    ArrayAttr argShapes = dialect->getArgShapesAttrHelper().getAttr(f);
    if (stage == "forward" && argNames.empty()) argNames = {"tokens"};
    if (stage == "forward" && resNames.empty()) resNames = {"logits"};
    unsigned nIn = ft.getNumInputs() - 1;
    unsigned nOut = resNames.empty() ? ft.getNumResults()
                                     : std::min<unsigned>(resNames.size(), ft.getNumResults());
    StageInfo info;
    info.name = stage;
    info.symbol = "photon_" + stage;
    info.args.push_back({"weights", "i8", {"W"}, ""});

    SmallVector<Type> wTypes{ft.getInput(0)};
    auto toMemref = [](Type t) -> Type {
      if (auto r = dyn_cast<RankedTensorType>(t)) return MemRefType::get(r.getShape(), r.getElementType());
      return t;
    };
    auto shapeOf = [&](unsigned abiIndex, Type t) {
      std::vector<std::string> s;
      if (argShapes && abiIndex < argShapes.size()) {
        s = stringList(argShapes[abiIndex]);
        if (!s.empty()) return s;
      }
      auto st = cast<ShapedType>(t);
      for (int64_t d : st.getShape()) s.push_back(ShapedType::isDynamic(d) ? "?" : std::to_string(d));
      return s;
    };
    for (unsigned i = 0; i < nIn; ++i) {
      Type t = ft.getInput(i + 1);
      Type mt = toMemref(t);
      wTypes.push_back(mt);
      std::string io = isa<MemRefType>(t) ? "inout" : "in";
      std::string nm = i < argNames.size() ? argNames[i] : "arg" + std::to_string(i);
      if (nm == "table" || nm == "lens") io = "in";
      info.args.push_back({nm, dtypeOf(cast<ShapedType>(mt).getElementType()), shapeOf(i + 1, mt), io});
    }
    for (unsigned i = 0; i < nOut; ++i) {
      Type mt = toMemref(ft.getResult(i));
      wTypes.push_back(mt);
      std::string nm = i < resNames.size() ? resNames[i] : "out" + std::to_string(i);
      info.args.push_back({nm, dtypeOf(cast<ShapedType>(mt).getElementType()),
                           shapeOf(nIn + 1 + i, mt), "out"});
    }
    b.setInsertionPointToEnd(module.getBody());
    Location loc = f.getLoc();
    auto w = func::FuncOp::create(b, loc, "__photon_stage_" + stage,
                                  FunctionType::get(ctx, wTypes, {}));
    w->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
    // The symbols of the argument dimensions (equal symbols are equal sizes): the workspace
    // plan bounds the stage's buffers in them (photon-plan-workspace).
    if (argShapes) dialect->getArgShapesAttrHelper().setAttr(w, argShapes);
    Block *entry = w.addEntryBlock();
    b.setInsertionPointToStart(entry);
    SmallVector<Value> callArgs{entry->getArgument(0)};
    for (unsigned i = 0; i < nIn; ++i) {
      Type t = ft.getInput(i + 1);
      Value a = entry->getArgument(i + 1);
      if (isa<RankedTensorType>(t))
        a = bufferization::ToTensorOp::create(b, loc, t, a, /*restrict=*/true, /*writable=*/false);
      callArgs.push_back(a);
    }
    auto call = func::CallOp::create(b, loc, f, callArgs);
    for (unsigned i = 0; i < nOut; ++i) {
      Value dest = entry->getArgument(1 + nIn + i);
      Value r = call.getResult(i);
      if (isa<RankedTensorType>(r.getType()))
        bufferization::MaterializeInDestinationOp::create(b, loc, TypeRange{}, r, dest,
                                                          /*restrict=*/true, /*writable=*/true);
    }
    func::ReturnOp::create(b, loc);
    f.setPrivate();
    stages.push_back(std::move(info));
  }
  return success();
}

std::string hostCPU() { return llvm::sys::getHostCPUName().str(); }

std::string hostFeatures(const std::string &cpu) {
  if (!cpu.empty() && cpu != hostCPU()) return "";
  std::vector<std::string> fs;
  for (auto &kv : llvm::sys::getHostCPUFeatures())
    fs.push_back((kv.second ? "+" : "-") + kv.first().str());
  std::sort(fs.begin(), fs.end());
  return llvm::join(fs, ",");
}

int64_t f32VectorLanes(const std::string &cpuIn, const std::string &featuresIn,
                       const std::string &tripleStr) {
  llvm::InitializeNativeTarget();
  std::string cpu = cpuIn.empty() ? hostCPU() : cpuIn;
  std::string features = featuresIn.empty() ? hostFeatures(cpu) : featuresIn;
  llvm::Triple triple(tripleStr);
  std::string error;
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target) return 8;
  std::unique_ptr<llvm::MCSubtargetInfo> sti(target->createMCSubtargetInfo(triple, cpu, features));
  return sti && sti->checkFeatures("+avx512f") ? 16 : 8;
}

std::vector<std::string> manifestFeatures(const std::string &features) {
  std::vector<std::string> out;
  SmallVector<StringRef> parts;
  StringRef(features).split(parts, ',');
  for (const char *want : {"avx", "avx2", "fma", "f16c", "avx512f"})
    for (StringRef p : parts)
      if (p == (std::string("+") + want)) out.push_back(want);
  return out;
}

std::vector<std::string> manifestFeatures(const std::string &cpuIn, const std::string &features,
                                          const std::string &tripleStr) {
  llvm::InitializeNativeTarget();
  std::string cpu = cpuIn.empty() ? hostCPU() : cpuIn;
  llvm::Triple triple(tripleStr.empty() ? llvm::sys::getDefaultTargetTriple() : tripleStr);
  std::string error;
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target || triple.getArch() != llvm::Triple::x86_64) return manifestFeatures(features);
  std::unique_ptr<llvm::MCSubtargetInfo> sti(
      target->createMCSubtargetInfo(triple, cpu, features));
  if (!sti) return manifestFeatures(features);
  // The names runtime/src/artifact.cpp (cpuHasFeature) checks against the host.
  std::vector<std::string> out;
  for (const char *f : {"sse4.2", "popcnt", "avx", "avx2", "fma", "f16c", "bmi", "bmi2",
                        "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl",
                        "avx512vnni", "avx512bf16", "avx512fp16", "avxvnni"})
    if (sti->checkFeatures(std::string("+") + f)) out.push_back(f);
  return out;
}

static llvm::Function *addVoidStarWrapper(llvm::Module &m, const StageInfo &s, std::string &error) {
  llvm::LLVMContext &c = m.getContext();
  std::string impl = "_mlir_ciface___photon_stage_" + s.name;
  llvm::Function *callee = m.getFunction(impl);
  if (!callee) {
    error = "internal: missing " + impl + " in the LLVM module";
    return nullptr;
  }
  if (callee->arg_size() != s.args.size()) {
    error = "internal: " + impl + " takes " + std::to_string(callee->arg_size()) +
            " arguments, the stage lists " + std::to_string(s.args.size());
    return nullptr;
  }
  auto *ptrT = llvm::PointerType::getUnqual(c);
  auto *fnT = llvm::FunctionType::get(llvm::Type::getVoidTy(c), {ptrT}, false);
  auto *fn = llvm::Function::Create(fnT, llvm::GlobalValue::ExternalLinkage, s.symbol, m);
  auto *bb = llvm::BasicBlock::Create(c, "entry", fn);
  llvm::IRBuilder<> ir(bb);
  std::vector<llvm::Value *> args;
  for (unsigned i = 0; i < s.args.size(); ++i) {
    llvm::Value *slot = ir.CreateConstGEP1_64(ptrT, fn->getArg(0), i);
    args.push_back(ir.CreateLoad(ptrT, slot));
  }
  ir.CreateCall(callee, args);
  ir.CreateRetVoid();
  return fn;
}

bool emitObject(ModuleOp llvmModule, const std::vector<StageInfo> &stages,
                const CodegenOptions &opts, const std::string &objPath,
                const std::string &llvmIROut, std::string &error) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  registerBuiltinDialectTranslation(*llvmModule.getContext());
  registerLLVMDialectTranslation(*llvmModule.getContext());

  llvm::LLVMContext llctx;
  auto mod = translateModuleToLLVMIR(llvmModule, llctx, "photon");
  if (!mod) {
    error = "translation of the LLVM dialect module to LLVM IR failed";
    return false;
  }
  for (const auto &s : stages)
    if (!addVoidStarWrapper(*mod, s, error)) return false;
  {
    // const char *photon_abi(void) { return "photon-abi-1"; }
    llvm::LLVMContext &c = mod->getContext();
    auto *ptrT = llvm::PointerType::getUnqual(c);
    auto *fn = llvm::Function::Create(llvm::FunctionType::get(ptrT, {}, false),
                                      llvm::GlobalValue::ExternalLinkage, "photon_abi", *mod);
    llvm::IRBuilder<> ir(llvm::BasicBlock::Create(c, "entry", fn));
    ir.CreateRet(ir.CreateGlobalString("photon-abi-1", kAbiStringGlobal));
  }
  // Internalize everything but the ABI symbols so -O3 can inline and drop the rest.
  for (llvm::Function &fn : *mod) {
    if (fn.isDeclaration()) continue;
    StringRef n = fn.getName();
    if (!n.starts_with("photon_")) fn.setLinkage(llvm::GlobalValue::InternalLinkage);
  }

  llvm::Triple triple(opts.triple);
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target) return false;
  std::string cpu = opts.cpu.empty() ? hostCPU() : opts.cpu;
  std::string features = opts.features.empty() ? hostFeatures(cpu) : opts.features;
  auto makeTM = [&]() {
    llvm::TargetOptions to;
    return std::unique_ptr<llvm::TargetMachine>(target->createTargetMachine(
        triple, cpu, features, to, llvm::Reloc::PIC_, std::nullopt,
        opts.optLevel >= 3 ? llvm::CodeGenOptLevel::Aggressive : llvm::CodeGenOptLevel::Default));
  };
  std::unique_ptr<llvm::TargetMachine> tm = makeTM();
  if (!tm) {
    error = "cannot create a target machine for " + opts.triple + " cpu " + cpu;
    return false;
  }
  mod->setTargetTriple(triple);
  mod->setDataLayout(tm->createDataLayout());
  for (llvm::Function &fn : *mod) {
    if (fn.isDeclaration()) continue;
    fn.addFnAttr("target-cpu", cpu);
    if (!features.empty()) fn.addFnAttr("target-features", features);
  }
  if (llvm::verifyModule(*mod, &llvm::errs())) {
    error = "the generated LLVM IR does not verify";
    return false;
  }

  // Optimizes and compiles one module to `path` (runs on its own thread with its own
  // context and target machine).
  auto compile = [&](llvm::Module &m, llvm::TargetMachine &tm, const std::string &path,
                     std::string &irText, std::string &err) -> bool {
    llvm::LoopAnalysisManager lam;
    llvm::FunctionAnalysisManager fam;
    llvm::CGSCCAnalysisManager cgam;
    llvm::ModuleAnalysisManager mam;
    llvm::PipelineTuningOptions pto;
    pto.LoopVectorization = true;
    pto.SLPVectorization = true;
    llvm::PassBuilder pb(&tm, pto);
    pb.registerModuleAnalyses(mam);
    pb.registerCGSCCAnalyses(cgam);
    pb.registerFunctionAnalyses(fam);
    pb.registerLoopAnalyses(lam);
    pb.crossRegisterProxies(lam, fam, cgam, mam);
    llvm::OptimizationLevel ol = opts.optLevel >= 3   ? llvm::OptimizationLevel::O3
                                 : opts.optLevel == 2 ? llvm::OptimizationLevel::O2
                                 : opts.optLevel == 1 ? llvm::OptimizationLevel::O1
                                                      : llvm::OptimizationLevel::O0;
    llvm::ModulePassManager mpm = ol == llvm::OptimizationLevel::O0
                                      ? pb.buildO0DefaultPipeline(ol)
                                      : pb.buildPerModuleDefaultPipeline(ol);
    mpm.run(m, mam);
    if (!llvmIROut.empty()) {
      llvm::raw_string_ostream os(irText);
      m.print(os, nullptr);
    }
    std::error_code ec;
    llvm::ToolOutputFile out(path, ec, llvm::sys::fs::OF_None);
    if (ec) {
      err = "cannot write " + path + ": " + ec.message();
      return false;
    }
    llvm::legacy::PassManager pm;
    if (tm.addPassesToEmitFile(pm, out.os(), nullptr, llvm::CodeGenFileType::ObjectFile)) {
      err = "the target machine cannot emit an object file";
      return false;
    }
    pm.run(m);
    out.keep();
    return true;
  };

  unsigned parts = opts.codegenThreads;
  if (parts == 0) parts = std::min(4u, std::max(1u, std::thread::hardware_concurrency()));
  size_t defined = 0;
  for (llvm::Function &fn : *mod) defined += !fn.isDeclaration();
  if (parts > defined) parts = std::max<size_t>(1, defined);

  std::vector<std::string> irTexts(parts);
  if (parts == 1) {
    if (!compile(*mod, *tm, objPath, irTexts[0], error)) return false;
  } else {
    // Split the module by functions (round robin over sizes; locals become hidden
    // externals), hand each part over as bitcode to a thread with its own context.
    std::vector<llvm::SmallString<0>> bitcode;
    llvm::SplitModule(
        *mod, parts,
        [&](std::unique_ptr<llvm::Module> part) {
          bitcode.emplace_back();
          llvm::raw_svector_ostream os(bitcode.back());
          llvm::WriteBitcodeToFile(*part, os);
        },
        /*PreserveLocals=*/false, /*RoundRobin=*/true);
    mod.reset();
    parts = bitcode.size();
    irTexts.resize(parts);
    std::vector<std::string> partPaths(parts), errors(parts);
    for (unsigned i = 0; i < parts; ++i) partPaths[i] = objPath + ".part" + std::to_string(i) + ".o";
    std::vector<std::thread> workers;
    for (unsigned i = 0; i < parts; ++i)
      workers.emplace_back([&, i] {
        llvm::LLVMContext c;
        auto m = llvm::parseBitcodeFile(
            llvm::MemoryBufferRef(llvm::StringRef(bitcode[i].data(), bitcode[i].size()), "part"), c);
        if (!m) {
          errors[i] = "internal: cannot read back partition " + std::to_string(i) + ": " +
                      llvm::toString(m.takeError());
          return;
        }
        std::unique_ptr<llvm::TargetMachine> ptm = makeTM();
        compile(**m, *ptm, partPaths[i], irTexts[i], errors[i]);
      });
    for (auto &t : workers) t.join();
    for (auto &e : errors)
      if (!e.empty()) {
        error = e;
        return false;
      }
    // One relocatable object for the link step.
    std::string driver = findLinkerProgram({"ld.lld-22", "ld.lld", "ld"});
    if (driver.empty()) {
      error = "no linker found to merge the object partitions (looked for ld.lld, ld)";
      return false;
    }
    SmallVector<StringRef> args = {driver, "-r", "-o", objPath};
    for (auto &p : partPaths) args.push_back(p);
    std::string msg;
    int rc = llvm::sys::ExecuteAndWait(driver, args, std::nullopt, {}, 0, 0, &msg);
    for (auto &p : partPaths) llvm::sys::fs::remove(p);
    if (rc != 0) {
      error = "merging the object partitions failed (" + driver + " exited with " +
              std::to_string(rc) + (msg.empty() ? "" : ": " + msg) + ")";
      return false;
    }
  }
  if (!llvmIROut.empty()) {
    std::error_code ec;
    llvm::raw_fd_ostream os(llvmIROut, ec);
    if (!ec)
      for (unsigned i = 0; i < irTexts.size(); ++i) {
        if (irTexts.size() > 1) os << "; ---- partition " << i << " of " << irTexts.size() << "\n";
        os << irTexts[i];
      }
  }
  return true;
}

std::string findLinkerProgram(llvm::ArrayRef<const char *> names) {
  for (const char *name : names)
    if (auto p = llvm::sys::findProgramByName(name, {"/usr/lib/llvm-22/bin", "/usr/bin"}))
      return *p;
  for (const char *name : names)
    if (auto p = llvm::sys::findProgramByName(name)) return *p;
  return "";
}

bool linkSharedLibrary(const std::string &objPath, const std::string &soPath, bool openmp,
                       std::string &error) {
  std::string driver = findLinkerProgram({"clang-22", "clang", "cc"});
  if (driver.empty()) {
    error = "no linker driver found (looked for clang-22, clang, cc): install clang-22";
    return false;
  }
  SmallVector<StringRef> args = {driver, "-shared", "-fuse-ld=lld", "-o", soPath, objPath,
                                 "-lm", "-Wl,-z,now", "-Wl,--no-undefined"};
  if (openmp) args.push_back("-lomp");
  std::string msg;
  int rc = llvm::sys::ExecuteAndWait(driver, args, std::nullopt, {}, 0, 0, &msg);
  if (rc != 0) {
    // Retry with the default linker (ld.lld may be missing).
    args.erase(args.begin() + 2);
    rc = llvm::sys::ExecuteAndWait(driver, args, std::nullopt, {}, 0, 0, &msg);
  }
  if (rc != 0) {
    error = "linking " + soPath + " failed (" + driver + " exited with " + std::to_string(rc) +
            (msg.empty() ? "" : ": " + msg) + ")";
    return false;
  }
  return true;
}

} // namespace photon
} // namespace mlir
