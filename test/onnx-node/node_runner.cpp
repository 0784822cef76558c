//===- node_runner.cpp - ONNX node tests through photon-import -----------===//
//
// Runs photon-import over the ONNX project's node tests (Debian's libonnx-testdata:
// <dir>/<case>/model.onnx). Import-only for now: a case passes when the model imports to
// upstream MLIR and the module verifies. Each case is classified:
//   pass         imported and verified
//   unsupported  the model uses an op without a converter (listed by the importer's scan)
//   variant      a converter exists but reports an unsupported feature ("unsupported: ...",
//                e.g. an element type or a non-constant axes input)
//   FAIL         anything else: the importer rejected a valid model or built invalid IR
// Exit status 1 if any case FAILs.
//
//   photon-onnx-node-tests [--data DIR] [--filter SUBSTR] [--results FILE.tsv]
//                          [--markdown docs/supported-ops.md] [-v]
//
//===----------------------------------------------------------------------===//

#include "photon/Import/Importer.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

// onnx_pb.h defines ONNX_API and includes onnx/onnx-ml.pb.h.
#include "onnx/onnx_pb.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

std::string snake(const std::string &op) {
  std::string s;
  for (size_t i = 0; i < op.size(); ++i) {
    char c = op[i];
    if (isupper((unsigned char)c)) {
      bool prevLower = i > 0 && (islower((unsigned char)op[i - 1]) || isdigit((unsigned char)op[i - 1]));
      bool nextLower = i + 1 < op.size() && islower((unsigned char)op[i + 1]);
      if (i > 0 && (prevLower || (nextLower && isupper((unsigned char)op[i - 1])))) s += '_';
      s += (char)tolower((unsigned char)c);
    } else {
      s += c;
    }
  }
  return s;
}

struct Case {
  std::string name, op, status, detail;
};

std::string firstLine(const std::string &s) {
  size_t n = s.find('\n');
  return n == std::string::npos ? s : s.substr(0, n);
}

} // namespace

