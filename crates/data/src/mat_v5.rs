//! Why a MAT v5 file failed to parse, for the error message: the `matfile` parser reports
//! only "an error occurred", and cannot read two things users meet in practice — `int32`
//! variables (it expects their data as `uint32`) and a file cut short. This walks the
//! file's top-level elements (inflating compressed ones) far enough to name either.

use std::io::Read;

/// Element types of the MAT v5 format (MATLAB's "MAT-File Format", table 1-1).
const MI_INT8: u32 = 1;
const MI_UINT32: u32 = 6;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
/// `mxINT32_CLASS` in an array's flags.
const MX_INT32: u32 = 12;

/// Parses a whole MAT v5 file with `matfile`, or says why it cannot be read ("not a readable
/// MAT v5 file: ..."), a cut file included.
pub(crate) fn parse(bytes: &[u8]) -> std::result::Result<matfile::MatFile, String> {
    let why = |w: String| format!("not a readable MAT v5 file: {w}");
    if let Some(w) = truncation(bytes) {
        return Err(why(w));
    }
    matfile::MatFile::parse(bytes).map_err(|e| why(diagnose(bytes).unwrap_or_else(|| e.to_string())))
}

/// A sentence naming what `matfile` could not read in `bytes` (a whole v5 file), or `None`
/// when nothing specific is found.
fn diagnose(bytes: &[u8]) -> Option<String> {
    walk(bytes, true)
}

/// Whether the file is cut short (a top-level element runs past its end), without inflating
/// anything: `matfile` parses such a file without complaint, losing the last variables, so
/// the loader would report them as missing.
fn truncation(bytes: &[u8]) -> Option<String> {
    walk(bytes, false)
}

/// Walks the top-level elements; with `inspect`, looks inside each variable for its class.
fn walk(bytes: &[u8], inspect: bool) -> Option<String> {
    if bytes.len() < 128 {
        return Some(format!(
            "the file is {} bytes, shorter than a MAT header (128): truncated",
            bytes.len()
        ));
    }
    if &bytes[126..128] != b"IM" {
        // Tags are read little-endian here: say so only when asked why the parse failed.
        return inspect
            .then(|| "big-endian MAT v5 files are not supported (save on a little-endian machine)".into());
    }
    let mut at = 128;
    while at < bytes.len() {
        let (kind, size) = (u32_at(bytes, at)?, u32_at(bytes, at + 4)? as usize);
        let end = at + 8 + size;
        if end > bytes.len() {
            return Some(format!(
                "the variable element at byte {at} declares {size} bytes but the file ends {} bytes later: \
                 truncated",
                bytes.len() - at - 8
            ));
        }
        let body = &bytes[at + 8..end];
        let matrix = match kind {
            _ if !inspect => None,
            MI_MATRIX => Some(body.to_vec()),
            MI_COMPRESSED => {
                let mut inner = Vec::new();
                if flate2::read::ZlibDecoder::new(body).read_to_end(&mut inner).is_err() {
                    return Some(format!("the compressed variable at byte {at} is corrupt or truncated"));
                }
                // The inflated bytes are one whole element: its tag, then the matrix.
                (u32_at(&inner, 0) == Some(MI_MATRIX)).then(|| inner.get(8..).unwrap_or_default().to_vec())
            }
            _ => None,
        };
        if let Some((name, class)) = matrix.as_deref().and_then(flags_and_name) {
            if class == MX_INT32 {
                return Some(format!(
                    "variable '{name}' is int32, which the MAT v5 reader cannot read: save it as double \
                     (or the file with -v7.3)"
                ));
            }
        }
        // Uncompressed elements are padded to 8 bytes; compressed ones are not.
        at = if kind == MI_COMPRESSED { end } else { at + 8 + size.div_ceil(8) * 8 };
    }
    None
}

/// The (name, class) of a miMATRIX body: array flags first, then dimensions, then the name.
fn flags_and_name(m: &[u8]) -> Option<(String, u32)> {
    let (kind, size) = (u32_at(m, 0)?, u32_at(m, 4)? as usize);
    if kind != MI_UINT32 || size != 8 {
        return None;
    }
    let class = u32_at(m, 8)? & 0xff;
    let dims_size = u32_at(m, 20)? as usize;
    let name_at = 16 + 8 + dims_size.div_ceil(8) * 8;
    let tag = u32_at(m, name_at)?;
    // A name of up to 4 bytes uses the small element format: size and type share one word.
    let (kind, len, from) = if tag >> 16 != 0 {
        (tag & 0xffff, (tag >> 16) as usize, name_at + 4)
    } else {
        (tag, u32_at(m, name_at + 4)? as usize, name_at + 8)
    };
    if kind != MI_INT8 {
        return None;
    }
    let name = m.get(from..from + len)?;
    Some((String::from_utf8_lossy(name).into_owned(), class))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A MAT v5 file with one uncompressed 2 x 1 variable `x` of MATLAB class `class`,
    /// its data stored as miINT32 (type 5), laid out as the format describes.
    fn v5_file(class: u32) -> Vec<u8> {
        let mut b = vec![b' '; 116];
        b[..6].copy_from_slice(b"MATLAB");
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&0x0100u16.to_le_bytes());
        b.extend_from_slice(b"IM");
        let words = |v: &[u32]| v.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
        let mut m = words(&[MI_UINT32, 8, class, 0]); // array flags
        m.extend(words(&[5, 8, 2, 1])); // dimensions 2 x 1
        m.extend(words(&[1 << 16 | MI_INT8])); // name "x", small format
        m.extend_from_slice(b"x\0\0\0");
        m.extend(words(&[5, 8, 7, 9])); // real part: 7, 9
        b.extend(words(&[MI_MATRIX, m.len() as u32]));
        b.extend(m);
        b
    }

    #[test]
    fn names_an_int32_variable_and_a_cut_file() {
        let file = v5_file(MX_INT32);
        // The case the diagnosis exists for: matfile cannot parse it.
        assert!(matfile::MatFile::parse(file.as_slice()).is_err());
        let why = diagnose(&file).unwrap();
        assert!(why.contains("variable 'x' is int32"), "{why}");
        let why = diagnose(&file[..file.len() - 5]).unwrap();
        assert!(why.contains("byte 128") && why.contains("truncated"), "{why}");
        assert!(diagnose(&file[..100]).unwrap().contains("shorter than a MAT header"));
        assert!(truncation(&file[..file.len() - 5]).unwrap().contains("truncated"));
        assert_eq!(truncation(&file), None);
        // A double variable (class 6) is nothing to report here.
        assert_eq!(diagnose(&v5_file(6)), None);
    }

    #[test]
    fn looks_inside_compressed_variables() {
        use std::io::Write;
        let file = v5_file(MX_INT32);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&file[128..]).unwrap();
        let packed = z.finish().unwrap();
        let mut c = file[..128].to_vec();
        c.extend_from_slice(&MI_COMPRESSED.to_le_bytes());
        c.extend_from_slice(&(packed.len() as u32).to_le_bytes());
        c.extend_from_slice(&packed);
        let why = diagnose(&c).unwrap();
        assert!(why.contains("variable 'x' is int32"), "{why}");
        c.truncate(c.len() - 10);
        assert!(diagnose(&c).unwrap().contains("truncated"));
    }
}
