//! `seqmodal._seqmodal`: the Hamming engine on numpy arrays, for the `seqmodal` Python package.
//!
//! The Python layer (`python/seqmodal/__init__.py`) holds the documented API; this module
//! borrows the arrays' memory (no copy when rows are whole 64-bit words and the data is
//! aligned), releases the GIL while the engine runs, and raises `ValueError`/`TypeError` with
//! the engine's own messages.

use std::borrow::Cow;

use numpy::ndarray::{Array1, Array2};
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rayon::prelude::*;
use seqmodal_hamming::npy::{pad_rows, MAX_CLASS_IDS};
use seqmodal_hamming::{CodesView, Engine, LabelSet, Metric};
use seqmodal_npy::{DType, Header, RawLabels};

/// A code matrix as handed over: packbits bytes or 64-bit words, borrowed from numpy.
enum CodeArray<'py> {
    Bytes(PyReadonlyArray2<'py, u8>),
    Words(PyReadonlyArray2<'py, u64>),
}

fn value_err(e: impl ToString) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Accepts a 2-D uint8 (packbits rows) or uint64 (words) numpy array; `what` names it in errors.
fn code_array<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<CodeArray<'py>> {
    if let Ok(a) = obj.extract::<PyReadonlyArray2<'py, u8>>() {
        return Ok(CodeArray::Bytes(a));
    }
    if let Ok(a) = obj.extract::<PyReadonlyArray2<'py, u64>>() {
        return Ok(CodeArray::Words(a));
    }
    let found = match obj.cast::<PyUntypedArray>() {
        Ok(a) => format!("a {}-D array of dtype {}", a.ndim(), a.dtype()),
        Err(_) => format!("a {}", obj.get_type().name()?),
    };
    Err(PyTypeError::new_err(format!(
        "{what} must be a 2-D numpy array of uint8 (rows of numpy.packbits, as FAISS takes) or uint64 words, got {found}"
    )))
}

/// Words of a code matrix (borrowed when the layout allows), its row count and bits per code.
fn words<'a>(a: &'a CodeArray<'_>, what: &str) -> PyResult<(Cow<'a, [u64]>, usize, usize)> {
    let not_contiguous = |_| value_err(format!("{what} must be C-contiguous (numpy.ascontiguousarray)"));
    let zero = || value_err(format!("{what}: code rows have 0 bytes"));
    match a {
        CodeArray::Bytes(b) => {
            let [n, row_bytes] = b.shape() else { unreachable!("2-D by type") };
            let (n, row_bytes) = (*n, *row_bytes);
            if row_bytes == 0 {
                return Err(zero());
            }
            let bytes = b.as_slice().map_err(not_contiguous)?;
            // Rows of whole words at an aligned address are the words themselves (little-endian
            // reading, as `seqmodal search` maps a .npy file); anything else gets one padded copy.
            let w = match bytemuck::try_cast_slice::<u8, u64>(bytes) {
                Ok(w) if row_bytes.is_multiple_of(8) && cfg!(target_endian = "little") => Cow::Borrowed(w),
                _ => Cow::Owned(pad_rows(bytes, n, row_bytes)),
            };
            Ok((w, n, row_bytes * 8))
        }
        CodeArray::Words(w) => {
            let [n, words] = w.shape() else { unreachable!("2-D by type") };
            if *words == 0 {
                return Err(zero());
            }
            Ok((Cow::Borrowed(w.as_slice().map_err(not_contiguous)?), *n, words * 64))
        }
    }
}

/// Runs `f` on a pool of `threads` threads (rayon's global pool when 0).
fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    if threads == 0 {
        return Ok(f());
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(value_err)?;
    Ok(pool.install(f))
}

/// Calls `f(database, queries)` on views of the two code arrays (each borrowed in place where
/// its layout allows; errors name `db_codes` or `query_codes`).
fn with_codes<'py, R>(
    db_codes: &Bound<'py, PyAny>,
    query_codes: &Bound<'py, PyAny>,
    f: impl FnOnce(CodesView<'_>, CodesView<'_>) -> PyResult<R>,
) -> PyResult<R> {
    let (db, q) = (code_array(db_codes, "db_codes")?, code_array(query_codes, "query_codes")?);
    let (dbw, n, dbits) = words(&db, "db_codes")?;
    let (qw, nq, qbits) = words(&q, "query_codes")?;
    let dbv = CodesView::from_words(&dbw, n, dbits).map_err(value_err)?;
    let qv = CodesView::from_words(&qw, nq, qbits).map_err(value_err)?;
    f(dbv, qv)
}

