//! The accuracy matrix `R[stage][pair]` of one run.

use crate::error::{AnalysisError, Result};
use crate::record::Record;
use std::collections::BTreeMap;

/// `R[stage][pair]` for one metric of one run: stages 0..=T (0 = before training), pairs = ordered (query, database) modality names.
#[derive(Clone, Debug, PartialEq)]
pub struct AccuracyMatrix {
    /// The metric these values are (e.g. "map").
    pub metric: String,
    /// Modalities in order of first appearance as query in the records, then
    /// modalities seen only as database, in order of first appearance.
    pub modalities: Vec<String>,
    /// Modality trained in each stage; index 0 (before training) is `None`.
    pub trained: Vec<Option<String>>,
    /// Values indexed `[stage][pair index]`.
    pub values: Vec<Vec<f64>>,
    /// The ordered (query, database) pairs, sorted by the modality order of query then database.
    pub pairs: Vec<(String, String)>,
}

impl AccuracyMatrix {
    /// Build the matrix of `metric` from the records of one run.
    ///
    /// Errors when no record has `metric`, when the records come from more than
    /// one run (experiment, learner, seed, bits), when stages disagree on their
    /// trained modality, or when a (stage, pair) cell for stages 0..=max is
    /// missing or duplicated.
    pub fn from_records(records: &[Record], metric: &str) -> Result<AccuracyMatrix> {
        let rows: Vec<&Record> = records.iter().filter(|r| r.metric == metric).collect();
        let first =
            rows.first().ok_or_else(|| AnalysisError::Matrix(format!("no rows for metric `{metric}`")))?;
        if let Some(other) = rows.iter().find(|r| {
            r.experiment != first.experiment
                || r.learner != first.learner
                || r.seed != first.seed
                || r.bits != first.bits
        }) {
            return Err(AnalysisError::Matrix(format!(
                "records of more than one run: (experiment {}, learner {}, seed {}, bits {}) and ({}, {}, {}, {})",
                first.experiment, first.learner, first.seed, first.bits,
                other.experiment, other.learner, other.seed, other.bits
            )));
        }

        let mut modalities: Vec<String> = Vec::new();
        for r in &rows {
            if !modalities.contains(&r.query) {
                modalities.push(r.query.clone());
            }
        }
        for r in &rows {
            if !modalities.contains(&r.database) {
                modalities.push(r.database.clone());
            }
        }
        let index = |m: &str| modalities.iter().position(|x| x == m).unwrap_or(usize::MAX);
        let mut pairs: Vec<(String, String)> = Vec::new();
        for r in &rows {
            let p = (r.query.clone(), r.database.clone());
            if !pairs.contains(&p) {
                pairs.push(p);
            }
        }
        pairs.sort_by_key(|(q, d)| (index(q), index(d)));

        let last = rows.iter().map(|r| r.stage).max().unwrap_or(0);
        let mut trained: Vec<Option<Option<String>>> = vec![None; last + 1];
        let mut cells: BTreeMap<(usize, usize), f64> = BTreeMap::new();
        for r in &rows {
            match &trained[r.stage] {
                None => trained[r.stage] = Some(r.trained.clone()),
                Some(t) if *t != r.trained => {
                    return Err(AnalysisError::Matrix(format!(
                        "stage {} has trained modality {:?} and {:?}",
                        r.stage, t, r.trained
                    )))
                }
                Some(_) => {}
            }
            let p = pairs.iter().position(|(q, d)| *q == r.query && *d == r.database).unwrap_or(usize::MAX);
            if cells.insert((r.stage, p), r.value).is_some() {
                return Err(AnalysisError::Matrix(format!(
                    "duplicate `{metric}` for stage {} pair {}->{}",
                    r.stage, r.query, r.database
                )));
            }
        }
        let mut values = Vec::with_capacity(last + 1);
        for stage in 0..=last {
            let mut row = Vec::with_capacity(pairs.len());
            for (p, (q, d)) in pairs.iter().enumerate() {
                let v = cells.get(&(stage, p)).ok_or_else(|| {
                    AnalysisError::Matrix(format!("missing `{metric}` for stage {stage} pair {q}->{d}"))
                })?;
                row.push(*v);
            }
            values.push(row);
        }
        Ok(AccuracyMatrix {
            metric: metric.to_string(),
            modalities,
            trained: trained.into_iter().map(Option::flatten).collect(),
            values,
            pairs,
        })
    }

