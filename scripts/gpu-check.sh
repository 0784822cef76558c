#!/usr/bin/env bash
# Runs on a machine with an NVIDIA GPU, from a folder made by scripts/gpu-pack.sh (this
# script is copied into it): the device's memory bandwidth, the runtime CUDA backend's
# driver tests and the end-to-end kernel tests (compiled kernels vs a CPU reference), then
# one table. Needs only the driver (libcuda.so.1); takes well under 10 minutes.
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

median=$(printf '%s' "$BW_JSON" | sed -n 's/.*"bandwidth_gbps_median": \([0-9.]*\).*/\1/p')
device=$(printf '%s' "$BW_JSON" | sed -n 's/.*"device": "\([^"]*\)".*/\1/p')
arch=$(printf '%s' "$BW_JSON" | sed -n 's/.*"arch": "\([^"]*\)".*/\1/p')
echo
echo "| check | result |"
echo "|---|---|"
echo "| device | $device ($arch) |"
echo "| device-memory bandwidth (D2D copy, median of 20) | ${median} GB/s |"
for t in photon-cuda-tests photon-cuda-e2e-tests; do echo "| $t | ${RESULT[$t]} |"; done
echo "| CUDA artifacts through the runtime (HierGen/RecGen) | not yet: the runtime has no CUDA execution path (issue 20) |"
exit $FAILED
