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
