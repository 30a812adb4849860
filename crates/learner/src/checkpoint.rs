//! Checkpoints after each stage, and resuming from the last one.
//!
//! After stage k the runner writes, in `checkpoints/`:
//! - `stage-k.safetensors`: the model;
//! - `state-k.safetensors`: the learner's tensors (importances, anchors, previous model)
//!   and, under the `frozen` database policy, the stored database codes;
//! - `state-k.json`, last: the resolved experiment, the RNG position, every evaluation
//!   row so far, the run's counters and the learner's small state (memory, item lists).
//!
//! Each file is written to a temporary name and renamed, and the JSON file goes last:
//! a checkpoint exists only once all three are complete, so a run killed at any moment
//! resumes from the last finished stage and ends with byte-identical metrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use seqmodal_hamming::{Codes, Metric};
use seqmodal_model::UnifiedModel;

use crate::error::{LearnerError, Result};
use crate::evaluate::EvalRow;

/// Format version written into every state file.
const FORMAT: u32 = 1;

/// What a learner keeps between stages, as checkpoint content.
#[derive(Debug, Default)]
pub struct LearnerState {
    /// Named tensors (importances, anchors, a previous model's parameters).
    pub tensors: BTreeMap<String, Tensor>,
    /// Small structured state (memory contents, item lists) as JSON values.
    pub values: BTreeMap<String, serde_json::Value>,
}

impl LearnerState {
    /// Stores a list of tensors under `prefix.0`, `prefix.1`, ...
    pub fn put_tensors(&mut self, prefix: &str, tensors: &[Tensor]) {
        for (i, t) in tensors.iter().enumerate() {
            self.tensors.insert(format!("{prefix}.{i}"), t.clone());
        }
    }

    /// The tensors stored by [`LearnerState::put_tensors`] under `prefix`, in order.
    pub fn tensors(&self, prefix: &str) -> Vec<Tensor> {
        (0..).map_while(|i| self.tensors.get(&format!("{prefix}.{i}")).cloned()).collect()
    }

    /// Stores a model's parameters under `prefix.`.
    pub fn put_model(&mut self, prefix: &str, model: &UnifiedModel) {
        for (k, t) in model.named_tensors() {
            self.tensors.insert(format!("{prefix}.{k}"), t);
        }
    }

    /// A model with the parameters stored under `prefix.` (None when there are none);
    /// `like` gives the configuration.
    pub fn model(&self, prefix: &str, like: &UnifiedModel) -> Result<Option<UnifiedModel>> {
        let p = format!("{prefix}.");
        let params: BTreeMap<String, Tensor> = self
            .tensors
            .iter()
            .filter_map(|(k, t)| k.strip_prefix(&p).map(|k| (k.to_string(), t.clone())))
            .collect();
        if params.is_empty() {
            return Ok(None);
        }
        let mut m = like.frozen_copy()?;
        m.set_tensors(params, Path::new(prefix))?;
        Ok(Some(m))
    }

    /// Stores a serialisable value under `key`.
    pub fn put<T: Serialize>(&mut self, key: &str, value: &T) -> Result<()> {
        let v = serde_json::to_value(value)
            .map_err(|e| LearnerError::Resume { path: PathBuf::new(), message: format!("{key}: {e}") })?;
        self.values.insert(key.into(), v);
        Ok(())
    }

    /// The value stored under `key` (None when absent).
    pub fn get<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>> {
        self.values
            .get(key)
            .map(|v| {
                serde_json::from_value(v.clone()).map_err(|e| LearnerError::Resume {
                    path: PathBuf::new(),
                    message: format!("learner state '{key}': {e}"),
                })
            })
            .transpose()
    }
}

/// The exact position of the run's random generator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RngState {
    seed: [u8; 32],
    stream: u64,
    /// The 128-bit word position, as a decimal string (JSON numbers stop at 64 bits).
    word_pos: String,
}

impl RngState {
    /// The position of `rng`.
    pub fn of(rng: &ChaCha8Rng) -> Self {
        Self { seed: rng.get_seed(), stream: rng.get_stream(), word_pos: rng.get_word_pos().to_string() }
    }

    /// A generator at this position.
    pub fn restore(&self) -> std::result::Result<ChaCha8Rng, String> {
        use rand::SeedableRng;
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos.parse::<u128>().map_err(|e| format!("rng word position: {e}"))?);
        Ok(rng)
    }
}

/// One evaluation row as stored in a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Row {
    stage: usize,
    trained: Option<String>,
    query: String,
    database: String,
    metric: String,
    /// `f64::to_bits`: JSON float text does not always parse back to the same double.
    value_bits: u64,
}

/// Counters of a run so far.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Counters {
    /// Samples in optimiser steps.
    pub samples: u64,
    /// Optimiser steps.
    pub steps: u64,
    /// Seconds in training.
    pub seconds: f64,
    /// Forward+backward sample passes.
    pub passes: u64,
    /// Stage samples times epochs.
    pub stage_samples: u64,
}

/// The JSON part of a checkpoint.
#[derive(Serialize, Deserialize)]
struct StateFile {
    format: u32,
    /// The resolved experiment (config.toml text): a resume must match it.
    config: String,
    stage: usize,
    rng: RngState,
    counters: Counters,
    rows: Vec<Row>,
    learner: BTreeMap<String, serde_json::Value>,
    /// Modalities whose frozen database codes are in the tensor file, with their bit count.
    frozen: BTreeMap<String, usize>,
}

