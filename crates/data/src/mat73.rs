//! Loader for the MATLAB v7.3 image–text benchmarks as DCMH-style code distributes them
//! (MIRFlickr-25K, NUS-WIDE, IAPR TC-12); see `datasets/README.md` for the files.
//!
//! Two layouts, found by variable name (in one file, or across every `.mat` of a directory):
//!
//! - all-in-one: `IAll` (image features, or DCMH's `N x 3 x 224 x 224` pixel stack; also
//!   read as `images`), `YAll` (tag bag-of-words), `LAll` (multi-hot labels), one sample
//!   per MATLAB row. `queries` rows ([`LoadOptions`], required) are drawn with a seeded
//!   shuffle; every other row is the retrieval database.
//! - pre-split: `I_tr`, `T_tr`, `L_tr` (the retrieval database) and `I_te`, `T_te`,
//!   `L_te` (queries).
//!
//! In both, the training split is the database, or with `train = N` a seeded subset of N of
//! its rows ([`Dataset::subsample_training`]); the database stays whole.
//!
//! Each variable may be stored either way round (see [`crate::mat`]); the sample count is
//! the dimension the label variable shares with the feature variables.

use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::dataset::{Dataset, Modality, Split};
use crate::error::{DataError, Result};
use crate::mat::{matlab_shape, orientation, Dest, MatSet};
use crate::matrix::{class_ids, Labels, Matrix};
use crate::LoadOptions;

/// What a missing mat73 file or directory is for.
const HINT: &str = "MATLAB v7.3 dataset (IAll/YAll/LAll or I_tr/T_tr/L_tr/I_te/T_te/L_te); \
                    datasets/README.md says where to get it and where to put it";

/// Loads a mat73 dataset from a `.mat` file or a directory of them (raw features), with
/// `opts.queries` queries drawn from an unsplit file and `opts.train` training rows drawn
/// from the database.
pub fn load_mat73(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let mut ds = load_queries_database(path, opts)?;
    if let Some(train) = opts.train {
        ds.subsample_training(train, opts.seed)?;
    }
    Ok(ds)
}

/// Loads the queries and the database (= training split) of a mat73 dataset.
pub(crate) fn load_queries_database(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let set = MatSet::open(path, HINT)?;
    let name = path.file_stem().map_or_else(|| "mat73".into(), |s| s.to_string_lossy().into_owned());
    let modalities = if set.find("L_tr").is_some() || set.find("L_te").is_some() {
        load_split_layout(&set, opts)?
    } else if set.find("LAll").is_some() {
        load_all_layout(&set, opts)?
    } else {
        return Err(DataError::Variable {
            path: set.root.clone(),
            name: "LAll".into(),
            message: format!(
                "variable not found, nor L_tr/L_te (searched {}); a mat73 dataset has IAll, YAll, LAll \
                 or I_tr, T_tr, L_tr, I_te, T_te, L_te",
                set.file_list()
            ),
        });
    };
    let classes = modalities[0].train.labels.classes();
    let ds = Dataset {
        name,
        class_names: (0..classes).map(|c| format!("class {c}")).collect(),
        modalities,
        aligned: true,
    };
    ds.validate()?;
    Ok(ds)
}

fn load_all_layout(set: &MatSet, opts: &LoadOptions) -> Result<Vec<Modality>> {
    let image = if set.find("IAll").is_none() && set.find("images").is_some() { "images" } else { "IAll" };
    let vars = [image, "YAll"];
    let n = sample_count(set, "LAll", &vars)?;
    let test = opts.queries.ok_or_else(|| DataError::Setting {
        key: "queries".into(),
        message: format!(
            "{} has one IAll/YAll/LAll set of {n} samples: say how many become queries (e.g. queries = 2000)",
            set.root.display()
        ),
    })?;
    let (queries, database) = draw_split(n, test, opts.train, opts.seed)?;
    let mut dest: Vec<Dest> = vec![None; n];
    for (row, &i) in database.iter().enumerate() {
        dest[i] = Some((0, row));
    }
    for (row, &i) in queries.iter().enumerate() {
        dest[i] = Some((1, row));
    }
    let sizes = [database.len(), queries.len()];
    let [l_tr, l_te] = read_features(set, "LAll", &dest, &sizes)?;
    let labels = to_labels(set, [("LAll", &l_tr), ("LAll", &l_te)])?;
    let mut modalities = Vec::new();
    for (modality, var) in [("image", image), ("text", "YAll")] {
        let [tr, te] = read_features(set, var, &dest, &sizes)?;
        modalities.push(Modality {
            name: modality.into(),
            train: Split { features: tr, labels: labels[0].clone() },
            test: Split { features: te, labels: labels[1].clone() },
            database: None,
        });
    }
    Ok(modalities)
}

