//! Dense row-major feature matrices and multi-hot label matrices.

use crate::error::{DataError, Result};

/// A dense row-major `f32` matrix: one row per sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Matrix {
    /// Wraps row-major data; errors when `data.len() != rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(DataError::Shape {
                context: "matrix".into(),
                message: format!("{} values for a {rows}x{cols} matrix", data.len()),
            });
        }
        Ok(Self { rows, cols, data })
    }

    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (feature dimension).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The row-major values.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Mutable row-major values.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// One row.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// A new matrix made of the given rows, in that order.
    pub fn select(&self, rows: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(rows.len() * self.cols);
        for &r in rows {
            data.extend_from_slice(self.row(r));
        }
        Matrix { rows: rows.len(), cols: self.cols, data }
    }

    /// First non-finite value as (row, col, value), if any.
    pub fn find_non_finite(&self) -> Option<(usize, usize, f64)> {
        self.data
            .iter()
            .position(|v| !v.is_finite())
            .map(|i| (i / self.cols, i % self.cols, self.data[i] as f64))
    }
}

/// Multi-hot labels, `u8` 0/1, one row per sample. Single-label data is one-hot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labels {
    rows: usize,
    classes: usize,
    data: Vec<u8>,
}

impl Labels {
    /// Wraps row-major multi-hot data (nonzero = has the label).
    pub fn from_multi_hot(rows: usize, classes: usize, data: Vec<u8>) -> Result<Self> {
        if data.len() != rows * classes {
            return Err(DataError::Shape {
                context: "labels".into(),
                message: format!("{} values for {rows} rows x {classes} classes", data.len()),
            });
        }
        let data = data.into_iter().map(|v| u8::from(v != 0)).collect();
        Ok(Self { rows, classes, data })
    }

    /// Most classes a label space may have: class ids size the label matrix, and one corrupt
    /// id must not ask for terabytes (found by fuzzing).
    pub const MAX_CLASSES: usize = 1 << 16;

    /// One-hot labels from 0-based class ids; errors on an id `>= classes` and on more than
    /// [`Labels::MAX_CLASSES`] classes.
    pub fn from_class_ids(ids: &[usize], classes: usize) -> Result<Self> {
        // Check every id before allocating rows x classes bytes.
        if classes > Self::MAX_CLASSES {
            let (i, c) = ids.iter().copied().enumerate().max_by_key(|&(_, c)| c).unwrap_or((0, classes));
            return Err(DataError::Shape {
                context: "labels".into(),
                message: format!(
                    "class id {c} at row {i} would need {} classes; at most {} are supported",
                    c.saturating_add(1),
                    Self::MAX_CLASSES
                ),
            });
        }
        if let Some((i, &c)) = ids.iter().enumerate().find(|(_, &c)| c >= classes) {
            return Err(DataError::Shape {
                context: "labels".into(),
                message: format!("class id {c} at row {i} but only {classes} classes"),
            });
        }
        let size = ids.len().checked_mul(classes).ok_or_else(|| DataError::Shape {
            context: "labels".into(),
            message: format!("{} rows x {classes} classes does not fit in memory", ids.len()),
        })?;
        let mut data = vec![0u8; size];
        for (i, &c) in ids.iter().enumerate() {
            data[i * classes + c] = 1;
        }
        Ok(Self { rows: ids.len(), classes, data })
    }

    /// Number of samples.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Row-major 0/1 values.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// One sample's multi-hot row.
    pub fn row(&self, i: usize) -> &[u8] {
        &self.data[i * self.classes..(i + 1) * self.classes]
    }

    /// Whether sample `i` has label `class`.
    pub fn has(&self, i: usize, class: usize) -> bool {
        self.data[i * self.classes + class] != 0
    }

    /// The classes of sample `i`.
    pub fn classes_of(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.row(i).iter().enumerate().filter(|(_, &v)| v != 0).map(|(c, _)| c)
    }

    /// A new label matrix made of the given rows, in that order.
    pub fn select(&self, rows: &[usize]) -> Labels {
        let mut data = Vec::with_capacity(rows.len() * self.classes);
        for &r in rows {
            data.extend_from_slice(self.row(r));
        }
        Labels { rows: rows.len(), classes: self.classes, data }
    }
}

/// Class ids stored as numbers (a MATLAB label column), shifted by `base` (1 for MATLAB's
/// 1-based ids, 0 otherwise): each must be an integer `>= base`.
pub(crate) fn class_ids(values: &[f32], base: f32) -> std::result::Result<Vec<usize>, String> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.fract() != 0.0 || v < base {
                Err(format!("label {v} at row {i} is not a class id (ids are {}-based)", base as u8))
            } else {
                Ok((v - base) as usize)
            }
        })
        .collect()
}
