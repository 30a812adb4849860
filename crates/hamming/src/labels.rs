//! Packed multi-hot label sets and the relevance relation.

use crate::error::{check_shape, HammingError, Result};

/// Multi-hot labels packed as u64 words; two items are relevant iff they share >= 1 label.
///
/// Class `c` of row `i` is bit `c % 64` of word `c / 64` of that row; padding bits are zero,
/// so relevance is a word-wise AND with no masking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelSet {
    data: Vec<u64>,
    n: usize,
    classes: usize,
    words: usize,
}

impl LabelSet {
    /// Builds from a row-major `n x classes` multi-hot matrix; any nonzero byte means "has label".
    pub fn from_multi_hot(data: &[u8], n: usize, classes: usize) -> Result<LabelSet> {
        if classes == 0 {
            return Err(HammingError::ZeroClasses);
        }
        check_shape("multi-hot labels", n, classes, data.len())?;
        let mut set = LabelSet::empty(n, classes);
        for (i, row) in data.chunks_exact(classes).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                if v != 0 {
                    set.data[i * set.words + c / 64] |= 1u64 << (c % 64);
                }
            }
        }
        Ok(set)
    }

    /// Builds single-label rows from class ids; errors if an id is `>= classes`.
    pub fn from_class_ids(ids: &[u32], classes: usize) -> Result<LabelSet> {
        if classes == 0 {
            return Err(HammingError::ZeroClasses);
        }
        let mut set = LabelSet::empty(ids.len(), classes);
        for (i, &id) in ids.iter().enumerate() {
            let c = id as usize;
            if c >= classes {
                return Err(HammingError::ClassIdOutOfRange { id, row: i, classes });
            }
            set.data[i * set.words + c / 64] |= 1u64 << (c % 64);
        }
        Ok(set)
    }

    fn empty(n: usize, classes: usize) -> LabelSet {
        let words = classes.div_ceil(64);
        LabelSet { data: vec![0; n * words], n, classes, words }
    }

    /// Number of label rows.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// u64 words per packed label row (`classes.div_ceil(64)`).
    pub fn words_per_row(&self) -> usize {
        self.words
    }

    /// Packed words of label row `i` (panics if out of range).
    pub fn row(&self, i: usize) -> &[u64] {
        assert!(i < self.n, "label row {i} out of range for {} rows", self.n);
        &self.data[i * self.words..(i + 1) * self.words]
    }

    /// All packed words, row-major (`len() * words_per_row()`), e.g. for upload to a device.
    pub fn as_words(&self) -> &[u64] {
        &self.data
    }

    /// True iff row `i` of `self` and row `j` of `other` share at least one label.
    #[inline]
    pub fn relevant(&self, i: usize, other: &LabelSet, j: usize) -> bool {
        debug_assert_eq!(self.classes, other.classes, "label sets of different class counts");
        self.row(i).iter().zip(other.row(j)).any(|(a, b)| a & b != 0)
    }

    /// True iff row `i` has label `class` (false for a class beyond `classes()`; panics on a bad row).
    pub fn has(&self, i: usize, class: usize) -> bool {
        class < self.classes && self.row(i)[class / 64] >> (class % 64) & 1 == 1
    }

    /// Gathers the given rows, in the given order (panics on an out-of-range row).
    pub fn select(&self, rows: &[usize]) -> LabelSet {
        let mut data = Vec::with_capacity(rows.len() * self.words);
        for &r in rows {
            data.extend_from_slice(self.row(r));
        }
        LabelSet { data, n: rows.len(), classes: self.classes, words: self.words }
    }
}
