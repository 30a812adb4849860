#!/usr/bin/env bash
# The Python module (python/): builds it with maturin into a virtual environment created here,
# then runs its pytest suite against the `seqmodal` CLI (built by `cargo build`) and FAISS.
#
#   scripts/python-test.sh [pytest args...]
#
# The venv lives in the cargo target dir ($CARGO_TARGET_DIR or target/), so a CI machine that
# keeps its target dir also keeps the installed wheels (numpy, pandas, pytest, faiss-cpu, maturin).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}"
VENV="$TARGET/python-venv"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check maturin numpy pandas pytest faiss-cpu
# The CLI the tests compare against. `--workspace` keeps the features `cargo test --workspace`
# built with (a `-p seqmodal` build unifies features differently and rebuilds candle and polars).
cargo build --workspace --bins
VIRTUAL_ENV="$(cd "$VENV" && pwd)" "$VENV/bin/maturin" develop --quiet -m python/Cargo.toml
SEQMODAL_BIN="$(cd "$TARGET" && pwd)/debug/seqmodal" "$VENV/bin/python" -m pytest -q python/tests "$@"
