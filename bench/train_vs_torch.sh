#!/usr/bin/env bash
# seqmodal training throughput beside PyTorch, side by side in one run on one machine.
#
#   bench/train_vs_torch.sh [path/to/seqmodal]     (default: target/release/seqmodal)
#
# Both sides train the same network and loss (hidden 512, 64 bits, batch 128, Adam) on the
# Wikipedia image features: `seqmodal bench train` and the PyTorch peer
# ../shared/bench/torch_train.py (its header documents the model). Each reports two loops:
#   tight: consecutive slices of the training rows;
#   epoch: a real run's loop: a fresh shuffle each epoch, rows gathered per batch, and for
#          seqmodal the learners' Trainer with its per-step bookkeeping.
# For 1 and 2 threads the two sides alternate ROUNDS times (default 5; which goes first
# alternates too) and each keeps its best; the script prints the rates and the ratios
# seqmodal / PyTorch and seqmodal 2 threads / 1 thread. Absolute rates drift on shared
# machines: compare ratios from one run.
#
# Environment: TORCH_PYTHON (a python with torch, numpy, scipy; default /work/venv-torch/bin/python,
# then python3), TORCH_PEER, DATA (default datasets/wiki), STEPS (default 300), ROUNDS.
# Not part of CI: it needs PyTorch (`pip install torch numpy scipy` in a virtual environment).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/release/seqmodal}"
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 2; }
PY="${TORCH_PYTHON:-/work/venv-torch/bin/python}"
[ -x "$PY" ] || PY=python3
PEER="${TORCH_PEER:-../shared/bench/torch_train.py}"
DATA="${DATA:-datasets/wiki}"
STEPS="${STEPS:-300}"
ROUNDS="${ROUNDS:-5}"
"$PY" -c 'import torch, scipy' 2>/dev/null || { echo "$PY lacks torch or scipy" >&2; exit 2; }
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT
lscpu | grep 'Model name' || true
seqmodal() { "$BIN" bench train --threads "$1" --steps "$STEPS" --data "$DATA" | tail -n 1 >>"$OUT"; }
torch() { "$PY" "$PEER" --data "$DATA" --threads "$1" --steps "$STEPS" >>"$OUT"; }
for round in $(seq "$ROUNDS"); do
    for threads in 1 2; do
        if [ $((round % 2)) -eq 1 ]; then seqmodal "$threads"; torch "$threads"; else torch "$threads"; seqmodal "$threads"; fi
    done
done
python3 - "$OUT" <<'PY'
import json, sys
best = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    for mode in ("tight", "epoch"):
        key = (r["framework"], r["threads"], mode)
        best[key] = max(best.get(key, 0), r[f"{mode}_samples_per_s"])
print(f"best of the rounds, samples/s (hidden 512, 64 bits, batch 128)")
print(f"{'loop':<6} {'threads':>7} {'seqmodal':>9} {'pytorch':>9} {'ratio':>6}")
for mode in ("tight", "epoch"):
    for t in (1, 2):
        s, p = best[("seqmodal", t, mode)], best[("pytorch", t, mode)]
        print(f"{mode:<6} {t:>7} {s:>9.0f} {p:>9.0f} {s / p:>6.2f}")
for mode in ("tight", "epoch"):
    for fw in ("seqmodal", "pytorch"):
        print(f"{fw} {mode}: 2 threads / 1 thread = {best[(fw, 2, mode)] / best[(fw, 1, mode)]:.2f}")
PY
