//! The filter result shared by the row-major kernels (`kernel.rs`) and the bit-sliced ones
//! (`sliced.rs`): a leaf module, so neither of those depends on the other for it.

/// A database item that passed a distance filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cand {
    /// Index of the item in the database.
    pub idx: u32,
    /// Its Hamming distance to the query.
    pub d: u32,
}
