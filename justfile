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

# Training throughput: the unified model vs a plain candle loop, same process.
bench threads="1":
    cargo run --release -- bench train --threads {{threads}}
