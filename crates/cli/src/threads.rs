//! Thread use: training on `--train-threads` (default one, so sweeps run a cell per core),
//! retrieval evaluation (rayon's global pool) on every core.
//!
//! Training threads run the fused layers' fixed blocks on candle's barrier pool
//! (`seqmodal_model` `fused.rs`): results are byte-identical for any count, and a single
//! `experiments/wiki.toml` run took 2.35 s on two threads against 3.5 s on one (2 cores).
//! Hamming evaluation splits queries across threads with no shared state.

/// Sizes rayon's global pool (used by the Hamming engine) to `eval_threads` (0: all
/// cores) and candle's kernels to `train_threads`. Must run before any tensor op or
/// parallel iterator; an explicit `RAYON_NUM_THREADS` from the user is left alone.
pub fn configure(train_threads: usize, eval_threads: usize) {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let eval = match eval_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // Ignored if the pool already exists; it does not at start-up.
    let _ = rayon::ThreadPoolBuilder::new().num_threads(eval).build_global();
    // candle reads RAYON_NUM_THREADS for its gemm parallelism and its own pool, lazily, on
    // the first tensor op; nothing else reads it once the global pool is built.
    std::env::set_var("RAYON_NUM_THREADS", train_threads.max(1).to_string());
}
