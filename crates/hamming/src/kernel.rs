//! Distance kernels: XOR + popcount over packed codes.
//!
//! One implementation per instruction set ([`Kernel`]), each with loops specialised for codes
//! of 1, 2 and 4 words (64, 128, 256 bits; 32-bit codes are padded to one word) and a generic
//! loop for any width ([`Width`]). Every kernel computes the same integers, so results never
//! depend on which one runs; tests force each one against a naive reference.

use std::fmt;
use std::str::FromStr;

use crate::cand::Cand;
use crate::error::{HammingError, Result};

/// Which popcount implementation to use; `Auto` picks the best one this CPU supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Kernel {
    /// Best supported: AVX-512, then AVX2 bit-sliced, then the popcnt instruction, then
    /// portable.
    #[default]
    Auto,
    /// Plain Rust `count_ones` compiled for the baseline target (no popcount instruction assumed).
    Portable,
    /// The scalar `popcnt` instruction, one 64-bit word at a time.
    Popcnt,
    /// AVX2: nibble lookup table with `vpshufb` + `vpsadbw`, four codes per vector.
    Avx2,
    /// AVX2 bit-sliced: top-k and range search add the bit planes of 256 codes at once with a
    /// carry-save adder over transposed database tiles; distance fills use the AVX2 loop.
    Sliced,
    /// AVX-512, the best path per width as measured on an AVX-512 Xeon: top-k of 64- and
    /// 128-bit codes by a per-code VPOPCNTDQ loop (eight codes per vector), other widths by
    /// the 512-lane bit-sliced filter of [`Kernel::Sliced512`]; VPOPCNTDQ distance fills for
    /// 64-bit codes, the AVX2 loops for other widths.
    Avx512,
    /// AVX-512 bit-sliced: top-k and range search add the bit planes of 512 codes at once with
    /// ternary-logic carry-save adders, at every width; everything else as [`Kernel::Avx512`].
    Sliced512,
}

impl Kernel {
    /// The concrete kernels, slowest first (`Auto` takes the last supported one).
    pub const CONCRETE: [Kernel; 6] =
        [Kernel::Portable, Kernel::Popcnt, Kernel::Avx2, Kernel::Sliced, Kernel::Sliced512, Kernel::Avx512];