/// Exact top-k (or top-k within a radius) search: (distances int32 (Q, k), ids int64 (Q, k)).
#[pyfunction]
#[pyo3(signature = (db_codes, query_codes, k, radius, threads))]
fn knn<'py>(
    py: Python<'py>,
    db_codes: &Bound<'py, PyAny>,
    query_codes: &Bound<'py, PyAny>,
    k: usize,
    radius: Option<u32>,
    threads: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    with_codes(db_codes, query_codes, |dbv, qv| {
        let nn = py
            .detach(|| in_pool(threads, || seqmodal_hamming::knn(qv, dbv, k, radius, Engine::default())))?
            .map_err(value_err)?;
        let shape = (qv.len(), k);
        let d = Array2::from_shape_vec(shape, nn.distances().to_vec()).map_err(value_err)?;
        let i = Array2::from_shape_vec(shape, nn.ids().to_vec()).map_err(value_err)?;
        PyTuple::new(py, [d.into_pyarray(py).into_any(), i.into_pyarray(py).into_any()])
    })
}

/// Range search: every database item at distance <= radius, as FAISS's (lims, D, I).
#[pyfunction]
#[pyo3(signature = (db_codes, query_codes, radius, threads))]
fn range_search<'py>(
    py: Python<'py>,
    db_codes: &Bound<'py, PyAny>,
    query_codes: &Bound<'py, PyAny>,
    radius: u32,
    threads: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    with_codes(db_codes, query_codes, |dbv, qv| {
        let (n, nq, dbits, qbits) = (dbv.len(), qv.len(), dbv.bits(), qv.bits());
        if qbits != dbits {
            return Err(value_err(seqmodal_hamming::HammingError::BitsMismatch {
                query: qbits,
                database: dbits,
            }));
        }
        let hits: Vec<Vec<(u32, u32)>> = py
            .detach(|| {
                in_pool(threads, || {
                    (0..nq)
                        .into_par_iter()
                        .map_init(
                            || vec![0u32; n],
                            |dist, i| -> seqmodal_hamming::Result<Vec<(u32, u32)>> {
                                seqmodal_hamming::distances_into(qv.row(i), dbv, Engine::default(), dist)?;
                                // Index order, then a stable sort by distance: ties stay by index.
                                let mut row: Vec<(u32, u32)> = (0u32..)
                                    .zip(dist.iter())
                                    .filter(|&(_, &d)| d <= radius)
                                    .map(|(j, &d)| (d, j))
                                    .collect();
                                row.sort_by_key(|&(d, _)| d);
                                Ok(row)
                            },
                        )
                        .collect::<seqmodal_hamming::Result<_>>()
                })
            })?
            .map_err(value_err)?;
        let mut lims = Vec::with_capacity(nq + 1);
        lims.push(0i64);
        let total: usize = hits.iter().map(Vec::len).sum();
        let (mut d, mut ids) = (Vec::with_capacity(total), Vec::with_capacity(total));
        for row in &hits {
            d.extend(row.iter().map(|&(dist, _)| dist as i32));
            ids.extend(row.iter().map(|&(_, j)| i64::from(j)));
            lims.push(d.len() as i64);
        }
        PyTuple::new(
            py,
            [
                Array1::from(lims).into_pyarray(py).into_any(),
                Array1::from(d).into_pyarray(py).into_any(),
                Array1::from(ids).into_pyarray(py).into_any(),
            ],
        )
    })
}

/// Label values under the shared `.npy` rules (the bytes of a C-contiguous array, its numpy
/// dtype string and shape); `what` names the argument in errors.
fn raw_labels(
    bytes: &PyReadonlyArray1<'_, u8>,
    descr: &str,
    shape: Vec<usize>,
    what: &str,
) -> PyResult<RawLabels> {
    let at = |e: seqmodal_npy::NpyError| value_err(format!("{what}: {e}"));
    let dtype = DType::parse(descr).ok_or_else(|| at(seqmodal_npy::NpyError::DType(descr.to_string())))?;
    let bytes = bytes.as_slice().map_err(value_err)?;
    let header = Header { dtype, fortran: false, shape, data_offset: 0 };
    if header.data_bytes() != bytes.len() {
        return Err(value_err(format!("{what}: {} bytes do not hold shape {:?}", bytes.len(), header.shape)));
    }
    seqmodal_npy::read_labels(&mut &bytes[..], &header, MAX_CLASS_IDS).map_err(at)
}