fn load_split_layout(set: &MatSet, opts: &LoadOptions) -> Result<Vec<Modality>> {
    if opts.queries.is_some() {
        return Err(DataError::Setting {
            key: "queries".into(),
            message: format!(
                "{} has its own queries (I_te/T_te/L_te); remove dataset.queries",
                set.root.display()
            ),
        });
    }
    let n_tr = sample_count(set, "L_tr", &["I_tr", "T_tr"])?;
    let n_te = sample_count(set, "L_te", &["I_te", "T_te"])?;
    if let Some(t) = opts.train.filter(|&t| t == 0 || t > n_tr) {
        return Err(DataError::Setting {
            key: "train".into(),
            message: format!(
                "{t} training rows asked, but {} has {n_tr} database rows (L_tr); training rows are \
                 drawn from the database",
                set.root.display()
            ),
        });
    }
    let dest_tr: Vec<Dest> = (0..n_tr).map(|i| Some((0, i))).collect();
    let dest_te: Vec<Dest> = (0..n_te).map(|i| Some((0, i))).collect();
    let [m_tr] = read_features(set, "L_tr", &dest_tr, &[n_tr])?;
    let [m_te] = read_features(set, "L_te", &dest_te, &[n_te])?;
    let [l_tr, l_te] = to_labels(set, [("L_tr", &m_tr), ("L_te", &m_te)])?;
    if l_tr.classes() != l_te.classes() {
        return Err(DataError::Variable {
            path: set.require("L_te")?.path().into(),
            name: "L_te".into(),
            message: format!("{} label columns but L_tr has {}", l_te.classes(), l_tr.classes()),
        });
    }
    let mut modalities = Vec::new();
    for (modality, tr, te) in [("image", "I_tr", "I_te"), ("text", "T_tr", "T_te")] {
        let [f_tr] = read_features(set, tr, &dest_tr, &[n_tr])?;
        let [f_te] = read_features(set, te, &dest_te, &[n_te])?;
        if f_tr.cols() != f_te.cols() {
            return Err(DataError::Variable {
                path: set.require(te)?.path().into(),
                name: te.into(),
                message: format!("{} features per sample but {tr} has {}", f_te.cols(), f_tr.cols()),
            });
        }
        modalities.push(Modality {
            name: modality.into(),
            train: Split { features: f_tr, labels: l_tr.clone() },
            test: Split { features: f_te, labels: l_te.clone() },
            database: None,
        });
    }
    Ok(modalities)
}

/// Draws `test` query rows from `n` with a seeded shuffle; the database is every other
/// row. Both lists are sorted, so rows keep their file order. `train` (the training rows
/// later drawn from the database) is only checked here, so that a count that cannot fit
/// is reported before the file is read.
pub(crate) fn draw_split(
    n: usize,
    test: usize,
    train: Option<usize>,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if test == 0 || test >= n {
        return Err(DataError::Setting {
            key: "queries".into(),
            message: format!(
                "{test} queries asked from {n} samples (need 1..{n} and some left for the database)"
            ),
        });
    }
    let rest = n - test;
    if let Some(train) = train.filter(|&t| t == 0 || t > rest) {
        return Err(DataError::Setting {
            key: "train".into(),
            message: format!(
                "{train} training rows asked, but queries + train = {} > {n} samples: training rows \
                 are drawn from the {rest} database rows left after {test} queries",
                test + train
            ),
        });
    }
    let mut all: Vec<usize> = (0..n).collect();
    all.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut q = all[..test].to_vec();
    let mut db = all[test..].to_vec();
    q.sort_unstable();
    db.sort_unstable();
    Ok((q, db))
}

