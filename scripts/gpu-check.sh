#!/usr/bin/env bash
# Runs on a machine with an NVIDIA GPU, from a folder made by scripts/gpu-pack.sh (this
# script is copied into it): the device's memory bandwidth, the runtime CUDA backend's
# driver tests and the end-to-end kernel tests (compiled kernels vs a CPU reference), the
# fixtures' CUDA artifacts through the runtime (the fixture tests: greedy HierGen/RecGen
# tokens equal gen.json, teacher-forced logits within its tolerance) and through photon-run
# (tokens equal and logits close to photon-run's output for the CPU artifact, recorded when
# the pack was made), then one table. Needs only the driver (libcuda.so.1); takes well under
# 10 minutes.
#
# usage: bash gpu-check.sh            (exit 0: all passed; 1: a failure; 77: no usable GPU)
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export LD_LIBRARY_PATH="$HERE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ -x "$HERE/bin/photon-cuda-bandwidth" ] || {
  echo "gpu-check: error: $HERE has no bin/photon-cuda-bandwidth; make the pack with scripts/gpu-pack.sh" >&2
  exit 1
}
[ -f "$HERE/PACK_INFO" ] && sed 's/^/gpu-check: /' "$HERE/PACK_INFO"
command -v nvidia-smi >/dev/null 2>&1 &&
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/gpu-check: gpu: /'

BW_JSON=$(timeout 120 "$HERE/bin/photon-cuda-bandwidth" --bytes 1073741824 --repeats 20)
BW_RC=$?
echo "gpu-check: bandwidth: $BW_JSON"
if [ "$BW_RC" -eq 77 ]; then
  echo "gpu-check: no usable GPU here; nothing else is run" >&2
  exit 77
fi

declare -A RESULT
FAILED=0
for t in photon-cuda-tests photon-cuda-e2e-tests; do
  if [ ! -x "$HERE/bin/$t" ]; then RESULT[$t]="not in the pack"; continue; fi
  LOG="$HERE/$t.log"
  timeout 300 "$HERE/bin/$t" --gtest_brief=0 >"$LOG" 2>&1
  rc=$?
  # gtest's summary lines: "[  PASSED  ] 3 tests.", "[  SKIPPED ] 1 test, listed below:"
  count() { sed -n "s/^\[  $1 *\] \([0-9]*\) tests\?[,.].*/\1/p" "$LOG" | tail -1; }
  passed=$(count PASSED); failed=$(count FAILED); skipped=$(count SKIPPED)
  passed=${passed:-0}; failed=${failed:-0}; skipped=${skipped:-0}
  RESULT[$t]="rc $rc: $passed passed, $failed failed, $skipped skipped"
  if [ "$rc" -ne 0 ]; then FAILED=1; grep -E '^\[  FAILED  \]|Failure|error' "$LOG" | head -20; fi
done

# The fixtures' CUDA artifacts end to end (runtime/src/device.h: CudaBackend).
declare -a FX_ROWS
if [ -d "$HERE/artifacts" ]; then
  t=photon-runtime-tests
  LOG="$HERE/fixtures-e2e.log"
  PHOTON_E2E_ARTIFACTS="$HERE/artifacts" PHOTON_FIXTURES_DIR="$HERE/fixtures" \
    timeout 300 "$HERE/bin/$t" --gtest_filter='Fixtures/E2E.*' --gtest_brief=0 >"$LOG" 2>&1
  rc=$?
  count() { sed -n "s/^\[  $1 *\] \([0-9]*\) tests\?[,.].*/\1/p" "$LOG" | tail -1; }
  passed=$(count PASSED); failed=$(count FAILED); skipped=$(count SKIPPED)
  passed=${passed:-0}; failed=${failed:-0}; skipped=${skipped:-0}
  RESULT[fixtures]="rc $rc: $passed passed, $failed failed, $skipped skipped"
  # A skipped fixture test here means a missing artifact: that is a failure of the check.
  if [ "$rc" -ne 0 ] || [ "$skipped" -ne 0 ] || [ "$passed" -eq 0 ]; then
    FAILED=1; grep -E '^\[  (FAILED|SKIPPED)  \]|Failure|error|Expected|Which is' "$LOG" | head -30
  fi
  MAXT=$(cat "$HERE/max_tokens.txt")
  LP=$(cat "$HERE/logits_prompt.txt")
  for art in "$HERE"/artifacts/*.photon; do
    fx=$(basename "$art" .photon)
    row=""
    for mode in hiergen recgen; do
      want="$HERE/expected/$fx.$mode.json"
      [ -f "$want" ] || continue
      got="$HERE/run-$fx.$mode.json"
      if timeout 120 "$HERE/bin/photon-run" "$art" --prompts-file "$HERE/prompts.txt" --mode "$mode" \
           --max-tokens "$MAXT" --ignore-eos --json >"$got" 2>"$HERE/run-$fx.$mode.err"; then
        out=$("$HERE/bin/photon-gpu-compare" tokens "$got" "$want") || FAILED=1
      else
        FAILED=1; out="photon-run failed: $(tail -1 "$HERE/run-$fx.$mode.err")"
      fi
      row+="$mode $out; "
    done
    npy="$HERE/run-$fx.logits.npy"
    # GPU vs CPU artifact: both f32, different summation orders.
    if timeout 120 "$HERE/bin/photon-run" "$art" --prompt "$LP" --logits-out "$npy" 2>"$HERE/run-$fx.logits.err"; then
      out=$("$HERE/bin/photon-gpu-compare" logits "$npy" "$HERE/expected/$fx.logits.npy" 1e-3 1e-3) || FAILED=1
    else
      FAILED=1; out="photon-run --logits-out failed: $(tail -1 "$HERE/run-$fx.logits.err")"
    fi
    row+="$out"
    FX_ROWS+=("| photon-run $fx (CUDA artifact vs CPU artifact) | $row |")
  done
  # Where the weights and caches were: photon-run's memory line (device memory apart from
  # the host's) of a plain run.
  first=$(ls -d "$HERE"/artifacts/*.photon | head -1)
  timeout 120 "$HERE/bin/photon-run" "$first" --prompt "$LP" --max-tokens 16 >/dev/null \
    2>"$HERE/run-memory.err"
  DEVLINE="$(basename "$first"): $(grep -h "^device memory\|^memory:" "$HERE/run-memory.err" | tail -1)"
fi

median=$(printf '%s' "$BW_JSON" | sed -n 's/.*"bandwidth_gbps_median": \([0-9.]*\).*/\1/p')
device=$(printf '%s' "$BW_JSON" | sed -n 's/.*"device": "\([^"]*\)".*/\1/p')
arch=$(printf '%s' "$BW_JSON" | sed -n 's/.*"arch": "\([^"]*\)".*/\1/p')
echo
echo "| check | result |"
echo "|---|---|"
echo "| device | $device ($arch) |"
echo "| device-memory bandwidth (D2D copy, median of 20) | ${median} GB/s |"
for t in photon-cuda-tests photon-cuda-e2e-tests; do echo "| $t | ${RESULT[$t]} |"; done
if [ -d "$HERE/artifacts" ]; then
  echo "| fixtures' CUDA artifacts, runtime fixture tests (tokens = gen.json, logits within tolerance) | ${RESULT[fixtures]} |"
  for r in "${FX_ROWS[@]}"; do echo "$r"; done
  echo "| photon-run memory report | ${DEVLINE:-none printed} |"
else
  echo "| CUDA artifacts through the runtime | not in the pack (remake it with scripts/gpu-pack.sh) |"
fi
exit $FAILED
