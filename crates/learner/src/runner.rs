//! The stage runner: the scenario loop of a continual cross-modal experiment.
//!
//! Evaluate (stage 0, random init) → for each `[[stages]]`: the learner trains on
//! that stage's rows, a checkpoint is written, every ordered modality pair is
//! evaluated. The result keeps every raw number; summaries are derived elsewhere.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use seqmodal_data::{Dataset, Matrix};
use seqmodal_model::{ModelConfig, UnifiedModel};

use crate::checkpoint::{self, Counters, InStage, LearnerState, Position, Snapshot};
use crate::error::{LearnerError, Result};
use crate::evaluate::{evaluate_all, EvalRow};
use crate::experiment::DatabasePolicy;
use crate::experiment::Experiment;
use crate::footprint::Footprint;
use crate::observer::Observer;
use crate::train_log::{LogObserver, TrainLog};
use crate::trainer::{ModalityTrain, StageCheckpoints, StageData, Trainer};
use std::collections::BTreeMap;

/// Where a run writes checkpoints, whether it resumes, and how it is stopped.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Directory for the per-stage checkpoints (none: no checkpoints).
    pub checkpoint_dir: Option<PathBuf>,
    /// Continue after the last checkpoint in `checkpoint_dir` (a fresh start if it has none).
    pub resume: bool,
    /// Set (e.g. by a Ctrl-C handler) to stop at the next optimiser step.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Where to write the per-epoch training log (`train_log.csv`; none: no log). On
    /// resume it is cut back to the checkpoint resumed from.
    pub train_log: Option<PathBuf>,
}

/// Everything a run measured.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// Every (stage, pair, metric) value, stage 0 first.
    pub rows: Vec<EvalRow>,
    /// Samples passed through optimiser steps.
    pub train_samples: u64,
    /// Seconds spent in optimiser steps.
    pub train_seconds: f64,
    /// Wall seconds of this invocation (training + evaluation + checkpoints); after a resume,
    /// only the resumed part (`train_seconds` adds up every part).
    pub wall_seconds: f64,
    /// Optimiser steps.
    pub steps: u64,
    /// Sample forward+backward passes (the learner's compute, extra passes included).
    pub passes: u64,
    /// Samples of the stages' own data times their epochs (what `finetune` would train).
    pub stage_samples: u64,
    /// What the learner keeps.
    pub footprint: Footprint,
}

/// Salt that keeps a stage's query draws apart from its training draws.
const QUERY_DRAWS: u64 = 0x9e37_79b9_7f4a_7c15;

