//! Turns a run's raw numbers into `metrics.csv`, `summary.json` and figures.

use std::path::Path;

use anyhow::{Context, Result};
use seqmodal_analysis::{
    forgetting_curves, map_matrix_heatmap, write_metrics_csv, write_summary_json, AccuracyMatrix, Provenance,
    Record, Summary,
};
use seqmodal_learner::{Experiment, RunResult};

/// The tidy records of a run (one per stage, pair and metric).
pub fn records(exp: &Experiment, result: &RunResult) -> Vec<Record> {
    result
        .rows
        .iter()
        .map(|r| Record {
            experiment: exp.name.clone(),
            learner: exp.learner.name().into(),
            seed: exp.seed,
            bits: exp.model.bits,
            stage: r.stage,
            trained: r.trained.clone(),
            query: r.query.clone(),
            database: r.database.clone(),
            metric: r.metric.to_string(),
            value: r.value,
        })
        .collect()
}

/// This process's provenance: the binary's version and commit (captured by build.rs), the
/// command line, the CPU, and the threads (`train_threads`; evaluation: rayon's pool).
pub fn provenance(train_threads: usize) -> Provenance {
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Provenance {
        version: env!("CARGO_PKG_VERSION").into(),
        commit: nonempty(env!("SEQMODAL_GIT_COMMIT")),
        dirty: nonempty(env!("SEQMODAL_GIT_DIRTY")).map(|d| d == "true"),
        command: seqmodal_analysis::provenance::command_line(),
        cpu: seqmodal_analysis::provenance::cpu_model(),
        train_threads: train_threads.max(1),
        eval_threads: rayon::current_num_threads(),
        available_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// Writes metrics.csv, summary.json and figures/ into `dir`; returns the summary.
pub fn write_outputs(
    exp: &Experiment,
    result: &RunResult,
    dir: &Path,
    provenance: &Provenance,
) -> Result<Summary> {
    let recs = records(exp, result);
    write_metrics_csv(&recs, &dir.join("metrics.csv"))?;
    // Every summary figure is derived from the stored records, never kept separately.
    let matrix = AccuracyMatrix::from_records(&recs, "map")?;
    let mut summary =
        Summary::from_matrix(&matrix, &exp.name, exp.learner.name(), exp.seed, exp.model.bits, None);
    let sps =
        if result.train_seconds > 0.0 { result.train_samples as f64 / result.train_seconds } else { 0.0 };
    summary.extra.insert("wall_seconds".into(), serde_json::json!(result.wall_seconds));
    summary.extra.insert("train_seconds".into(), serde_json::json!(result.train_seconds));
    summary.extra.insert("train_samples".into(), serde_json::json!(result.train_samples));
    summary.extra.insert("train_samples_per_second".into(), serde_json::json!(sps));
    summary.extra.insert("optimizer_steps".into(), serde_json::json!(result.steps));
    summary.extra.insert("sample_passes".into(), serde_json::json!(result.passes));
    summary.extra.insert("stage_samples".into(), serde_json::json!(result.stage_samples));
    // Forward+backward sample passes per sample of the stages' own data: 1.0 is
    // finetune's cost; replay, reference gradients and inner loops add to it.
    let ratio =
        if result.stage_samples > 0 { result.passes as f64 / result.stage_samples as f64 } else { 0.0 };
    summary.extra.insert("compute_ratio".into(), serde_json::json!(ratio));
    summary.extra.insert("memory_samples".into(), serde_json::json!(result.footprint.memory_samples));
    summary.extra.insert("memory_bytes".into(), serde_json::json!(result.footprint.memory_bytes));
    summary.extra.insert("extra_param_copies".into(), serde_json::json!(result.footprint.extra_param_copies));
    // Reports group learners by role (reference, lower bound, strategy), never by name.
    summary.extra.insert("learner_role".into(), serde_json::json!(exp.learner.role().as_str()));
    summary.extra.insert("database".into(), serde_json::json!(exp.database.as_str()));
    summary.extra.insert("adapter".into(), serde_json::json!(exp.model.adapter.as_str()));
    summary.extra.insert("provenance".into(), serde_json::to_value(provenance)?);
    write_summary_json(&summary, &dir.join("summary.json"))?;
    let figures = dir.join("figures");
    std::fs::create_dir_all(&figures).with_context(|| format!("cannot create {}", figures.display()))?;
    let title = format!("{} ({}, {} bits, seed {})", exp.name, exp.learner.name(), exp.model.bits, exp.seed);
    forgetting_curves(&matrix, &title, &figures)?;
    map_matrix_heatmap(&matrix, &title, &figures)?;
    let log = dir.join("train_log.csv");
    if log.is_file() {
        let stages: Vec<String> = exp.stages.iter().map(|s| s.modality.clone()).collect();
        seqmodal_analysis::loss_curves(&log, &stages, &title, &figures)?;
    }
    Ok(summary)
}

/// One line with the headline numbers.
pub fn summary_line(s: &Summary) -> String {
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
    format!(
        "final cross-modal mAP (acc) {}  bwt {}  forgetting (max prev) {}",
        f(s.acc),
        f(s.bwt),
        f(s.forgetting_max_prev)
    )
}
