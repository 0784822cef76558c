#!/usr/bin/env bash
# Installs everything photon needs (Debian 12 packages, optional ONNX Runtime for
# cross-checks), configures build/ and builds it. Idempotent: installed packages are
# skipped, an existing configuration is reused, ninja only rebuilds what changed.
#
# Environment:
#   PHOTON_BUILD_DIR   build directory (default: build)
#   PHOTON_JOBS        parallel build jobs (default: 2)
#   PHOTON_SKIP_NPM=1  do not try to install onnxruntime-node and the openai client
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${PHOTON_BUILD_DIR:-build}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
JOBS="${PHOTON_JOBS:-2}"
LLVM_DIR=/usr/lib/llvm-22

# Debian packages, one group per need.
PACKAGES=(
  # compiler toolchain: MLIR/LLVM 22, clang + lld, build tools
  libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools clang-22 lld-22
  ninja-build cmake libzstd-dev
  # ONNX import
  libprotobuf-dev protobuf-compiler libonnx-dev libonnx-testdata
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # JSON in the runtime and its tools (header-only)
  nlohmann-json3-dev
  # HTTP for photon-serve
  libcpp-httplib-dev
  # SentencePiece tokenizers: the runtime's (libsentencepiece) and the reference's
  libsentencepiece-dev python3-sentencepiece
  # OpenMP, libFuzzer and sanitizer runtimes
  libomp-22-dev libfuzzer-22-dev libclang-rt-22-dev
  # the PyTorch reference (system Python: /usr/bin/python3)
  python3-torch python3-onnx python3-numpy libopenblas0-pthread
  # benchmark plots (benchmarks/report.py)
  python3-matplotlib
)
# Node is optional (ONNX Runtime cross-checks). A node/npm from another source (for
# example NodeSource, whose nodejs ships npm) must not be replaced by Debian's.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

ONNXRUNTIME_NODE_VERSION=1.30.0
# The official OpenAI client, which drives photon-serve in test/serve (6.x runs on node 20).
OPENAI_NODE_VERSION=6.30.1

T0=$(date +%s)
STEP_T=$T0
say() { printf '[setup %4ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
step_done() {
  local now; now=$(date +%s)
  say "$1 done in $((now - STEP_T)) s"
  STEP_T=$now
}
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run '$*' (not root and no sudo); install the packages above by hand"
  fi
}

is_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# --- 1. Debian packages -----------------------------------------------------
say "checking ${#PACKAGES[@]} Debian packages"
MISSING=()
for p in "${PACKAGES[@]}"; do
  is_installed "$p" || MISSING+=("$p")
done
if [ "${#MISSING[@]}" -eq 0 ]; then
  say "all packages already installed"
else
  say "installing ${#MISSING[@]} missing package(s): ${MISSING[*]}"
  export DEBIAN_FRONTEND=noninteractive
  APT_OPTS=(-o DPkg::Lock::Timeout=600)
  # Update the index once, only when something must be installed.
  as_root apt-get "${APT_OPTS[@]}" update -q \
    || die "apt-get update failed (network or apt sources?)"
  as_root apt-get "${APT_OPTS[@]}" install -y -q --no-install-recommends "${MISSING[@]}" \
    || die "apt-get install failed for: ${MISSING[*]} (check the names with apt-cache policy)"
fi
step_done "packages"

# --- 2. ONNX Runtime for Node (optional) --------------------------------------
# Installed with --ignore-scripts: its postinstall tries to download and fails; the CPU
# library ships inside the package. Used only by optional cross-check tests.
NPM_DIR="$ROOT/.deps/npm"
ORT_PKG="$NPM_DIR/node_modules/onnxruntime-node/package.json"
if [ "${PHOTON_SKIP_NPM:-0}" = 1 ]; then
  say "skipping onnxruntime-node (PHOTON_SKIP_NPM=1)"
elif [ -f "$ORT_PKG" ] && grep -q "\"version\": \"$ONNXRUNTIME_NODE_VERSION\"" "$ORT_PKG"; then
  say "onnxruntime-node $ONNXRUNTIME_NODE_VERSION already in .deps/npm"
elif ! command -v npm >/dev/null 2>&1 || ! npm --version >/dev/null 2>&1; then
  say "warning: npm does not work; onnxruntime-node cross-checks will be skipped"
else
  say "installing onnxruntime-node@$ONNXRUNTIME_NODE_VERSION into .deps/npm"
  mkdir -p "$NPM_DIR"
  if ! timeout 900 npm install --prefix "$NPM_DIR" --ignore-scripts --no-audit --no-fund \
      --loglevel=error "onnxruntime-node@$ONNXRUNTIME_NODE_VERSION"; then
    say "warning: npm install onnxruntime-node failed; its cross-checks will be skipped"
  fi
fi
# --- 2b. the openai client for photon-serve's tests (optional: skipped without it) ---
OPENAI_PKG="$NPM_DIR/node_modules/openai/package.json"
if [ "${PHOTON_SKIP_NPM:-0}" = 1 ]; then
  say "skipping the openai npm client (PHOTON_SKIP_NPM=1)"
elif [ -f "$OPENAI_PKG" ] && grep -q "\"version\": \"$OPENAI_NODE_VERSION\"" "$OPENAI_PKG"; then
  say "openai $OPENAI_NODE_VERSION already in .deps/npm"
elif ! command -v npm >/dev/null 2>&1 || ! npm --version >/dev/null 2>&1; then
  say "warning: npm does not work; photon-serve's openai client tests will be skipped"
else
  say "installing openai@$OPENAI_NODE_VERSION into .deps/npm"
  mkdir -p "$NPM_DIR"
  if ! timeout 900 npm install --prefix "$NPM_DIR" --ignore-scripts --no-audit --no-fund \
      --loglevel=error "openai@$OPENAI_NODE_VERSION"; then
    say "warning: npm install openai failed; photon-serve's client tests will be skipped"
  fi
fi
step_done "npm"

# --- 3. configure -------------------------------------------------------------
if [ -f "$BUILD_DIR/build.ninja" ] && [ -f "$BUILD_DIR/CMakeCache.txt" ]; then
  say "reusing the configuration in $BUILD_DIR (ninja re-runs cmake when needed)"
else
  say "configuring $BUILD_DIR"
  cmake -G Ninja -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR="$LLVM_DIR/lib/cmake/mlir" -DLLVM_EXTERNAL_LIT="$LLVM_DIR/bin/lit" \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 -DLLVM_USE_LINKER=lld \
    > "$BUILD_DIR.configure.log" 2>&1 \
    || { cat "$BUILD_DIR.configure.log" >&2; die "cmake configure failed (log above)"; }
  rm -f "$BUILD_DIR.configure.log"
fi
step_done "configure"

# --- 4. build -----------------------------------------------------------------
say "building with ninja -j$JOBS"
ninja -C "$BUILD_DIR" -j"$JOBS" || die "build failed (see the errors above)"
step_done "build"
say "ready: tools in ${BUILD_DIR#"$ROOT"/}/bin, tests with: ctest --test-dir ${BUILD_DIR#"$ROOT"/}"
