//! Element-wise loops of the training step compiled for the widest vector instructions the
//! CPU has, picked at run time (the binary itself targets baseline x86-64: SSE2 only).
//!
//! Every variant runs the same IEEE operations in the same order on each element (Rust never
//! contracts `a * b + c` into a fused multiply-add, and `sqrt` and division are exact), so
//! results are the same bits whichever runs; wider vectors only take more elements at once.

/// Runs `f` inlined into a function compiled with AVX-512F, or AVX2, when the CPU has it.
#[inline(always)]
pub(crate) fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { avx2(f) };
        }
    }
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatched loop gives the same bits as the baseline one (an AdamW-like update
    /// with a square root and a division on awkward values).
    #[test]
    fn widest_gives_the_baseline_bits() {
        let x: Vec<f32> =
            (0..1000).map(|i| ((i as f32) * 0.37).sin() * 1e3f32.powf((i % 7) as f32 - 3.0)).collect();
        let step = |x: &[f32]| -> Vec<u32> {
            x.iter().map(|&v| ((v * 0.9 + v * v * 0.1) / ((v * v).sqrt() + 1e-8)).to_bits()).collect()
        };
        assert_eq!(widest(|| step(&x)), step(&x));
    }
}
