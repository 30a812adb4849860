//! Checkpoints after each stage, and resuming from the last one.
//!
//! After stage k the runner writes, in `checkpoints/`:
//! - `stage-k.safetensors`: the model;
//! - `state-k.safetensors`: the learner's tensors (importances, anchors, previous model)
//!   and, under the `frozen` database policy, the stored database codes;
//! - `state-k.json`, last: the resolved experiment, the RNG position, every evaluation
//!   row so far, the run's counters and the learner's small state (memory, item lists).
//!
//! With `[train] checkpoint_every = n`, the same three files are also written inside stage s
//! after every n-th epoch (not the last), named `stage-s-epoch-e.safetensors`,
//! `state-s-epoch-e.safetensors` and `state-s-epoch-e.json`. They hold the run as it stood
//! when stage s began (rows, counters, learner state: learners change it only at the end of
//! a stage), the model and RNG as they are after epoch e, and the stage's own progress: its
//! optimiser moments, the learner's in-stage tensors ([`crate::trainer::StageState`]) and its
//! counters. Only the newest in-stage checkpoint of a stage is kept, and none once the stage
//! has its own.
//!
//! Each file is written to a temporary name and renamed, and the JSON file goes last:
//! a checkpoint exists only once all three are complete, so a run killed at any moment
//! resumes from the last checkpoint and ends with byte-identical metrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use seqmodal_hamming::{Codes, Metric};
use seqmodal_model::{AdamState, UnifiedModel};

use crate::error::{LearnerError, Result};
use crate::evaluate::EvalRow;

/// Format version written into every state file.
const FORMAT: u32 = 1;

/// What a learner keeps between stages, as checkpoint content.
#[derive(Clone, Debug, Default)]
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
    /// In-stage checkpoints only: the stage's progress (its tensors are in the tensor file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    in_stage: Option<InStageFile>,
}

/// The JSON part of an in-stage checkpoint's own content.
#[derive(Serialize, Deserialize)]
struct InStageFile {
    progress: StageProgress,
    /// Names of the learner's in-stage tensor lists, with their lengths.
    lists: BTreeMap<String, usize>,
    /// The optimiser's step count and parameter count, when the learner has one.
    optimizer: Option<(i32, usize)>,
}

/// Where in a run a checkpoint was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// After stage k (1-based) was trained and evaluated.
    AfterStage(usize),
    /// Inside stage `stage`, after `epoch` of its epochs.
    InStage {
        /// The stage being trained (1-based).
        stage: usize,
        /// Epochs of it finished.
        epoch: usize,
    },
}

impl Position {
    /// Run order: stage k's in-stage checkpoints come after stage k-1 and before stage k.
    fn key(self) -> (usize, usize) {
        match self {
            Position::AfterStage(k) => (k, usize::MAX),
            Position::InStage { stage, epoch } => (stage, epoch),
        }
    }

    fn stem(self) -> String {
        match self {
            Position::AfterStage(k) => k.to_string(),
            Position::InStage { stage, epoch } => format!("{stage}-epoch-{epoch}"),
        }
    }

    /// The position named by a `state-*.json` file name.
    fn parse(file_name: &str) -> Option<Position> {
        let stem = file_name.strip_prefix("state-")?.strip_suffix(".json")?;
        match stem.split_once("-epoch-") {
            None => stem.parse().ok().map(Position::AfterStage),
            Some((s, e)) => Some(Position::InStage { stage: s.parse().ok()?, epoch: e.parse().ok()? }),
        }
    }
}

/// A stage's progress at an in-stage checkpoint.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StageProgress {
    /// Epochs finished.
    pub epoch: usize,
    /// The stage's samples in optimiser steps so far.
    pub samples: u64,
    /// The stage's forward+backward passes so far.
    pub passes: u64,
    /// The stage's optimiser steps so far.
    pub steps: u64,
    /// The stage's training seconds so far.
    pub seconds: f64,
}

/// The stage's own part of an in-stage checkpoint.
#[derive(Clone, Debug, Default)]
pub struct InStage {
    /// Where the stage stands.
    pub progress: StageProgress,
    /// The learner's in-stage tensor lists.
    pub tensors: BTreeMap<String, Vec<Tensor>>,
    /// The stage optimiser's state, when the learner has one.
    pub optimizer: Option<AdamState>,
}