    /// Number of rows including stage 0 (so T + 1).
    pub fn stages(&self) -> usize {
        self.values.len()
    }

    /// Index of the last stage T (0 for an empty matrix).
    pub fn last_stage(&self) -> usize {
        self.stages().saturating_sub(1)
    }

    /// Index of the pair (query, database) in [`Self::pairs`].
    pub fn pair_index(&self, query: &str, database: &str) -> Option<usize> {
        self.pairs.iter().position(|(q, d)| q == query && d == database)
    }

    /// `R[stage][(query, database)]`, `None` if the stage or pair is absent.
    pub fn get(&self, stage: usize, query: &str, database: &str) -> Option<f64> {
        let p = self.pair_index(query, database)?;
        self.values.get(stage)?.get(p).copied()
    }

    /// First stage at which `modality` is trained, `None` if never.
    pub fn trained_at(&self, modality: &str) -> Option<usize> {
        self.trained.iter().position(|t| t.as_deref() == Some(modality))
    }

    /// t_p: first stage after which both modalities of the pair have been trained (from `trained`), None if never.
    pub fn both_trained_at(&self, query: &str, database: &str) -> Option<usize> {
        Some(self.trained_at(query)?.max(self.trained_at(database)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn rec(stage: usize, trained: Option<&str>, q: &str, d: &str, v: f64) -> Record {
        Record {
            experiment: "e".into(),
            learner: "l".into(),
            seed: 1,
            bits: 16,
            stage,
            trained: trained.map(str::to_string),
            query: q.into(),
            database: d.into(),
            metric: "map".into(),
            value: v,
        }
    }

    fn two_modalities() -> Vec<Record> {
        let mut r = Vec::new();
        for (s, t) in [(0, None), (1, Some("text")), (2, Some("image"))] {
            // Query order of first appearance: text before image.
            for (q, d) in [("text", "text"), ("text", "image"), ("image", "text"), ("image", "image")] {
                r.push(rec(s, t, q, d, s as f64 + 0.1));
            }
        }
        r
    }

    #[test]
    fn builds_and_indexes() {
        let m = AccuracyMatrix::from_records(&two_modalities(), "map").unwrap();
        assert_eq!(m.stages(), 3);
        assert_eq!(m.modalities, vec!["text", "image"]);
        assert_eq!(m.pairs[1], ("text".to_string(), "image".to_string()));
        assert_eq!(m.trained, vec![None, Some("text".into()), Some("image".into())]);
        assert_eq!(m.get(2, "image", "text"), Some(2.1));
        assert_eq!(m.get(3, "image", "text"), None);
        assert_eq!(m.both_trained_at("text", "text"), Some(1));
        assert_eq!(m.both_trained_at("image", "text"), Some(2));
        assert_eq!(m.both_trained_at("audio", "text"), None);
    }

    #[test]
    fn rejects_bad_records() {
        let mut r = two_modalities();
        assert!(AccuracyMatrix::from_records(&r, "p@100").is_err());
        let dup = r[3].clone();
        r.push(dup);
        let e = AccuracyMatrix::from_records(&r, "map").unwrap_err().to_string();
        assert!(e.contains("duplicate"), "{e}");
        r.pop();
        r.remove(5);
        let e = AccuracyMatrix::from_records(&r, "map").unwrap_err().to_string();
        assert!(e.contains("missing") && e.contains("stage 1"), "{e}");
        let mut r = two_modalities();
        r[0].seed = 2;
        let e = AccuracyMatrix::from_records(&r, "map").unwrap_err().to_string();
        assert!(e.contains("more than one run"), "{e}");
        let mut r = two_modalities();
        r[5].trained = Some("image".into());
        assert!(AccuracyMatrix::from_records(&r, "map").is_err());
    }
}