/// Everything a run needs to continue after a stage.
pub struct Checkpoint {
    /// Last finished stage (1-based).
    pub stage: usize,
    /// The run's generator, positioned as after that stage.
    pub rng: ChaCha8Rng,
    /// Counters so far.
    pub counters: Counters,
    /// Every evaluation row so far.
    pub rows: Vec<EvalRow>,
    /// The learner's state.
    pub learner: LearnerState,
    /// Frozen database codes per modality.
    pub frozen: BTreeMap<String, Codes>,
    /// The model file of that stage.
    pub model: PathBuf,
}

/// Paths of stage `k`'s checkpoint files in `dir`.
fn paths(dir: &Path, k: usize) -> (PathBuf, PathBuf, PathBuf) {
    (
        dir.join(format!("stage-{k}.safetensors")),
        dir.join(format!("state-{k}.safetensors")),
        dir.join(format!("state-{k}.json")),
    )
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> LearnerError {
    LearnerError::Checkpoint { path: path.into(), message: e.to_string() }
}

/// Writes the checkpoint of `stage` (the model file is written by the caller first).
#[allow(clippy::too_many_arguments)]
pub fn write(
    dir: &Path,
    stage: usize,
    config: &str,
    rng: &ChaCha8Rng,
    counters: Counters,
    rows: &[EvalRow],
    learner: LearnerState,
    frozen: &BTreeMap<String, Codes>,
) -> Result<()> {
    let (_, tensors_path, json_path) = paths(dir, stage);
    let mut tensors: BTreeMap<String, Tensor> =
        learner.tensors.into_iter().map(|(k, t)| (format!("learner.{k}"), t)).collect();
    let mut frozen_bits = BTreeMap::new();
    for (m, codes) in frozen {
        let bytes = codes.to_packbits();
        let width = bytes.len() / codes.len().max(1);
        let t = Tensor::from_vec(bytes, (codes.len(), width), &Device::Cpu)?;
        tensors.insert(format!("frozen.{m}"), t);
        frozen_bits.insert(m.clone(), codes.bits());
    }
    let tmp = tensors_path.with_extension("safetensors.tmp");
    candle_core::safetensors::save(&tensors.into_iter().collect(), &tmp).map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, &tensors_path).map_err(|e| io_err(&tensors_path, e))?;
    let state = StateFile {
        format: FORMAT,
        config: config.into(),
        stage,
        rng: RngState::of(rng),
        counters,
        rows: rows
            .iter()
            .map(|r| Row {
                stage: r.stage,
                trained: r.trained.clone(),
                query: r.query.clone(),
                database: r.database.clone(),
                metric: r.metric.to_string(),
                value_bits: r.value.to_bits(),
            })
            .collect(),
        learner: learner.values,
        frozen: frozen_bits,
    };
    let text = serde_json::to_vec(&state).map_err(|e| io_err(&json_path, e))?;
    let tmp = json_path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, &json_path).map_err(|e| io_err(&json_path, e))
}

/// The last complete checkpoint in `dir`, checked against the resolved experiment
/// `config`; None when the directory holds no checkpoint yet.
pub fn read_last(dir: &Path, config: &str) -> Result<Option<Checkpoint>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(None) };
    let last = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_prefix("state-")?.strip_suffix(".json")?.parse::<usize>().ok()
        })
        .max();
    let Some(k) = last else { return Ok(None) };
    let (model, tensors_path, json_path) = paths(dir, k);
    let resume_err = |path: &Path, message: String| LearnerError::Resume { path: path.into(), message };
    let text = std::fs::read(&json_path).map_err(|e| io_err(&json_path, e))?;
    let state: StateFile = serde_json::from_slice(&text)
        .map_err(|e| resume_err(&json_path, format!("not a seqmodal checkpoint: {e}")))?;
    if state.format != FORMAT {
        return Err(resume_err(
            &json_path,
            format!("checkpoint format {} (expected {FORMAT})", state.format),
        ));
    }
    if state.config != config {
        return Err(resume_err(
            &json_path,
            format!("written by a different experiment: {}", first_difference(&state.config, config)),
        ));
    }
    let tensors = candle_core::safetensors::load(&tensors_path, &Device::Cpu)
        .map_err(|e| resume_err(&tensors_path, e.to_string()))?;
    let mut learner = LearnerState { tensors: BTreeMap::new(), values: state.learner };
    let mut frozen = BTreeMap::new();
    for (name, t) in tensors {
        if let Some(k) = name.strip_prefix("learner.") {
            learner.tensors.insert(k.to_string(), t);
        } else if let Some(m) = name.strip_prefix("frozen.") {
            let bits =
                *state.frozen.get(m).ok_or_else(|| resume_err(&json_path, format!("no bits for {m}")))?;
            let bytes = t.flatten_all()?.to_vec1::<u8>()?;
            let codes = Codes::from_packbits(&bytes, t.dim(0)?, bits)?;
            frozen.insert(m.to_string(), codes);
        }
    }
    let rows = state
        .rows
        .into_iter()
        .map(|r| {
            let metric = r.metric.parse::<Metric>().map_err(|e| resume_err(&json_path, e.to_string()))?;
            Ok(EvalRow {
                stage: r.stage,
                trained: r.trained,
                query: r.query,
                database: r.database,
                metric,
                value: f64::from_bits(r.value_bits),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let rng = state.rng.restore().map_err(|m| resume_err(&json_path, m))?;
    Ok(Some(Checkpoint { stage: k, rng, counters: state.counters, rows, learner, frozen, model }))
}

/// The first line where two resolved experiments differ (with its section), for error messages.
pub fn first_difference(stored: &str, given: &str) -> String {
    let mut section = String::new();
    for (a, b) in stored.lines().zip(given.lines()) {
        if a.starts_with('[') {
            section = a.to_string();
        }
        if a != b {
            return format!("{section} stored: `{a}`, this experiment: `{b}`");
        }
    }
    "the experiments differ in length".into()
}
