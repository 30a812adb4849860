# seqmodal recipes. `just --list` shows them.

# Train and evaluate an experiment file: just run experiments/wiki.toml [--set key=value ...]
run experiment *args:
    cargo run --release -- run {{experiment}} {{args}}

# Run every test of the workspace (one profile: dev, with optimised dependencies).
test:
    cargo test --workspace

# The Python module: maturin into target/python-venv, then pytest (python/tests) against the
# CLI and faiss.IndexBinaryFlat.
test-python *args:
    scripts/python-test.sh {{args}}

# The CUDA kernels on a CPU emulator of CUDA's execution model, against the CPU engine (no GPU
# needed; builds the emulator with the system's C++20 compiler).
test-cuda-emulator:
    cargo test -p seqmodal-hamming --features cuda-emulator --lib --test cuda

# The AVX-512 kernel, which none of our machines has, under Miri: Miri executes its instructions
# on any x86 CPU and checks its unsafe loops for undefined behaviour (tests/every_kernel.rs
# against the portable kernel; ~2 min of Miri after a few minutes of building). Needs the nightly
# toolchain's miri and rust-src components (installed here if missing).
test-miri:
    rustup component add --toolchain nightly miri rust-src
    RUSTFLAGS="-C target-feature=+avx512f,+avx512vpopcntdq,+avx2,+popcnt" \
    MIRIFLAGS="-Zmiri-tree-borrows -Zmiri-permissive-provenance -Zmiri-ignore-leaks" \
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/miri" \
    cargo +nightly miri test -p seqmodal-hamming --test every_kernel

# Formatting and lints, as CI would want them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Where the learner runs' settings come from, printed under each report's header.
tuned_note := "Settings: on mfeat-shared and wiki-shared, er, agem, der, mer, meta, ewc, si and lwf run what `seqmodal tune tunes/<scenario>.toml` chose (experiments/tuned/<scenario>/<learner>.toml; budget: 12 random trials per learner over the ranges it declares plus its defaults, memory fixed at 200, chosen by final ACC on a validation split of the training rows, run seed 1; docs/tuning.md); finetune, joint and paired have no keys to tune. On the per-modality scenarios every learner runs its defaults."

# Learner x scenario report (reports/learners.md): every learner on each forgetting scenario
# for each seed (tuned settings where experiments/tuned/ has them: scripts/learner-runs.sh),
# then the mean ± std table. 18 min on the 2-core Xeon (220 runs, two at a time).
report-learners seeds="1 2 3 4 5" scenarios="mfeat-shared mfeat-per-modality wiki-shared wiki-per-modality" learners="all":
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release
    # A copy runs the cells: a rebuild meanwhile replaces target/release/seqmodal under them.
    bin=target/seqmodal-report; cp target/release/seqmodal $bin
    # "all": every registered learner (`seqmodal learners --names`).
    learners="{{learners}}"; [ "$learners" = all ] && learners=$($bin learners --names)
    scripts/learner-runs.sh $bin "{{scenarios}}" "{{seeds}}" "$learners" {{num_cpus()}}
    # The scenarios asked for (runs/sweeps/ may hold others, and sweeps, which the table skips).
    $bin report $(for s in {{scenarios}}; do echo runs/sweeps/$s; done) \
      --out reports/learners.md --title "Learners across forgetting scenarios" --note '{{tuned_note}}'

