# seqmodal recipes. `just --list` shows them.

# Train and evaluate an experiment file: just run experiments/wiki.toml [--set key=value ...]
run experiment *args:
    cargo run --release -- run {{experiment}} {{args}}

# Run every test of the workspace (one profile: dev, with optimised dependencies).
test:
    cargo test --workspace

# Formatting and lints, as CI would want them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Learner x scenario report (reports/learners.md): every learner on each forgetting
# scenario for each seed, then the mean ± std table. Long: about an hour on 2 cores.
report-learners seeds="1 2 3" scenarios="mfeat-shared mfeat-per-modality wiki-shared wiki-per-modality" learners="finetune joint paired ewc si lwf er agem der mer meta":
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release
    for scenario in {{scenarios}}; do
      for seed in {{seeds}}; do
        for learner in {{learners}}; do
          out=runs/sweeps/$scenario/$learner-s$seed
          [ -f $out/summary.json ] && continue
          ./target/release/seqmodal run experiments/forgetting/$scenario.toml --quiet --log warn \
            --set learner.kind=$learner --set seed=$seed --out $out
        done
      done
    done
    ./target/release/seqmodal report runs/sweeps --out reports/learners.md --title "Learners across forgetting scenarios"

# JOBS=1 just sweep ... runs one cell at a time; rerunning continues where a sweep stopped.
# Run a sweep file (docs/sweeps.md), one cell per core: just sweep sweeps/orderings-mfeat.toml [--out DIR]
sweep file *args:
    cargo build --release --workspace
    ./target/release/seqmodal sweep {{file}} --jobs {{env_var_or_default("JOBS", num_cpus())}} {{args}}

# Training throughput: the unified model vs a plain candle loop, same process.
bench threads="1":
    cargo run --release -- bench train --threads {{threads}}

# Exact Hamming search of .npy codes: just search --database DB.npy --queries Q.npy -k 100 --out DIR
search *args:
    cargo run --release -- search {{args}}

# Retrieval metrics of .npy codes and labels: just eval --database DB.npy --queries Q.npy --db-labels DL.npy --query-labels QL.npy
eval *args:
    cargo run --release -- eval {{args}}

# Hamming engine: top-100 and mAP@all against a naive reference in the same process.
bench-search backend="cpu":
    cargo run --release -- bench search --backend {{backend}}

# seqmodal search vs FAISS IndexBinaryFlat, mAP@all vs numpy (pip-installs faiss-cpu and numpy).
faiss-compare:
    cargo build --release
    bench/faiss_compare.sh
