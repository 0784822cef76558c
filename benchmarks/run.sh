#!/bin/sh
# Regenerate benchmarks/RESULTS.md and benchmarks/plots/ end to end (docs/benchmarks.md).
#
# usage: benchmarks/run.sh [BUILD_DIR] [WORK_DIR]
#   BUILD_DIR  a configured build with photon-compile and photon-bench (default build)
#   WORK_DIR   models, artifacts and JSON (default BUILD_DIR/bench; ~2 GB; never committed)
# Environment: SUITES (default "paper sweep roofline"), PEERS (default torch,ort,llama; empty
# skips them), BENCH_ARGS (extra photon-bench arguments, e.g. --lengths to scale PF/DE down on
# a slow machine), PEER_ARGS (extra run_peers.py arguments, e.g. --scale), SKIP_EXPORT=1 to
# reuse the exported models.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
WORK=${2:-$BUILD/bench}
PY=/usr/bin/python3
SUITES=${SUITES:-paper sweep roofline}
PEERS=${PEERS-torch,ort,llama}
BENCH_ARGS=${BENCH_ARGS:-}
PEER_ARGS=${PEER_ARGS:-}
mkdir -p "$WORK/models" "$WORK/json"
for t in photon-compile photon-bench; do
  [ -x "$BUILD/bin/$t" ] || { echo "run.sh: $BUILD/bin/$t missing: ninja -C $BUILD $t" >&2; exit 2; }
done

# 1. mid-size models (random weights) and their artifacts
if [ "${SKIP_EXPORT:-0}" != 1 ] || [ ! -f "$WORK/models/photon-mid/model.onnx" ]; then
  "$PY" "$ROOT/benchmarks/models/export_mid.py" --out "$WORK/models"
fi
for m in vanilla-mid block-mid photon-mid; do
  a="$WORK/models/$m.photon"
  if [ ! -f "$a/manifest.json" ] || [ "$a/manifest.json" -ot "$WORK/models/$m/model.onnx" ]; then
    echo "== photon-compile $m"
    "$BUILD/bin/photon-compile" "$WORK/models/$m/model.onnx" -o "$a" --max-context 40960
  fi
done

# 2. peers' inputs (step export, GGUF) and llama.cpp
if [ -n "$PEERS" ]; then
  case "$PEERS" in *llama*)
    "$ROOT/benchmarks/peers/build_llama_cpp.sh" "$ROOT/.deps/llama" "${LLAMA_JOBS:-1}" ;;
  esac
  [ -d "$ROOT/.deps/npm/node_modules/onnxruntime-node" ] || \
    (mkdir -p "$ROOT/.deps/npm" && cd "$ROOT/.deps/npm" && npm install --ignore-scripts onnxruntime-node@1.30.0)
  [ -f "$WORK/models/vanilla-mid/step.onnx" ] && [ -f "$WORK/models/vanilla-mid/model-f16.gguf" ] || \
    "$PY" "$ROOT/benchmarks/peers/export_peers.py" --model "$WORK/models/vanilla-mid" \
      --gguf-py "$ROOT/.deps/llama/llama.cpp/gguf-py"
fi

# 3. measurements
MODELS="--model $WORK/models/vanilla-mid.photon --model $WORK/models/block-mid.photon --model $WORK/models/photon-mid.photon"
for s in $SUITES; do
  echo "== photon-bench --suite $s"
  # shellcheck disable=SC2086
  "$BUILD/bin/photon-bench" --suite "$s" $MODELS --json "$WORK/json/$s.json" -v $BENCH_ARGS || true
done
if [ -n "$PEERS" ]; then
  echo "== peers"
  "$PY" "$ROOT/benchmarks/peers/run_peers.py" --model "$WORK/models/vanilla-mid" --peers "$PEERS" \
    --out "$WORK/json/peers.json" $PEER_ARGS || true
fi

# 4. report
ARGS="--paper $WORK/json/paper.json"
[ -f "$WORK/json/sweep.json" ] && ARGS="$ARGS --sweep $WORK/json/sweep.json"
[ -f "$WORK/json/roofline.json" ] && ARGS="$ARGS --roofline $WORK/json/roofline.json"
[ -f "$WORK/json/peers.json" ] && ARGS="$ARGS --peers $WORK/json/peers.json"
# shellcheck disable=SC2086
"$PY" "$ROOT/benchmarks/report.py" $ARGS --out "$ROOT/benchmarks/RESULTS.md" --plots "$ROOT/benchmarks/plots"
