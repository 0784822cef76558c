#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh runs on a GPU machine (which has the NVIDIA driver and the
# CUDA toolkit but no package registry and no MLIR): the runtime's CUDA backend
# (libphoton_cuda.so), its driver tests, the end-to-end kernel tests (kernels compiled here
# by photon-gpu-lowering into sm_80 + sm_90 fatbins), the bandwidth probe, and gpu-check.sh;
# and, for the runtime's CUDA execution path, every fixture compiled with
# --target cuda:sm_80,sm_90 (artifacts/), the fixtures' reference files (fixtures/: gen.json,
# tokens.npy, logits.npy), photon-run with libphoton, the runtime's fixture tests
# (photon-runtime-tests) and photon-gpu-compare, with what photon-run printed here for the
# CPU artifact of each fixture (expected/: greedy tokens per mode, teacher-forced logits).
# For decode speed, the mid-size benchmark models vanilla-mid and photon-mid
# (benchmarks/models/export_mid.py, random weights) compiled the same way (mid/), without
# their ~360 MB weight blobs: each comes with a photon-weightgen recipe (mid/*.recipe: the
# blob's index, its constant and small tensors, the mean and deviation of every large one)
# from which gpu-check.sh writes the blob again, bit for bit (mid/*.sha256, checked here by
# regenerating twice), and the cost-model figures of its roofline (mid/*.cost).
#
# usage: bash scripts/gpu-pack.sh [PACK_DIR]     (default: gpu-pack, ignored by git)
# Environment: PHOTON_GPU_PACK_MID=0 leaves the mid-size models out; PHOTON_MID_MODELS (default
# BUILD/gpu-pack-models) keeps their ONNX exports and CUDA artifacts between runs (exported with
# /usr/bin/python3 and torch when missing, recompiled when older than the export or
# photon-compile); PHOTON_MID_SEED (default 1234) seeds the generated weights;
# PHOTON_BUILD_LOCK=FILE runs the build under flock FILE.
# Then on the GPU machine, from the repository root (or wherever PACK_DIR was copied):
#   bash PACK_DIR/gpu-check.sh
# Run scripts/setup.sh (or at least configure build/) first; the CUDA toolkit's ptxas and
# fatbinary must be present here for the kernel tests (the build says when they are not).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${PHOTON_BUILD_DIR:-$ROOT/build}"
PACK="${1:-$ROOT/gpu-pack}"
JOBS="${PHOTON_JOBS:-2}"
die() { echo "gpu-pack: error: $*" >&2; exit 1; }

[ -f "$BUILD/build.ninja" ] || die "no configured build in $BUILD: run scripts/setup.sh first"
TARGETS=(photon_cuda photon-cuda-tests photon-cuda-bandwidth photon-runtime-tests photon-gpu-compare)
FIXTURES=(vanilla block photon-l1 photon-c22 photon-c44 photon-gqa photon-l3)
MID=(vanilla-mid photon-mid)
[ "${PHOTON_GPU_PACK_MID:-1}" = 0 ] && MID=()
MID_DIR="${PHOTON_MID_MODELS:-$BUILD/gpu-pack-models}"
MID_SEED="${PHOTON_MID_SEED:-1234}"
# The decode-speed runs: one prompt (64 byte tokens), alone and 64 times in one batch,
# MID_TOKENS new tokens each.
MID_PROMPT='PHOTON decodes on a GPU: weights and KV caches in device memory.'
MID_TOKENS=64
# The prompts photon-run generates from (one per line, batched) and the prompt whose
# teacher-forced logits it writes; gpu-check.sh uses the same (PACK/prompts.txt, logits_prompt.txt).
PROMPTS=$'The quick brown fox jumps over the lazy dog, then naps in the sun.\nabc\nPHOTON runs on the GPU now: weights and caches in device memory.'
LOGITS_PROMPT='The quick brown fox jumps over the lazy dog, then naps in the sun.'
MAX_TOKENS=48
if ninja -C "$BUILD" -t query photon-cuda-e2e-tests >/dev/null 2>&1; then
  TARGETS+=(photon-cuda-e2e-tests)
else
  echo "gpu-pack: warning: photon-cuda-e2e-tests is not configured (no ptxas/fatbinary here);" \
       "the pack has no kernel tests" >&2