int main(int argc, char **argv) {
  std::string data = "/usr/share/libonnx-testdata/data/node", filter, results, markdown;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    llvm::StringRef a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--data") data = next();
    else if (a == "--filter") filter = next();
    else if (a == "--results") results = next();
    else if (a == "--markdown") markdown = next();
    else if (a == "-v") verbose = true;
    else if (a == "--help" || a == "-h") {
      llvm::outs() << "usage: photon-onnx-node-tests [--data DIR] [--filter SUBSTR] "
                      "[--results FILE.tsv] [--markdown FILE.md] [-v]\n"
                      "Imports every ONNX node test (default DIR " << data
                   << ") with photon-import and classifies each case as pass, unsupported "
                      "(op without converter), variant (unsupported feature of a supported "
                      "op) or FAIL. Exits 1 if any case fails.\n";
      return 0;
    } else {
      llvm::errs() << "unknown argument '" << a << "' (see --help)\n";
      return 2;
    }
  }
  if (!llvm::sys::fs::is_directory(data)) {
    llvm::errs() << "node-test data not found at " << data
                 << " (apt-get install libonnx-testdata, or pass --data)\n";
    return 77;
  }
  std::vector<std::string> dirs;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(data, ec), end; it != end && !ec; it.increment(ec)) {
    std::string p = it->path();
    std::string name = llvm::sys::path::filename(p).str();
    if (!filter.empty() && name.find(filter) == std::string::npos) continue;
    if (llvm::sys::fs::exists(p + "/model.onnx")) dirs.push_back(p);
  }
  std::sort(dirs.begin(), dirs.end());

  auto t0 = std::chrono::steady_clock::now();
  mlir::MLIRContext ctx(mlir::MLIRContext::Threading::DISABLED);
  mlir::photon::loadImportDialects(ctx);
  std::vector<Case> cases;
  std::map<std::string, std::set<std::string>> unsupportedOps; // op -> cases
  for (const std::string &d : dirs) {
    Case c;
    c.name = llvm::sys::path::filename(d).str();
    std::string path = d + "/model.onnx";
    std::string diag;
    mlir::ScopedDiagnosticHandler h(&ctx, [&](mlir::Diagnostic &dg) {
      if (dg.getSeverity() == mlir::DiagnosticSeverity::Error) {
        if (!diag.empty()) diag += " | ";
        diag += dg.str();
      }
      return mlir::success();
    });
    // The op this case tests: the node op type whose snake_case name prefixes the case name.
    {
      onnx::ModelProto m;
      std::ifstream f(path, std::ios::binary);
      if (m.ParseFromIstream(&f)) {
        std::string rest = c.name.substr(5);
        size_t best = 0;
        for (const auto &n : m.graph().node()) {
          std::string s = snake(n.op_type());
          if (rest.compare(0, s.size(), s) == 0 && s.size() > best) {
            best = s.size();
            c.op = n.op_type();
          }
        }
        if (c.op.empty() && m.graph().node_size()) c.op = m.graph().node(0).op_type();
      }
    }
    std::vector<mlir::photon::UnsupportedOp> un;
    if (!mlir::photon::listUnsupportedOps(ctx, path, un)) {
      c.status = "FAIL";
      c.detail = firstLine(diag);
    } else if (!un.empty()) {
      c.status = "unsupported";
      std::set<std::string> ops;
      for (const auto &u : un) ops.insert(u.opType);
      for (const auto &o : ops) {
        c.detail += (c.detail.empty() ? "" : ",") + o;
        unsupportedOps[o].insert(c.name);
      }
    } else {
      diag.clear();
      mlir::photon::ImportOptions opts;
      opts.emit = mlir::photon::ImportEmit::Upstream;
      auto mod = mlir::photon::importOnnxFile(ctx, path, opts);
      if (mod) {
        c.status = "pass";
      } else if (diag.find("unsupported") != std::string::npos) {
        c.status = "variant";
        size_t p = diag.find("unsupported");
        c.detail = firstLine(diag.substr(p));
      } else {
        c.status = "FAIL";
        c.detail = firstLine(diag);
      }
    }
    if (verbose || c.status == "FAIL")
      llvm::outs() << c.status << "\t" << c.name << "\t" << c.detail << "\n";
    cases.push_back(std::move(c));
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::map<std::string, int> count;
  for (const auto &c : cases) ++count[c.status];
  llvm::outs() << "ONNX node tests: " << cases.size() << " cases, " << count["pass"]
               << " pass, " << count["variant"] << " unsupported variants, "
               << count["unsupported"] << " use unsupported ops, " << count["FAIL"]
               << " FAIL (" << llvm::format("%.1f", secs) << " s)\n";

  if (!results.empty()) {
    std::ofstream o(results);
    for (const auto &c : cases) o << c.status << "\t" << c.op << "\t" << c.name << "\t" << c.detail << "\n";
  }
  if (!markdown.empty()) {
    struct OpRow {
      int pass = 0, variant = 0, fail = 0;
      std::set<std::string> reasons;
    };
    std::map<std::string, OpRow> rows;
    for (const auto &[op, since] : mlir::photon::supportedOnnxOps()) rows[op];
    for (const auto &c : cases) {
      if (c.status == "unsupported" || !rows.count(c.op)) continue;
      auto &r = rows[c.op];
      if (c.status == "pass") ++r.pass;
      else if (c.status == "variant") {
        ++r.variant;
        std::string why = c.detail;
        size_t p = why.find("unsupported: ");
        if (p != std::string::npos) why = why.substr(p + 13);
        if (why.size() > 80) why = why.substr(0, 77) + "...";
        r.reasons.insert(why);
      } else ++r.fail;
    }
    std::map<std::string, int64_t> since;
    for (const auto &[op, s] : mlir::photon::supportedOnnxOps()) since[op] = s;
    std::ofstream o(markdown);
    o << "# ONNX ops supported by photon-import\n\n"
      << "Generated by `photon-onnx-node-tests --markdown docs/supported-ops.md` (test/onnx-node)"
      << " from the ONNX project's node tests in Debian's libonnx-testdata. Do not edit by hand.\n\n"
      << "Import-only: a case passes when its model imports to upstream MLIR (tensor / linalg / "
      << "arith / math) and verifies. Opsets up to " << mlir::photon::kMaxOpset
      << ", IR version up to " << mlir::photon::kMaxIrVersion << ".\n\n"
      << "Totals: " << cases.size() << " node-test cases; " << count["pass"] << " pass; "
      << count["variant"] << " use a feature a supported op does not handle yet (listed per op);"
      << " " << count["unsupported"] << " use ops without a converter; " << count["FAIL"]
      << " fail.\n\n"
      << "| op | from opset | node tests passed | unsupported variants | failed | not handled |\n"
      << "|---|---|---|---|---|---|\n";
    for (const auto &[op, r] : rows) {
      std::string reasons;
      for (const auto &x : r.reasons) reasons += (reasons.empty() ? "" : "; ") + x;
      for (char &ch : reasons)
        if (ch == '|') ch = '/';
      o << "| " << op << " | " << since[op] << " | " << r.pass << " | " << r.variant << " | "
        << r.fail << " | " << reasons << " |\n";
    }
    o << "\n## Ops in the node tests without a converter\n\n"
      << "Importing a model that uses one of these fails before any conversion with one error "
         "that lists every such node (op, domain, opset, node name).\n\n";
    std::string line;
    for (const auto &[op, cs] : unsupportedOps) {
      if (rows.count(op)) continue;
      line += (line.empty() ? "" : ", ") + op + " (" + std::to_string(cs.size()) + ")";
    }
    o << line << "\n";
  }
  return count["FAIL"] ? 1 : 0;
}
