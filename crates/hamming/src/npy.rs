//! `.npy` files for search and eval: memory-mapped reads, atomic writes, every error naming the file.
//!
//! Headers, dtypes and label values follow the rules of the shared reader (`seqmodal_npy`),
//! the same as the data crate's `.npz` loader: C or Fortran order, any little-endian numeric
//! dtype, integral float labels. Reads map the file instead of copying it, so a database of
//! codes is in memory once (the page cache), however large.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::codes::CodesView;
use crate::labels::LabelSet;

pub use seqmodal_npy::{npy_bytes, DType, Header as NpyHeader};

/// Everything that can go wrong reading or writing a `.npy` file; each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file could not be opened, mapped, read or written (the OS error is the source).
    #[error("cannot read or write {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not start with the `\x93NUMPY` magic string.
    #[error("{}: not a .npy file (bad magic string)", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// A format version other than 1.0, 2.0 or 3.0.
    #[error("{}: unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The header dictionary is malformed or incomplete.
    #[error("{}: bad .npy header: {reason}", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The dtype is not one the caller accepts.
    #[error("{}: dtype {found} is not accepted here (expected {expected})", path.display())]
    DType {
        /// The file.
        path: PathBuf,
        /// The `descr` found in the header.
        found: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The array has the wrong number of dimensions.
    #[error("{}: array has shape {shape:?} ({} dimensions), expected {expected}", path.display(), shape.len())]
    Rank {
        /// The file.
        path: PathBuf,
        /// The shape found.
        shape: Vec<usize>,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The file holds fewer (or more) data bytes than the header's shape needs.
    #[error("{}: data is {actual} bytes but shape {shape:?} of {dtype} needs {expected} ({})", path.display(),
        if (*actual as u128) < *expected { "truncated or corrupt file" } else { "bytes after the array's data: corrupt file" })]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Shape from the header.
        shape: Vec<usize>,
        /// dtype from the header.
        dtype: DType,
        /// Bytes the shape needs.
        expected: u128,
        /// Bytes present after the header.
        actual: usize,
    },
    /// A value cannot be used (e.g. a negative class id, a zero-width code row, a label shape).
    #[error("{}: {reason}", path.display())]
    Value {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Result alias of the `.npy` module.
pub type NpyResult<T> = std::result::Result<T, NpyError>;

/// Names the file in an error of the shared reader (`seqmodal_npy`).
fn at(path: &Path, e: seqmodal_npy::NpyError) -> NpyError {
    use seqmodal_npy::NpyError as E;
    let path = path.to_path_buf();
    match e {
        E::BadMagic => NpyError::BadMagic { path },
        E::Version { major, minor } => NpyError::Version { path, major, minor },
        E::Header(reason) => NpyError::Header { path, reason },
        E::DType(found) => NpyError::DType { path, found, expected: "a little-endian numeric dtype" },
        E::TooLarge(_) => NpyError::Header { path, reason: e.to_string() },
        // Label values and shapes; a short stream cannot happen here (the data length is
        // checked against the mapped file first).
        _ => NpyError::Value { path, reason: e.to_string() },
    }
}

/// Parses the header at the start of `bytes` (which may hold the whole file); `path` is for errors.
pub fn parse_header(bytes: &[u8], path: &Path) -> NpyResult<NpyHeader> {
    seqmodal_npy::parse_header(bytes).map_err(|e| at(path, e))
}

/// A memory-mapped `.npy` file with a validated header and data length.
pub struct NpyFile {
    path: PathBuf,
    header: NpyHeader,
    map: Mmap,
}

impl fmt::Debug for NpyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NpyFile").field("path", &self.path).field("header", &self.header).finish()
    }
}

