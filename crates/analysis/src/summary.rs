//! summary.json: the final figures of one run.

use crate::atomic::atomic_write;
use crate::cl_metrics;
use crate::error::{AnalysisError, Result};
use crate::matrix::AccuracyMatrix;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Final figures of one run; serialised as summary.json. See [`crate::cl_metrics`] for the definitions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Experiment name.
    pub experiment: String,
    /// Learner name.
    pub learner: String,
    /// Run seed.
    pub seed: u64,
    /// Code length in bits.
    pub bits: usize,
    /// Metric the figures are computed on ("map").
    pub metric: String,
    /// Number of training stages T (the stage-0 evaluation not counted).
    pub stages: usize,
    /// [`cl_metrics::acc`].
    pub acc: Option<f64>,
    /// [`cl_metrics::acc_all_pairs`].
    pub acc_all_pairs: Option<f64>,
    /// [`cl_metrics::bwt`].
    pub bwt: Option<f64>,
    /// [`cl_metrics::bwt_cross`].
    pub bwt_cross: Option<f64>,
    /// The experiment-file contract's `forgetting` key: the same value as
    /// `forgetting_max_prev` (best earlier value − final), the definition the reports use.
    pub forgetting: Option<f64>,
    /// [`cl_metrics::forgetting_max_prev`].
    pub forgetting_max_prev: Option<f64>,
    /// [`cl_metrics::forgetting_initial`].
    pub forgetting_initial: Option<f64>,
    /// [`cl_metrics::forgetting_max_all`].
    pub forgetting_max_all: Option<f64>,
    /// [`cl_metrics::fwt`].
    pub fwt: Option<f64>,
    /// [`cl_metrics::intransigence`]; the key is absent unless a joint reference was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intransigence: Option<Option<f64>>,
    /// Final-stage value per pair, keyed "query->database".
    pub final_map: BTreeMap<String, f64>,
    /// Run facts added by the caller (wall_seconds, train_samples_per_second, ...), flattened into the top level.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Summary {
    /// Compute every figure of `m`; `joint` is the joint-training reference run for intransigence.
    pub fn from_matrix(
        m: &AccuracyMatrix,
        experiment: &str,
        learner: &str,
        seed: u64,
        bits: usize,
        joint: Option<&AccuracyMatrix>,
    ) -> Summary {
        let last = m.last_stage();
        let final_map = m
            .pairs
            .iter()
            .enumerate()
            .filter_map(|(p, (q, d))| {
                let v = m.values.get(last)?.get(p)?;
                Some((format!("{q}->{d}"), *v))
            })
            .collect();
        Summary {
            experiment: experiment.to_string(),
            learner: learner.to_string(),
            seed,
            bits,
            metric: m.metric.clone(),
            stages: last,
            acc: cl_metrics::acc(m),
            acc_all_pairs: cl_metrics::acc_all_pairs(m),
            bwt: cl_metrics::bwt(m),
            bwt_cross: cl_metrics::bwt_cross(m),
            forgetting: cl_metrics::forgetting_max_prev(m),
            forgetting_max_prev: cl_metrics::forgetting_max_prev(m),
            forgetting_initial: cl_metrics::forgetting_initial(m),
            forgetting_max_all: cl_metrics::forgetting_max_all(m),
            fwt: cl_metrics::fwt(m),
            intransigence: joint.map(|j| cl_metrics::intransigence(m, j)),
            final_map,
            extra: BTreeMap::new(),
        }
    }
}

/// Write `summary` to `path` as pretty JSON, atomically.
pub fn write_summary_json(summary: &Summary, path: &Path) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(summary)
        .map_err(|source| AnalysisError::Json { path: path.to_path_buf(), source })?;
    bytes.push(b'\n');
    atomic_write(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> AccuracyMatrix {
        AccuracyMatrix {
            metric: "map".into(),
            modalities: vec!["image".into(), "text".into()],
            trained: vec![None, Some("image".into()), Some("text".into())],
            values: vec![vec![0.1, 0.1, 0.1, 0.1], vec![0.9, 0.2, 0.2, 0.1], vec![0.7, 0.6, 0.5, 0.8]],
            pairs: vec![
                ("image".into(), "image".into()),
                ("image".into(), "text".into()),
                ("text".into(), "image".into()),
                ("text".into(), "text".into()),
            ],
        }
    }

    #[test]
    fn json_keys_and_nulls() {
        let mut s = Summary::from_matrix(&m(), "exp", "finetune", 7, 64, None);
        s.extra.insert("wall_seconds".into(), serde_json::json!(1.5));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("summary.json");
        write_summary_json(&s, &p).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert!((v["acc"].as_f64().unwrap() - 0.55).abs() < 1e-12);
        assert_eq!(v["stages"], 2);
        // Only image->image is learned before the last stage: .7 - .9.
        assert!((v["bwt"].as_f64().unwrap() + 0.2).abs() < 1e-12);
        assert!(v["bwt_cross"].is_null());
        assert_eq!(v["final_map"]["image->text"], 0.6);
        assert_eq!(v["wall_seconds"], 1.5);
        assert!(v.get("intransigence").is_none());

        let with_joint = Summary::from_matrix(&m(), "exp", "finetune", 7, 64, Some(&m()));
        let v = serde_json::to_value(&with_joint).unwrap();
        assert!(v.get("intransigence").is_some());
    }
}
