#!/bin/sh
# Regenerate benchmarks/RESULTS.md and benchmarks/plots/ end to end (docs/benchmarks.md).
#
# usage: benchmarks/run.sh [BUILD_DIR] [WORK_DIR]
#   BUILD_DIR  a configured build with photon-compile and photon-bench (default build)
#   WORK_DIR   models, artifacts and JSON (default BUILD_DIR/bench; ~2 GB; never committed)
# Environment: SUITES (default "paper sweep roofline"), PEERS (default torch,ort,llama; empty
# skips them; they run inside the paper suite, `photon-bench --peers`, with its lengths),
# BENCH_ARGS (extra photon-bench arguments, e.g. --lengths to scale PF/DE down on a slow
# machine), PAPER_ARGS / SWEEP_ARGS / ROOFLINE_ARGS (extra arguments of one suite),
# PEER_ARGS (extra run_peers.py arguments, passed through --peer-args), LLAMA_JOBS (parallel
# compile jobs of the llama.cpp build, default 1), SKIP_EXPORT=1 to reuse the exported models,
# NOTES (a markdown file of the run's conditions for RESULTS.md), THREADS (compute threads of
# the --openmp vanilla artifact in the roofline suite, default 2).
# The llama.cpp build (benchmarks/peers/build_llama_cpp.sh, niced) is part of this script,
# never of the test command: it takes tens of minutes on a 2-core machine.
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
    nice -n 19 "$BUILD/bin/photon-compile" "$WORK/models/$m/model.onnx" -o "$a" --max-context 40960
  fi
done
# the vanilla model with OpenMP kernels, for the 2-thread decode of the roofline suite
a="$WORK/models/vanilla-mid-openmp.photon"
if [ ! -f "$a/manifest.json" ] || [ "$a/manifest.json" -ot "$WORK/models/vanilla-mid/model.onnx" ]; then
  echo "== photon-compile vanilla-mid --openmp"
  nice -n 19 "$BUILD/bin/photon-compile" "$WORK/models/vanilla-mid/model.onnx" -o "$a" --max-context 40960 --openmp
fi

# 2. peers' inputs (step export, GGUF) and llama.cpp
if [ -n "$PEERS" ]; then
  case "$PEERS" in *llama*)
    nice -n 19 "$ROOT/benchmarks/peers/build_llama_cpp.sh" "$ROOT/.deps/llama" "${LLAMA_JOBS:-1}" ;;
  esac
  [ -d "$ROOT/.deps/npm/node_modules/onnxruntime-node" ] || \
    (mkdir -p "$ROOT/.deps/npm" && cd "$ROOT/.deps/npm" && npm install --ignore-scripts onnxruntime-node@1.30.0)
  [ -f "$WORK/models/vanilla-mid/step.onnx" ] && [ -f "$WORK/models/vanilla-mid/model-f16.gguf" ] && \
    [ "$WORK/models/vanilla-mid/model-f16.gguf" -nt "$WORK/models/vanilla-mid/state.pt" ] || \
    nice -n 19 "$PY" "$ROOT/benchmarks/peers/export_peers.py" --model "$WORK/models/vanilla-mid" \
      --gguf-py "$ROOT/.deps/llama/llama.cpp/gguf-py"
  case "$PEERS" in *llama*)
    # llama.cpp runs the same weights: its greedy tokens and logits against the reference's
    # (and photon's artifact); redone when the GGUF or the artifact changed.
    C="$WORK/json/llama_check.json"
    if [ ! -f "$C" ] || [ "$WORK/models/vanilla-mid/model-f32.gguf" -nt "$C" ] || \
       [ "$WORK/models/vanilla-mid.photon/manifest.json" -nt "$C" ]; then
      nice -n 19 "$PY" "$ROOT/benchmarks/peers/check_llama.py" --model "$WORK/models/vanilla-mid" \
        --artifact "$WORK/models/vanilla-mid.photon" --lib "$BUILD/lib" --out "$C" || \
        echo "run.sh: the llama.cpp check failed (see above)" >&2
    fi ;;
  esac
fi

# 3. measurements
MODELS="--model $WORK/models/vanilla-mid.photon --model $WORK/models/block-mid.photon --model $WORK/models/photon-mid.photon"
for s in $SUITES; do
  echo "== photon-bench --suite $s ($(cut -d' ' -f1-3 /proc/loadavg))"
  case "$s" in
    paper) EXTRA=${PAPER_ARGS:-}
      [ -n "$PEERS" ] && EXTRA="$EXTRA --peers $PEERS --peer-model $WORK/models/vanilla-mid" ;;
    sweep) EXTRA=${SWEEP_ARGS:-} ;;
    roofline) EXTRA=${ROOFLINE_ARGS:-} ;;
    *) EXTRA= ;;
  esac
  # The JSON is rewritten after every run: a stopped suite keeps what it measured.
  # shellcheck disable=SC2086
  "$BUILD/bin/photon-bench" --suite "$s" $MODELS --json "$WORK/json/$s.json" -v $BENCH_ARGS $EXTRA \
    ${PEER_ARGS:+--peer-args "$PEER_ARGS"} 2>&1 | tee "$WORK/json/$s.log" || true
  if [ "$s" = roofline ]; then
    echo "== photon-bench --suite roofline, vanilla-mid --openmp on ${THREADS:-2} threads"
    # shellcheck disable=SC2086
    "$BUILD/bin/photon-bench" --suite roofline --model "$WORK/models/vanilla-mid-openmp.photon" \
      --threads "${THREADS:-2}" --json "$WORK/json/roofline-openmp.json" -v $BENCH_ARGS $EXTRA \
      2>&1 | tee "$WORK/json/roofline-openmp.log" || true
  fi
done

# 4. report
ARGS="--paper $WORK/json/paper.json"
[ -f "$WORK/json/sweep.json" ] && ARGS="$ARGS --sweep $WORK/json/sweep.json"
[ -f "$WORK/json/roofline.json" ] && ARGS="$ARGS --roofline $WORK/json/roofline.json"
[ -f "$WORK/json/roofline-openmp.json" ] && ARGS="$ARGS --roofline-openmp $WORK/json/roofline-openmp.json"
[ -f "$WORK/json/llama_check.json" ] && ARGS="$ARGS --llama-check $WORK/json/llama_check.json"
# NOTES: a markdown file with the run's conditions (load, what was scaled), printed in RESULTS.md.
[ -n "${NOTES:-}" ] && ARGS="$ARGS --notes $NOTES"
# shellcheck disable=SC2086
"$PY" "$ROOT/benchmarks/report.py" $ARGS --out "$ROOT/benchmarks/RESULTS.md" --plots "$ROOT/benchmarks/plots"
