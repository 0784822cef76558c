#!/bin/sh
# Rebuild the llama.cpp peer (CPU only) from the source that npm's node-llama-cpp ships as a
# git bundle (llama/gitRelease.bundle). Nothing from llama.cpp is committed.
#
# usage: benchmarks/peers/build_llama_cpp.sh [WORKDIR] [JOBS]
#   WORKDIR  default .deps/llama (gitignored); receives node-llama-cpp-*.tgz, the clone in
#            WORKDIR/llama.cpp and the build in WORKDIR/llama.cpp/build
#   JOBS     parallel compile jobs (default 1: the machine is shared)
# Produces WORKDIR/llama.cpp/build/bin/{llama-bench,llama-batched-bench,llama-quantize,llama-logits} and leaves the
# bundled gguf-py at WORKDIR/llama.cpp/gguf-py.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-$ROOT/.deps/llama}
JOBS=${2:-1}
VERSION=${NODE_LLAMA_CPP_VERSION:-3.22.1}
mkdir -p "$WORK"
cd "$WORK"
if [ ! -f "node-llama-cpp-$VERSION.tgz" ]; then
  npm pack "node-llama-cpp@$VERSION" >/dev/null
fi
if [ ! -f package/llama/gitRelease.bundle ]; then
  tar xzf "node-llama-cpp-$VERSION.tgz" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
fi
if [ ! -d llama.cpp/.git ]; then
  git clone --quiet package/llama/gitRelease.bundle llama.cpp
fi
echo "llama.cpp: $(cat package/llama/llama.cpp.info.json)"
echo "commit: $(git -C llama.cpp rev-parse HEAD)"
nice -n 19 cmake -S llama.cpp -B llama.cpp/build -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_OPENMP=ON \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF -DBUILD_SHARED_LIBS=OFF \
  >cmake.log 2>&1 || { tail -30 cmake.log; exit 1; }
nice -n 19 cmake --build llama.cpp/build -j "$JOBS" --target llama-bench llama-batched-bench llama-quantize
# llama-logits (benchmarks/peers/llama_logits.cpp): greedy tokens and logits for the check that
# llama.cpp runs the same model (check_llama.py); one file against the libraries just built.
B=llama.cpp/build
SRC="$ROOT/benchmarks/peers/llama_logits.cpp"
if [ ! -x $B/bin/llama-logits ] || [ "$SRC" -nt $B/bin/llama-logits ] || [ $B/src/libllama.a -nt $B/bin/llama-logits ]; then
  nice -n 19 "${CXX:-c++}" -O2 -std=c++17 -Illama.cpp/include -Illama.cpp/ggml/include "$SRC" -o $B/bin/llama-logits \
    $B/src/libllama.a $B/ggml/src/libggml.a $B/ggml/src/libggml-cpu.a $B/ggml/src/libggml-base.a \
    -fopenmp -lpthread -ldl -lm
fi
ls -l $B/bin/llama-bench $B/bin/llama-batched-bench $B/bin/llama-logits