/// Everything a run needs to continue after a stage, or inside one.
pub struct Checkpoint {
    /// Last finished stage (1-based).
    pub stage: usize,
    /// For an in-stage checkpoint: the progress of stage `stage + 1`.
    pub in_stage: Option<InStage>,
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
    /// The model file of that position.
    pub model: PathBuf,
}

/// Paths of a checkpoint's files in `dir`: model, tensors, JSON.
fn paths(dir: &Path, pos: Position) -> (PathBuf, PathBuf, PathBuf) {
    let stem = pos.stem();
    (
        dir.join(format!("stage-{stem}.safetensors")),
        dir.join(format!("state-{stem}.safetensors")),
        dir.join(format!("state-{stem}.json")),
    )
}

/// Where the caller writes the model of the checkpoint at `pos` (before [`write`](fn@write)).
pub fn model_path(dir: &Path, pos: Position) -> PathBuf {
    paths(dir, pos).0
}

/// Removes stage `stage`'s in-stage checkpoints other than after epoch `keep` (JSON first,
/// so a checkpoint never looks complete while its files go). Best effort: a file left over
/// is only disk space, so failures are logged, not returned.
pub fn prune_in_stage(dir: &Path, stage: usize, keep: Option<usize>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let old: Vec<usize> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| match Position::parse(e.file_name().to_str()?) {
            Some(Position::InStage { stage: s, epoch }) if s == stage && Some(epoch) != keep => Some(epoch),
            _ => None,
        })
        .collect();
    for epoch in old {
        let (model, tensors, json) = paths(dir, Position::InStage { stage, epoch });
        for p in [json, tensors, model] {
            if let Err(e) = std::fs::remove_file(&p) {
                tracing::warn!("could not remove old checkpoint file {}: {e}", p.display());
            }
        }
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> LearnerError {
    LearnerError::Checkpoint { path: path.into(), message: e.to_string() }
}

/// What a checkpoint holds besides the model (written by the caller to [`model_path`] first).
pub struct Snapshot<'a> {
    /// The resolved experiment.
    pub config: &'a str,
    /// The run's generator.
    pub rng: &'a ChaCha8Rng,
    /// Counters of the finished stages.
    pub counters: Counters,
    /// Evaluation rows of the finished stages.
    pub rows: &'a [EvalRow],
    /// The learner's between-stage state.
    pub learner: &'a LearnerState,
    /// Frozen database codes.
    pub frozen: &'a BTreeMap<String, Codes>,
    /// For an in-stage checkpoint, the stage's own part.
    pub in_stage: Option<&'a InStage>,
}

/// Writes the checkpoint at `pos`: tensors, then the JSON file that marks it complete.
pub fn write(dir: &Path, pos: Position, snap: &Snapshot<'_>) -> Result<()> {
    let Snapshot { config, rng, counters, rows, learner, frozen, in_stage } = *snap;
    let (_, tensors_path, json_path) = paths(dir, pos);
    let mut tensors: BTreeMap<String, Tensor> =
        learner.tensors.iter().map(|(k, t)| (format!("learner.{k}"), t.clone())).collect();
    let mut frozen_bits = BTreeMap::new();
    for (m, codes) in frozen {
        let bytes = codes.to_packbits();
        let width = bytes.len() / codes.len().max(1);
        let t = Tensor::from_vec(bytes, (codes.len(), width), &Device::Cpu)?;
        tensors.insert(format!("frozen.{m}"), t);
        frozen_bits.insert(m.clone(), codes.bits());
    }
    let in_stage_file = in_stage.map(|st| InStageFile::put(st, &mut tensors)).transpose()?;
    let atomic_err = |e: seqmodal_atomic::AtomicError| io_err(&e.path, format!("{e}: {}", e.source));
    let tensors: std::collections::HashMap<String, Tensor> = tensors.into_iter().collect();
    seqmodal_atomic::write_with(&tensors_path, |tmp| {
        candle_core::safetensors::save(&tensors, tmp).map_err(std::io::Error::other)
    })
    .map_err(atomic_err)?;
    let stage = match pos {
        Position::AfterStage(k) => k,
        Position::InStage { stage, .. } => stage - 1,
    };
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
        learner: learner.values.clone(),
        frozen: frozen_bits,
        in_stage: in_stage_file,
    };
    let text = serde_json::to_vec(&state).map_err(|e| io_err(&json_path, e))?;
    // Last, and fsynced: after a crash or reboot a state file is whole or absent, never empty.
    seqmodal_atomic::write(&json_path, &text).map_err(atomic_err)
}