    /// Lower-case name, as accepted by `FromStr` (e.g. "avx2").
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Auto => "auto",
            Kernel::Portable => "portable",
            Kernel::Popcnt => "popcnt",
            Kernel::Avx2 => "avx2",
            Kernel::Sliced => "sliced",
            Kernel::Avx512 => "avx512",
            Kernel::Sliced512 => "sliced512",
        }
    }

    /// True when this CPU can run the kernel (always for `Auto` and `Portable`).
    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Auto | Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Popcnt => std::arch::is_x86_feature_detected!("popcnt"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 | Kernel::Sliced => {
                std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt")
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 | Kernel::Sliced512 => {
                Kernel::Avx2.is_supported()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The concrete kernel to run: `Auto` becomes the best supported one; an unsupported forced
    /// kernel is an error.
    pub fn resolve(self) -> Result<Kernel> {
        match self {
            Kernel::Auto => {
                Ok(Kernel::CONCRETE.into_iter().rev().find(|k| k.is_supported()).unwrap_or(Kernel::Portable))
            }
            k if k.is_supported() => Ok(k),
            k => Err(HammingError::KernelUnsupported(k.name())),
        }
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kernel {
    type Err = String;

    /// Parses "auto", "portable", "popcnt", "avx2", "sliced", "avx512" or "sliced512".
    fn from_str(s: &str) -> std::result::Result<Kernel, String> {
        std::iter::once(Kernel::Auto).chain(Kernel::CONCRETE).find(|k| k.name() == s).ok_or_else(|| {
            format!("unknown kernel {s:?}: use auto, portable, popcnt, avx2, sliced, avx512 or sliced512")
        })
    }
}

/// Whether to use the loops specialised for 1/2/4-word codes or the generic any-width loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Width {
    /// Specialised loops where the code width has one (64, 128, 256 bits), generic otherwise.
    #[default]
    Specialised,
    /// Always the generic loop (for tests and comparisons).
    Generic,
}

/// How the CPU engine computes distances: kernel and width path (defaults: fastest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Engine {
    /// Popcount implementation.
    pub kernel: Kernel,
    /// Specialised or generic width loops.
    pub width: Width,
}

/// A resolved engine for one code width: what the hot loops dispatch on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Imp {
    kernel: Kernel,
    words: usize,
    spec: bool,
}

impl Imp {
    /// Resolves `engine` for codes of `words` words.
    pub fn new(engine: Engine, words: usize) -> Result<Imp> {
        let kernel = engine.kernel.resolve()?;
        let spec = engine.width == Width::Specialised && matches!(words, 1 | 2 | 4);
        Ok(Imp { kernel, words, spec })
    }

    /// The resolved popcount kernel.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The code width in words when the specialised (1/2/4-word) loops are in use.
    pub fn specialised_words(&self) -> Option<usize> {
        self.spec.then_some(self.words)
    }

    /// True when top-k uses the bit-sliced filter ([`Imp::filter_sliced`]) on whole blocks.
    pub fn sliced(&self) -> bool {
        let fits = self.words <= crate::sliced::MAX_WORDS;
        match self.kernel {
            Kernel::Sliced | Kernel::Sliced512 => fits,
            // The per-code VPOPCNTDQ loop wins at 64 and 128 bits; the sliced filter at 192
            // and 256 (500 q × 200 000, one thread: 0.37 vs 0.99 s and 0.61 vs 0.76 s).
            Kernel::Avx512 => fits && !(self.spec && self.words <= 2),
            _ => false,
        }
    }

    /// True when the bit-sliced filter runs on 512-bit registers ([`crate::sliced::LANES512`]).
    fn wide(&self) -> bool {
        matches!(self.kernel, Kernel::Sliced512 | Kernel::Avx512)
    }

    /// Codes per bit-sliced block ([`crate::sliced::LANES`] or [`crate::sliced::LANES512`]).
    pub fn lanes(&self) -> usize {
        if self.wide() {
            crate::sliced::LANES512
        } else {
            crate::sliced::LANES
        }
    }

    /// Transposes whole blocks of row-major `codes` into `planes` for [`Imp::filter_sliced`].
    pub fn transpose(&self, codes: &[u64], planes: &mut Vec<u64>) {
        if self.wide() {
            crate::sliced::transpose_groups::<8>(codes, self.words, planes)
        } else {
            crate::sliced::transpose(codes, self.words, planes)
        }
    }

    /// The top-k path this engine takes: "sliced512", "sliced", "vpopcntdq" (the per-code
    /// AVX-512 loop), "avx2", "popcnt" or "portable".
    pub fn topk_path(&self) -> &'static str {
        match self.kernel {
            _ if self.sliced() && self.wide() => "sliced512",
            _ if self.sliced() => "sliced",
            Kernel::Avx512 | Kernel::Sliced512 if self.spec && self.words <= 2 => "vpopcntdq",
            Kernel::Avx512 | Kernel::Sliced512 | Kernel::Avx2 | Kernel::Sliced => "avx2",
            Kernel::Popcnt => "popcnt",
            _ => "portable",
        }
    }

    /// [`Imp::filter`] over bit-sliced blocks (`planes` from [`crate::sliced::transpose`]) for the
    /// query with plane masks `qm` (from [`crate::sliced::query_masks`]). Only when [`Imp::sliced`].
    pub fn filter_sliced(&self, qm: &[[u64; 4]], planes: &[u64], base: u32, limit: u32, out: &mut Vec<Cand>) {
        assert!(
            self.sliced()
                && qm.len() == 64 * self.words
                && planes.len().is_multiple_of(self.lanes() * self.words)
        );
        #[cfg(target_arch = "x86_64")]
        if self.wide() {
            use crate::sliced::x86::filter512;
            let w = self.words;
            // SAFETY: the kernel resolved to Sliced512 or Avx512 (AVX-512F checked),
            // w <= MAX_WORDS, and the shapes are asserted above.
            unsafe {
                match (self.spec, w) {
                    (true, 1) => filter512::<1>(w, qm, planes, base, limit, out),
                    (true, 2) => filter512::<2>(w, qm, planes, base, limit, out),
                    _ => filter512::<0>(w, qm, planes, base, limit, out),
                }
            }
        } else {
            use crate::sliced::x86::filter;
            let w = self.words;
            // SAFETY: `sliced()` means the kernel resolved to Sliced (AVX2 checked) and
            // w <= MAX_WORDS; the shapes are asserted above.
            unsafe {
                match (self.spec, w) {
                    (true, 1) => filter::<1>(w, qm, planes, base, limit, out),
                    (true, 2) => filter::<2>(w, qm, planes, base, limit, out),
                    // Four words fully unrolled measured slower than the loop (0.35 vs 0.31 s,
                    // 500 q × 500k 256-bit): the width-generic body serves them.
                    _ => filter::<0>(w, qm, planes, base, limit, out),
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (qm, planes, base, limit, out);
    }

    /// Appends every code of `db` (words, row-major) with distance < `limit` to `out`, in index
    /// order; `base` is the index of the first code.
    pub fn filter(&self, q: &[u64], db: &[u64], base: u32, limit: u32, out: &mut Vec<Cand>) {
        let Imp { kernel, words: w, spec } = *self;
        match kernel {
            // SAFETY (all three): `Imp::new` resolved the kernel, which checks CPU support.
            #[cfg(target_arch = "x86_64")]
            Kernel::Popcnt => unsafe { x86::filter_popcnt(w, spec, q, db, base, limit, out) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 | Kernel::Sliced => unsafe { x86::filter_avx2(w, spec, q, db, base, limit, out) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 | Kernel::Sliced512 => unsafe {
                x86::filter_avx512(w, spec, q, db, base, limit, out)
            },
            _ => scalar::filter_any(w, spec, q, db, base, limit, out),
        }
    }

    /// Writes the distance from `q` to each code of `db` into `out` (`out.len()` codes).
    pub fn fill(&self, q: &[u64], db: &[u64], out: &mut [u32]) {
        let Imp { kernel, words: w, spec } = *self;
        debug_assert_eq!(db.len(), out.len() * w);
        match kernel {
            // SAFETY (all three): `Imp::new` resolved the kernel, which checks CPU support.
            #[cfg(target_arch = "x86_64")]
            Kernel::Popcnt => unsafe { x86::fill_popcnt(w, spec, q, db, out) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 | Kernel::Sliced => unsafe { x86::fill_avx2(w, spec, q, db, out) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 | Kernel::Sliced512 => unsafe { x86::fill_avx512(w, spec, q, db, out) },
            _ => scalar::fill_any(w, spec, q, db, out),
        }
    }
}

/// Scalar loops; `inline(always)` so the x86 wrappers recompile them with `popcnt` enabled.
pub(crate) mod scalar {
    use crate::cand::Cand;

    /// Hamming distance of two W-word codes (`popcnt` where the caller enables it).
    #[inline(always)]
    pub(crate) fn dist<const W: usize>(q: &[u64; W], c: &[u64; W]) -> u32 {
        let mut d = 0;
        for i in 0..W {
            d += (q[i] ^ c[i]).count_ones();
        }
        d
    }

    #[inline(always)]
    fn dist_dyn(q: &[u64], c: &[u64]) -> u32 {
        q.iter().zip(c).map(|(a, b)| (a ^ b).count_ones()).sum()
    }

    #[inline(always)]
    pub fn filter_w<const W: usize>(q: &[u64], db: &[u64], base: u32, limit: u32, out: &mut Vec<Cand>) {
        let Some(q) = q.first_chunk::<W>() else { return };
        for (j, c) in db.as_chunks::<W>().0.iter().enumerate() {
            let d = dist(q, c);
            if d < limit {
                out.push(Cand { idx: base + j as u32, d });
            }
        }
    }

    #[inline(always)]
    fn filter_dyn(w: usize, q: &[u64], db: &[u64], base: u32, limit: u32, out: &mut Vec<Cand>) {
        for (j, c) in db.chunks_exact(w).enumerate() {
            let d = dist_dyn(q, c);
            if d < limit {
                out.push(Cand { idx: base + j as u32, d });
            }
        }
    }

    #[inline(always)]
    pub fn filter_any(
        w: usize,
        spec: bool,
        q: &[u64],
        db: &[u64],
        base: u32,
        limit: u32,
        out: &mut Vec<Cand>,
    ) {
        match (spec, w) {
            (true, 1) => filter_w::<1>(q, db, base, limit, out),
            (true, 2) => filter_w::<2>(q, db, base, limit, out),
            (true, 4) => filter_w::<4>(q, db, base, limit, out),
            _ => filter_dyn(w, q, db, base, limit, out),
        }
    }

    #[inline(always)]
    pub fn fill_w<const W: usize>(q: &[u64], db: &[u64], out: &mut [u32]) {
        let Some(q) = q.first_chunk::<W>() else { return };
        for (o, c) in out.iter_mut().zip(db.as_chunks::<W>().0) {
            *o = dist(q, c);
        }
    }

    #[inline(always)]
    pub fn fill_any(w: usize, spec: bool, q: &[u64], db: &[u64], out: &mut [u32]) {
        match (spec, w) {
            (true, 1) => fill_w::<1>(q, db, out),
            (true, 2) => fill_w::<2>(q, db, out),
            (true, 4) => fill_w::<4>(q, db, out),
            _ => {
                for (o, c) in out.iter_mut().zip(db.chunks_exact(w)) {
                    *o = dist_dyn(q, c);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::scalar;
    use crate::cand::Cand;

    #[target_feature(enable = "popcnt")]
    pub unsafe fn filter_popcnt(
        w: usize,
        spec: bool,
        q: &[u64],
        db: &[u64],
        base: u32,
        limit: u32,
        out: &mut Vec<Cand>,
    ) {
        scalar::filter_any(w, spec, q, db, base, limit, out)
    }

    #[target_feature(enable = "popcnt")]
    pub unsafe fn fill_popcnt(w: usize, spec: bool, q: &[u64], db: &[u64], out: &mut [u32]) {
        scalar::fill_any(w, spec, q, db, out)
    }

    /// Per-u64-lane popcount: nibble lookup with `vpshufb`, byte sums with `vpsadbw`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn popcnt_lanes(v: __m256i) -> __m256i {
        let lut = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
        );
        let low = _mm256_set1_epi8(0x0f);
        let lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low));
        let hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16::<4>(v), low));
        _mm256_sad_epu8(_mm256_add_epi8(lo, hi), _mm256_setzero_si256())
    }

    /// The query broadcast to fill a vector: 4 copies of a 1-word code, 2 of a 2-word one, or 1.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn qvec<const W: usize>(q: &[u64]) -> __m256i {
        match W {
            1 => _mm256_set1_epi64x(q[0] as i64),
            2 => _mm256_setr_epi64x(q[0] as i64, q[1] as i64, q[0] as i64, q[1] as i64),
            _ => _mm256_loadu_si256(q.as_ptr().cast()),
        }
    }

    /// Distances of the 4 codes at `p` (4·W words), one per u64 lane, in code order.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn d4<const W: usize>(p: *const u64, qv: __m256i) -> __m256i {
        let ld = |i: usize| _mm256_xor_si256(_mm256_loadu_si256(p.add(4 * i).cast()), qv);
        match W {
            1 => popcnt_lanes(ld(0)),
            2 => {
                // s0 = [c0w0, c0w1, c1w0, c1w1], s1 likewise for c2, c3.
                let s0 = popcnt_lanes(ld(0));
                let s1 = popcnt_lanes(ld(1));
                // Pairwise sums come out as [c0, c2, c1, c3]; the permute restores code order.
                let t = _mm256_add_epi64(_mm256_unpacklo_epi64(s0, s1), _mm256_unpackhi_epi64(s0, s1));
                _mm256_permute4x64_epi64::<0b11_01_10_00>(t)
            }
            _ => {
                let s: [__m256i; 4] =
                    [popcnt_lanes(ld(0)), popcnt_lanes(ld(1)), popcnt_lanes(ld(2)), popcnt_lanes(ld(3))];
                // a = [c0.lo, c1.lo, c0.hi, c1.hi] (lo/hi = 128-bit halves), b likewise for c2, c3.
                let a =
                    _mm256_add_epi64(_mm256_unpacklo_epi64(s[0], s[1]), _mm256_unpackhi_epi64(s[0], s[1]));
                let b =
                    _mm256_add_epi64(_mm256_unpacklo_epi64(s[2], s[3]), _mm256_unpackhi_epi64(s[2], s[3]));
                _mm256_add_epi64(
                    _mm256_permute2x128_si256::<0x20>(a, b),
                    _mm256_permute2x128_si256::<0x31>(a, b),
                )
            }
        }
    }

    #[target_feature(enable = "avx2,popcnt")]
    unsafe fn filter_avx2_w<const W: usize>(
        q: &[u64],
        db: &[u64],
        base: u32,
        limit: u32,
        out: &mut Vec<Cand>,
    ) {
        let n = db.len() / W;
        let qv = qvec::<W>(q);
        let limv = _mm256_set1_epi64x(i64::from(limit));
        let p = db.as_ptr();
        let mut j = 0;
        let qs = q.first_chunk::<W>().copied().unwrap_or([0; W]);
        let codes = db.as_chunks::<W>().0;
        // Twelve codes per step with one branch (almost every step rejects all twelve): eight
        // through the vector popcount and four through scalar `popcnt`, which runs on other
        // execution ports, so the two streams overlap.
        while j + 12 <= n {
            let a = d4::<W>(p.add(j * W), qv);
            let b = d4::<W>(p.add((j + 4) * W), qv);
            let s: [u32; 4] = std::array::from_fn(|i| scalar::dist(&qs, &codes[j + 8 + i]));
            let scalar_hit = s.iter().fold(false, |acc, &d| acc | (d < limit));
            let m = _mm256_or_si256(_mm256_cmpgt_epi64(limv, a), _mm256_cmpgt_epi64(limv, b));
            if _mm256_testz_si256(m, m) == 0 || scalar_hit {
                let mut t = [0u64; 12];
                _mm256_storeu_si256(t.as_mut_ptr().cast(), a);
                _mm256_storeu_si256(t.as_mut_ptr().add(4).cast(), b);
                for (o, &d) in t[8..].iter_mut().zip(&s) {
                    *o = u64::from(d);
                }
                for (i, &d) in t.iter().enumerate() {
                    let d = d as u32;
                    if d < limit {
                        out.push(Cand { idx: base + (j + i) as u32, d });
                    }
                }
            }
            j += 12;
        }
        scalar::filter_w::<W>(q, &db[j * W..], base + j as u32, limit, out);
    }

    #[target_feature(enable = "avx2,popcnt")]
    pub unsafe fn filter_avx2(
        w: usize,
        spec: bool,
        q: &[u64],
        db: &[u64],
        base: u32,
        limit: u32,
        out: &mut Vec<Cand>,
    ) {
        match (spec, w) {
            (true, 1) => filter_avx2_w::<1>(q, db, base, limit, out),
            (true, 2) => filter_avx2_w::<2>(q, db, base, limit, out),
            (true, 4) => filter_avx2_w::<4>(q, db, base, limit, out),
            _ => scalar::filter_any(w, false, q, db, base, limit, out),
        }
    }

    #[target_feature(enable = "avx2,popcnt")]
    unsafe fn fill_avx2_w<const W: usize>(q: &[u64], db: &[u64], out: &mut [u32]) {
        let n = out.len();
        let qv = qvec::<W>(q);
        let p = db.as_ptr();
        // Low 32 bits of each u64 lane into the low 128 bits.
        let pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
        let mut j = 0;
        while j + 4 <= n {
            let d = _mm256_permutevar8x32_epi32(d4::<W>(p.add(j * W), qv), pick);
            _mm_storeu_si128(out.as_mut_ptr().add(j).cast(), _mm256_castsi256_si128(d));
            j += 4;
        }
        scalar::fill_w::<W>(q, &db[j * W..], &mut out[j..]);
    }

    #[target_feature(enable = "avx2,popcnt")]
    pub unsafe fn fill_avx2(w: usize, spec: bool, q: &[u64], db: &[u64], out: &mut [u32]) {
        match (spec, w) {
            (true, 1) => fill_avx2_w::<1>(q, db, out),
            (true, 2) => fill_avx2_w::<2>(q, db, out),
            (true, 4) => fill_avx2_w::<4>(q, db, out),
            _ => scalar::fill_any(w, false, q, db, out),
        }
    }

    /// Distances of the 8 codes at `p` (8·W words, W = 1 or 2), one per u64 lane, in code order.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    unsafe fn d8<const W: usize>(p: *const u64, qv: __m512i) -> __m512i {
        let ld =
            |i: usize| _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(p.add(8 * i).cast()), qv));
        if W == 1 {
            return ld(0);
        }
        // Word popcounts of codes 0-3 and 4-7; code i's two words sit in lanes 2i and 2i + 1.
        let (a, b) = (ld(0), ld(1));
        let even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
        let odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
        _mm512_add_epi64(_mm512_permutex2var_epi64(a, even, b), _mm512_permutex2var_epi64(a, odd, b))
    }

    /// The distances of the 8 codes at `p`, as [`d8`] but in some lane order: enough for the
    /// "any below the limit?" test. For 2-word codes this takes one shuffle instead of two
    /// (shuffles and VPOPCNTQ share one port): the two vectors' halves are blended, one blend
    /// swapped within 128-bit lanes, and added, giving codes 0, 4, 1, 5, 2, 6, 3, 7.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    unsafe fn d8_unordered<const W: usize>(p: *const u64, qv: __m512i) -> __m512i {
        if W == 1 {
            return d8::<1>(p, qv);
        }
        let ld =
            |i: usize| _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(p.add(8 * i).cast()), qv));
        let (a, b) = (ld(0), ld(1));
        let x = _mm512_mask_blend_epi64(0xaa, a, b);
        let y = _mm512_shuffle_epi32::<0x4e>(_mm512_mask_blend_epi64(0xaa, b, a));
        _mm512_add_epi64(x, y)
    }

    /// Appends the codes among the `8·nv` at `p` whose distance is below `limv` to `out`, in
    /// index order (`first` is the index of the first). The distances are computed again here
    /// (hits are rare): passing them in made the compiler store them on every step of the
    /// caller's loop, hit or not.
    #[cold]
    #[inline(never)]
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    unsafe fn push_hits<const W: usize>(
        p: *const u64,
        nv: usize,
        qv: __m512i,
        limv: __m512i,
        first: u32,
        out: &mut Vec<Cand>,
    ) {
        let mut t = [0u64; 8];
        for v in 0..nv {
            let c = d8::<W>(p.add(8 * v * W), qv);
            let mut m = _mm512_cmplt_epu64_mask(c, limv);
            if m == 0 {
                continue;
            }
            _mm512_storeu_si512(t.as_mut_ptr().cast(), c);
            while m != 0 {
                let i = m.trailing_zeros();
                m &= m - 1;
                out.push(Cand { idx: first + 8 * v as u32 + i, d: t[i as usize] as u32 });
            }
        }
    }

    /// Per-code VPOPCNTDQ filter for 1- and 2-word codes: 32 codes per step with one branch
    /// (the minimum of four vectors against the limit); almost every step rejects all 32.
    #[target_feature(enable = "avx512f,avx512vpopcntdq,avx2,popcnt")]
    unsafe fn filter_avx512_w<const W: usize>(
        q: &[u64],
        db: &[u64],
        base: u32,
        limit: u32,
        out: &mut Vec<Cand>,
    ) {
        let n = db.len() / W;
        let qv = match W {
            1 => _mm512_set1_epi64(q[0] as i64),
            _ => _mm512_broadcast_i32x4(_mm_loadu_si128(q.as_ptr().cast())),
        };
        let limv = _mm512_set1_epi64(i64::from(limit));
        let p = db.as_ptr();
        let mut j = 0;
        // Hits are rare (a few steps in a hundred once the limit has tightened): a function of
        // their own handles them, so this loop keeps its state in registers. With the pushes
        // inline the compiler kept the loop index on the stack, a store and a reload a step.
        while j + 32 <= n {
            let c: [__m512i; 4] = std::array::from_fn(|i| d8_unordered::<W>(p.add((j + 8 * i) * W), qv));
            let lo = _mm512_min_epu64(_mm512_min_epu64(c[0], c[1]), _mm512_min_epu64(c[2], c[3]));
            if _mm512_cmplt_epu64_mask(lo, limv) != 0 {
                push_hits::<W>(p.add(j * W), 4, qv, limv, base + j as u32, out);
            }
            j += 32;
        }
        while j + 8 <= n {
            let c = d8::<W>(p.add(j * W), qv);
            if _mm512_cmplt_epu64_mask(c, limv) != 0 {
                push_hits::<W>(p.add(j * W), 1, qv, limv, base + j as u32, out);
            }
            j += 8;
        }
        scalar::filter_w::<W>(q, &db[j * W..], base + j as u32, limit, out);
    }

    #[target_feature(enable = "avx512f,avx512vpopcntdq,avx2,popcnt")]
    pub unsafe fn filter_avx512(
        w: usize,
        spec: bool,
        q: &[u64],
        db: &[u64],
        base: u32,
        limit: u32,
        out: &mut Vec<Cand>,
    ) {
        match (spec, w) {
            (true, 1) => filter_avx512_w::<1>(q, db, base, limit, out),
            (true, 2) => filter_avx512_w::<2>(q, db, base, limit, out),
            _ => filter_avx2(w, spec, q, db, base, limit, out),
        }
    }

    #[target_feature(enable = "avx512f,avx512vpopcntdq,avx2,popcnt")]
    pub unsafe fn fill_avx512(w: usize, spec: bool, q: &[u64], db: &[u64], out: &mut [u32]) {
        if !(spec && w == 1) {
            return fill_avx2(w, spec, q, db, out);
        }
        let n = out.len();
        let qv = _mm512_set1_epi64(q[0] as i64);
        let p = db.as_ptr();
        let mut j = 0;
        while j + 8 <= n {
            let c = _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(p.add(j).cast()), qv));
            _mm256_storeu_si256(out.as_mut_ptr().add(j).cast(), _mm512_cvtepi64_epi32(c));
            j += 8;
        }
        scalar::fill_w::<1>(q, &db[j..], &mut out[j..]);
    }
}
