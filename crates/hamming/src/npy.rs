//! Minimal `.npy` reader/writer: memory-mapped reads, C order only, format versions 1–3.
//!
//! Only what the search/eval interchange needs: numeric dtypes, little-endian (or one-byte)
//! data, any rank. Every error names the file. Reads map the file instead of copying it, so a
//! database of codes is in memory once (the page cache), however large.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::codes::CodesView;
use crate::labels::LabelSet;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

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
    /// The array is stored in Fortran (column-major) order.
    #[error("{}: Fortran-order arrays are not supported; save a C-order array (numpy.ascontiguousarray)", path.display())]
    FortranOrder {
        /// The file.
        path: PathBuf,
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
    /// A value cannot be used (e.g. a negative class id, a zero-width code row).
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

/// Element types the reader understands (little-endian or single byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// `bool`, one byte.
    Bool,
    /// `uint8`.
    U8,
    /// `int8`.
    I8,
    /// `uint16`.
    U16,
    /// `int16`.
    I16,
    /// `uint32`.
    U32,
    /// `int32`.
    I32,
    /// `uint64`.
    U64,
    /// `int64`.
    I64,
    /// `float32`.
    F32,
    /// `float64`.
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    /// The numpy `descr` string this writer uses (e.g. `"<i8"`, `"|u1"`).
    pub fn descr(self) -> &'static str {
        match self {
            DType::Bool => "|b1",
            DType::U8 => "|u1",
            DType::I8 => "|i1",
            DType::U16 => "<u2",
            DType::I16 => "<i2",
            DType::U32 => "<u4",
            DType::I32 => "<i4",
            DType::U64 => "<u8",
            DType::I64 => "<i8",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
        }
    }

    /// Parses a numpy `descr`; `None` for big-endian multi-byte or unknown types.
    fn parse(descr: &str) -> Option<DType> {
        let (order, kind) = descr.split_at_checked(1)?;
        let t = match kind {
            "b1" => DType::Bool,
            "u1" => DType::U8,
            "i1" => DType::I8,
            "u2" => DType::U16,
            "i2" => DType::I16,
            "u4" => DType::U32,
            "i4" => DType::I32,
            "u8" => DType::U64,
            "i8" => DType::I64,
            "f4" => DType::F32,
            "f8" => DType::F64,
            _ => return None,
        };
        // '=' is native order; this reader decodes little-endian, so native must be little.
        let ok = match order {
            "|" => t.size() == 1,
            "<" => true,
            "=" => cfg!(target_endian = "little"),
            ">" => t.size() == 1,
            _ => false,
        };
        ok.then_some(t)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.descr())
    }
}

/// A parsed `.npy` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: DType,
    /// Shape (C order).
    pub shape: Vec<usize>,
    /// Byte offset of the data from the start of the file.
    pub data_offset: usize,
}

impl NpyHeader {
    /// Number of elements (product of the shape), `None` on overflow.
    pub fn elements(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
    }
}

/// Parses the header at the start of `bytes` (which may hold the whole file); `path` is for errors.
pub fn parse_header(bytes: &[u8], path: &Path) -> NpyResult<NpyHeader> {
    let p = || path.to_path_buf();
    let header_err = |reason: String| NpyError::Header { path: p(), reason };
    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        return Err(NpyError::BadMagic { path: p() });
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, utf8) = match (major, minor) {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        _ => return Err(NpyError::Version { path: p(), major, minor }),
    };
    let start = 8 + len_bytes;
    let len_field =
        bytes.get(8..start).ok_or_else(|| header_err("file ends inside the header length".into()))?;
    let header_len = len_field.iter().rev().fold(0usize, |a, &b| a << 8 | usize::from(b));
    let end = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| header_err(format!("header of {header_len} bytes runs past the end of the file")))?;
    let raw = &bytes[start..end];
    let text = if utf8 {
        std::str::from_utf8(raw).map_err(|_| header_err("header is not UTF-8".into()))?
    } else {
        if !raw.is_ascii() {
            return Err(header_err("header is not ASCII".into()));
        }
        // ASCII is valid UTF-8.
        std::str::from_utf8(raw).map_err(|_| header_err("header is not ASCII".into()))?
    };
    let dict = parse_dict(text).map_err(header_err)?;
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (key, value) in dict {
        match (key.as_str(), value) {
            ("descr", Value::Str(s)) => descr = Some(s),
            ("fortran_order", Value::Bool(b)) => fortran = Some(b),
            ("shape", Value::Tuple(t)) => shape = Some(t),
            (k @ ("descr" | "fortran_order" | "shape"), _) => {
                return Err(header_err(format!("key '{k}' has a value of the wrong type")))
            }
            // Unknown keys are allowed by the format; ignore them.
            _ => {}
        }
    }
    let descr = descr.ok_or_else(|| header_err("missing key 'descr'".into()))?;
    let fortran = fortran.ok_or_else(|| header_err("missing key 'fortran_order'".into()))?;
    let shape = shape.ok_or_else(|| header_err("missing key 'shape'".into()))?;
    let dtype = DType::parse(&descr).ok_or_else(|| NpyError::DType {
        path: p(),
        found: descr.clone(),
        expected: "a little-endian numeric dtype",
    })?;
    if fortran {
        // A 1-D or single-element array is the same in both orders, but numpy writes those
        // with fortran_order False anyway; refuse uniformly so the rule is simple.
        return Err(NpyError::FortranOrder { path: p() });
    }
    Ok(NpyHeader { dtype, shape, data_offset: end })
}

enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// Parses the Python dict literal of a header: `{'key': value, ...}` with string, bool or int-tuple values.
fn parse_dict(text: &str) -> Result<Vec<(String, Value)>, String> {
    let t = text.trim_end_matches(['\n', ' ', '\0']).trim();
    let body = t
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(|| format!("header is not a dict: {t:?}"))?;
    let mut out = Vec::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let (key, r) = take_string(rest).ok_or_else(|| format!("expected a quoted key at {rest:?}"))?;
        let r = r.trim_start().strip_prefix(':').ok_or_else(|| format!("expected ':' after '{key}'"))?;
        let r = r.trim_start();
        let (value, r) = if r.starts_with(['\'', '"']) {
            let (s, r) = take_string(r).ok_or_else(|| format!("unterminated string for '{key}'"))?;
            (Value::Str(s), r)
        } else if let Some(r) = r.strip_prefix("True") {
            (Value::Bool(true), r)
        } else if let Some(r) = r.strip_prefix("False") {
            (Value::Bool(false), r)
        } else if let Some(r) = r.strip_prefix('(') {
            let close = r.find(')').ok_or_else(|| format!("unterminated tuple for '{key}'"))?;
            let mut dims = Vec::new();
            for part in r[..close].split(',').map(str::trim).filter(|s| !s.is_empty()) {
                // numpy may write 'L' suffixes (Python 2 longs) in old files.
                let digits = part.trim_end_matches('L');
                dims.push(digits.parse().map_err(|_| format!("bad dimension {part:?} in '{key}'"))?);
            }
            (Value::Tuple(dims), &r[close + 1..])
        } else {
            return Err(format!("unsupported value for '{key}': {r:?}"));
        };
        out.push((key, value));
        let r = r.trim_start();
        rest = match r.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if r.is_empty() => r,
            None => return Err(format!("expected ',' or '}}' at {r:?}")),
        };
    }
    Ok(out)
}

