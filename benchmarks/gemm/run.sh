#!/usr/bin/env bash
# Photon's matmul kernels vs OpenBLAS sgemm on vanilla-mid's prefill shapes.
#   benchmarks/gemm/run.sh BUILD_DIR [M] [pipeline options, e.g. "lanes=16 openmp=true"]
# BASELINE=other.so: also time that kernel library (e.g. an earlier build's mm.so) in the
# same round-robin.
# Threads: OMP_NUM_THREADS (1 or 2) for both libraries; KMP_BLOCKTIME=0 and
# OPENBLAS_THREAD_TIMEOUT=4 keep idle threads from spinning between the interleaved calls.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$(cd "$1" && pwd)"
M="${2:-512}"
OPTS="${3:-lanes=16}"
B=/usr/lib/llvm-22/bin
OUT="$BUILD/benchmarks/gemm"
mkdir -p "$OUT"
SHAPES="1728x640 640x1728 640x640 8192x640"
python3 "$HERE/gen_kernels.py" $SHAPES > "$OUT/mm.mlir"
"$BUILD/bin/photon-opt" "$OUT/mm.mlir" --photon-lower-to-llvm="$OPTS" -o "$OUT/mm.llvm.mlir"
$B/mlir-translate --mlir-to-llvmir "$OUT/mm.llvm.mlir" -o "$OUT/mm.ll"
LIBS=(-lm)
case "$OPTS" in *openmp=true*|*openmp=1*) LIBS+=(-lomp) ;; esac
$B/clang -O2 -march=native -shared -fPIC -Wno-override-module "$OUT/mm.ll" -o "$OUT/mm.so" "${LIBS[@]}"
$B/clang++ -O2 -std=c++17 "$HERE/gemm_bench.cpp" -o "$OUT/gemm_bench" -ldl
KMP_BLOCKTIME=${KMP_BLOCKTIME:-0} OPENBLAS_THREAD_TIMEOUT=${OPENBLAS_THREAD_TIMEOUT:-4} \
  "$OUT/gemm_bench" "$OUT/mm.so" "$M" $SHAPES --rounds "${ROUNDS:-5}" \
  ${BASELINE:+--baseline "$BASELINE"}
