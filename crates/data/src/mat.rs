//! Reading 2-D (or image-stack) variables from MATLAB files, v7.3 (HDF5 inside, read with
//! the pure-Rust `hdf5-reader`) and v5 (the `matfile` crate), straight into the row-major
//! split matrices of a [`crate::Dataset`].
//!
//! Orientation: MATLAB is column-major and HDF5 row-major, so a MATLAB `N x D` matrix is
//! an HDF5 dataset of dims `(D, N)`. Every shape here is in HDF5 order (MATLAB's dims
//! reversed; a v5 array is described the same way), and a variable's samples lie along
//! either its last dim (the MATLAB convention: one sample per MATLAB row) or its first
//! (files converted without the transpose, and DCMH's `N x 3 x 224 x 224` image stacks).
//! The other dims are flattened into the feature vector.
//!
//! Large v7.3 variables are read in blocks of about 32 MiB along the first HDF5 dim and
//! each block is scattered into the destination rows, so the file's data is never held
//! twice (the destination matrices plus one block).

use std::path::{Path, PathBuf};

use hdf5_reader::{Datatype, Hdf5File, SliceInfo, SliceInfoElem};

use crate::error::{DataError, Result};

/// Elements per block of a chunked v7.3 read.
const BLOCK_ELEMS: usize = 8 << 20;

/// One open MAT file.
pub(crate) struct MatFile {
    path: PathBuf,
    kind: Kind,
}

enum Kind {
    V73(Hdf5File),
    V5(matfile::MatFile),
}

/// Where sample `i` of a variable goes: `(split, row)` or nowhere.
pub(crate) type Dest = Option<(usize, usize)>;

