//! Bit-sliced top-k filter: database tiles transposed into bit planes, and the distances of 256
//! codes summed at once by a Harley-Seal carry-save adder over those planes.
//!
//! Why: the per-code `vpshufb` popcount spends about 2.5 vector operations per 64-bit code, two
//! of them shuffles that only some ports run. Adding 64 planes of 256 lanes with carry-save
//! adders costs about 1.4 plain logic operations per code, which every vector port runs. The
//! transposition is done once per database tile and shared by every query of a query block
//! (see `knn.rs`), so the database is never copied whole.

use crate::cand::Cand;

/// Codes per bit-sliced block: bit `b` of each of them forms one 256-bit plane.
pub(crate) const LANES: usize = 256;

/// Codes per block of the AVX-512 filter: one 512-bit plane per bit.
pub(crate) const LANES512: usize = 512;

/// Widest code (in 64-bit words) the sliced filter takes; wider codes use the row-major loops.
pub(crate) const MAX_WORDS: usize = 64;

/// Bits of the per-lane distance above the adder's eights: 2^HI_LEVELS > 4·MAX_WORDS sixteens.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the AVX2 adder only
const HI_LEVELS: usize = 9;
/// Most bits of a per-lane distance.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the AVX2 adder only
const NB_MAX: usize = 4 + HI_LEVELS;

/// Bits above the eights that hold the sum of a `w`-word code's 4·w sixteens.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the AVX2 adder only
#[inline(always)]
fn levels(w: usize) -> usize {
    (usize::BITS - (4 * w).leading_zeros()) as usize
}

/// Transposes `codes` (row-major, `w` words each, a multiple of [`LANES`] codes) into `out`.
///
/// Block `k` holds `64·w` planes of 4 words; bit `i` of word `g` of plane `64·c + b` is bit `b`
/// of word `c` of code `256·k + 64·g + i`. Same number of words as the input.
pub(crate) fn transpose(codes: &[u64], w: usize, out: &mut Vec<u64>) {
    transpose_groups::<4>(codes, w, out)
}

/// [`transpose`] into blocks of `64·G` lanes (planes of `G` words): `G = 4` for the AVX2 filter,
/// 8 for the AVX-512 one ([`LANES512`]).
pub(crate) fn transpose_groups<const G: usize>(codes: &[u64], w: usize, out: &mut Vec<u64>) {
    let lanes = 64 * G;
    let n = codes.len() / w;
    debug_assert!(n.is_multiple_of(lanes) && codes.len() == n * w);
    out.clear();
    out.resize(codes.len(), 0);
    let mut m = [0u64; 64];
    for (blk, planes) in out.chunks_exact_mut(lanes * w).enumerate() {
        for g in 0..G {
            for c in 0..w {
                let first = (blk * lanes + 64 * g) * w + c;
                for (i, v) in m.iter_mut().enumerate() {
                    *v = codes[first + i * w];
                }
                transpose64(&mut m);
                for (b, &v) in m.iter().enumerate() {
                    planes[(64 * c + b) * G + g] = v;
                }
            }
        }
    }
}

/// In-place transpose of a 64×64 bit matrix: afterwards bit `i` of `a[b]` is what bit `b` of
/// `a[i]` was. Six rounds, each swapping the off-diagonal J×J blocks of every 2J×2J block.
fn transpose64(a: &mut [u64; 64]) {
    swap_blocks::<32>(a, 0x0000_0000_ffff_ffff);
    swap_blocks::<16>(a, 0x0000_ffff_0000_ffff);
    swap_blocks::<8>(a, 0x00ff_00ff_00ff_00ff);
    swap_blocks::<4>(a, 0x0f0f_0f0f_0f0f_0f0f);
    swap_blocks::<2>(a, 0x3333_3333_3333_3333);
    swap_blocks::<1>(a, 0x5555_5555_5555_5555);
}

