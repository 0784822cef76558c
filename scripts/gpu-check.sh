#!/usr/bin/env bash
# Runs on a machine with an NVIDIA GPU, from a folder made by scripts/gpu-pack.sh (this
# script is copied into it): the device's memory bandwidth, the runtime CUDA backend's
# driver tests and the end-to-end kernel tests (compiled kernels vs a CPU reference), the
# fixtures' CUDA artifacts through the runtime (the fixture tests: greedy HierGen/RecGen
# tokens equal gen.json, teacher-forced logits within its tolerance) and through photon-run
# (tokens equal and logits close to photon-run's output for the CPU artifact, recorded when
# the pack was made); then decode speed of the mid-size models (mid/: vanilla-mid, photon-mid
# HierGen and RecGen) at batch 1 and 64, their weights first written again from the pack's
# recipes (photon-weightgen; checked against the sha256 recorded when the pack was made), with
# the roofline of the bandwidth measured here; then one table. Needs only the driver
# (libcuda.so.1); takes well under 10 minutes (no mid-size run starts after 7).
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

median=$(printf '%s' "$BW_JSON" | sed -n 's/.*"bandwidth_gbps_median": \([0-9.]*\).*/\1/p')
device=$(printf '%s' "$BW_JSON" | sed -n 's/.*"device": "\([^"]*\)".*/\1/p')
arch=$(printf '%s' "$BW_JSON" | sed -n 's/.*"arch": "\([^"]*\)".*/\1/p')

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

# Decode speed of the mid-size models. Roofline of a generated token at batch B and mean
# context T (prompt + half the new tokens): the weight bytes per token of the cost model,
# shared by the batch, plus the KV cache the token reads (a level once per unit of its
# tokens; RecGen keeps the top level only), at the bandwidth measured above:
#   bytes = W / B + sum over levels of bytes_per_unit * ceil(T / tokens_per_unit) / tokens_per_unit
declare -a MID_ROWS
if [ -f "$HERE/mid/models.txt" ]; then
  MT=$(cat "$HERE/mid/max_tokens.txt")
  PLEN=$(head -1 "$HERE/mid/prompts-1.txt" | tr -d '\n' | wc -c)
  for m in $(cat "$HERE/mid/models.txt"); do
    art="$HERE/mid/$m.photon"
    wlog="$HERE/mid-$m.weightgen.log"
    if ! "$HERE/bin/photon-weightgen" make "$HERE/mid/$m.recipe" "$art/weights.bin" >"$wlog" 2>&1; then
      FAILED=1; MID_ROWS+=("| $m | | | weights not generated: $(tail -1 "$wlog") |"); continue
    fi
    if ! (cd "$HERE/mid" && sha256sum --quiet -c "$m.sha256") >>"$wlog" 2>&1; then
      FAILED=1; MID_ROWS+=("| $m | | | the generated weights differ from the pack's (sha256) |"); continue
    fi
    family=$(sed -n 's/^family //p' "$HERE/mid/$m.cost")
    W=$(sed -n 's/^weight_bytes_per_token //p' "$HERE/mid/$m.cost")
    modes="vanilla"
    [ "$family" = vanilla ] || modes="hiergen recgen"
    for mode in $modes; do
      for B in 1 64; do
        if [ "$SECONDS" -gt 420 ]; then
          FAILED=1; MID_ROWS+=("| $m | $mode | $B | not run: the check had taken 7 minutes |"); continue
        fi
        out="$HERE/mid-$m.$mode.b$B.json"
        margs=()
        [ "$mode" = vanilla ] || margs=(--mode "$mode")
        if ! timeout 90 "$HERE/bin/photon-run" "$art" --prompts-file "$HERE/mid/prompts-$B.txt" "${margs[@]}" \
             --max-tokens "$MT" --ignore-eos --max-batch 64 --json >"$out" 2>"$out.err"; then
          FAILED=1; MID_ROWS+=("| $m | $mode | $B | photon-run failed or timed out: $(tail -1 "$out.err") |")
          continue
        fi
        # photon-run --json writes one key per line; request texts escape their quotes.
        jnum() { sed -n "s/^ *\"$1\": \([0-9.e+-]*\),\{0,1\}$/\1/p" "$out" | head -1; }
        tps=$(jnum decode_tokens_per_s); dsec=$(jnum decode_seconds); dtok=$(jnum decode_tokens)
        ptps=$(jnum prefill_tokens_per_s); pbatch=$(jnum peak_batch)
        space=$(sed -n 's/^ *"memory_space": "\([a-z]*\)".*/\1/p' "$out" | head -1)
        [ "$space" = device ] || { FAILED=1; space="${space:-?} (not device memory)"; }
        [ "$pbatch" = "$B" ] || { FAILED=1; space="$space; peak batch ${pbatch:-?}, not $B"; }
        row=$(awk -v B="$B" -v W="$W" -v P="$PLEN" -v N="$MT" -v mode="$mode" -v bw="${median:-0}" \
              -v tps="${tps:-0}" -v dsec="${dsec:-0}" -v dtok="${dtok:-0}" -v ptps="${ptps:-0}" '
          $1 == "cache" { lvl[$2] = $3 " " $4 " " $5; if ($2 + 0 > top + 0) top = $2 }
          END {
            T = P + N / 2; bytes = W / B
            for (l in lvl) {
              split(lvl[l], c, " ")
              if (mode == "recgen" && l != top) continue
              if (mode != "vanilla" && c[3] != "all" && index("," c[3] ",", "," mode ",") == 0) continue
              n = T / c[2]; if (n > int(n)) n = int(n) + 1
              bytes += c[1] * n / c[2]
            }
            roof = (bw > 0) ? bw * 1e9 / bytes : 0
            steps = dtok / B
            ms = (steps > 0) ? dsec * 1000 / steps : 0
            frac = (roof > 0) ? 100 * tps / roof : 0
            printf "%.1f | %.2f | %.1f | %.2f | %.0f | %.1f%%", tps, ms, ptps, bytes / 1048576, roof, frac
          }' "$HERE/mid/$m.cost")
        MID_ROWS+=("| $m | $mode | $B | $row | $space |")
      done
    done
  done
fi

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
if [ "${#MID_ROWS[@]}" -gt 0 ]; then
  echo
  echo "Decode speed: $PLEN prompt tokens + $MT new tokens per sequence. Roofline: the cost model's"
  echo "weight bytes per token / batch + KV-cache reads at mean context $((PLEN + MT / 2)), at ${median} GB/s."
  echo
  echo "| model | mode | batch | decode tokens/s | ms per step | prefill tokens/s | MiB read per token | roofline tokens/s | of roofline | memory |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for r in "${MID_ROWS[@]}"; do echo "$r"; done
else
  echo "| mid-size decode speed | not in the pack (remake it with scripts/gpu-pack.sh) |"
fi
exit $FAILED
