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
#
# usage: bash scripts/gpu-pack.sh [PACK_DIR]     (default: gpu-pack, ignored by git)
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
echo "gpu-pack: building ${TARGETS[*]} photon photon-run photon-compile photon-fixture-artifacts"
ninja -C "$BUILD" -j"$JOBS" "${TARGETS[@]}" photon photon-run photon-compile \
  photon-fixture-artifacts >/dev/null

rm -rf "$PACK"
mkdir -p "$PACK/bin" "$PACK/lib"
cp "$BUILD/lib/libphoton_cuda.so" "$PACK/lib/"
for t in "${TARGETS[@]:1}"; do cp "$BUILD/unittests/$t" "$PACK/bin/"; done
cp "$ROOT/scripts/gpu-check.sh" "$PACK/"
# photon-run and the runtime it links (found through LD_LIBRARY_PATH=PACK/lib there).
cp "$BUILD/bin/photon-run" "$PACK/bin/"
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
{
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "packed: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "contents: ${TARGETS[*]} photon-run; CUDA artifacts: ${FIXTURES[*]}"
} > "$PACK/PACK_INFO"
SIZE=$(du -sm "$PACK" | cut -f1)
[ "$SIZE" -lt 64 ] || die "the pack is ${SIZE} MiB, over the 64 MiB a GPU run carries"
echo "gpu-pack: wrote $PACK (${SIZE} MiB); on the GPU machine run: bash $(basename "$PACK")/gpu-check.sh"