/// Takes a '...' or "..." string (no escapes: header keys and dtypes never need them).
fn take_string(s: &str) -> Option<(String, &str)> {
    let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let end = s[1..].find(quote)? + 1;
    Some((s[1..end].to_string(), &s[end + 1..]))
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

    /// Shape (C order).
    pub fn shape(&self) -> &[usize] {
        &self.header.shape
    }

    /// The raw little-endian data bytes (exactly `elements * dtype.size()` bytes).
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
/// loaded through this type with each other. When a row is a whole number of words and the
/// mapped data is 8-byte aligned (always so for files numpy writes: it pads headers to 64
/// bytes), the view borrows the mapping and nothing is copied.
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
        let owned = if row_bytes.is_multiple_of(8) && aligned {
            None
        } else {
            // One padded copy: each row's bytes at the start of its words, the rest zero.
            let words = row_bytes.div_ceil(8);
            let mut v = vec![0u64; n * words];
            for (row, out) in data.chunks_exact(row_bytes).zip(v.chunks_exact_mut(words)) {
                for (w, chunk) in out.iter_mut().zip(row.chunks(8)) {
                    let mut b = [0u8; 8];
                    b[..chunk.len()].copy_from_slice(chunk);
                    *w = u64::from_ne_bytes(b);
                }
            }
            Some(v)
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

/// Most classes integer class ids may span (2^20): each row is a bit set of that many bits.
pub const MAX_CLASS_IDS: usize = 1 << 20;

/// Reads labels: uint8/bool multi-hot (N, C), or integer class ids (N,) of any integer dtype.
///
/// Class ids become single-label rows over `classes` classes; pass `None` to use max id + 1.
/// Negative ids are an error naming the file and row.
pub fn read_labels(path: impl AsRef<Path>, classes: Option<usize>) -> NpyResult<LabelSet> {
    let file = NpyFile::open(path)?;
    let value_err = |reason: String| NpyError::Value { path: file.path.clone(), reason };
    match *file.shape() {
        [n, c] => {
            if !matches!(file.dtype(), DType::U8 | DType::Bool) {
                return Err(file.dtype_error("uint8 or bool multi-hot labels for a 2-D label array"));
            }
            LabelSet::from_multi_hot(file.data(), n, c).map_err(|e| value_err(e.to_string()))
        }
        [_] => {
            let ids = read_class_ids(&file)?;
            let classes = match classes {
                Some(c) => c,
                None => ids.iter().max().map_or(1, |m| *m as usize + 1),
            };
            // Ids become bit-set rows of `classes` bits: one stray huge id must not ask for
            // gigabytes.
            if classes > MAX_CLASS_IDS {
                let (row, id) =
                    ids.iter().enumerate().max_by_key(|&(_, id)| *id).map_or((0, 0), |(r, &id)| (r, id));
                return Err(value_err(format!(
                    "class id {id} at row {row}: class ids span at most {MAX_CLASS_IDS} classes (use multi-hot labels for more)"
                )));
            }
            let ids32: Vec<u32> = ids
                .iter()
                .enumerate()
                .map(|(row, &id)| {
                    u32::try_from(id)
                        .map_err(|_| value_err(format!("class id {id} at row {row} is too large")))
                })
                .collect::<NpyResult<_>>()?;
            LabelSet::from_class_ids(&ids32, classes).map_err(|e| value_err(e.to_string()))
        }
        _ => Err(file.rank_error("1 dimension (class ids) or 2 dimensions (multi-hot)")),
    }
}

/// Reads a 1-D integer array as non-negative class ids.
pub fn read_class_ids(file: &NpyFile) -> NpyResult<Vec<u64>> {
    let d = file.data();
    let signed: Vec<i128> = match file.dtype() {
        DType::U8 | DType::Bool => d.iter().map(|&b| i128::from(b)).collect(),
        DType::I8 => d.iter().map(|&b| i128::from(b as i8)).collect(),
        DType::U16 => d.chunks_exact(2).map(|c| i128::from(u16::from_le_bytes([c[0], c[1]]))).collect(),
        DType::I16 => d.chunks_exact(2).map(|c| i128::from(i16::from_le_bytes([c[0], c[1]]))).collect(),
        DType::U32 => d.chunks_exact(4).map(|c| i128::from(u32::from_le_bytes(arr(c)))).collect(),
        DType::I32 => d.chunks_exact(4).map(|c| i128::from(i32::from_le_bytes(arr(c)))).collect(),
        DType::U64 => d.chunks_exact(8).map(|c| i128::from(u64::from_le_bytes(arr(c)))).collect(),
        DType::I64 => d.chunks_exact(8).map(|c| i128::from(i64::from_le_bytes(arr(c)))).collect(),
        DType::F32 | DType::F64 => return Err(file.dtype_error("an integer dtype for 1-D class ids")),
    };
    signed
        .into_iter()
        .enumerate()
        .map(|(row, v)| {
            u64::try_from(v).map_err(|_| NpyError::Value {
                path: file.path.clone(),
                reason: format!("class id {v} at row {row} is negative"),
            })
        })
        .collect()
}

fn arr<const N: usize>(c: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(c);
    a
}

/// The bytes of a complete version-1.0 `.npy` file (header padded to 64 bytes, C order).
pub fn npy_bytes(dtype: DType, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '{}', 'fortran_order': False, 'shape': {tuple}, }}", dtype.descr());
    // Magic (6) + version (2) + length (2) + dict + '\n' must be a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    dict.extend(std::iter::repeat_n(' ', unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len() + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    // Headers this writer makes are far below 64 KiB (v1's limit): shape tuples are short.
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(data);
    out
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