/// The sample count of `label`: the end dimension of it that every variable in `others`
/// also has at one end (MATLAB's row count first).
pub(crate) fn sample_count(set: &MatSet, label: &str, others: &[&str]) -> Result<usize> {
    let ld = set.require(label)?.dims(label)?;
    let mut other_dims = Vec::new();
    for &o in others {
        other_dims.push((o, set.require(o)?.dims(o)?));
    }
    let candidates = [ld.last().copied(), ld.first().copied()];
    candidates
        .into_iter()
        .flatten()
        .find(|&c| other_dims.iter().all(|(_, d)| orientation(d, c).is_some()))
        .ok_or_else(|| {
            let shapes: Vec<String> = std::iter::once((label, ld.clone()))
                .chain(other_dims.iter().map(|(o, d)| (*o, d.clone())))
                .map(|(v, d)| format!("{v} is {}", matlab_shape(&d)))
                .collect();
            DataError::Shape {
                context: set.root.display().to_string(),
                message: format!("the variables do not share a sample count: {}", shapes.join(", ")),
            }
        })
}

/// Reads a feature variable into one matrix per split (row counts `sizes`), checked finite.
pub(crate) fn read_features<const K: usize>(
    set: &MatSet,
    var: &str,
    dest: &[Dest],
    sizes: &[usize; K],
) -> Result<[Matrix; K]> {
    let file = set.require(var)?;
    let dims = file.dims(var)?;
    let n = dest.len();
    let samples_first = orientation(&dims, n).ok_or_else(|| DataError::Variable {
        path: file.path().into(),
        name: var.into(),
        message: format!("MATLAB shape {} has no dimension of {n} samples", matlab_shape(&dims)),
    })?;
    let features = dims.iter().product::<usize>() / n.max(1);
    let mut bufs: Vec<Vec<f32>> = sizes.iter().map(|&r| vec![0f32; r * features]).collect();
    {
        let mut outs: Vec<&mut [f32]> = bufs.iter_mut().map(Vec::as_mut_slice).collect();
        file.read_scatter(var, samples_first, dest, &mut outs)?;
    }
    let mut out = Vec::with_capacity(K);
    for (b, &rows) in bufs.into_iter().zip(sizes) {
        let m = Matrix::new(rows, features, b)?;
        if let Some((row, col, value)) = m.find_non_finite() {
            return Err(DataError::NonFinite {
                context: format!("{}: {var}", file.path().display()),
                row,
                col,
                value,
            });
        }
        out.push(m);
    }
    out.try_into().map_err(|_| DataError::Shape { context: var.into(), message: "split count".into() })
}

/// Labels of the splits from their label variables' values (`(variable, matrix)` per split),
/// read together so that they share one label space. One column each: class ids, 1-based
/// (MATLAB) unless some id is 0, as DCMH's Wikipedia files store them. Otherwise multi-hot
/// columns, non-zero = has the label; a negative value is an error (a −1/+1 coding would
/// otherwise read as every label set).
fn to_labels<const K: usize>(set: &MatSet, splits: [(&str, &Matrix); K]) -> Result<[Labels; K]> {
    // The variable was just read, so `require` finds it; its error stands in otherwise.
    let err = |var: &str, message: String| match set.require(var) {
        Ok(file) => DataError::Variable { path: file.path().into(), name: var.into(), message },
        Err(e) => e,
    };
    let mut out = Vec::with_capacity(K);
    if splits.iter().all(|(_, m)| m.cols() == 1) {
        let any_zero = splits.iter().any(|(_, m)| m.data().contains(&0.0));
        let base = if any_zero { 0.0 } else { 1.0 };
        let mut ids = Vec::with_capacity(K);
        for (var, m) in &splits {
            ids.push(class_ids(m.data(), base).map_err(|msg| err(var, msg))?);
        }
        let classes = ids.iter().flatten().max().map_or(0, |&c| c + 1);
        for ((var, _), ids) in splits.iter().zip(&ids) {
            let labels = Labels::from_class_ids(ids, classes).map_err(|e| err(var, e.to_string()))?;
            out.push(labels);
        }
    } else {
        for (var, m) in &splits {
            if let Some(k) = m.data().iter().position(|&v| v < 0.0) {
                let (r, c) = (k / m.cols(), k % m.cols());
                let message = format!(
                    "label value {} at sample {r}, class {c}: multi-hot labels are 0/1 (non-zero = has \
                     the label); map a -1/+1 coding's -1 to 0",
                    m.data()[k]
                );
                return Err(err(var, message));
            }
            let data = m.data().iter().map(|&v| u8::from(v != 0.0)).collect();
            out.push(Labels::from_multi_hot(m.rows(), m.cols(), data)?);
        }
    }
    out.try_into().map_err(|_| DataError::Shape { context: "labels".into(), message: "split count".into() })
}