/// Writes the whole checkpoint at `pos` (the model, then [`write`](fn@write)) and drops the
/// stage's older in-stage checkpoints, so callers need not know the file layout.
pub fn save(dir: &Path, pos: Position, model: &UnifiedModel, snap: &Snapshot<'_>) -> Result<()> {
    model.save(&model_path(dir, pos))?;
    write(dir, pos, snap)?;
    match pos {
        Position::InStage { stage, epoch } => prune_in_stage(dir, stage, Some(epoch)),
        Position::AfterStage(stage) => prune_in_stage(dir, stage, None),
    }
    Ok(())
}

/// The last complete checkpoint in `dir`, checked against the resolved experiment
/// `config`; None when the directory holds no checkpoint yet.
pub fn read_last(dir: &Path, config: &str) -> Result<Option<Checkpoint>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(None) };
    let last = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| Position::parse(e.file_name().to_str()?))
        .max_by_key(|p| p.key());
    let Some(pos) = last else { return Ok(None) };
    let (model, tensors_path, json_path) = paths(dir, pos);
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
    let mut tensors = candle_core::safetensors::load(&tensors_path, &Device::Cpu)
        .map_err(|e| resume_err(&tensors_path, e.to_string()))?;
    let in_stage = match (pos, &state.in_stage) {
        (Position::AfterStage(_), None) => None,
        (Position::InStage { .. }, Some(f)) => {
            Some(f.take(&mut tensors).map_err(|m| resume_err(&tensors_path, m))?)
        }
        _ => return Err(resume_err(&json_path, "in-stage part missing or misplaced".into())),
    };
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
    Ok(Some(Checkpoint {
        stage: state.stage,
        in_stage,
        rng,
        counters: state.counters,
        rows,
        learner,
        frozen,
        model,
    }))
}

impl InStageFile {
    /// Adds `st`'s tensors to `tensors` (`stage.NAME.i`, `opt.i.m`, `opt.i.v`) and returns
    /// the JSON part.
    fn put(st: &InStage, tensors: &mut BTreeMap<String, Tensor>) -> Result<InStageFile> {
        let mut lists = BTreeMap::new();
        for (name, list) in &st.tensors {
            lists.insert(name.clone(), list.len());
            for (i, t) in list.iter().enumerate() {
                tensors.insert(format!("stage.{name}.{i}"), t.clone());
            }
        }
        let optimizer = match &st.optimizer {
            None => None,
            Some(o) => {
                for (i, (m, v)) in o.moments.iter().enumerate() {
                    // Moments of a parameter not yet updated are empty: no tensor.
                    if !m.is_empty() {
                        tensors.insert(format!("opt.{i}.m"), Tensor::from_slice(m, m.len(), &Device::Cpu)?);
                        tensors.insert(format!("opt.{i}.v"), Tensor::from_slice(v, v.len(), &Device::Cpu)?);
                    }
                }
                Some((o.step, o.moments.len()))
            }
        };
        Ok(InStageFile { progress: st.progress, lists, optimizer })
    }

    /// The stage's part back from the tensor file's `stage.` and `opt.` entries.
    fn take(
        &self,
        tensors: &mut std::collections::HashMap<String, Tensor>,
    ) -> std::result::Result<InStage, String> {
        let mut get = |name: String| tensors.remove(&name).ok_or(format!("tensor {name} missing"));
        let mut lists = BTreeMap::new();
        for (name, &len) in &self.lists {
            let list =
                (0..len).map(|i| get(format!("stage.{name}.{i}"))).collect::<std::result::Result<_, _>>()?;
            lists.insert(name.clone(), list);
        }
        let optimizer = match self.optimizer {
            None => None,
            Some((step, n)) => {
                let mut moments = Vec::with_capacity(n);
                for i in 0..n {
                    let m = get(format!("opt.{i}.m")).ok();
                    let v = get(format!("opt.{i}.v")).ok();
                    let vec = |t: Option<Tensor>| {
                        t.map_or(Ok(Vec::new()), |t| t.to_vec1::<f32>()).map_err(|e| e.to_string())
                    };
                    moments.push((vec(m)?, vec(v)?));
                }
                Some(AdamState { step, moments })
            }
        };
        Ok(InStage { progress: self.progress, tensors: lists, optimizer })
    }
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