impl NpyFile {
    /// Opens and maps `path`, parses the header and checks the data length against the shape.
    pub fn open(path: impl AsRef<Path>) -> NpyResult<NpyFile> {
        let path = path.as_ref().to_path_buf();
        let io = |source| NpyError::Io { path: path.clone(), source };
        let file = File::open(&path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < 10 {
            return Err(NpyError::BadMagic { path });
        }
        // SAFETY: the map is read-only; like every mmap reader we assume the file is not
        // truncated or rewritten by another process while it is open.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let header = parse_header(&map, &path)?;
        let actual = map.len() - header.data_offset;
        let expected =
            header.shape.iter().fold(header.dtype.size() as u128, |a, &d| a.saturating_mul(d as u128));
        if expected != actual as u128 {
            return Err(NpyError::Truncated {
                path,
                shape: header.shape,
                dtype: header.dtype,
                expected,
                actual,
            });
        }
        Ok(NpyFile { path, header, map })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The parsed header.
    pub fn header(&self) -> &NpyHeader {
        &self.header
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.header.dtype
    }

    /// Shape (as numpy reports it, whatever the order).
    pub fn shape(&self) -> &[usize] {
        &self.header.shape
    }

    /// The raw little-endian data bytes in file order (column-major if the header says
    /// Fortran order), exactly `elements * dtype.size()` bytes.
    pub fn data(&self) -> &[u8] {
        &self.map[self.header.data_offset..]
    }

    fn dtype_error(&self, expected: &'static str) -> NpyError {
        NpyError::DType { path: self.path.clone(), found: self.header.dtype.descr().to_string(), expected }
    }

    fn rank_error(&self, expected: &'static str) -> NpyError {
        NpyError::Rank { path: self.path.clone(), shape: self.header.shape.clone(), expected }
    }
}

/// Packed codes read from a `.npy` uint8 (N, bytes) file, zero-copy where the layout allows.
///
/// The words are the file's bytes read as native `u64`s (rows padded with zero bytes to whole
/// words), **not** the bit layout of [`crate::Codes`]: the bit permutation differs but is the
/// same for every code loaded this way, so Hamming distances are exact. Only compare codes
/// loaded through this type with each other. When a row is a whole number of words, the
/// mapped data is 8-byte aligned (always so for files numpy writes: it pads headers to 64
/// bytes) and the array is in C order, the view borrows the mapping and nothing is copied.
pub struct CodeFile {
    file: NpyFile,
    owned: Option<Vec<u64>>,
    n: usize,
    bits: usize,
}

impl fmt::Debug for CodeFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeFile")
            .field("file", &self.file)
            .field("n", &self.n)
            .field("bits", &self.bits)
            .field("zero_copy", &self.owned.is_none())
            .finish()
    }
}

impl CodeFile {
    /// Loads packed codes: a 2-D uint8 array of shape (N, bits/8), as `numpy.packbits` writes them.
    pub fn open(path: impl AsRef<Path>) -> NpyResult<CodeFile> {
        let file = NpyFile::open(path)?;
        if file.dtype() != DType::U8 {
            return Err(file.dtype_error("uint8 ('|u1') packed codes"));
        }
        let &[n, row_bytes] = file.shape() else {
            return Err(file.rank_error("2 dimensions (N, bits/8)"));
        };
        if row_bytes == 0 {
            return Err(NpyError::Value { path: file.path.clone(), reason: "code rows have 0 bytes".into() });
        }
        let bits = row_bytes * 8;
        let data = file.data();
        let aligned = data.as_ptr().align_offset(std::mem::align_of::<u64>()) == 0;
        let owned = if !file.header().is_row_major() {
            // Column-major on disk: byte (i, j) is at j * n + i; gather each row once.
            let rows: Vec<u8> = (0..n)
                .flat_map(|i| (0..row_bytes).map(move |j| (i, j)))
                .map(|(i, j)| data[j * n + i])
                .collect();
            Some(pad_rows(&rows, n, row_bytes))
        } else if row_bytes.is_multiple_of(8) && aligned {
            None
        } else {
            Some(pad_rows(data, n, row_bytes))
        };
        Ok(CodeFile { file, owned, n, bits })
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when the file holds no codes.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Bits per code (8 × bytes per row).
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// True when the view borrows the mapped file (no copy was made).
    pub fn is_zero_copy(&self) -> bool {
        self.owned.is_none()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// A borrowed view for the search engine.
    pub fn view(&self) -> CodesView<'_> {
        let words: &[u64] = match &self.owned {
            Some(v) => v,
            None => {
                let data = self.file.data();
                // SAFETY: checked in `open`: data is 8-byte aligned and its length
                // (n * row_bytes, row_bytes % 8 == 0) is a multiple of 8; u64 has no invalid bit patterns.
                unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u64>(), data.len() / 8) }
            }
        };
        // Rows are whole bytes, so bits % 8 == 0 and the only padding is whole zero bytes.
        CodesView::new_unchecked(words, self.n, self.bits)
    }
}

