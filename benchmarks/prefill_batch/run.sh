#!/bin/sh
# Batched prefill against one sequence per call (docs/runtime.md, "Batched prefill"), on the
# bundled small models: builds prefill_batch_bench.cpp against the built runtime
# (build/runtime/libphoton_runtime.a), compiles reference/models/small-{photon,vanilla} into
# build/prefill-batch/ when missing, and prints one line per cell (medians of REPEATS runs,
# default 5) with the CPU and the load average before and after.
#   benchmarks/prefill_batch/run.sh [REPEATS]
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B="$ROOT/build"
OUT="$B/prefill-batch"
REPS=${1:-5}
mkdir -p "$OUT"
CUDA_LIB=""
[ -f "$B/lib/libphoton_cuda.so" ] && CUDA_LIB="$B/lib/libphoton_cuda.so -Wl,-rpath,$B/lib"
# shellcheck disable=SC2086
clang++-22 -O2 -std=gnu++17 -I"$ROOT/runtime/include" -I"$B/runtime/include" -I"$ROOT/runtime/src" \
  "$ROOT/benchmarks/prefill_batch/prefill_batch_bench.cpp" "$B/runtime/libphoton_runtime.a" \
  $CUDA_LIB -ldl -lpthread -fuse-ld=lld -o "$OUT/prefill_batch_bench"
for m in photon vanilla; do
  [ -f "$OUT/small-$m.photon/manifest.json" ] || "$B/bin/photon-compile" \
    "$ROOT/reference/models/small-$m/model.onnx" \
    --tokenizer "$ROOT/reference/models/small-$m/tokenizer.model" --target cpu -q -o "$OUT/small-$m.photon"
done
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for spec in "vanilla hiergen" "photon hiergen" "photon recgen"; do
  set -- $spec
  for n in 1 4 16 64; do
    for lens in "4 4" "8 8" "32 32" "16 64"; do
      # shellcheck disable=SC2086
      "$OUT/prefill_batch_bench" "$OUT/small-$1.photon" "$2" "$n" $lens "$REPS"
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