# Reports with figures, regenerated from scratch: reports/wiki/ and reports/mfeat/ (index.md,
# index.html, figures/ as PNG + SVG; docs/reports.md). Finished runs are reused: the learner x
# scenario runs share runs/sweeps/ with report-learners, and only missing ones run (seeds below);
# code-length runs (wiki-per-modality at 16/64/128 bits, seed 1; 32 bits is the scenario's own)
# go to runs/report/; the stage-orderings sweep and meta's ablation sweeps (sweeps/meta-ablation-*)
# to runs/sweeps/. With every run present it only regenerates (about a minute on 2 cores);
# from nothing: about 35 min on the 2-core Xeon (the learner runs 18 min, the rest 13 min).
report seeds="1 2 3 4 5" learners="all":
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release
    bin=target/seqmodal-report; cp target/release/seqmodal $bin
    # "all": every registered learner (`seqmodal learners --names`).
    learners="{{learners}}"; [ "$learners" = all ] && learners=$($bin learners --names)
    scripts/learner-runs.sh $bin "wiki-shared wiki-per-modality mfeat-shared mfeat-per-modality" \
      "{{seeds}}" "$learners" {{num_cpus()}}
    for bits in 16 64 128; do
      for learner in finetune joint meta; do
        out=runs/report/wiki-bits/$learner-b$bits
        [ -f $out/summary.json ] && continue
        $bin run experiments/forgetting/wiki-per-modality.toml --quiet --log warn \
          --set learner.kind=$learner --set seed=1 --set model.bits=$bits --out $out
      done
    done
    # Resumes: finished cells are skipped.
    for sweep in orderings-mfeat meta-ablation-step meta-ablation-noise meta-ablation-distill meta-ablation-memory; do
      $bin sweep sweeps/$sweep.toml --out runs/sweeps/$sweep --jobs {{num_cpus()}} --quiet
    done
    rm -rf reports/wiki reports/mfeat
    $bin report runs/sweeps/wiki-shared runs/sweeps/wiki-per-modality runs/report/wiki-bits \
      --out reports/wiki --title "Wikipedia (image, text): learners, forgetting and code length" \
      --note '{{tuned_note}}'
    $bin report runs/sweeps/mfeat-shared runs/sweeps/mfeat-per-modality runs/sweeps/orderings-mfeat \
      runs/sweeps/meta-ablation-step runs/sweeps/meta-ablation-noise runs/sweeps/meta-ablation-distill \
      runs/sweeps/meta-ablation-memory \
      --out reports/mfeat --title "mfeat (six feature views): learners, forgetting, stage orderings and meta's ablation" \
      --note '{{tuned_note}}'

# JOBS=1 just sweep ... runs one cell at a time; rerunning continues where a sweep stopped.
# Run a sweep file (docs/sweeps.md), one cell per core: just sweep sweeps/orderings-mfeat.toml [--out DIR]
sweep file *args:
    cargo build --release
    ./target/release/seqmodal sweep {{file}} --jobs {{env_var_or_default("JOBS", num_cpus())}} {{args}}

# Tune each learner on a validation split (docs/tuning.md), one cell per core; writes
# runs/tunes/<name>/trials.csv, best.csv and experiments/tuned/<scenario>/<learner>.toml.
# JOBS=1 just tune ... runs one cell at a time; rerunning continues where a tune stopped.
tune file *args:
    cargo build --release
    ./target/release/seqmodal tune {{file}} --jobs {{env_var_or_default("JOBS", num_cpus())}} {{args}}

# Training throughput: the unified model vs a plain candle loop, same process.
bench threads="1":
    cargo run --release -- bench train --train-threads {{threads}}

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

# seqmodal training throughput beside PyTorch (../shared/bench/torch_train.py), 1 and 2 threads,
# tight loop and real-run loop, alternated, best of 5; prints the ratios (needs torch in a venv:
# TORCH_PYTHON=/path/to/venv/bin/python). Not part of CI.
bench-train-vs-torch:
    cargo build --release
    bench/train_vs_torch.sh

# Fuzz one target for a number of seconds (needs the nightly toolchain; installs
# cargo-fuzz when missing). Targets: experiment, npy, npz, wiki_mat, mfeat_csv.
# The corpus starts from the repo's own files and grows in fuzz/corpus/ (not committed).
fuzz target="experiment" seconds="600":
    #!/usr/bin/env bash
    set -euo pipefail
    command -v cargo-fuzz >/dev/null || cargo +nightly install cargo-fuzz --locked
    mkdir -p fuzz/corpus/{{target}}
    cp fuzz/seeds/{{target}}/* fuzz/corpus/{{target}}/ 2>/dev/null || true
    case {{target}} in
      experiment) cp experiments/*.toml experiments/*/*.toml fuzz/corpus/experiment/ ;;
      mfeat_csv) cp datasets/mfeat/mfeat-mor.csv fuzz/corpus/mfeat_csv/ ;;
      wiki_mat) cp datasets/wiki/raw_features.mat fuzz/corpus/wiki_mat/ ;;
    esac
    cd fuzz && cargo +nightly fuzz run {{target}} corpus/{{target}} -- -max_total_time={{seconds}} -rss_limit_mb=4096