/// One label set of `classes` classes from raw labels.
fn label_set(raw: &RawLabels, classes: usize) -> PyResult<LabelSet> {
    match raw {
        RawLabels::MultiHot { rows, classes: c, data } => LabelSet::from_multi_hot(data, *rows, *c),
        // Every id is below MAX_CLASS_IDS (the reader checked), so it fits a u32.
        RawLabels::Ids(ids) => {
            LabelSet::from_class_ids(&ids.iter().map(|&i| i as u32).collect::<Vec<_>>(), classes)
        }
    }
    .map_err(value_err)
}

/// Mean metrics (and the PR curve) of ranking the database for every query.
#[pyfunction]
#[pyo3(signature = (db_codes, query_codes, db_labels, db_descr, db_shape, query_labels, query_descr, query_shape, metrics, pr_curve, threads))]
#[allow(clippy::too_many_arguments)]
fn evaluate<'py>(
    py: Python<'py>,
    db_codes: &Bound<'py, PyAny>,
    query_codes: &Bound<'py, PyAny>,
    db_labels: PyReadonlyArray1<'py, u8>,
    db_descr: &str,
    db_shape: Vec<usize>,
    query_labels: PyReadonlyArray1<'py, u8>,
    query_descr: &str,
    query_shape: Vec<usize>,
    metrics: Vec<String>,
    pr_curve: bool,
    threads: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let metrics: Vec<Metric> =
        metrics.iter().map(|m| m.parse().map_err(value_err)).collect::<PyResult<_>>()?;
    with_codes(db_codes, query_codes, |dbv, qv| {
        let nq = qv.len();
        let dl = raw_labels(&db_labels, db_descr, db_shape, "db_labels")?;
        let ql = raw_labels(&query_labels, query_descr, query_shape, "query_labels")?;
        // Class ids share one class count; ids beside multi-hot rows take the rows' width (as
        // `seqmodal eval` reads two label files).
        let classes = match (&ql, &dl) {
            (RawLabels::Ids(_), RawLabels::Ids(_)) => ql.classes().max(dl.classes()).max(1),
            (RawLabels::Ids(_), RawLabels::MultiHot { classes, .. }) => *classes,
            (RawLabels::MultiHot { classes, .. }, RawLabels::Ids(_)) => *classes,
            (RawLabels::MultiHot { classes: a, .. }, RawLabels::MultiHot { classes: b, .. }) => {
                if a != b {
                    return Err(value_err(format!(
                        "label widths differ: query_labels have {a} classes, db_labels have {b}"
                    )));
                }
                *a
            }
        };
        let (qs, ds) = (label_set(&ql, classes)?, label_set(&dl, classes)?);
        if nq == 0 {
            return Err(value_err("query_codes has no rows: every metric is a mean over queries"));
        }
        let report = py
            .detach(|| {
                in_pool(threads, || {
                    seqmodal_hamming::evaluate_with(qv, &qs, dbv, &ds, &metrics, Engine::default(), pr_curve)
                })
            })?
            .map_err(value_err)?;
        let out = PyDict::new(py);
        for (m, v) in metrics.iter().zip(&report.metrics) {
            out.set_item(m.to_string(), v)?;
        }
        if pr_curve {
            let curve = PyDict::new(py);
            let radius: Vec<u32> = report.pr_curve.iter().map(|p| p.radius).collect();
            curve.set_item("radius", Array1::from(radius).into_pyarray(py))?;
            let precision: Vec<f64> = report.pr_curve.iter().map(|p| p.precision).collect();
            curve.set_item("precision", Array1::from(precision).into_pyarray(py))?;
            let recall: Vec<f64> = report.pr_curve.iter().map(|p| p.recall).collect();
            curve.set_item("recall", Array1::from(recall).into_pyarray(py))?;
            out.set_item("pr_curve", curve)?;
        }
        Ok(out)
    })
}

/// The compiled half of the `seqmodal` package.
#[pymodule]
fn _seqmodal(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(knn, m)?)?;
    m.add_function(wrap_pyfunction!(range_search, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