fi
echo "gpu-pack: building ${TARGETS[*]} photon photon-run photon-compile photon-weightgen photon-fixture-artifacts"
# PHOTON_BUILD_LOCK: a lock file the build takes (flock) when several people share one build.
NINJA=(ninja)
[ -n "${PHOTON_BUILD_LOCK:-}" ] && NINJA=(flock "$PHOTON_BUILD_LOCK" ninja)
"${NINJA[@]}" -C "$BUILD" -j"$JOBS" "${TARGETS[@]}" photon photon-run photon-compile photon-weightgen \
  photon-fixture-artifacts >/dev/null

rm -rf "$PACK"
mkdir -p "$PACK/bin" "$PACK/lib"
cp "$BUILD/lib/libphoton_cuda.so" "$PACK/lib/"
for t in "${TARGETS[@]:1}"; do cp "$BUILD/unittests/$t" "$PACK/bin/"; done
cp "$ROOT/scripts/gpu-check.sh" "$PACK/"
# photon-run and the runtime it links (found through LD_LIBRARY_PATH=PACK/lib there).
cp "$BUILD/bin/photon-run" "$BUILD/bin/photon-weightgen" "$PACK/bin/"
cp -P "$BUILD"/lib/libphoton.so* "$BUILD/lib/libphoton_sentencepiece.so" "$PACK/lib/"

# The fixtures as CUDA artifacts, their reference files, and photon-run's output for the CPU
# artifacts (the expected values of the GPU run).
mkdir -p "$PACK/artifacts" "$PACK/fixtures" "$PACK/expected"
printf '%s\n' "$PROMPTS" > "$PACK/prompts.txt"
printf '%s' "$LOGITS_PROMPT" > "$PACK/logits_prompt.txt"
echo "$MAX_TOKENS" > "$PACK/max_tokens.txt"
RUN="$BUILD/bin/photon-run"
for fx in "${FIXTURES[@]}"; do
  src="$ROOT/test/fixtures/$fx"
  cpu="$BUILD/test/artifacts/$fx.photon"
  [ -f "$src/model.onnx" ] || die "no fixture $src/model.onnx"
  [ -d "$cpu" ] || die "no CPU artifact $cpu (ninja photon-fixture-artifacts)"
  echo "gpu-pack: photon-compile $fx --target cuda:sm_80,sm_90"
  # The stages' host code runs on the GPU machine's CPU, which is not this one: x86-64-v3
  # (AVX2 + FMA) instead of this host's features, or the loader refuses a CPU without them.
  "$BUILD/bin/photon-compile" "$src/model.onnx" --target cuda:sm_80,sm_90 --cpu x86-64-v3 \
    -o "$PACK/artifacts/$fx.photon" -q || die "photon-compile failed for $fx"
  mkdir -p "$PACK/fixtures/$fx"
  cp "$src/gen.json" "$src/tokens.npy" "$src/logits.npy" "$PACK/fixtures/$fx/"
  "$RUN" "$cpu" --prompt "$LOGITS_PROMPT" --logits-out "$PACK/expected/$fx.logits.npy" 2>/dev/null ||
    die "photon-run --logits-out failed on $cpu"
  for mode in hiergen recgen; do
    # RecGen exists for PHOTON models with two levels or more; a refusal means no entry.
    if ! "$RUN" "$cpu" --prompts-file "$PACK/prompts.txt" --mode "$mode" --max-tokens "$MAX_TOKENS" \
         --ignore-eos --json > "$PACK/expected/$fx.$mode.json" 2>/dev/null; then
      rm -f "$PACK/expected/$fx.$mode.json"
    fi
  done
  [ -f "$PACK/expected/$fx.hiergen.json" ] || die "photon-run failed on $cpu"
done

