//! Multi-run reports: learner × scenario tables (mean ± std over seeds), computed from
//! each run's stored `metrics.csv`; only run facts not in the CSV (time, memory,
//! compute) come from `summary.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cl_metrics;
use crate::csv::read_metrics_csv;
use crate::error::{AnalysisError, Result};
use crate::matrix::AccuracyMatrix;

/// One finished run, as read back from its output directory.
#[derive(Clone, Debug)]
pub struct RunData {
    /// The run directory.
    pub dir: PathBuf,
    /// Accuracy matrix of the `map` metric, from metrics.csv.
    pub matrix: AccuracyMatrix,
    /// Experiment (scenario) name.
    pub experiment: String,
    /// Learner name.
    pub learner: String,
    /// Seed.
    pub seed: u64,
    /// Code length.
    pub bits: usize,
    /// summary.json as written by the run (run facts).
    pub facts: serde_json::Value,
    /// train_log.csv, when the run wrote one (runs before it existed did not).
    pub train_log: Option<Vec<crate::train_log::EpochLine>>,
}

impl RunData {
    /// The learner's role as the run recorded it (`learner_role` in summary.json: `lower bound`,
    /// `reference` or `strategy`); none for runs written before roles existed.
    pub fn role(&self) -> Option<&str> {
        self.facts.get("learner_role").and_then(serde_json::Value::as_str)
    }
}

/// Reads `dir/metrics.csv` and `dir/summary.json`.
pub fn load_run(dir: &Path) -> Result<RunData> {
    let records = read_metrics_csv(&dir.join("metrics.csv"))?;
    let first = records
        .first()
        .ok_or_else(|| AnalysisError::Matrix(format!("{}: metrics.csv has no rows", dir.display())))?
        .clone();
    let matrix = AccuracyMatrix::from_records(&records, "map")?;
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(|source| AnalysisError::Io {
        op: "read",
        path: path.clone(),
        source,
    })?;
    let facts = serde_json::from_str(&text).map_err(|source| AnalysisError::Json { path, source })?;
    let log = dir.join("train_log.csv");
    let train_log = if log.is_file() { Some(crate::train_log::read_train_log(&log)?) } else { None };
    Ok(RunData {
        dir: dir.into(),
        matrix,
        experiment: first.experiment,
        learner: first.learner,
        seed: first.seed,
        bits: first.bits,
        facts,
        train_log,
    })
}

/// Mean and sample standard deviation (n − 1); std is 0 for one value.
pub fn mean_std(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Some((mean, var.sqrt()))
}

/// "0.812 ± 0.004" (or just the mean for one value, or for a count equal in every run: a
/// memory size set by the experiment is a setting, not a measurement with a spread).
pub(crate) fn fmt_stat(values: &[f64], digits: usize) -> String {
    match mean_std(values) {
        None => "–".into(),
        Some((m, _)) if values.len() == 1 => fmt_num(m, digits),
        Some((m, s)) if digits == 0 && s == 0.0 => fmt_num(m, 0),
        Some((m, s)) => format!("{} ± {}", fmt_num(m, digits), fmt_num(s, digits)),
    }
}

/// `n` and `noun`, plural unless `n` is 1 ("1 run", "3 runs").
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `v` with `digits` decimals, without the "-0.000" a tiny negative value would print.
pub(crate) fn fmt_num(v: f64, digits: usize) -> String {
    let text = format!("{v:.digits$}");
    match text.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => text,
    }
}

