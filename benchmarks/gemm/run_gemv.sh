#!/usr/bin/env bash
# Photon's decode matmul kernels (split-K GEMV) vs OpenBLAS sgemv with weights from DRAM.
#   benchmarks/gemm/run_gemv.sh BUILD_DIR [M] ["LABEL=pipeline options" ...]
# e.g. run_gemv.sh build 1 "pf8=lanes=16 openmp=true" "nopf=lanes=16 openmp=true prefetch-rows=0"
# Each labelled option set is compiled into its own kernel library; gemv_bench runs them and
# OpenBLAS round-robin in one process. Threads: OMP_NUM_THREADS (1 or 2) for both libraries.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$(cd "$1" && pwd)"
M="${2:-1}"
shift $(( $# >= 2 ? 2 : $# ))
[ $# -gt 0 ] || set -- "default=lanes=16 openmp=true" "no-prefetch=lanes=16 openmp=true prefetch-rows=0"
B=/usr/lib/llvm-22/bin
OUT="$BUILD/benchmarks/gemv"
mkdir -p "$OUT"
SHAPES="1728x640 640x1728 640x640 8192x640"
python3 "$HERE/gen_kernels.py" $SHAPES > "$OUT/mm.mlir"
SO_ARGS=()
for v in "$@"; do
  label="${v%%=*}"; opts="${v#*=}"
  "$BUILD/bin/photon-opt" "$OUT/mm.mlir" --photon-lower-to-llvm="$opts" -o "$OUT/$label.llvm.mlir"
  $B/mlir-translate --mlir-to-llvmir "$OUT/$label.llvm.mlir" -o "$OUT/$label.ll"
  LIBS=(-lm)
  case "$opts" in *openmp=true*|*openmp=1*) LIBS+=(-lomp) ;; esac
  $B/clang -O2 -march=native -shared -fPIC -Wno-override-module "$OUT/$label.ll" -o "$OUT/$label.so" "${LIBS[@]}"
  SO_ARGS+=(--so "$label=$OUT/$label.so")
done
$B/clang++ -O2 -std=c++17 "$HERE/gemv_bench.cpp" -o "$OUT/gemv_bench" -ldl
"$OUT/gemv_bench" "$M" $SHAPES "${SO_ARGS[@]}" --rounds "${ROUNDS:-7}"
