//! Element-wise loops of the training step compiled for the widest vector instructions the
//! CPU has, picked at run time (the binary itself targets baseline x86-64: SSE2 only), and
//! the weight transpose of the forward gemm.
//!
//! Every variant runs the same IEEE operations in the same order on each element (Rust never
//! contracts `a * b + c` into a fused multiply-add, and `sqrt` and division are exact), so
//! results are the same bits whichever runs; wider vectors only take more elements at once.

/// Runs `f` inlined into a function compiled with AVX-512F, or AVX2, when the CPU has it.
#[inline(always)]
pub(crate) fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
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

/// `f`, compiled with AVX-512F where it is inlined.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `f`, compiled with AVX2 where it is inlined.
///
/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Rows `r0..r0 + rows` of the row-major `w` (`d` wide), transposed: `d x rows`, row-major.
///
/// In 8 x 8 blocks, each transposed in AVX registers where the CPU has AVX (scalar copies one
/// float at a time, one side of them strided, were 6 % of a training step); the edges of a
/// band that is not a multiple of 8 are copied one by one.
pub(crate) fn transpose_rows(w: &[f32], d: usize, r0: usize, rows: usize) -> Vec<f32> {
    let w = &w[r0 * d..(r0 + rows) * d];
    let mut out = vec![0f32; d * rows];
    let (full_j, full_k) = (rows / 8 * 8, d / 8 * 8);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        for jb in (0..full_j).step_by(8) {
            for kb in (0..full_k).step_by(8) {
                // SAFETY: AVX is present (checked above); rows jb..jb + 8 and columns
                // kb..kb + 8 lie inside `w` (jb + 8 <= rows, kb + 8 <= d), and the block
                // written, rows kb..kb + 8 and columns jb..jb + 8 of `out`, inside `out`.
                unsafe {
                    transpose8x8(w.as_ptr().add(jb * d + kb), d, out.as_mut_ptr().add(kb * rows + jb), rows)
                };
            }
        }
        copy_rest(w, d, rows, &mut out, full_j, full_k);
        return out;
    }
    copy_rest(w, d, rows, &mut out, 0, 0);
    out
}

/// Copies one by one every element of the transpose outside the `done_j x done_k` corner
/// that the 8 x 8 blocks wrote.
fn copy_rest(w: &[f32], d: usize, rows: usize, out: &mut [f32], done_j: usize, done_k: usize) {
    for j in 0..rows {
        let from = if j < done_j { done_k } else { 0 };
        for (k, &v) in w[j * d..(j + 1) * d].iter().enumerate().skip(from) {
            out[k * rows + j] = v;
        }
    }
}

/// Transposes the 8 x 8 block at `src` (rows `src_stride` apart) into `dst` (rows `dst_stride`
/// apart): the classic unpack / shuffle / lane-permute sequence.
///
/// # Safety
/// The CPU has AVX; 8 rows of 8 floats are readable at `src` and writable at `dst`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose8x8(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
    use std::arch::x86_64::*;
    // SAFETY: the caller guarantees AVX and the 8 readable rows.
    let r: [__m256; 8] = std::array::from_fn(|i| unsafe { _mm256_loadu_ps(src.add(i * src_stride)) });
    let t = [
        _mm256_unpacklo_ps(r[0], r[1]),
        _mm256_unpackhi_ps(r[0], r[1]),
        _mm256_unpacklo_ps(r[2], r[3]),
        _mm256_unpackhi_ps(r[2], r[3]),
        _mm256_unpacklo_ps(r[4], r[5]),
        _mm256_unpackhi_ps(r[4], r[5]),
        _mm256_unpacklo_ps(r[6], r[7]),
        _mm256_unpackhi_ps(r[6], r[7]),
    ];
    let s = [
        _mm256_shuffle_ps::<0x44>(t[0], t[2]),
        _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
        _mm256_shuffle_ps::<0x44>(t[1], t[3]),
        _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
        _mm256_shuffle_ps::<0x44>(t[4], t[6]),
        _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
        _mm256_shuffle_ps::<0x44>(t[5], t[7]),
        _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
    ];
    let o = [
        _mm256_permute2f128_ps::<0x20>(s[0], s[4]),
        _mm256_permute2f128_ps::<0x20>(s[1], s[5]),
        _mm256_permute2f128_ps::<0x20>(s[2], s[6]),
        _mm256_permute2f128_ps::<0x20>(s[3], s[7]),
        _mm256_permute2f128_ps::<0x31>(s[0], s[4]),
        _mm256_permute2f128_ps::<0x31>(s[1], s[5]),
        _mm256_permute2f128_ps::<0x31>(s[2], s[6]),
        _mm256_permute2f128_ps::<0x31>(s[3], s[7]),
    ];
    for (i, v) in o.into_iter().enumerate() {
        // SAFETY: the caller guarantees the 8 writable rows.
        unsafe { _mm256_storeu_ps(dst.add(i * dst_stride), v) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An AdamW-like update (products, a square root, a division) on awkward values.
    #[inline(always)]
    fn step(x: &[f32]) -> Vec<u32> {
        x.iter().map(|&v| ((v * 0.9 + v * v * 0.1) / ((v * v).sqrt() + 1e-8)).to_bits()).collect()
    }

    /// Each vector variant this CPU can run gives the baseline's bits.
    #[test]
    fn every_variant_gives_the_baseline_bits() {
        let x: Vec<f32> =
            (0..1000).map(|i| ((i as f32) * 0.37).sin() * 1e3f32.powf((i % 7) as f32 - 3.0)).collect();
        let baseline = step(&x);
        assert_eq!(widest(|| step(&x)), baseline);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: checked just above.
                assert_eq!(unsafe { avx512(|| step(&x)) }, baseline, "avx512f");
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: checked just above.
                assert_eq!(unsafe { avx2(|| step(&x)) }, baseline, "avx2");
            }
        }
    }

    /// Without AVX the whole transpose is the one-by-one copy: it alone gives the transpose.
    #[test]
    fn the_scalar_copy_alone_transposes() {
        let (rows, d) = (13, 11);
        let w: Vec<f32> = (0..rows * d).map(|i| i as f32).collect();
        let mut out = vec![f32::NAN; rows * d];
        copy_rest(&w, d, rows, &mut out, 0, 0);
        for k in 0..d {
            for j in 0..rows {
                assert_eq!(out[k * rows + j], w[j * d + k], "({k}, {j})");
            }
        }
    }

    /// `transpose_rows` is the transpose of the rows asked for, at sizes that are not
    /// multiples of its block.
    #[test]
    fn transpose_rows_transposes_the_band() {
        // Bands that are and are not multiples of the 8 x 8 block, in both directions.
        for (rows, d, r0, band) in [(41, 37, 3, 35), (24, 16, 8, 16), (9, 7, 0, 9), (64, 40, 0, 64)] {
            let w: Vec<f32> = (0..rows * d).map(|i| i as f32).collect();
            let t = transpose_rows(&w, d, r0, band);
            assert_eq!(t.len(), d * band);
            for k in 0..d {
                for j in 0..band {
                    assert_eq!(
                        t[k * band + j],
                        w[(r0 + j) * d + k],
                        "{rows}x{d} band {r0}+{band}: ({k}, {j})"
                    );
                }
            }
        }
    }
}