/// One round of [`transpose64`]: rows r and r + J of each 2J-row group exchange the high J bits
/// of each 2J-bit group of row r with the low J bits of row r + J. Constant J: no bounds checks,
/// and the compiler vectorises the wide rounds.
#[inline(always)]
fn swap_blocks<const J: usize>(a: &mut [u64; 64], mask: u64) {
    for group in a.chunks_exact_mut(2 * J) {
        let (lo, hi) = group.split_at_mut(J);
        for (x, y) in lo.iter_mut().zip(hi) {
            let t = ((*x >> J) ^ *y) & mask;
            *y ^= t;
            *x ^= t << J;
        }
    }
}

/// The query as plane masks: all ones where its bit is set, in the plane order of [`transpose`].
pub(crate) fn query_masks(q: &[u64], out: &mut Vec<[u64; 4]>) {
    out.clear();
    out.extend(q.iter().flat_map(|&word| (0..64).map(move |b| [0u64.wrapping_sub(word >> b & 1); 4])));
}

/// One lane's distance from bit-sliced distance bits (`bits[b]` holds bit `b` of every lane's).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the AVX2 adder only
#[inline]
fn lane_distance<const G: usize>(bits: &[[u64; G]], g: usize, i: u32) -> u32 {
    bits.iter().enumerate().fold(0, |d, (b, v)| d | ((v[g] >> i & 1) as u32) << b)
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;

    use super::{lane_distance, levels, Cand, HI_LEVELS, LANES, LANES512, NB_MAX};

    /// Full adder on 256 lanes: (carry, sum) of `a + b + c`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn csa(a: __m256i, b: __m256i, c: __m256i) -> (__m256i, __m256i) {
        let u = _mm256_xor_si256(a, b);
        (_mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(u, c)), _mm256_xor_si256(u, c))
    }

    /// Bit-sliced distances of one block's 256 lanes to the query: afterwards `bits[b]` holds
    /// bit `b` of every lane's distance, for `b < 4 + levels(w)`. `p` points at the block's
    /// `64·w` planes, `qp` at the query's plane masks.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn distance_bits(w: usize, qp: *const __m256i, p: *const __m256i, bits: &mut [__m256i; NB_MAX]) {
        let z = _mm256_setzero_si256();
        // Plane i XOR the query's mask i: bit set where code and query differ.
        let x = |i: usize| _mm256_xor_si256(_mm256_loadu_si256(p.add(i)), _mm256_loadu_si256(qp.add(i)));
        let (mut ones, mut twos, mut fours, mut eights) = (z, z, z, z);
        let mut hi = [z; HI_LEVELS];
        let levels = levels(w);
        // Adds planes o..o+8 into (ones, twos, fours); returns the eights carry.
        let add8 = |o: usize, acc: &mut [__m256i; 3]| {
            let (ta, s) = csa(acc[0], x(o), x(o + 1));
            let (tb, s) = csa(s, x(o + 2), x(o + 3));
            let (fa, t) = csa(acc[1], ta, tb);
            let (ta, s) = csa(s, x(o + 4), x(o + 5));
            let (tb, s) = csa(s, x(o + 6), x(o + 7));
            let (fb, t) = csa(t, ta, tb);
            let (e, f) = csa(acc[2], fa, fb);
            *acc = [s, t, f];
            e
        };
        for c in 0..4 * w {
            let mut acc = [ones, twos, fours];
            let ea = add8(16 * c, &mut acc);
            let eb = add8(16 * c + 8, &mut acc);
            [ones, twos, fours] = acc;
            let (sixteen, e) = csa(eights, ea, eb);
            eights = e;
            // Ripple-add this chunk's sixteens bit into the high bits.
            let mut carry = sixteen;
            for h in hi.iter_mut().take(levels) {
                let next = _mm256_and_si256(*h, carry);
                *h = _mm256_xor_si256(*h, carry);
                carry = next;
            }
        }
        bits[..4].copy_from_slice(&[ones, twos, fours, eights]);
        bits[4..4 + levels].copy_from_slice(&hi[..levels]);
    }

    /// Appends every lane of `planes` (blocks from [`super::transpose`], codes of `w` words) whose
    /// distance to the query with plane masks `qm` is < `limit` to `out`, in index order; `base`
    /// is the index of the first code. `W` is the width when the caller specialises it, 0 for
    /// "use `w`".
    ///
    /// # Safety
    /// The CPU must have AVX2; `qm.len() == 64·w`, `planes.len()` a multiple of `256·w`, and
    /// `w <= MAX_WORDS`.
    #[target_feature(enable = "avx2,popcnt")]
    pub unsafe fn filter<const W: usize>(
        w: usize,
        qm: &[[u64; 4]],
        planes: &[u64],
        base: u32,
        limit: u32,
        out: &mut Vec<Cand>,
    ) {
        let w = if W == 0 { w } else { W };
        debug_assert!(qm.len() == 64 * w && planes.len().is_multiple_of(LANES * w) && w <= super::MAX_WORDS);
        let nb = 4 + levels(w);
        let z = _mm256_setzero_si256();
        let every = _mm256_set1_epi8(-1);
        let mut bits = [z; NB_MAX];
        for (k, block) in planes.chunks_exact(LANES * w).enumerate() {
            distance_bits(w, qm.as_ptr().cast(), block.as_ptr().cast(), &mut bits);
            // Lanes with distance < limit, comparing from the top bit down.
            let lt = if u64::from(limit) >= 1u64 << nb {
                every
            } else {
                let (mut lt, mut eq) = (z, every);
                for b in (0..nb).rev() {
                    let v = bits[b];
                    if limit >> b & 1 == 1 {
                        lt = _mm256_or_si256(lt, _mm256_andnot_si256(v, eq));
                        eq = _mm256_and_si256(eq, v);
                    } else {
                        eq = _mm256_andnot_si256(v, eq);
                    }
                }
                lt
            };
            if _mm256_testz_si256(lt, lt) == 1 {
                continue;
            }
            let hits = words(lt);
            let mut lane_bits = [[0u64; 4]; NB_MAX];
            for (v, &b) in lane_bits.iter_mut().zip(&bits).take(nb) {
                *v = words(b);
            }
            let first = base + (k * LANES) as u32;
            for (g, &word) in hits.iter().enumerate() {
                let mut m = word;
                while m != 0 {
                    let i = m.trailing_zeros();
                    m &= m - 1;
                    let d = lane_distance(&lane_bits[..nb], g, i);
                    out.push(Cand { idx: first + 64 * g as u32 + i, d });
                }
            }
        }
    }

    /// The four 64-lane words of a 256-lane mask.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn words(v: __m256i) -> [u64; 4] {
        let mut out = [0u64; 4];
        // SAFETY: `out` is 32 bytes.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) };
        out
    }

    /// `vpternlogq`: bit `a·4 + b·2 + c` of `IMM`, on every bit of the lanes. Miri cannot run
    /// the instruction, so under Miri it is evaluated from that definition (an OR of the
    /// minterms `IMM` selects): the immediates are then checked too, not assumed.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn ternary<const IMM: i32>(a: __m512i, b: __m512i, c: __m512i) -> __m512i {
        #[cfg(not(miri))]
        {
            _mm512_ternarylogic_epi64::<IMM>(a, b, c)
        }
        #[cfg(miri)]
        {
            ternary_minterms::<IMM>(a, b, c)
        }
    }

    /// [`ternary`] from its definition, in AND/OR/XOR (which Miri runs).
    #[cfg(any(miri, test))]
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn ternary_minterms<const IMM: i32>(a: __m512i, b: __m512i, c: __m512i) -> __m512i {
        let every = _mm512_set1_epi64(-1);
        let pick = |v: __m512i, set: bool| if set { v } else { _mm512_xor_si512(v, every) };
        let mut r = _mm512_setzero_si512();
        for i in 0..8 {
            if IMM >> i & 1 == 1 {
                let m = _mm512_and_si512(pick(a, i & 4 != 0), pick(b, i & 2 != 0));
                r = _mm512_or_si512(r, _mm512_and_si512(m, pick(c, i & 1 != 0)));
            }
        }
        r
    }

    /// Full adder on 512 lanes in two ternary-logic operations (majority, three-way XOR):
    /// (carry, sum) of `a + b + c`. The AVX2 adder needs five.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn csa512(a: __m512i, b: __m512i, c: __m512i) -> (__m512i, __m512i) {
        (ternary::<0xe8>(a, b, c), ternary::<0x96>(a, b, c))
    }

    /// [`distance_bits`] on 512 lanes: `p` points at a block's `64·w` planes of 8 words (from
    /// [`super::transpose_groups`]`::<8>`), `qm` at the query's plane masks (word 0 of each is
    /// broadcast).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn distance_bits512(
        w: usize,
        qm: *const [u64; 4],
        p: *const __m512i,
        bits: &mut [__m512i; NB_MAX],
    ) {
        let z = _mm512_setzero_si512();
        let x = |i: usize| {
            _mm512_xor_si512(_mm512_loadu_si512(p.add(i).cast()), _mm512_set1_epi64((*qm.add(i))[0] as i64))
        };
        let (mut ones, mut twos, mut fours, mut eights) = (z, z, z, z);
        let mut hi = [z; HI_LEVELS];
        let levels = levels(w);
        let add8 = |o: usize, acc: &mut [__m512i; 3]| {
            let (ta, s) = csa512(acc[0], x(o), x(o + 1));
            let (tb, s) = csa512(s, x(o + 2), x(o + 3));
            let (fa, t) = csa512(acc[1], ta, tb);
            let (ta, s) = csa512(s, x(o + 4), x(o + 5));
            let (tb, s) = csa512(s, x(o + 6), x(o + 7));
            let (fb, t) = csa512(t, ta, tb);
            let (e, f) = csa512(acc[2], fa, fb);
            *acc = [s, t, f];
            e
        };
        for c in 0..4 * w {
            let mut acc = [ones, twos, fours];
            let ea = add8(16 * c, &mut acc);
            let eb = add8(16 * c + 8, &mut acc);
            [ones, twos, fours] = acc;
            let (sixteen, e) = csa512(eights, ea, eb);
            eights = e;
            let mut carry = sixteen;
            for h in hi.iter_mut().take(levels) {
                let next = _mm512_and_si512(*h, carry);
                *h = _mm512_xor_si512(*h, carry);
                carry = next;
            }
        }
        bits[..4].copy_from_slice(&[ones, twos, fours, eights]);
        bits[4..4 + levels].copy_from_slice(&hi[..levels]);
    }

    /// [`filter`] on 512-lane blocks with AVX-512 ternary logic (`planes` from
    /// [`super::transpose_groups`]`::<8>`).
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `qm.len() == 64·w`, `planes.len()` a multiple of `512·w`,
    /// and `w <= MAX_WORDS`.
    #[target_feature(enable = "avx512f,popcnt")]
    pub unsafe fn filter512<const W: usize>(
        w: usize,
        qm: &[[u64; 4]],
        planes: &[u64],
        base: u32,
        limit: u32,
        out: &mut Vec<Cand>,
    ) {
        let w = if W == 0 { w } else { W };
        debug_assert!(
            qm.len() == 64 * w && planes.len().is_multiple_of(LANES512 * w) && w <= super::MAX_WORDS
        );
        let nb = 4 + levels(w);
        let z = _mm512_setzero_si512();
        let every = _mm512_set1_epi64(-1);
        let mut bits = [z; NB_MAX];
        for (k, block) in planes.chunks_exact(LANES512 * w).enumerate() {
            distance_bits512(w, qm.as_ptr(), block.as_ptr().cast(), &mut bits);
            let lt = if u64::from(limit) >= 1u64 << nb {
                every
            } else {
                let (mut lt, mut eq) = (z, every);
                for b in (0..nb).rev() {
                    let v = bits[b];
                    if limit >> b & 1 == 1 {
                        // lt |= eq & !v
                        lt = ternary::<0xf2>(lt, v, eq);
                        eq = _mm512_and_si512(eq, v);
                    } else {
                        eq = _mm512_andnot_si512(v, eq);
                    }
                }
                lt
            };
            if _mm512_test_epi64_mask(lt, lt) == 0 {
                continue;
            }
            let hits = words512(lt);
            let mut lane_bits = [[0u64; 8]; NB_MAX];
            for (v, &b) in lane_bits.iter_mut().zip(&bits).take(nb) {
                *v = words512(b);
            }
            let first = base + (k * LANES512) as u32;
            for (g, &word) in hits.iter().enumerate() {
                let mut m = word;
                while m != 0 {
                    let i = m.trailing_zeros();
                    m &= m - 1;
                    let d = lane_distance(&lane_bits[..nb], g, i);
                    out.push(Cand { idx: first + 64 * g as u32 + i, d });
                }
            }
        }
    }

    /// The eight 64-lane words of a 512-lane mask.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn words512(v: __m512i) -> [u64; 8] {
        let mut out = [0u64; 8];
        // SAFETY: `out` is 64 bytes.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), v) };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_bit(codes: &[u64], w: usize, code: usize, plane: usize) -> u64 {
        codes[code * w + plane / 64] >> (plane % 64) & 1
    }

    #[test]
    fn transpose_puts_every_bit_where_the_layout_says() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for w in [1usize, 2, 3] {
            let codes: Vec<u64> = (0..2 * LANES * w)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                })
                .collect();
            let mut out = Vec::new();
            transpose(&codes, w, &mut out);
            assert_eq!(out.len(), codes.len());
            for code in 0..2 * LANES {
                let (blk, g, i) = (code / LANES, code % LANES / 64, code % 64);
                for plane in 0..64 * w {
                    let got = out[(blk * 64 * w + plane) * 4 + g] >> i & 1;
                    assert_eq!(got, naive_bit(&codes, w, code, plane), "w {w} code {code} plane {plane}");
                }
            }
        }
    }

    #[test]
    fn query_masks_follow_the_plane_order() {
        let mut m = Vec::new();
        query_masks(&[0b101, 1 << 63], &mut m);
        assert_eq!(m.len(), 128);
        let set: Vec<usize> = (0..128).filter(|&p| m[p] == [u64::MAX; 4]).collect();
        assert_eq!(set, [0, 2, 127]);
        assert!(m.iter().all(|v| *v == [0; 4] || *v == [u64::MAX; 4]));
    }

    #[test]
    fn lane_distance_reads_one_lane_of_the_sliced_bits() {
        // Lane 5 of word 1 holds 0b1011 = 11; lane 0 of word 0 holds 0b0100 = 4.
        let bits = [[0, 1 << 5, 0, 0], [0, 1 << 5, 0, 0], [1, 0, 0, 0], [0, 1 << 5, 0, 0]];
        assert_eq!(lane_distance(&bits, 1, 5), 11);
        assert_eq!(lane_distance(&bits, 0, 0), 4);
    }

    /// The immediates the AVX-512 filter uses give the same bits from `vpternlogq` as from
    /// their minterms (Miri runs the minterms: this ties what it checks to the instruction).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn ternary_logic_equals_its_minterms() {
        use std::arch::x86_64::*;
        if !std::is_x86_feature_detected!("avx512f") {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        let word = |seed: u64| {
            let mut x = seed;
            let mut w = [0u64; 8];
            for v in &mut w {
                x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1) ^ (x >> 29);
                *v = x;
            }
            w
        };
        // SAFETY: AVX-512F was detected above; the arrays are 64 bytes each.
        unsafe {
            let load = |w: [u64; 8]| _mm512_loadu_si512(w.as_ptr().cast());
            let store = |v: __m512i| {
                let mut w = [0u64; 8];
                _mm512_storeu_si512(w.as_mut_ptr().cast(), v);
                w
            };
            for seed in 1..50u64 {
                let (a, b, c) = (load(word(seed)), load(word(seed * 7)), load(word(seed * 13)));
                assert_eq!(
                    store(x86::ternary::<0xe8>(a, b, c)),
                    store(x86::ternary_minterms::<0xe8>(a, b, c))
                );
                assert_eq!(
                    store(x86::ternary::<0x96>(a, b, c)),
                    store(x86::ternary_minterms::<0x96>(a, b, c))
                );
                assert_eq!(
                    store(x86::ternary::<0xf2>(a, b, c)),
                    store(x86::ternary_minterms::<0xf2>(a, b, c))
                );
            }
        }
    }
}