# The mid-size models: CUDA artifacts without weights.bin, a recipe and checksum for each.
if [ "${#MID[@]}" -gt 0 ]; then
  mkdir -p "$PACK/mid" "$MID_DIR"
  missing=()
  for m in "${MID[@]}"; do [ -f "$MID_DIR/$m/model.onnx" ] || missing+=("$m"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "gpu-pack: exporting ${missing[*]} (benchmarks/models/export_mid.py, random weights) to $MID_DIR"
    /usr/bin/python3 "$ROOT/benchmarks/models/export_mid.py" --out "$MID_DIR" --only "${missing[@]}" >/dev/null ||
      die "export_mid.py failed (it needs torch; or set PHOTON_GPU_PACK_MID=0)"
  fi
  printf '%s\n' "$MID_PROMPT" > "$PACK/mid/prompts-1.txt"
  for _ in $(seq 64); do printf '%s\n' "$MID_PROMPT"; done > "$PACK/mid/prompts-64.txt"
  echo "$MID_TOKENS" > "$PACK/mid/max_tokens.txt"
  printf '%s\n' "${MID[@]}" > "$PACK/mid/models.txt"
  WG="$BUILD/bin/photon-weightgen"
  for m in "${MID[@]}"; do
    art="$MID_DIR/$m-cuda.photon"
    if [ ! -f "$art/manifest.json" ] || [ "$art/manifest.json" -ot "$MID_DIR/$m/model.onnx" ] ||
       [ "$art/manifest.json" -ot "$BUILD/bin/photon-compile" ]; then
      echo "gpu-pack: photon-compile $m --target cuda:sm_80,sm_90 (a few minutes)"
      rm -rf "$art"
      "$BUILD/bin/photon-compile" "$MID_DIR/$m/model.onnx" --target cuda:sm_80,sm_90 --cpu x86-64-v3 \
        -o "$art" -q || die "photon-compile failed for $m"
    fi
    dst="$PACK/mid/$m.photon"
    mkdir -p "$dst"
    for f in "$art"/*; do [ "$(basename "$f")" = weights.bin ] || cp "$f" "$dst/"; done
    "$WG" recipe "$art/weights.bin" "$PACK/mid/$m.recipe" --seed "$MID_SEED" >/dev/null ||
      die "photon-weightgen recipe failed for $m"
    # Generate twice: the blob must not depend on the run (gpu-check.sh generates it a third
    # time, there, and compares with the checksum recorded here).
    tmp="$MID_DIR/$m.generated"
    mkdir -p "$tmp"
    "$WG" make "$PACK/mid/$m.recipe" "$tmp/a.bin" > "$tmp/a.txt" || die "photon-weightgen make failed for $m"
    "$WG" make "$PACK/mid/$m.recipe" "$tmp/b.bin" > "$tmp/b.txt" || die "photon-weightgen make failed for $m"
    cmp -s "$tmp/a.bin" "$tmp/b.bin" || die "photon-weightgen gave two different blobs for $m"
    sum=$(sha256sum "$tmp/a.bin" | cut -d' ' -f1)
    echo "$sum  $m.photon/weights.bin" > "$PACK/mid/$m.sha256"
    # The artifact's manifest names the generated blob's checksum (size and index unchanged).
    fnv=$(sed -n 's/.*\(fnv1a64:[0-9a-f]\{16\}\).*/\1/p' "$tmp/a.txt")
    [ -n "$fnv" ] || die "photon-weightgen printed no checksum for $m"
    sed -i "s/\"checksum\": \"fnv1a64:[0-9a-f]*\"/\"checksum\": \"$fnv\"/" "$dst/manifest.json"
    grep -q "\"checksum\": \"$fnv\"" "$dst/manifest.json" || die "could not set the checksum of $m"
    [ "$(stat -c %s "$tmp/a.bin")" = "$(stat -c %s "$art/weights.bin")" ] || die "$m: blob size changed"
    rm -rf "$tmp"
    # The cost model's figures for the roofline (gpu-check.sh has no JSON parser): weight bytes
    # per generated token, and per cache level its bytes and tokens per unit and its modes.
    /usr/bin/python3 - "$dst/manifest.json" > "$PACK/mid/$m.cost" <<'PY' || die "no cost model in $m's manifest"
import json, sys
m = json.load(open(sys.argv[1]))
print("family", m["model"]["family"])
print("weight_bytes_per_token", m["cost_model"]["weight_bytes_per_token"])
for c in m["caches"]:
    print("cache", c["level"], c["bytes_per_unit"], c["tokens_per_unit"], ",".join(c["modes"]) or "all")
PY
    echo "gpu-pack: $m: recipe $(stat -c %s "$PACK/mid/$m.recipe") bytes for a $(stat -c %s "$art/weights.bin")-byte blob (sha256 $sum)"
  done
fi
{
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "packed: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "contents: ${TARGETS[*]} photon-run photon-weightgen; CUDA artifacts: ${FIXTURES[*]}${MID:+; mid-size (weights from seed $MID_SEED): ${MID[*]}}"
} > "$PACK/PACK_INFO"
SIZE=$(du -sm "$PACK" | cut -f1)
[ "$SIZE" -lt 64 ] || die "the pack is ${SIZE} MiB, over the 64 MiB a GPU run carries"
echo "gpu-pack: wrote $PACK (${SIZE} MiB); on the GPU machine run: bash $(basename "$PACK")/gpu-check.sh"