impl MatFile {
    /// Opens a MAT file, v7.3 or v5, by its header.
    pub(crate) fn open(path: &Path) -> Result<MatFile> {
        let bad = |message: String| DataError::Mat { path: path.into(), message };
        let mut head = [0u8; 128];
        {
            use std::io::Read;
            let mut f =
                std::fs::File::open(path).map_err(|source| DataError::Io { path: path.into(), source })?;
            f.read_exact(&mut head)
                .map_err(|_| bad("not a MAT file (shorter than its 128-byte header)".into()))?;
        }
        let text = String::from_utf8_lossy(&head[..116]);
        if text.starts_with("MATLAB 7.3") || !text.starts_with("MATLAB") {
            // v7.3 files (and plain HDF5 files written by h5py) go to the HDF5 reader.
            let h5 = Hdf5File::open(path).map_err(|e| {
                bad(format!("not a readable MATLAB v7.3 (HDF5) file: {e}; the file may be truncated"))
            })?;
            Ok(MatFile { path: path.into(), kind: Kind::V73(h5) })
        } else {
            let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.into(), source })?;
            let mat = matfile::MatFile::parse(bytes.as_slice())
                .map_err(|e| bad(format!("not a readable MAT v5 file: {e}")))?;
            Ok(MatFile { path: path.into(), kind: Kind::V5(mat) })
        }
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file has a variable `name`.
    pub(crate) fn has(&self, name: &str) -> bool {
        match &self.kind {
            Kind::V73(h5) => h5.dataset(name).is_ok(),
            Kind::V5(m) => m.find_by_name(name).is_some(),
        }
    }

    /// Dims of variable `name` in HDF5 order (MATLAB's reversed).
    pub(crate) fn dims(&self, name: &str) -> Result<Vec<usize>> {
        match &self.kind {
            Kind::V73(h5) => {
                let ds = h5.dataset(name).map_err(|e| self.err(name, format!("cannot open: {e}")))?;
                Ok(ds.shape().iter().map(|&d| d as usize).collect())
            }
            Kind::V5(m) => {
                let a = m.find_by_name(name).ok_or_else(|| self.err(name, "not found".into()))?;
                Ok(a.size().iter().rev().copied().collect())
            }
        }
    }

    fn err(&self, name: &str, message: String) -> DataError {
        DataError::Variable { path: self.path.clone(), name: name.into(), message }
    }

    /// Reads variable `name` with `n` samples along its first dim (`samples_first`) or its
    /// last, scattering sample `i` into row `dest[i].1` of `outs[dest[i].0]`, each
    /// `outs[k]` a row-major matrix of `features` columns.
    pub(crate) fn read_scatter(
        &self,
        name: &str,
        samples_first: bool,
        dest: &[Dest],
        outs: &mut [&mut [f32]],
    ) -> Result<()> {
        let dims = self.dims(name)?;
        let n = dest.len();
        let total: usize = dims.iter().product();
        let features = total / n.max(1);
        let ends_ok = if samples_first { dims.first() == Some(&n) } else { dims.last() == Some(&n) };
        if !ends_ok || total != n * features {
            return Err(self.err(name, format!("dims {dims:?} do not hold {n} samples")));
        }
        // A 1-D variable is one value per sample, either way round.
        let samples_first = samples_first || dims.len() == 1;
        // `put(first, block)`: block holds the C-order elements from index `first` of
        // dim 0 on, `inner` elements per dim-0 index.
        let inner = total / dims.first().copied().unwrap_or(1).max(1);
        let mut put = |first: usize, block: &[f32]| {
            if samples_first {
                // Whole samples, contiguous: copy row by row.
                for (r, row) in block.chunks_exact(features.max(1)).enumerate() {
                    if let Some((split, at)) = dest[first + r] {
                        outs[split][at * features..(at + 1) * features].copy_from_slice(row);
                    }
                }
            } else {
                // Feature-major (MATLAB's N x D seen as D x N): transpose in tiles of 64
                // samples, so reads run along the block and writes stay in a few cache lines.
                let f0 = first * inner / n;
                let nf = block.len() / n;
                for i0 in (0..n).step_by(64) {
                    let i1 = (i0 + 64).min(n);
                    for c in 0..nf {
                        let col = &block[c * n..(c + 1) * n];
                        for (i, &v) in col.iter().enumerate().take(i1).skip(i0) {
                            if let Some((split, at)) = dest[i] {
                                outs[split][at * features + f0 + c] = v;
                            }
                        }
                    }
                }
            }
        };
        match &self.kind {
            Kind::V5(m) => {
                let a = m.find_by_name(name).ok_or_else(|| self.err(name, "not found".into()))?;
                // Column-major MATLAB data is the C order of the reversed dims.
                let values =
                    v5_values(a.data()).ok_or_else(|| self.err(name, "not a real numeric array".into()))?;
                put(0, &values);
            }
            Kind::V73(h5) => {
                let ds = h5.dataset(name).map_err(|e| self.err(name, format!("cannot open: {e}")))?;
                let d0 = dims.first().copied().unwrap_or(0);
                let step = (BLOCK_ELEMS / inner.max(1)).max(1);
                let mut start = 0;
                while start < d0 {
                    let end = (start + step).min(d0);
                    let mut sel = SliceInfo::all(dims.len());
                    sel.selections[0] =
                        SliceInfoElem::Slice { start: start as u64, end: end as u64, step: 1 };
                    let block = read_block(&ds, &sel).map_err(|m| self.err(name, m))?;
                    put(start, &block);
                    start = end;
                }
            }
        }
        Ok(())
    }
}

/// Reads one hyperslab as f32, whatever the stored numeric type.
fn read_block(ds: &hdf5_reader::Dataset, sel: &SliceInfo) -> std::result::Result<Vec<f32>, String> {
    macro_rules! conv {
        ($t:ty) => {
            ds.read_slice::<$t>(sel)
                .map(|a| a.iter().map(|&v| v as f32).collect())
                .map_err(|e| format!("cannot read (truncated or corrupt file?): {e}"))
        };
    }
    match ds.dtype() {
        Datatype::FloatingPoint { size: 8, .. } => conv!(f64),
        Datatype::FloatingPoint { size: 4, .. } => conv!(f32),
        Datatype::FixedPoint { size: 1, signed: false, .. } => conv!(u8),
        Datatype::FixedPoint { size: 1, signed: true, .. } => conv!(i8),
        Datatype::FixedPoint { size: 2, signed: false, .. } => conv!(u16),
        Datatype::FixedPoint { size: 2, signed: true, .. } => conv!(i16),
        Datatype::FixedPoint { size: 4, signed: false, .. } => conv!(u32),
        Datatype::FixedPoint { size: 4, signed: true, .. } => conv!(i32),
        Datatype::FixedPoint { size: 8, signed: false, .. } => conv!(u64),
        Datatype::FixedPoint { size: 8, signed: true, .. } => conv!(i64),
        other => Err(format!(
            "stored as {other:?}, not a real numeric array (MATLAB sparse and cell arrays are not supported)"
        )),
    }
}

