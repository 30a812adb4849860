//! One `.npy` reader for the data and hamming crates: one header parser, one set of rules.
//!
//! The rules, the same wherever a `.npy` array is read (an `.npz` member, a code file, a label
//! file, a numpy array handed over from Python):
//! - format versions 1.0, 2.0 and 3.0; the header is a Python dict literal with `descr`,
//!   `fortran_order` and `shape` (other keys are ignored);
//! - dtypes bool, int8..int64, uint8..uint64, float32, float64, little-endian (or one byte);
//! - C and Fortran order: readers that convert values transpose Fortran order; callers that
//!   borrow raw bytes check [`Header::fortran`];
//! - labels: a `(rows,)` or `(rows, 1)` array is class ids, a `(rows, classes)` array is
//!   multi-hot; any numeric dtype, but every value must be a non-negative integer (float
//!   arrays of 0/1 or integral ids are accepted, as MATLAB and pandas write them); a multi-hot
//!   value other than 0 means "has the label"; an id must be below the caller's class limit.
//!
//! Errors here name no file: the caller adds the file (and `.npz` key) it read.

use std::io::Read;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Longest header dict read from a stream: numpy writes well under 1 KiB, and a corrupt
/// length must not size an allocation.
const MAX_HEADER: usize = 1 << 20;

/// Everything that can be wrong with a `.npy` array's bytes (the caller names the file).
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The bytes do not start with the `\x93NUMPY` magic string.
    #[error("not a .npy file (bad magic string)")]
    BadMagic,
    /// A format version other than 1.0, 2.0 or 3.0.
    #[error("unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)")]
    Version {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The header dictionary is malformed, incomplete or cut short.
    #[error("bad .npy header: {0}")]
    Header(String),
    /// A dtype outside the supported set (big-endian, complex, strings, objects...).
    #[error("dtype {0} is not supported (expected a little-endian numeric dtype: bool, int, uint or float)")]
    DType(String),
    /// The shape's byte count does not fit in memory addresses.
    #[error("shape {0:?} is too large to be an array")]
    TooLarge(Vec<usize>),
    /// The data stream ended before the shape's elements were read.
    #[error("data ends early: {done} of {total} elements read ({source})")]
    DataEnds {
        /// Elements read.
        done: usize,
        /// Elements the shape needs.
        total: usize,
        /// The read error.
        source: std::io::Error,
    },
    /// A label array of a shape other than (rows,), (rows, 1) or (rows, classes).
    #[error("shape {0:?}: labels must be (rows,) class ids or (rows, classes) multi-hot")]
    LabelShape(Vec<usize>),
    /// A class id that is negative, fractional or not finite.
    #[error("class id {value} at row {row} is not a non-negative integer")]
    BadClassId {
        /// The value as read.
        value: f64,
        /// Its row.
        row: usize,
    },
    /// A class id at or above the caller's class limit.
    #[error("class id {value} at row {row} is too large (at most {max} classes are supported)")]
    ClassIdTooLarge {
        /// The value as read.
        value: f64,
        /// Its row.
        row: usize,
        /// The caller's limit on the number of classes.
        max: usize,
    },
    /// A multi-hot value that is negative, fractional or not finite.
    #[error("multi-hot value {value} at row {row}, column {col} is not a non-negative integer")]
    BadMultiHot {
        /// The value as read.
        value: f64,
        /// Its row.
        row: usize,
        /// Its column (class).
        col: usize,
    },
    /// A feature array of rank other than 1 or 2.
    #[error("shape {0:?}: expected (rows, features)")]
    MatrixShape(Vec<usize>),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, NpyError>;

/// Element types the reader understands (little-endian or single byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

    /// Whether values are floating point.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// The numpy `descr` string a writer uses (e.g. `"<i8"`, `"|u1"`).
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
    pub fn parse(descr: &str) -> Option<DType> {
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
        // '=' is native order; values are decoded as little-endian, so native must be little.
        let ok = match order {
            "|" | ">" => t.size() == 1,
            "<" => true,
            "=" => cfg!(target_endian = "little"),
            _ => false,
        };
        ok.then_some(t)
    }

    /// Decodes one little-endian element (`b.len() >= size()`) as f64: exact for every
    /// integer below 2^53, which covers every class id and 0/1 value a label holds.
    pub fn decode(self, b: &[u8]) -> f64 {
        let a = |n: usize| -> [u8; 8] {
            let mut x = [0u8; 8];
            x[..n].copy_from_slice(&b[..n]);
            x
        };
        match self {
            DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            DType::F64 => f64::from_le_bytes(a(8)),
            DType::Bool | DType::U8 => b[0] as f64,
            DType::I8 => b[0] as i8 as f64,
            DType::I16 => i16::from_le_bytes([b[0], b[1]]) as f64,
            DType::U16 => u16::from_le_bytes([b[0], b[1]]) as f64,
            DType::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            DType::U32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            DType::I64 => i64::from_le_bytes(a(8)) as f64,
            DType::U64 => u64::from_le_bytes(a(8)) as f64,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.descr())
    }
}