/// A seed from the run seed, a modality name and a stage (FNV-1a, stable across platforms).
fn mix(seed: u64, modality: &str, stage: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in modality.bytes().chain(stage.to_le_bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The rows stage `i` (0-based) trains on, after applying its drift to `data` (the
/// training features learners read) and `drifted_queries` (the modality's queries).
fn prepare_stage(
    exp: &Experiment,
    ds: &Dataset,
    i: usize,
    data: &mut [ModalityTrain],
    drifted_queries: &mut BTreeMap<String, Matrix>,
) -> Result<StageData> {
    let (spec, stage) = (&exp.stages[i], i + 1);
    let midx = ds.modality_index(&spec.modality).ok_or_else(|| LearnerError::Learner {
        learner: "runner".into(),
        message: "unchecked modality".into(),
    })?;
    let m = &ds.modalities[midx];
    let labels = &m.train.labels;
    let rows: Vec<u32> = (0..labels.rows())
        .filter(|&r| spec.classes.as_ref().is_none_or(|cs| cs.iter().any(|&c| labels.has(r, c))))
        .map(|r| r as u32)
        .collect();
    // Drift: this stage's training rows and the modality's queries move together. The
    // basis seed depends on the modality only, so a ramp turns one rotation further;
    // the draw seed is per stage, so each stage draws fresh noise.
    let basis_seed = mix(exp.seed, &m.name, 0);
    let draw_seed = mix(exp.seed, &m.name, stage as u64);
    let rows = spec.drift.reweight(labels, &rows, draw_seed);
    if rows.is_empty() {
        return Err(LearnerError::Learner {
            learner: "runner".into(),
            message: format!("stage {stage}: the class prior left no training rows of '{}'", m.name),
        });
    }
    if !spec.drift.is_feature_identity() || drifted_queries.contains_key(&m.name) {
        data[midx].x = spec.drift.apply(&m.train.features, basis_seed, draw_seed).data().to_vec();
        let queries = spec.drift.apply(&m.test.features, basis_seed, draw_seed ^ QUERY_DRAWS);
        drifted_queries.insert(m.name.clone(), queries);
    }
    Ok(StageData { stage, modality: midx, rows, epochs: spec.epochs })
}

/// Builds the unified model for an experiment on a dataset.
pub fn build_model(exp: &Experiment, ds: &Dataset) -> Result<UnifiedModel> {
    let cfg = ModelConfig {
        bits: exp.model.bits,
        hidden: exp.model.hidden,
        adapter: exp.model.adapter,
        classes: ds.classes(),
        pad_dim: ds.modalities.iter().map(|m| m.dim()).max().unwrap_or(1),
        loss: exp.model.loss,
        seed: exp.seed,
    };
    Ok(UnifiedModel::new(cfg)?)
}

/// Runs an experiment on an already loaded (and standardised) dataset. With
/// `opts.resume`, continues after the last checkpoint in `opts.checkpoint_dir` (which
/// must come from the same resolved experiment) instead of starting over.
pub fn run(
    exp: &Experiment,
    ds: &Dataset,
    opts: &RunOptions,
    observer: &mut dyn Observer,
) -> Result<RunResult> {
    let wall = Instant::now();
    let mut observer = LogObserver::new(observer, None, exp.train.lr);
    exp.check_dataset(ds)?;
    let mut model = build_model(exp, ds)?;
    // Adapters are seeded by (seed, modality name), so creating them all now gives the
    // same weights as creating each when its modality first appears; untrained
    // modalities still need codes for the stage-0 / forward-transfer evaluation.
    for m in &ds.modalities {
        model.ensure_modality(&m.name, m.dim())?;
    }
    let mut data = ModalityTrain::from_dataset(ds);
    // Drifted test features per modality, as of the modality's latest stage.
    let mut drifted_queries: BTreeMap<String, Matrix> = BTreeMap::new();
    let mut rng = ChaCha8Rng::seed_from_u64(exp.seed);
    // `check_dataset` above also ran the learner's own check.
    let mut learner = exp.learner.build()?;
    // Database codes kept per modality under the `frozen` policy.
    let mut frozen = BTreeMap::new();
    let mut counters = Counters::default();
    let config = exp.to_toml();
    if let Some(dir) = &opts.checkpoint_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| LearnerError::Checkpoint { path: dir.clone(), message: e.to_string() })?;
    }
    let resumed = match (&opts.checkpoint_dir, opts.resume) {
        (Some(dir), true) => checkpoint::read_last(dir, &config)?,
        _ => None,
    };
    // An in-stage checkpoint's progress, for the stage after the last finished one.
    let mut in_stage: Option<InStage> = None;
    // The learner's state as last checkpointed (after a stage, or as a resumed stage began):
    // the state the next stage starts from, which its in-stage checkpoints carry.
    let mut last_state: Option<LearnerState> = None;
    observer.log = match (&opts.train_log, &resumed) {
        (Some(p), Some(ck)) => {
            Some(TrainLog::resume(p, ck.stage, ck.in_stage.as_ref().map(|s| s.progress.epoch))?)
        }
        (Some(p), None) => Some(TrainLog::create(p)?),
        (None, _) => None,
    };
    let (mut rows, first) = match resumed {
        Some(ck) => {
            in_stage = ck.in_stage;
            model.load(&ck.model)?;
            learner.load_state(&ck.learner, &model)?;
            last_state = Some(ck.learner);
            rng = ck.rng;
            counters = ck.counters;
            frozen = ck.frozen;
            // Drift leaves no state but the data it produced: redo it for the finished stages.
            for i in 0..ck.stage {
                prepare_stage(exp, ds, i, &mut data, &mut drifted_queries)?;
            }
            for s in 0..=ck.stage {
                let stage_rows: Vec<EvalRow> = ck.rows.iter().filter(|r| r.stage == s).cloned().collect();
                observer.on_evaluated(s, &stage_rows);
            }
            match &in_stage {
                Some(st) => tracing::info!(
                    "resumed in stage {} of {}, after epoch {}",
                    ck.stage + 1,
                    exp.stages.len(),
                    st.progress.epoch
                ),
                None => tracing::info!("resumed after stage {} of {}", ck.stage, exp.stages.len()),
            }
            (ck.rows, ck.stage)
        }
        None => {
            let rows = evaluate_all(&model, ds, &exp.metrics, 0, None, &frozen, &drifted_queries)?;
            observer.on_evaluated(0, &rows);
            (rows, 0)
        }
    };
    for (i, spec) in exp.stages.iter().enumerate().skip(first) {
        let stage = i + 1;
        let stage_data = prepare_stage(exp, ds, i, &mut data, &mut drifted_queries)?;
        let midx = stage_data.modality;
        observer.on_stage_start(stage, &spec.modality, spec.epochs);
        observer.base_steps = counters.steps;
        let resume = in_stage.take();
        let earlier_seconds = resume.as_ref().map_or(0.0, |r| r.progress.seconds);
        // In-stage checkpoints carry the learner's state as the stage begins.
        let stage_start_state = match (&opts.checkpoint_dir, last_state.take()) {
            (Some(_), _) if exp.train.checkpoint_every == 0 => None,
            (Some(_), Some(st)) => Some(st),
            (Some(_), None) => {
                let mut st = LearnerState::default();
                learner.save_state(&mut st)?;
                Some(st)
            }
            (None, _) => None,
        };
        let t0 = Instant::now();
        let checkpoints = match (&opts.checkpoint_dir, &stage_start_state) {
            (Some(dir), Some(learner_state)) => Some(StageCheckpoints {
                dir,
                every: exp.train.checkpoint_every,
                config: &config,
                counters,
                rows: &rows,
                learner: learner_state,
                frozen: &frozen,
                started: t0,
                resume,
                earlier_seconds,
            }),
            _ => None,
        };
        let mut trainer = Trainer {
            model: &mut model,
            data: &data,
            rng: &mut rng,
            train: &exp.train,
            observer: &mut observer,
            interrupt: opts.interrupt.as_deref(),
            stage,
            samples: 0,
            passes: 0,
            steps: 0,
            checkpoints,
            epoch_terms: Default::default(),
        };
        let trained = learner.train_stage(&mut trainer, &stage_data);
        let (samples, steps, passes) = (trainer.samples, trainer.steps, trainer.passes);
        // A failed log write is the first error to report; an interrupt keeps the lines written.
        observer.check()?;
        trained?;
        counters.seconds += earlier_seconds + t0.elapsed().as_secs_f64();
        counters.samples += samples;
        counters.steps += steps;
        counters.passes += passes;
        counters.stage_samples += (stage_data.rows.len() * stage_data.epochs) as u64;
        if exp.database == DatabasePolicy::Frozen {
            let m = &ds.modalities[midx];
            frozen.insert(
                m.name.clone(),
                crate::evaluate::encode_split(&model, &m.name, &m.database().features)?,
            );
        }
        let stage_rows =
            evaluate_all(&model, ds, &exp.metrics, stage, Some(&spec.modality), &frozen, &drifted_queries)?;
        observer.on_evaluated(stage, &stage_rows);
        rows.extend(stage_rows);
        if let Some(dir) = &opts.checkpoint_dir {
            let mut state = LearnerState::default();
            learner.save_state(&mut state)?;
            let snap = Snapshot {
                config: &config,
                rng: &rng,
                counters,
                rows: &rows,
                learner: &state,
                frozen: &frozen,
                in_stage: None,
            };
            checkpoint::save(dir, Position::AfterStage(stage), &model, &snap)?;
            last_state = Some(state);
        }
    }
    let Counters { samples, steps, seconds, passes, stage_samples } = counters;
    Ok(RunResult {
        rows,
        train_samples: samples,
        train_seconds: seconds,
        wall_seconds: wall.elapsed().as_secs_f64(),
        steps,
        passes,
        stage_samples,
        footprint: learner.footprint(&data),
    })
}
