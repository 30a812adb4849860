//! Packed binary codes and the popcount distance.

use crate::error::{check_shape, HammingError, Result};

/// Packed sign-bit codes: `words_per_code = bits.div_ceil(64)` u64 words per code, padding bits zero.
///
/// Bit `j` of a code lives in word `j / 64` at bit position `j % 64` (least significant first).
/// Padding bits are always zero, so XOR + popcount over whole words is the exact Hamming
/// distance and the derived `PartialEq` compares codes bit for bit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codes {
    data: Vec<u64>,
    n: usize,
    bits: usize,
    words: usize,
}

impl Codes {
    /// Packs a row-major `n x bits` matrix of real values; bit set iff value > 0.0 (NaN -> 0).
    pub fn from_signs(values: &[f32], n: usize, bits: usize) -> Result<Codes> {
        Self::from_fn("sign values", values, n, bits, |v| *v > 0.0)
    }

    /// Packs a row-major `n x bits` matrix of booleans.
    pub fn from_bools(bits_rowmajor: &[bool], n: usize, bits: usize) -> Result<Codes> {
        Self::from_fn("bool bits", bits_rowmajor, n, bits, |b| *b)
    }

    fn from_fn<T>(
        what: &'static str,
        values: &[T],
        n: usize,
        bits: usize,
        set: impl Fn(&T) -> bool,
    ) -> Result<Codes> {
        if bits == 0 {
            return Err(HammingError::ZeroBits);
        }
        check_shape(what, n, bits, values.len())?;
        let words = bits.div_ceil(64);
        let mut data = vec![0u64; n * words];
        for (row, out) in values.chunks_exact(bits).zip(data.chunks_exact_mut(words)) {
            for (j, v) in row.iter().enumerate() {
                if set(v) {
                    out[j / 64] |= 1u64 << (j % 64);
                }
            }
        }
        Ok(Codes { data, n, bits, words })
    }

    /// Unpacks `numpy.packbits` rows: `bits.div_ceil(8)` bytes per row, big-endian within a byte.
    ///
    /// Bit `j` of a code is bit `7 - j % 8` of byte `j / 8`. Padding bits of the last byte are
    /// ignored (cleared) so the zero-padding invariant holds whatever the file contains.
    pub fn from_packbits(bytes: &[u8], n: usize, bits: usize) -> Result<Codes> {
        if bits == 0 {
            return Err(HammingError::ZeroBits);
        }
        let row_bytes = bits.div_ceil(8);
        check_shape("packed bytes", n, row_bytes, bytes.len())?;
        let words = bits.div_ceil(64);
        let mut data = vec![0u64; n * words];
        let tail = bits % 64;
        for (row, out) in bytes.chunks_exact(row_bytes).zip(data.chunks_exact_mut(words)) {
            // Reversing a byte turns numpy's MSB-first order into our LSB-first order, so byte b
            // becomes byte b % 8 (little-endian) of word b / 8.
            for (b, &byte) in row.iter().enumerate() {
                out[b / 8] |= u64::from(byte.reverse_bits()) << (8 * (b % 8));
            }
            if tail != 0 {
                out[words - 1] &= (1u64 << tail) - 1;
            }
        }
        Ok(Codes { data, n, bits, words })
    }