/// A parsed `.npy` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Element type.
    pub dtype: DType,
    /// True when the data is column-major (Fortran order).
    pub fortran: bool,
    /// Shape, as numpy reports it (independent of the order).
    pub shape: Vec<usize>,
    /// Byte offset of the data from the start of the file.
    pub data_offset: usize,
}

impl Header {
    /// Number of elements (the product of the shape; [`parse_header`] checks it fits).
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Bytes of data the header announces (fits a usize: [`parse_header`] checks).
    pub fn data_bytes(&self) -> usize {
        self.elements() * self.dtype.size()
    }

    /// Whether bytes in file order are the row-major (C order) layout: C order, or a shape
    /// whose two orders coincide (at most one dimension longer than 1).
    pub fn is_row_major(&self) -> bool {
        !self.fortran || self.shape.iter().filter(|&&d| d > 1).count() <= 1
    }
}

/// Parses the header at the start of `bytes` (the whole file or at least its header).
pub fn parse_header(bytes: &[u8]) -> Result<Header> {
    let header_err = |reason: String| NpyError::Header(reason);
    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        return Err(NpyError::BadMagic);
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, utf8) = match (major, minor) {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        _ => return Err(NpyError::Version { major, minor }),
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
    if !utf8 && !raw.is_ascii() {
        return Err(header_err("header is not ASCII".into()));
    }
    let text = std::str::from_utf8(raw).map_err(|_| header_err("header is not UTF-8".into()))?;
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (key, value) in parse_dict(text).map_err(header_err)? {
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
    let shape: Vec<usize> = shape.ok_or_else(|| header_err("missing key 'shape'".into()))?;
    let dtype = DType::parse(&descr).ok_or(NpyError::DType(descr))?;
    // A corrupt shape must fail here, not wrap around or size an allocation later.
    if shape.iter().try_fold(dtype.size(), |acc, &d| acc.checked_mul(d)).is_none() {
        return Err(NpyError::TooLarge(shape));
    }
    Ok(Header { dtype, fortran, shape, data_offset: end })
}

/// Reads the magic, version and header from a stream, leaving the reader at the data.
pub fn read_header(r: &mut impl Read) -> Result<Header> {
    let cut = |e: std::io::Error| NpyError::Header(format!("file ends inside the header ({e})"));
    let mut buf = vec![0u8; 8];
    r.read_exact(&mut buf).map_err(|_| NpyError::BadMagic)?;
    if &buf[..6] != MAGIC {
        return Err(NpyError::BadMagic);
    }
    let len_bytes = match (buf[6], buf[7]) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        (major, minor) => return Err(NpyError::Version { major, minor }),
    };
    buf.resize(8 + len_bytes, 0);
    r.read_exact(&mut buf[8..]).map_err(cut)?;
    let len = buf[8..].iter().rev().fold(0usize, |a, &b| a << 8 | usize::from(b));
    if len > MAX_HEADER {
        return Err(NpyError::Header(format!("header of {len} bytes is implausibly long")));
    }
    let start = buf.len();
    buf.resize(start + len, 0);
    r.read_exact(&mut buf[start..]).map_err(cut)?;
    parse_header(&buf)
}

enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// Parses the Python dict literal of a header: `{'key': value, ...}` with string, bool or int-tuple values.
fn parse_dict(text: &str) -> std::result::Result<Vec<(String, Value)>, String> {
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

/// Streams the header's elements through `f(index, value)` in file order, 1 MiB at a time.
pub fn stream(r: &mut impl Read, h: &Header, mut f: impl FnMut(usize, f64)) -> Result<()> {
    let size = h.dtype.size();
    let total = h.elements();
    let per_chunk = (1 << 20) / size;
    let mut buf = vec![0u8; per_chunk.min(total) * size];
    let mut done = 0;
    while done < total {
        let take = per_chunk.min(total - done);
        let bytes = &mut buf[..take * size];
        r.read_exact(bytes).map_err(|source| NpyError::DataEnds { done, total, source })?;
        for (k, b) in bytes.chunks_exact(size).enumerate() {
            f(done + k, h.dtype.decode(b));
        }
        done += take;
    }
    Ok(())
}

/// Row and column of element `k` in file order of a (rows, cols) array.
fn position(h: &Header, k: usize, rows: usize, cols: usize) -> (usize, usize) {
    if h.fortran {
        (k % rows.max(1), k / rows.max(1))
    } else {
        (k / cols.max(1), k % cols.max(1))
    }
}

/// Reads a 2-D (or 1-D: one column) numeric array as row-major `f32`.
pub fn read_f32_matrix(r: &mut impl Read, h: &Header) -> Result<(usize, usize, Vec<f32>)> {
    let (rows, cols) = match h.shape[..] {
        [n] => (n, 1),
        [n, d] => (n, d),
        _ => return Err(NpyError::MatrixShape(h.shape.clone())),
    };
    let mut data = vec![0f32; rows * cols];
    if h.dtype == DType::F32 && h.is_row_major() {
        // The common case, decoded without the f64 round trip.
        let mut done = 0;
        let mut buf = vec![0u8; (1 << 20).min(data.len() * 4)];
        while done < data.len() {
            let take = (buf.len() / 4).min(data.len() - done);
            r.read_exact(&mut buf[..take * 4]).map_err(|source| NpyError::DataEnds {
                done,
                total: data.len(),
                source,
            })?;
            for (d, b) in data[done..done + take].iter_mut().zip(buf.chunks_exact(4)) {
                *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            done += take;
        }
    } else {
        stream(r, h, |k, v| {
            let (i, j) = position(h, k, rows, cols);
            data[i * cols + j] = v as f32;
        })?;
    }
    Ok((rows, cols, data))
}

/// Labels as read: a multi-hot matrix or a vector of class ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawLabels {
    /// Row-major 0/1 values, `classes` columns.
    MultiHot {
        /// Number of rows.
        rows: usize,
        /// Number of columns (classes).
        classes: usize,
        /// `rows * classes` values, 1 where the row has the class.
        data: Vec<u8>,
    },
    /// One class id per row.
    Ids(Vec<usize>),
}

impl RawLabels {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        match self {
            RawLabels::MultiHot { rows, .. } => *rows,
            RawLabels::Ids(ids) => ids.len(),
        }
    }

    /// Classes this array needs (columns, or largest id + 1).
    pub fn classes(&self) -> usize {
        match self {
            RawLabels::MultiHot { classes, .. } => *classes,
            RawLabels::Ids(ids) => ids.iter().max().map_or(0, |m| m + 1),
        }
    }
}

/// Whether a label array of this shape holds class ids ((rows,) or (rows, 1)), not multi-hot.
pub fn is_class_id_shape(shape: &[usize]) -> bool {
    matches!(shape, [_] | [_, 1])
}