fn v5_values(d: &matfile::NumericData) -> Option<Vec<f32>> {
    use matfile::NumericData as N;
    macro_rules! conv {
        ($real:expr, $imag:expr) => {
            if $imag.is_some() {
                None
            } else {
                Some($real.iter().map(|&v| v as f32).collect())
            }
        };
    }
    match d {
        N::Double { real, imag } => conv!(real, imag),
        N::Single { real, imag } => conv!(real, imag),
        N::Int8 { real, imag } => conv!(real, imag),
        N::UInt8 { real, imag } => conv!(real, imag),
        N::Int16 { real, imag } => conv!(real, imag),
        N::UInt16 { real, imag } => conv!(real, imag),
        N::Int32 { real, imag } => conv!(real, imag),
        N::UInt32 { real, imag } => conv!(real, imag),
        N::Int64 { real, imag } => conv!(real, imag),
        N::UInt64 { real, imag } => conv!(real, imag),
    }
}

/// A set of MAT files searched together for variables (one file, or every `.mat` of a
/// directory, so datasets distributed as one file per variable load the same way).
pub(crate) struct MatSet {
    /// What the user gave (file or directory), for messages.
    pub root: PathBuf,
    files: Vec<MatFile>,
}

impl MatSet {
    /// Opens `path` (a `.mat` file) or every `*.mat` file in directory `path`.
    pub(crate) fn open(path: &Path, hint: &str) -> Result<MatSet> {
        let mut paths = Vec::new();
        if path.is_dir() {
            let rd = std::fs::read_dir(path).map_err(|source| DataError::Io { path: path.into(), source })?;
            for e in rd {
                let p = e.map_err(|source| DataError::Io { path: path.into(), source })?.path();
                if p.extension().is_some_and(|x| x == "mat") && p.is_file() {
                    paths.push(p);
                }
            }
            paths.sort();
            if paths.is_empty() {
                return Err(DataError::Missing { path: path.join("*.mat"), hint: hint.into() });
            }
        } else if path.is_file() {
            paths.push(path.to_path_buf());
        } else {
            return Err(DataError::Missing { path: path.into(), hint: hint.into() });
        }
        let files = paths.iter().map(|p| MatFile::open(p)).collect::<Result<Vec<_>>>()?;
        Ok(MatSet { root: path.into(), files })
    }

    /// The first file holding variable `name`.
    pub(crate) fn find(&self, name: &str) -> Option<&MatFile> {
        self.files.iter().find(|f| f.has(name))
    }

    /// Like [`MatSet::find`], with an error naming the variable and the files searched.
    pub(crate) fn require(&self, name: &str) -> Result<&MatFile> {
        self.find(name).ok_or_else(|| DataError::Variable {
            path: self.root.clone(),
            name: name.into(),
            message: format!("variable not found (searched {})", self.file_list()),
        })
    }

    /// The searched files, for messages.
    pub(crate) fn file_list(&self) -> String {
        let names: Vec<String> = self
            .files
            .iter()
            .map(|f| {
                f.path()
                    .file_name()
                    .map_or_else(|| f.path().display().to_string(), |n| n.to_string_lossy().into())
            })
            .collect();
        names.join(", ")
    }
}

/// How a variable with HDF5-order `dims` holds `n` samples: `Some(samples_first)`.
/// The MATLAB convention (samples along MATLAB rows = the last HDF5 dim) wins ties.
pub(crate) fn orientation(dims: &[usize], n: usize) -> Option<bool> {
    if dims.last() == Some(&n) {
        Some(false)
    } else if dims.first() == Some(&n) {
        Some(true)
    } else {
        None
    }
}

/// MATLAB-style shape text (`12x4`) from HDF5-order dims.
pub(crate) fn matlab_shape(dims: &[usize]) -> String {
    let v: Vec<String> = dims.iter().rev().map(|d| d.to_string()).collect();
    v.join("x")
}
