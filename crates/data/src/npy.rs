//! A small streaming `.npy` reader for the `npz` loader: parses the header, then converts
//! the data chunk by chunk into `f32` features or `u8`/id labels, so an array is held in
//! memory once (as the result), never as raw bytes and converted values side by side.
//!
//! The hamming crate has its own memory-mapped reader for codes; the data crate keeps
//! this one so that data and hamming stay independent of each other (see ARCHITECTURE).

use std::io::Read;

use crate::matrix::Labels;

/// Element types the loaders accept (little-endian or one-byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    F32,
    F64,
    Bool,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
}

impl Elem {
    fn from_descr(d: &str) -> Option<Elem> {
        Some(match d {
            "<f4" => Elem::F32,
            "<f8" => Elem::F64,
            "|b1" => Elem::Bool,
            "|i1" => Elem::I8,
            "|u1" => Elem::U8,
            "<i2" => Elem::I16,
            "<u2" => Elem::U16,
            "<i4" => Elem::I32,
            "<u4" => Elem::U32,
            "<i8" => Elem::I64,
            "<u8" => Elem::U64,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        match self {
            Elem::Bool | Elem::I8 | Elem::U8 => 1,
            Elem::I16 | Elem::U16 => 2,
            Elem::F32 | Elem::I32 | Elem::U32 => 4,
            Elem::F64 | Elem::I64 | Elem::U64 => 8,
        }
    }

    /// Whether values are floating point (features) rather than integers (labels).
    pub(crate) fn is_float(self) -> bool {
        matches!(self, Elem::F32 | Elem::F64)
    }

    /// Decodes one little-endian element as f64 (exact for every integer a label holds).
    fn decode(self, b: &[u8]) -> f64 {
        let a = |n: usize| -> [u8; 8] {
            let mut x = [0u8; 8];
            x[..n].copy_from_slice(&b[..n]);
            x
        };
        match self {
            Elem::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Elem::F64 => f64::from_le_bytes(a(8)),
            Elem::Bool | Elem::U8 => b[0] as f64,
            Elem::I8 => b[0] as i8 as f64,
            Elem::I16 => i16::from_le_bytes([b[0], b[1]]) as f64,
            Elem::U16 => u16::from_le_bytes([b[0], b[1]]) as f64,
            Elem::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Elem::U32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Elem::I64 => i64::from_le_bytes(a(8)) as f64,
            Elem::U64 => u64::from_le_bytes(a(8)) as f64,
        }
    }
}

/// A parsed `.npy` header.
#[derive(Clone, Debug)]
pub(crate) struct Header {
    pub elem: Elem,
    pub fortran: bool,
    pub shape: Vec<usize>,
}

impl Header {
    /// Number of elements (its product fits a usize: [`read_header`] checks).
    pub(crate) fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Bytes of data the header announces (fits a usize: [`read_header`] checks).
    pub(crate) fn data_bytes(&self) -> usize {
        self.len() * self.elem.size()
    }
}

/// Reads the magic, version and header dictionary; the reader is left at the data.
pub(crate) fn read_header(r: &mut impl Read) -> Result<Header, String> {
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre).map_err(|e| format!("not a .npy array (too short: {e})"))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err("not a .npy array (bad magic string)".into());
    }
    let len = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(|e| format!("truncated header: {e}"))?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(|e| format!("truncated header: {e}"))?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    if len > 1 << 20 {
        return Err(format!("header of {len} bytes is implausibly long"));
    }
    let mut text = vec![0u8; len];
    r.read_exact(&mut text).map_err(|e| format!("truncated header: {e}"))?;
    let text = String::from_utf8_lossy(&text);
    let descr = dict_value(&text, "descr").ok_or("header has no 'descr'")?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let elem = Elem::from_descr(descr).ok_or_else(|| {
        format!("dtype '{descr}' not supported (use float32/float64 features, bool/uint8/int labels; little-endian)")
    })?;
    let fortran = match dict_value(&text, "fortran_order").map(str::trim) {
        Some("True") => true,
        Some("False") => false,
        _ => return Err("header has no valid 'fortran_order'".into()),
    };
    let shape_text = dict_value(&text, "shape").ok_or("header has no 'shape'")?;
    let inner = shape_text.trim().trim_start_matches('(').trim_end_matches(')');
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad shape entry '{s}'")))
        .collect::<Result<Vec<_>, _>>()?;
    // A corrupt shape must fail here, not wrap around or size an allocation.
    shape
        .iter()
        .try_fold(elem.size(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} is too large to be an array"))?;
    Ok(Header { elem, fortran, shape })
}

/// The raw text of a key's value in the header dict (`'shape': (3, 4)` -> `(3, 4)`).
fn dict_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = text[start..].trim_start().strip_prefix(':')?;
    let end = if rest.trim_start().starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(&rest[..end])
}