/// Reads a label array (see the crate rules); ids must be below `max_classes`.
pub fn read_labels(r: &mut impl Read, h: &Header, max_classes: usize) -> Result<RawLabels> {
    let bad = |v: f64| v < 0.0 || v.fract() != 0.0 || !v.is_finite();
    match h.shape[..] {
        [n] | [n, 1] => {
            let mut ids = vec![0usize; n];
            // The first bad value is kept; the stream goes on (values arrive in chunks).
            let mut err: Option<NpyError> = None;
            stream(r, h, |row, value| {
                if err.is_some() {
                    return;
                }
                if bad(value) {
                    err = Some(NpyError::BadClassId { value, row });
                } else if value >= max_classes as f64 {
                    err = Some(NpyError::ClassIdTooLarge { value, row, max: max_classes });
                } else {
                    ids[row] = value as usize;
                }
            })?;
            match err {
                Some(e) => Err(e),
                None => Ok(RawLabels::Ids(ids)),
            }
        }
        [rows, classes] => {
            let mut data = vec![0u8; rows * classes];
            let mut err: Option<NpyError> = None;
            stream(r, h, |k, value| {
                let (row, col) = position(h, k, rows, classes);
                if err.is_none() && bad(value) {
                    err = Some(NpyError::BadMultiHot { value, row, col });
                }
                data[row * classes + col] = u8::from(value != 0.0);
            })?;
            match err {
                Some(e) => Err(e),
                None => Ok(RawLabels::MultiHot { rows, classes, data }),
            }
        }
        _ => Err(NpyError::LabelShape(h.shape.clone())),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A file with a hand-written header dict (v1.0), padded as numpy pads.
    fn raw(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut d = dict.to_string();
        while !(10 + d.len() + 1).is_multiple_of(64) {
            d.push(' ');
        }
        d.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(d.len() as u16).to_le_bytes());
        out.extend_from_slice(d.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn f64s(v: &[f64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn stream_and_slice_parsers_agree() {
        let b = npy_bytes(DType::I32, &[2, 3], &[0; 24]);
        let from_slice = parse_header(&b).unwrap();
        let from_stream = read_header(&mut &b[..]).unwrap();
        assert_eq!(from_slice, from_stream);
        assert_eq!(from_slice.shape, [2, 3]);
        assert_eq!(from_slice.data_offset % 64, 0);
        assert!(!from_slice.fortran);
    }

    #[test]
    fn header_errors() {
        assert!(matches!(parse_header(b"PK\x03\x04zip"), Err(NpyError::BadMagic)));
        assert!(matches!(read_header(&mut &b"\x93NU"[..]), Err(NpyError::BadMagic)));
        let mut b = npy_bytes(DType::U8, &[1], &[0]);
        b[6] = 4;
        assert!(matches!(read_header(&mut &b[..]), Err(NpyError::Version { major: 4, minor: 0 })));
        let b = raw("{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }", &[0; 8]);
        assert_eq!(
            parse_header(&b).unwrap_err().to_string(),
            "dtype >i8 is not supported (expected a little-endian numeric dtype: bool, int, uint or float)"
        );
        let b = raw("{'fortran_order': False, 'shape': (1,), }", &[0]);
        assert_eq!(parse_header(&b).unwrap_err().to_string(), "bad .npy header: missing key 'descr'");
        let b = raw("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", &[]);
        assert!(matches!(parse_header(&b), Err(NpyError::TooLarge(_))));
        let mut b = npy_bytes(DType::U8, &[1], &[0]);
        b[8] = 0xff;
        b[9] = 0xff;
        assert!(matches!(read_header(&mut &b[..]), Err(NpyError::Header(_))));
    }

    #[test]
    fn fortran_matrices_are_transposed() {
        // Column-major [[1, 2, 3], [4, 5, 6]] is stored 1 4 2 5 3 6.
        let b = raw(
            "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
            &f64s(&[1., 4., 2., 5., 3., 6.]),
        );
        let mut r = &b[..];
        let h = read_header(&mut r).unwrap();
        assert!(h.fortran && !h.is_row_major());
        let (rows, cols, data) = read_f32_matrix(&mut r, &h).unwrap();
        assert_eq!((rows, cols, data), (2, 3, vec![1., 2., 3., 4., 5., 6.]));
        let b = raw("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }", &f64s(&[1., 0., 0., 2.]));
        let mut r = &b[..];
        let h = read_header(&mut r).unwrap();
        let l = read_labels(&mut r, &h, 10).unwrap();
        assert_eq!(l, RawLabels::MultiHot { rows: 2, classes: 2, data: vec![1, 0, 0, 1] });
    }

    #[test]
    fn float_labels_follow_the_integer_rules() {
        let labels = |dict: &str, data: &[u8], max| {
            let b = raw(dict, data);
            let mut r = &b[..];
            let h = read_header(&mut r).unwrap();
            read_labels(&mut r, &h, max)
        };
        let ids = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }";
        assert_eq!(labels(ids, &f64s(&[2., 0., 1.]), 3).unwrap(), RawLabels::Ids(vec![2, 0, 1]));
        let col = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 1), }";
        assert_eq!(labels(col, &f64s(&[2., 0., 1.]), 3).unwrap().classes(), 3);
        let e = labels(ids, &f64s(&[0., 1.5, -1.]), 3).unwrap_err();
        assert_eq!(e.to_string(), "class id 1.5 at row 1 is not a non-negative integer");
        let e = labels(ids, &f64s(&[0., 1., 3.]), 3).unwrap_err();
        assert_eq!(e.to_string(), "class id 3 at row 2 is too large (at most 3 classes are supported)");
        let e = labels(ids, &f64s(&[0., f64::NAN, 1.]), 3).unwrap_err();
        assert!(matches!(e, NpyError::BadClassId { row: 1, .. }), "{e}");
        let hot = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
        let e = labels(hot, &f64s(&[0., 1., 1., -2.]), 3).unwrap_err();
        assert_eq!(e.to_string(), "multi-hot value -2 at row 1, column 1 is not a non-negative integer");
        // Any nonzero integer means "has the label".
        assert_eq!(
            labels(hot, &f64s(&[0., 2., 1., 0.]), 3).unwrap(),
            RawLabels::MultiHot { rows: 2, classes: 2, data: vec![0, 1, 1, 0] }
        );
        let rank3 = "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1), }";
        assert!(matches!(labels(rank3, &[0], 3), Err(NpyError::LabelShape(_))));
    }

    #[test]
    fn short_data_is_named() {
        let b = npy_bytes(DType::I64, &[4], &[0; 16]);
        let mut r = &b[..];
        let h = read_header(&mut r).unwrap();
        let e = read_labels(&mut r, &h, 10).unwrap_err().to_string();
        assert!(e.starts_with("data ends early: 0 of 4 elements read"), "{e}");
    }
}
