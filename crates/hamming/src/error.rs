//! Typed errors of the Hamming engine.

/// Everything that can go wrong when building codes/labels or evaluating retrieval.
#[derive(Debug, thiserror::Error)]
pub enum HammingError {
    /// A flat buffer does not have the length its declared shape needs.
    #[error("shape mismatch for {what}: shape ({rows}, {cols}) needs {expected} elements, got {actual}")]
    Shape {
        /// Which input was malformed (e.g. "sign values").
        what: &'static str,
        /// Declared number of rows.
        rows: usize,
        /// Declared number of columns (bits, bytes or classes per row).
        cols: usize,
        /// `rows * cols` (saturating).
        expected: usize,
        /// Length actually supplied.
        actual: usize,
    },
    /// Codes need at least one bit.
    #[error("code length must be at least 1 bit, got 0")]
    ZeroBits,
    /// Label sets need at least one class.
    #[error("label sets need at least 1 class, got 0")]
    ZeroClasses,
    /// A class id is not below the declared class count.
    #[error("class id {id} at row {row} is out of range for {classes} classes")]
    ClassIdOutOfRange {
        /// The offending id.
        id: u32,
        /// Row holding it.
        row: usize,
        /// Declared class count.
        classes: usize,
    },
    /// A metric string could not be parsed.
    #[error("unknown metric \"{0}\": valid forms are \"map\", \"map@K\", \"p@K\" (K >= 1) and \"p@rR\" (R >= 0), e.g. \"map@100\", \"p@100\", \"p@r2\"")]
    BadMetric(String),
    /// Query and database codes have different lengths.
    #[error("bit count mismatch: queries have {query} bits, database has {database} bits")]
    BitsMismatch {
        /// Bits per query code.
        query: usize,
        /// Bits per database code.
        database: usize,
    },
    /// Query and database labels use different class counts.
    #[error(
        "class count mismatch: query labels have {query} classes, database labels have {database} classes"
    )]
    ClassMismatch {
        /// Classes of the query labels.
        query: usize,
        /// Classes of the database labels.
        database: usize,
    },
    /// Codes and labels of one side disagree on the number of items.
    #[error("row count mismatch for {side}: {codes} codes but {labels} label rows")]
    RowMismatch {
        /// "queries" or "database".
        side: &'static str,
        /// Number of code rows.
        codes: usize,
        /// Number of label rows.
        labels: usize,
    },
    /// A packed word buffer has nonzero padding bits (they would corrupt distances).
    #[error("code row {row} has nonzero padding bits beyond bit {bits}")]
    DirtyPadding {
        /// First offending row.
        row: usize,
        /// Bits per code.
        bits: usize,
    },
    /// k is 0 or larger than the database.
    #[error("k must be between 1 and the database size {n}, got {k}")]
    BadK {
        /// Requested neighbours.
        k: usize,
        /// Database size.
        n: usize,
    },
    /// The database has more items than 32-bit indices address.
    #[error("database of {0} items is too large (at most 4294967295)")]
    TooLarge(usize),
    /// A CPU kernel was forced that this machine does not support.
    #[error("kernel {0} is not supported by this CPU")]
    KernelUnsupported(&'static str),
    /// The CUDA backend failed (no driver, no device, compile or launch error).
    #[error("CUDA backend: {0}")]
    Cuda(String),
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, HammingError>;

/// Checks `actual == rows * cols`, reporting both shapes on failure.
pub(crate) fn check_shape(what: &'static str, rows: usize, cols: usize, actual: usize) -> Result<()> {
    // checked_mul: an absurd shape must be an error, not a wrapped product that happens to match.
    match rows.checked_mul(cols) {
        Some(expected) if expected == actual => Ok(()),
        expected => {
            Err(HammingError::Shape { what, rows, cols, expected: expected.unwrap_or(usize::MAX), actual })
        }
    }
}
