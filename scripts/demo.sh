#!/usr/bin/env bash
# The main job: install what is missing, build, then compile the bundled trained models
# (PHOTON, vanilla, Block Transformer; SentencePiece BPE, reference/models/small-*) from their
# ONNX exports for this CPU, with the tokenizer each was trained with, and generate text, with
# a side-by-side table of throughput, KV-cache memory and TPM.
#
#   bash scripts/demo.sh [--prompt TEXT] [--text-tokens N] [--max-tokens N] [--batch N]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${PHOTON_BUILD_DIR:-build}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac

PROMPT="It is a truth universally acknowledged, that a single man in possession of a good fortune"
TEXT_TOKENS=128
MAX_TOKENS=256
BATCH=16
while [ $# -gt 0 ]; do
  case "$1" in
    --prompt) PROMPT="$2"; shift 2 ;;
    --text-tokens) TEXT_TOKENS="$2"; shift 2 ;;
    --max-tokens) MAX_TOKENS="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

bash "$ROOT/scripts/setup.sh"

BIN="$BUILD_DIR/bin"
OUT="$BUILD_DIR/demo"
mkdir -p "$OUT"
MODELS="$ROOT/reference/models"

step() { printf '\n== %s\n' "$*"; }

for m in photon vanilla block; do
  step "photon-compile reference/models/small-$m/model.onnx --tokenizer .../tokenizer.model --target cpu"
  args=()
  [ "$m" = photon ] && args+=(--report)
  t0=$(date +%s%N)
  "$BIN/photon-compile" "$MODELS/small-$m/model.onnx" --tokenizer "$MODELS/small-$m/tokenizer.model" \
    --target cpu -o "$OUT/small-$m.photon" -q "${args[@]}"
  t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000000 ))
  printf '   compiled in %d.%03d s -> %s (%s)\n' $((ms / 1000)) $((ms % 1000)) \
    "${OUT#$ROOT/}/small-$m.photon" "$(du -sh "$OUT/small-$m.photon" | cut -f1)"
done

# Greedy decoding of models this small loops ("I am sure I am sure ..."); a repetition
# penalty of 1.3 keeps it deterministic and readable (reference/models/results.json has both).
step "photon-run small-photon (RecGen, greedy, repetition penalty 1.3): \"$PROMPT\""
"$BIN/photon-run" "$OUT/small-photon.photon" --mode recgen --max-tokens "$TEXT_TOKENS" \
  --repetition-penalty 1.3 --prompt "$PROMPT" --json > "$OUT/photon-recgen.json" 2>/dev/null
/usr/bin/python3 "$ROOT/scripts/demo_table.py" --text "$OUT/photon-recgen.json"

step "photon-run small-photon (HierGen, temperature 0.8, top-p 0.95, seed 1)"
"$BIN/photon-run" "$OUT/small-photon.photon" --mode hiergen --max-tokens "$TEXT_TOKENS" \
  --temperature 0.8 --top-p 0.95 --seed 1 --prompt "$PROMPT" --json > "$OUT/photon-hiergen-sampled.json" 2>/dev/null
/usr/bin/python3 "$ROOT/scripts/demo_table.py" --text "$OUT/photon-hiergen-sampled.json"

step "photon-run small-block (greedy, repetition penalty 1.3)"
"$BIN/photon-run" "$OUT/small-block.photon" --max-tokens "$TEXT_TOKENS" \
  --repetition-penalty 1.3 --prompt "$PROMPT" --json > "$OUT/block.json" 2>/dev/null
/usr/bin/python3 "$ROOT/scripts/demo_table.py" --text "$OUT/block.json"

step "photon-run small-vanilla (greedy, repetition penalty 1.3)"
"$BIN/photon-run" "$OUT/small-vanilla.photon" --max-tokens "$TEXT_TOKENS" \
  --repetition-penalty 1.3 --prompt "$PROMPT" --json > "$OUT/vanilla.json" 2>/dev/null
/usr/bin/python3 "$ROOT/scripts/demo_table.py" --text "$OUT/vanilla.json"

# The side-by-side table: the same $BATCH prompts (book openings) under each model and mode.
PROMPTS="$OUT/prompts.txt"
/usr/bin/python3 - "$ROOT/reference/data/austen.txt" "$BATCH" > "$PROMPTS" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
lines = [l.strip() for l in text.splitlines() if len(l.strip()) > 40]
step = max(1, len(lines) // int(sys.argv[2]))
for l in lines[::step][: int(sys.argv[2])]:
    print(l[:64])
PY
step "Side by side: $BATCH prompts x $MAX_TOKENS new tokens, batched, greedy (one run each; single runs on a shared machine are noisy: photon-bench takes medians)"
runs=()
for spec in "photon recgen" "photon hiergen" "block hiergen" "vanilla hiergen"; do
  set -- $spec
  f="$OUT/table-$1-$2.json"
  "$BIN/photon-run" "$OUT/small-$1.photon" --mode "$2" --max-tokens "$MAX_TOKENS" \
    --prompts-file "$PROMPTS" --json --quiet > "$f" 2>/dev/null
  runs+=("$1:$2:$f")
done
/usr/bin/python3 "$ROOT/scripts/demo_table.py" --table "${runs[@]}" \
  --metrics "$MODELS/small-photon/metrics.json" "$MODELS/small-vanilla/metrics.json" "$MODELS/small-block/metrics.json"