/// Markdown tables, one per (scenario, bits): a row per learner with ACC, BWT,
/// forgetting, FWT, intransigence (against the reference's runs of the same seed: the first
/// learner whose runs record the `reference` role, e.g. joint), ACC relative to that reference,
/// training time, memory and compute, mean ± std over seeds.
pub fn learners_report(runs: &[RunData]) -> String {
    let mut groups: BTreeMap<(String, usize), BTreeMap<String, Vec<&RunData>>> = BTreeMap::new();
    for r in runs {
        groups
            .entry((r.experiment.clone(), r.bits))
            .or_default()
            .entry(r.learner.clone())
            .or_default()
            .push(r);
    }
    let mut out = String::new();
    for ((scenario, bits), learners) in &groups {
        // The reference the relative columns compare with: the first learner (by name) whose runs
        // say they are a reference (`learner_role`), e.g. joint training on all data so far.
        let reference =
            learners.iter().find(|(_, rs)| rs.first().and_then(|r| r.role()) == Some("reference"));
        let reference_name = reference.map_or("reference", |(n, _)| n.as_str());
        let joint: BTreeMap<u64, &RunData> =
            reference.map(|(_, v)| v.iter().map(|r| (r.seed, *r)).collect()).unwrap_or_default();
        let joint_acc: Vec<f64> = joint.values().filter_map(|r| cl_metrics::acc(&r.matrix)).collect();
        let joint_mean = mean_std(&joint_acc).map(|(m, _)| m);
        out.push_str(&format!(
            "\n## {scenario} ({bits} bits)\n\n| learner | seeds | ACC | BWT | forgetting (max prev) | FWT | \
             intransigence | ACC / {reference_name} | train s | memory | compute |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
        ));
        let mut names: Vec<&String> = learners.keys().collect();
        // By role: the lower bound, the references, then the strategies; by name within a role.
        let rank = |n: &str| match learners[n].first().and_then(|r| r.role()) {
            Some("lower bound") => 0,
            Some("reference") => 1,
            _ => 2,
        };
        names.sort_by_key(|n| (rank(n), n.to_string()));
        for name in names {
            let rs = &learners[name];
            let col = |f: &dyn Fn(&RunData) -> Option<f64>| -> Vec<f64> {
                rs.iter().filter_map(|r| f(r)).collect()
            };
            let fact =
                |key: &'static str| move |r: &RunData| r.facts.get(key).and_then(serde_json::Value::as_f64);
            let acc = col(&|r| cl_metrics::acc(&r.matrix));
            let intr =
                col(&|r| joint.get(&r.seed).and_then(|j| cl_metrics::intransigence(&r.matrix, &j.matrix)));
            let rel: Vec<f64> = match joint_mean {
                Some(j) if j > 0.0 => acc.iter().map(|a| a / j).collect(),
                _ => Vec::new(),
            };
            out.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                rs.len(),
                fmt_stat(&acc, 3),
                fmt_stat(&col(&|r| cl_metrics::bwt(&r.matrix)), 3),
                fmt_stat(&col(&|r| cl_metrics::forgetting_max_prev(&r.matrix)), 3),
                fmt_stat(&col(&|r| cl_metrics::fwt(&r.matrix)), 3),
                fmt_stat(&intr, 3),
                fmt_stat(&rel, 2),
                fmt_stat(&col(&fact("train_seconds")), 1),
                fmt_stat(&col(&fact("memory_samples")), 0),
                fmt_stat(&col(&fact("compute_ratio")), 2),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv::write_metrics_csv;
    use crate::record::Record;

    #[test]
    fn mean_and_sample_std() {
        assert_eq!(mean_std(&[]), None);
        assert_eq!(mean_std(&[2.0]), Some((2.0, 0.0)));
        // mean 2, squared deviations 1+0+1 over n−1 = 2 → var 1
        assert_eq!(mean_std(&[1.0, 2.0, 3.0]), Some((2.0, 1.0)));
    }

    /// A 2-modality run (a trained at stage 1, b at stage 2) whose cross pairs end at `x`.
    fn write_run(dir: &Path, learner: &str, seed: u64, x: f64) {
        let mut recs = Vec::new();
        for (s, t) in [(0, None), (1, Some("a")), (2, Some("b"))] {
            for (q, d) in [("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")] {
                let value = if s == 2 && q != d { x } else { 0.5 };
                recs.push(Record {
                    experiment: "scen".into(),
                    learner: learner.into(),
                    seed,
                    bits: 16,
                    stage: s,
                    trained: t.map(String::from),
                    query: q.into(),
                    database: d.into(),
                    metric: "map".into(),
                    value,
                });
            }
        }
        std::fs::create_dir_all(dir).unwrap();
        write_metrics_csv(&recs, &dir.join("metrics.csv")).unwrap();
        let role = match learner {
            "finetune" => "lower bound",
            "joint" => "reference",
            _ => "strategy",
        };
        let summary = format!(r#"{{"train_seconds": 2.0, "memory_samples": 10, "learner_role": "{role}"}}"#);
        std::fs::write(dir.join("summary.json"), summary).unwrap();
    }

    #[test]
    fn report_aggregates_seeds_and_compares_with_joint() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(&tmp.path().join("ft1"), "finetune", 1, 0.2);
        write_run(&tmp.path().join("ft2"), "finetune", 2, 0.4);
        write_run(&tmp.path().join("j1"), "joint", 1, 0.8);
        let runs: Vec<RunData> =
            ["ft1", "ft2", "j1"].iter().map(|d| load_run(&tmp.path().join(d)).unwrap()).collect();
        let text = learners_report(&runs);
        assert!(text.contains("## scen (16 bits)"), "{text}");
        // finetune ACC: mean(0.2, 0.4) = 0.3, sample std = 0.1414; ACC/joint = 0.3/0.8 = 0.375 ± 0.177
        let ft = text.lines().find(|l| l.starts_with("| finetune |")).unwrap();
        assert!(ft.contains("| 2 | 0.300 ± 0.141 |"), "{ft}");
        assert!(ft.contains("0.38 ± 0.18"), "{ft}");
        // intransigence only for seed 1 (the joint run's seed): joint a->b at t_p = 2 0.8 − R[2] 0.2,
        // a->a: 0.5 − 0.5 = 0, b->b 0, b->a 0.6: mean (0 + 0.6 + 0.6 + 0) / 4 = 0.3
        assert!(ft.contains("| 0.300 |"), "{ft}");
        assert!(ft.contains("| 2.0 ± 0.0 | 10 |"), "{ft}");
        // finetune is listed before joint.
        assert!(text.find("| finetune |").unwrap() < text.find("| joint |").unwrap());
    }
}
