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
//! Large v7.3 variables are read in blocks of about 8 MiB along the first HDF5 dim and
//! each block is scattered into the destination rows, so the file's data is never held
//! twice (the destination matrices plus two blocks). A reader thread decodes the next
//! block while the caller's thread scatters the current one.

use std::path::{Path, PathBuf};

use hdf5_reader::{Datatype, Hdf5File, SliceInfo, SliceInfoElem};

use crate::error::{DataError, Result};

/// Elements per block of a v7.3 read. Small enough that the allocator reuses the freed
/// block buffers instead of mapping (and page-faulting) fresh memory for every block.
const BLOCK_ELEMS: usize = 2 << 20;

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
            let mat = crate::mat_v5::parse(&bytes).map_err(bad)?;
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
        self.read_scatter_blocks(name, samples_first, dest, outs, BLOCK_ELEMS)
    }

    /// [`MatFile::read_scatter`] with v7.3 blocks of about `block_elems` elements.
    fn read_scatter_blocks(
        &self,
        name: &str,
        samples_first: bool,
        dest: &[Dest],
        outs: &mut [&mut [f32]],
        block_elems: usize,
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
                // Feature-major (MATLAB's N x D seen as D x N): the block holds `nf` whole
                // feature rows of all n samples. Transpose 16 features (one 64-byte line of a
                // destination row) at a time: each sample's line is written in one go while
                // the reads advance along 16 sequential streams.
                let f0 = first * inner / n;
                let nf = block.len() / n;
                for c0 in (0..nf).step_by(16) {
                    let c1 = (c0 + 16).min(nf);
                    let cols: Vec<&[f32]> = (c0..c1).map(|c| &block[c * n..(c + 1) * n]).collect();
                    for (i, d) in dest.iter().enumerate() {
                        if let Some((split, at)) = *d {
                            let start = at * features + f0 + c0;
                            let row = &mut outs[split][start..start + (c1 - c0)];
                            for (o, col) in row.iter_mut().zip(&cols) {
                                *o = col[i];
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
                let mut step = (block_elems / inner.max(1)).max(1);
                if !samples_first && step >= 16 {
                    // Feature-major: whole 64-byte lines of each destination row per block.
                    step -= step % 16;
                }
                let blocks: Vec<(usize, usize)> =
                    (0..d0).step_by(step).map(|start| (start, (start + step).min(d0))).collect();
                let read = |&(start, end): &(usize, usize)| {
                    let mut sel = SliceInfo::all(dims.len());
                    sel.selections[0] =
                        SliceInfoElem::Slice { start: start as u64, end: end as u64, step: 1 };
                    read_block(&ds, &sel).map(|b| (start, b))
                };
                if blocks.len() < 2 {
                    for b in &blocks {
                        let (start, block) = read(b).map_err(|m| self.err(name, m))?;
                        put(start, &block);
                    }
                } else {
                    // Decode block k + 1 on a reader thread while this one scatters block k.
                    std::thread::scope(|scope| -> Result<()> {
                        let (tx, rx) = std::sync::mpsc::sync_channel(1);
                        scope.spawn(move || {
                            for b in &blocks {
                                let r = read(b);
                                let failed = r.is_err();
                                if tx.send(r).is_err() || failed {
                                    break;
                                }
                            }
                        });
                        for r in rx {
                            let (start, block) = r.map_err(|m| self.err(name, m))?;
                            put(start, &block);
                        }
                        Ok(())
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// Reads one hyperslab as f32, whatever the stored numeric type.
fn read_block(ds: &hdf5_reader::Dataset, sel: &SliceInfo) -> std::result::Result<Vec<f32>, String> {
    if let Datatype::FloatingPoint { size: 4, .. } = ds.dtype() {
        // Already f32: keep the decoded buffer instead of converting it into a copy.
        let a = ds
            .read_slice::<f32>(sel)
            .map_err(|e| format!("cannot read (truncated or corrupt file?): {e}"))?;
        if a.is_standard_layout() {
            let (v, offset) = a.into_raw_vec_and_offset();
            if offset.unwrap_or(0) == 0 {
                return Ok(v);
            }
            return Ok(v[offset.unwrap_or(0)..].to_vec());
        }
        return Ok(a.iter().copied().collect());
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// mat73/wide.mat (scripts/make-fixtures.py): 40 samples; IAll is MATLAB 40 x 37 single
    /// (HDF5 (37, 40), feature-major), YAll 40 x 35 stored samples-first; element (i, j) of
    /// a variable with base b is b + i + j / 100.
    #[test]
    fn block_sizes_and_threads_read_the_same_values() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mat73/wide.mat");
        let file = MatFile::open(&path).unwrap();
        let n = 40;
        // Samples to two splits in a scrambled order, some left out.
        let dest: Vec<Dest> =
            (0..n).map(|i| if i % 7 == 3 { None } else { Some((i % 2, (i * 13 % n) / 2)) }).collect();
        for (var, samples_first, features, base) in [("IAll", false, 37, 0.0), ("YAll", true, 35, 5000.0)] {
            // Blocks of one, three, 16 (rounded down from 17) and 37+ feature rows or samples.
            for block in [1, 3 * n, 17 * n, 5 * n + 1, 1 << 30] {
                let mut bufs = vec![vec![f32::NAN; n / 2 * features]; 2];
                {
                    let mut outs: Vec<&mut [f32]> = bufs.iter_mut().map(Vec::as_mut_slice).collect();
                    file.read_scatter_blocks(var, samples_first, &dest, &mut outs, block * features / 37)
                        .unwrap();
                }
                for (i, d) in dest.iter().enumerate() {
                    let Some((split, at)) = *d else { continue };
                    for j in 0..features {
                        let want = (base + i as f64 + j as f64 / 100.0) as f32;
                        let got = bufs[split][at * features + j];
                        assert_eq!(got, want, "{var} block {block}: sample {i} feature {j}");
                    }
                }
            }
        }
    }
}
