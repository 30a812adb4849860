#!/usr/bin/env bash
# seqmodal's Python module vs faiss.IndexBinaryFlat, both called from one Python process on the
# same numpy arrays (no files, no subprocess): top-k search at 64 and 128 bits, 1 and 2 threads.
#
#   bench/python_faiss.sh            (REPS=5 by default: best of 5 each side, alternated)
#
# Builds the module in release mode with maturin into target/python-venv (the venv
# scripts/python-test.sh uses), checks the ids and distances equal FAISS's, prints the ratios.
# Not run in CI (timing).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}"
VENV="$TARGET/python-venv"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check maturin numpy pandas pytest faiss-cpu
VIRTUAL_ENV="$(cd "$VENV" && pwd)" "$VENV/bin/maturin" develop --quiet --release -m python/Cargo.toml
exec "$VENV/bin/python" bench/python_faiss.py
