//! Precision–recall curves by Hamming radius for the report, recomputed from a finished run's
//! final checkpoint (`checkpoints/stage-T.safetensors`) and its dataset.
//!
//! Why here and not in the run: runs finished before this existed have no PR record, and the
//! runner is the learner crate's; recomputing needs only the saved model and the dataset, so
//! every run with a final checkpoint gets a curve. The queries are the clean test splits and
//! the database is re-encoded by the final model; a run with `database = "frozen"` or query
//! drift evaluated differently during the run, which the report states.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use seqmodal_analysis::{PairPr, RunPr};
use seqmodal_data::Dataset;
use seqmodal_hamming::{evaluate_with, Codes, Engine, LabelSet};
use seqmodal_learner::evaluate::{encode_split, label_set};
use seqmodal_learner::{build_model, Experiment};

/// Datasets already loaded, by their resolved `[dataset]` section: runs of one scenario share one.
#[derive(Default)]
pub struct DatasetCache {
    loaded: BTreeMap<String, Dataset>,
}

/// The PR curves of every pair of the run in `dir`; None when it has no final checkpoint.
pub fn run_pr(dir: &Path, cache: &mut DatasetCache) -> Result<Option<RunPr>> {
    let config = dir.join("config.toml");
    if !config.is_file() {
        return Ok(None);
    }
    let exp = Experiment::load(&config, &[]).with_context(|| format!("{}", config.display()))?;
    let model_path = dir.join("checkpoints").join(format!("stage-{}.safetensors", exp.stages.len()));
    if !model_path.is_file() {
        return Ok(None);
    }
    let key = format!("{:?}", exp.dataset);
    if !cache.loaded.contains_key(&key) {
        let ds = exp.load_dataset().with_context(|| format!("dataset of {}", config.display()))?;
        cache.loaded.insert(key.clone(), ds);
    }
    let Some(ds) = cache.loaded.get(&key) else { return Ok(None) };
    let mut model = build_model(&exp, ds)?;
    // As the runner does: every modality's input adapter exists before parameters are loaded
    // (a shared-pad model has none of its own in the file).
    for m in &ds.modalities {
        model.ensure_modality(&m.name, m.dim())?;
    }
    model.load(&model_path).with_context(|| format!("{}", model_path.display()))?;
    let mut sides: Vec<(String, Codes, LabelSet, Codes, LabelSet)> = Vec::new();
    for m in &ds.modalities {
        sides.push((
            m.name.clone(),
            encode_split(&model, &m.name, &m.test.features)?,
            label_set(&m.test.labels)?,
            encode_split(&model, &m.name, &m.database().features)?,
            label_set(&m.database().labels)?,
        ));
    }
    let mut pairs = Vec::new();
    for (q, qc, ql, _, _) in &sides {
        for (d, _, _, dc, dl) in &sides {
            let report = evaluate_with(qc.view(), ql, dc.view(), dl, &[], Engine::default(), true)?;
            pairs.push(PairPr { query: q.clone(), database: d.clone(), points: report.pr_curve });
        }
    }
    Ok(Some(RunPr { dir: dir.to_path_buf(), pairs }))
}
