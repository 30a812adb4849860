//! Thread use, chosen deliberately: candle's CPU kernels on one thread, retrieval
//! evaluation (rayon's global pool) on every core.
//!
//! For the model sizes seqmodal trains (hidden 512, batch 128) candle's threaded gemm and
//! elementwise kernels spend more time synchronising than computing: `experiments/wiki.toml`
//! took 9.6 s with one candle thread and 16.5 s with two on a 2-core machine, with
//! byte-identical results. Hamming evaluation, on the other hand, splits queries across
//! threads with no shared state and scales with cores.

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