/// One padded copy of row-major packed bytes: each row's bytes at the start of its words, the rest zero.
pub fn pad_rows(data: &[u8], n: usize, row_bytes: usize) -> Vec<u64> {
    let words = row_bytes.div_ceil(8);
    let mut v = vec![0u64; n * words];
    for (row, out) in data.chunks_exact(row_bytes).zip(v.chunks_exact_mut(words)) {
        for (w, chunk) in out.iter_mut().zip(row.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            *w = u64::from_ne_bytes(b);
        }
    }
    v
}

/// Most classes integer class ids may span (2^20): each row is a bit set of that many bits.
pub const MAX_CLASS_IDS: usize = 1 << 20;

/// Whether a label file holds class ids ((N,) or (N, 1)) rather than multi-hot rows.
pub fn holds_class_ids(file: &NpyFile) -> bool {
    seqmodal_npy::is_class_id_shape(file.shape())
}

/// Reads labels: multi-hot (N, C) or class ids (N,) / (N, 1), any numeric dtype whose values
/// are non-negative integers (float 0/1 and integral float ids included).
///
/// Class ids become single-label rows over `classes` classes; pass `None` to use max id + 1.
/// A bad value is an error naming the file, the row and the value.
pub fn read_labels(path: impl AsRef<Path>, classes: Option<usize>) -> NpyResult<LabelSet> {
    let file = NpyFile::open(path)?;
    label_set(&file, classes)
}

/// [`read_labels`] on an open file.
pub fn label_set(file: &NpyFile, classes: Option<usize>) -> NpyResult<LabelSet> {
    let value_err = |reason: String| NpyError::Value { path: file.path.clone(), reason };
    if !matches!(file.shape().len(), 1 | 2) {
        return Err(file.rank_error("1 dimension (class ids) or 2 dimensions (multi-hot)"));
    }
    let raw = seqmodal_npy::read_labels(&mut file.data(), file.header(), MAX_CLASS_IDS)
        .map_err(|e| at(&file.path, e))?;
    let built = match raw {
        seqmodal_npy::RawLabels::MultiHot { rows, classes, data } => {
            LabelSet::from_multi_hot(&data, rows, classes)
        }
        seqmodal_npy::RawLabels::Ids(ids) => {
            let classes = classes.unwrap_or_else(|| ids.iter().max().map_or(1, |m| m + 1));
            // Every id is below MAX_CLASS_IDS (checked by the reader), so it fits a u32.
            let ids32: Vec<u32> = ids.iter().map(|&id| id as u32).collect();
            LabelSet::from_class_ids(&ids32, classes)
        }
    };
    built.map_err(|e| value_err(e.to_string()))
}

/// Writes a `.npy` file atomically (temporary name in the same folder, fsync, rename).
pub fn write_npy(path: impl AsRef<Path>, dtype: DType, shape: &[usize], data: &[u8]) -> NpyResult<()> {
    seqmodal_atomic::write(path.as_ref(), &npy_bytes(dtype, shape, data))
        .map_err(|e| NpyError::Io { path: e.path, source: e.source })
}

/// Writes an int64 array (e.g. neighbour ids).
pub fn write_i64(path: impl AsRef<Path>, shape: &[usize], values: &[i64]) -> NpyResult<()> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(path, DType::I64, shape, &bytes)
}

/// Writes an int32 array (e.g. distances).
pub fn write_i32(path: impl AsRef<Path>, shape: &[usize], values: &[i32]) -> NpyResult<()> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(path, DType::I32, shape, &bytes)
}
