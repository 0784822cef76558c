#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh runs on a GPU machine (which has the NVIDIA driver and the
# CUDA toolkit but no package registry and no MLIR): the runtime's CUDA backend
# (libphoton_cuda.so), its driver tests, the end-to-end kernel tests (kernels compiled here
# by photon-gpu-lowering into sm_80 + sm_90 fatbins), the bandwidth probe, and gpu-check.sh.
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
TARGETS=(photon_cuda photon-cuda-tests photon-cuda-bandwidth)
if ninja -C "$BUILD" -t query photon-cuda-e2e-tests >/dev/null 2>&1; then
  TARGETS+=(photon-cuda-e2e-tests)
else
  echo "gpu-pack: warning: photon-cuda-e2e-tests is not configured (no ptxas/fatbinary here);" \
       "the pack has no kernel tests" >&2
fi
echo "gpu-pack: building ${TARGETS[*]}"
ninja -C "$BUILD" -j"$JOBS" "${TARGETS[@]}" >/dev/null

rm -rf "$PACK"
mkdir -p "$PACK/bin" "$PACK/lib"
cp "$BUILD/lib/libphoton_cuda.so" "$PACK/lib/"
for t in "${TARGETS[@]:1}"; do cp "$BUILD/unittests/$t" "$PACK/bin/"; done
cp "$ROOT/scripts/gpu-check.sh" "$PACK/"
{
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "packed: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "contents: ${TARGETS[*]}"
} > "$PACK/PACK_INFO"
SIZE=$(du -sm "$PACK" | cut -f1)
[ "$SIZE" -lt 64 ] || die "the pack is ${SIZE} MiB, over the 64 MiB a GPU run carries"
echo "gpu-pack: wrote $PACK (${SIZE} MiB); on the GPU machine run: bash $(basename "$PACK")/gpu-check.sh"