/// Streams `n` elements through `f` (index, value) in file order, 1 MiB at a time.
pub(crate) fn stream(r: &mut impl Read, h: &Header, mut f: impl FnMut(usize, f64)) -> Result<(), String> {
    let size = h.elem.size();
    let n = h.len();
    let per_chunk = (1 << 20) / size;
    let mut buf = vec![0u8; per_chunk * size];
    let mut done = 0;
    while done < n {
        let take = per_chunk.min(n - done);
        let bytes = &mut buf[..take * size];
        r.read_exact(bytes).map_err(|e| format!("data ends early: {done} of {n} elements read ({e})"))?;
        for (k, b) in bytes.chunks_exact(size).enumerate() {
            f(done + k, h.elem.decode(b));
        }
        done += take;
    }
    Ok(())
}

/// Reads a 2-D (or 1-D: one column) array as row-major `f32`, transposing Fortran order.
pub(crate) fn read_f32_matrix(r: &mut impl Read, h: &Header) -> Result<(usize, usize, Vec<f32>), String> {
    let (rows, cols) = match h.shape[..] {
        [n] => (n, 1),
        [n, d] => (n, d),
        _ => return Err(format!("shape {:?}: expected (rows, features)", h.shape)),
    };
    let mut data = vec![0f32; rows * cols];
    if h.fortran {
        // Column-major on disk: element k is (k % rows, k / rows).
        stream(r, h, |k, v| data[(k % rows.max(1)) * cols + k / rows.max(1)] = v as f32)?;
    } else if h.elem == Elem::F32 {
        // The common case, decoded without the f64 round trip.
        let mut done = 0;
        let mut buf = vec![0u8; 1 << 20];
        while done < data.len() {
            let take = (buf.len() / 4).min(data.len() - done);
            r.read_exact(&mut buf[..take * 4])
                .map_err(|e| format!("data ends early: {done} of {} elements read ({e})", data.len()))?;
            for (d, b) in data[done..done + take].iter_mut().zip(buf.chunks_exact(4)) {
                *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            done += take;
        }
    } else {
        stream(r, h, |k, v| data[k] = v as f32)?;
    }
    Ok((rows, cols, data))
}

/// Labels as read: a multi-hot matrix or a vector of class ids.
pub(crate) enum RawLabels {
    /// Row-major 0/1 values, `classes` columns.
    MultiHot { rows: usize, classes: usize, data: Vec<u8> },
    /// One class id per row.
    Ids(Vec<usize>),
}

impl RawLabels {
    /// Number of rows.
    pub(crate) fn rows(&self) -> usize {
        match self {
            RawLabels::MultiHot { rows, .. } => *rows,
            RawLabels::Ids(ids) => ids.len(),
        }
    }

    /// Classes this array needs (columns, or largest id + 1).
    pub(crate) fn classes(&self) -> usize {
        match self {
            RawLabels::MultiHot { classes, .. } => *classes,
            RawLabels::Ids(ids) => ids.iter().max().map_or(0, |m| m + 1),
        }
    }
}

/// Reads integer/bool labels: 1-D (or (n, 1)) class ids, or a 2-D multi-hot matrix.
pub(crate) fn read_labels(r: &mut impl Read, h: &Header) -> Result<RawLabels, String> {
    // Float labels are accepted when every value is a non-negative integer (MATLAB habits).
    let mut bad: Option<(usize, f64)> = None;
    let mut check = |k: usize, v: f64| {
        if bad.is_none() && (v < 0.0 || v.fract() != 0.0 || !v.is_finite()) {
            bad = Some((k, v));
        }
    };
    match h.shape[..] {
        [n] | [n, 1] => {
            let mut ids = vec![0usize; n];
            // Ids are well below 2^32 (the label space is capped far lower): a larger one is
            // named here rather than saturating and wrapping the class count to 0.
            let mut huge: Option<(usize, f64)> = None;
            stream(r, h, |k, v| {
                check(k, v);
                if huge.is_none() && v >= 4_294_967_296.0 {
                    huge = Some((k, v));
                }
                ids[k] = v.max(0.0) as usize;
            })?;
            if let Some((k, v)) = bad {
                return Err(format!("class id {v} at row {k} is not a non-negative integer"));
            }
            if let Some((k, v)) = huge {
                return Err(format!(
                    "class id {v} at row {k} is too large (at most {} classes are supported)",
                    Labels::MAX_CLASSES
                ));
            }
            Ok(RawLabels::Ids(ids))
        }
        [rows, classes] => {
            let mut data = vec![0u8; rows * classes];
            stream(r, h, |k, v| {
                check(k, v);
                let i = if h.fortran { (k % rows.max(1)) * classes + k / rows.max(1) } else { k };
                data[i] = u8::from(v != 0.0);
            })?;
            if let Some((k, v)) = bad {
                return Err(format!("multi-hot value {v} at element {k} is not a non-negative integer"));
            }
            Ok(RawLabels::MultiHot { rows, classes, data })
        }
        _ => {
            Err(format!("shape {:?}: labels must be (rows,) class ids or (rows, classes) multi-hot", h.shape))
        }
    }
}