    /// Packs to the `numpy.packbits` layout (`len() * bits.div_ceil(8)` bytes); inverse of `from_packbits`.
    pub fn to_packbits(&self) -> Vec<u8> {
        let row_bytes = self.bits.div_ceil(8);
        let mut out = Vec::with_capacity(self.n * row_bytes);
        for i in 0..self.n {
            let row = self.row(i);
            out.extend((0..row_bytes).map(|b| ((row[b / 8] >> (8 * (b % 8))) as u8).reverse_bits()));
        }
        out
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when there are no codes.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Bits per code.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// u64 words per packed code (`bits.div_ceil(64)`).
    pub fn words_per_code(&self) -> usize {
        self.words
    }

    /// Packed words of code `i` (panics if `i >= len()`).
    pub fn row(&self, i: usize) -> &[u64] {
        assert!(i < self.n, "code row {i} out of range for {} codes", self.n);
        &self.data[i * self.words..(i + 1) * self.words]
    }

    /// All packed words, row-major (`len() * words_per_code()`), e.g. for upload to a device.
    pub fn as_words(&self) -> &[u64] {
        &self.data
    }

    /// Bit `j` of code `i` (panics if out of range).
    pub fn bit(&self, i: usize, j: usize) -> bool {
        assert!(j < self.bits, "bit {j} out of range for {} bits", self.bits);
        self.row(i)[j / 64] >> (j % 64) & 1 == 1
    }

    /// A borrowed view of all codes, for the search engine.
    pub fn view(&self) -> CodesView<'_> {
        CodesView { data: &self.data, n: self.n, bits: self.bits, words: self.words }
    }

    /// Gathers the given rows, in the given order (panics on an out-of-range row).
    pub fn select(&self, rows: &[usize]) -> Codes {
        let mut data = Vec::with_capacity(rows.len() * self.words);
        for &r in rows {
            data.extend_from_slice(self.row(r));
        }
        Codes { data, n: rows.len(), bits: self.bits, words: self.words }
    }
}

/// A borrowed packed code matrix: `len() * words_per_code()` u64 words, padding bits zero.
///
/// What the search engine reads. It can borrow a [`Codes`] ([`Codes::view`]), a memory-mapped
/// file ([`crate::npy::CodeFile::view`]) or any caller's buffer ([`CodesView::from_words`]).
/// Only the XOR + popcount of two codes matters, so any bit layout works as long as queries
/// and database share it.
#[derive(Clone, Copy, Debug)]
pub struct CodesView<'a> {
    data: &'a [u64],
    n: usize,
    bits: usize,
    words: usize,
}

impl<'a> CodesView<'a> {
    /// Views `n` codes of `bits` bits in `data` (`bits.div_ceil(64)` words each, padding bits zero).
    pub fn from_words(data: &'a [u64], n: usize, bits: usize) -> Result<CodesView<'a>> {
        if bits == 0 {
            return Err(HammingError::ZeroBits);
        }
        let words = bits.div_ceil(64);
        check_shape("packed words", n, words, data.len())?;
        if !bits.is_multiple_of(64) {
            let mask = !((1u64 << (bits % 64)) - 1);
            if let Some(row) = data.chunks_exact(words).position(|r| r[words - 1] & mask != 0) {
                return Err(HammingError::DirtyPadding { row, bits });
            }
        }
        Ok(CodesView { data, n, bits, words })
    }

    /// Caller guarantees `data.len() == n * bits.div_ceil(64)` and zero padding bits.
    pub(crate) fn new_unchecked(data: &'a [u64], n: usize, bits: usize) -> CodesView<'a> {
        let words = bits.div_ceil(64);
        debug_assert_eq!(data.len(), n * words);
        CodesView { data, n, bits, words }
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when there are no codes.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Bits per code.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// u64 words per code.
    pub fn words_per_code(&self) -> usize {
        self.words
    }

    /// All words, row-major.
    pub fn as_words(&self) -> &'a [u64] {
        self.data
    }

    /// Words of code `i` (panics if `i >= len()`).
    pub fn row(&self, i: usize) -> &'a [u64] {
        assert!(i < self.n, "code row {i} out of range for {} codes", self.n);
        &self.data[i * self.words..(i + 1) * self.words]
    }

    /// Codes `start..end` as a view (panics if out of range).
    pub fn slice(&self, start: usize, end: usize) -> CodesView<'a> {
        assert!(start <= end && end <= self.n, "code range {start}..{end} out of range for {}", self.n);
        CodesView { data: &self.data[start * self.words..end * self.words], n: end - start, ..*self }
    }
}

/// Hamming distance between two packed codes of equal length: XOR + count_ones.
#[inline]
pub fn hamming_distance(a: &[u64], b: &[u64]) -> u32 {
    debug_assert_eq!(a.len(), b.len(), "codes of different word counts");
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}
