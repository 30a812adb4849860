//! `train_log.csv`: one line per finished epoch (stage, epoch, steps, the learner's loss and
//! the model's three loss terms, learning rate, throughput, seconds).
//!
//! Lines are appended as epochs end, each with one `write` of the whole line, so an
//! interrupted run leaves whole lines only. On `--resume` the log is cut back to the
//! checkpoint resumed from (a partial last line, and epochs trained after that checkpoint,
//! are dropped), so a resumed run's log equals an unbroken run's except the timing columns.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{LearnerError, Result};
use crate::observer::{EpochEnd, Observer};
use crate::EvalRow;

/// Columns of `train_log.csv`, in order.
pub const TRAIN_LOG_COLUMNS: [&str; 10] = [
    "stage",
    "epoch",
    "steps",
    "loss",
    "classification",
    "pairwise",
    "quantization",
    "lr",
    "samples_per_second",
    "seconds",
];

/// The columns that measure time: they differ between an unbroken and a resumed run.
pub const TIMING_COLUMNS: [&str; 2] = ["samples_per_second", "seconds"];

/// One line of the log.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// Stage (1-based).
    pub stage: usize,
    /// Epoch within the stage (1-based).
    pub epoch: usize,
    /// Optimiser steps of the run so far.
    pub steps: u64,
    /// The learner's objective (model loss plus its own penalties), mean over the epoch's batches.
    pub loss: f64,
    /// Model loss terms (classification, pairwise, quantisation; unweighted), mean over the
    /// epoch's forward passes (replayed and reference passes included); NaN when none ran.
    pub terms: [f64; 3],
    /// Learning rate.
    pub lr: f64,
    /// Samples in optimiser steps per second of the epoch.
    pub samples_per_second: f64,
    /// Wall seconds of the epoch.
    pub seconds: f64,
}

impl EpochRecord {
    /// The record as one CSV line (with its newline); floats in Rust's shortest round-trip form.
    pub fn to_line(&self) -> String {
        let [c, p, q] = self.terms;
        format!(
            "{},{},{},{},{},{},{},{},{:.1},{:.4}\n",
            self.stage,
            self.epoch,
            self.steps,
            self.loss,
            c,
            p,
            q,
            self.lr,
            self.samples_per_second,
            self.seconds
        )
    }
}

/// The open log of one run.
pub struct TrainLog {
    path: PathBuf,
    file: File,
}

fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> LearnerError {
    LearnerError::TrainLog { path: path.into(), message: format!("{what}: {e}") }
}

impl TrainLog {
    /// Starts a fresh log at `path` (replacing any earlier one) holding only the header.
    pub fn create(path: &Path) -> Result<Self> {
        Self::rewrite(path, &[])
    }

    /// Reopens the log of a run resumed after `stage` finished stages and, when resuming
    /// inside stage `stage + 1`, `in_stage_epochs` of its epochs: later lines (trained after
    /// that checkpoint, and to be trained again) and a partial last line are dropped. A
    /// missing log starts over with the header.
    pub fn resume(path: &Path, stage: usize, in_stage_epochs: Option<usize>) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Self::create(path),
            Err(e) => return Err(io_err(path, "cannot read", e)),
        };
        let mut lines = text.split_inclusive('\n');
        match lines.next() {
            Some(h) if h.trim_end() == TRAIN_LOG_COLUMNS.join(",") => {}
            _ => return Err(io_err(path, "not a training log", "its header is not the expected columns")),
        }
        let mut keep = Vec::new();
        for (i, line) in lines.enumerate() {
            if !line.ends_with('\n') {
                break; // cut off mid-write: the epoch is trained again
            }
            let mut fields = line.split(',');
            let mut num = |name: &str| -> Result<usize> {
                fields.next().and_then(|f| f.trim().parse().ok()).ok_or_else(|| {
                    io_err(path, &format!("line {}", i + 2), format!("`{name}` is not a whole number"))
                })
            };
            let (s, e) = (num("stage")?, num("epoch")?);
            let kept = s <= stage || (s == stage + 1 && in_stage_epochs.is_some_and(|n| e <= n));
            if kept {
                keep.push(line.to_string());
            }
        }
        Self::rewrite(path, &keep)
    }

    /// Writes the header and `lines` atomically, then opens the file for appending.
    fn rewrite(path: &Path, lines: &[String]) -> Result<Self> {
        let mut text = TRAIN_LOG_COLUMNS.join(",");
        text.push('\n');
        for l in lines {
            text.push_str(l);
        }
        seqmodal_atomic::write(path, text.as_bytes()).map_err(|e| io_err(path, "cannot write", e))?;
        let file = OpenOptions::new().append(true).open(path).map_err(|e| io_err(path, "cannot open", e))?;
        Ok(Self { path: path.into(), file })
    }

    /// Appends one epoch's line with a single write.
    pub fn append(&mut self, r: &EpochRecord) -> Result<()> {
        self.file.write_all(r.to_line().as_bytes()).map_err(|e| io_err(&self.path, "cannot append", e))
    }
}

/// Passes every event on to `inner` and writes each finished epoch to the log. The
/// learner's mean loss arrives in `on_epoch`, the trainer's measurements in `on_epoch_end`
/// right after it; a write error is kept until the runner asks for it (observers return nothing).
pub(crate) struct LogObserver<'a> {
    pub inner: &'a mut dyn Observer,
    pub log: Option<TrainLog>,
    pub lr: f64,
    /// Optimiser steps of the finished stages.
    pub base_steps: u64,
    last_loss: f64,
    error: Option<LearnerError>,
}

impl<'a> LogObserver<'a> {
    /// Wraps `inner`; `log` none: nothing is written.
    pub fn new(inner: &'a mut dyn Observer, log: Option<TrainLog>, lr: f64) -> Self {
        Self { inner, log, lr, base_steps: 0, last_loss: f64::NAN, error: None }
    }

    /// The first write error, if any.
    pub fn check(&mut self) -> Result<()> {
        self.error.take().map_or(Ok(()), Err)
    }
}

impl Observer for LogObserver<'_> {
    fn on_stage_start(&mut self, stage: usize, modality: &str, epochs: usize) {
        self.inner.on_stage_start(stage, modality, epochs);
    }

    fn on_epoch(&mut self, stage: usize, epoch: usize, mean_loss: f64) {
        self.last_loss = mean_loss;
        self.inner.on_epoch(stage, epoch, mean_loss);
    }

    fn on_epoch_end(&mut self, end: &EpochEnd) {
        self.inner.on_epoch_end(end);
        let Some(log) = &mut self.log else { return };
        let record = EpochRecord {
            stage: end.stage,
            epoch: end.epoch,
            steps: self.base_steps + end.stage_steps,
            loss: std::mem::replace(&mut self.last_loss, f64::NAN),
            terms: end.terms,
            lr: self.lr,
            samples_per_second: if end.seconds > 0.0 { end.samples as f64 / end.seconds } else { 0.0 },
            seconds: end.seconds,
        };
        if let Err(e) = log.append(&record) {
            self.error.get_or_insert(e);
        }
    }

    fn on_evaluated(&mut self, stage: usize, rows: &[EvalRow]) {
        self.inner.on_evaluated(stage, rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(stage: usize, epoch: usize) -> EpochRecord {
        EpochRecord {
            stage,
            epoch,
            steps: (stage * 10 + epoch) as u64,
            loss: 0.5,
            terms: [1.0, 0.25, 0.125],
            lr: 1e-3,
            samples_per_second: 1000.0,
            seconds: 0.5,
        }
    }

    #[test]
    fn a_line_has_one_field_per_column() {
        let line = rec(1, 2).to_line();
        assert_eq!(line, "1,2,12,0.5,1,0.25,0.125,0.001,1000.0,0.5000\n");
        assert_eq!(line.trim_end().split(',').count(), TRAIN_LOG_COLUMNS.len());
    }

    #[test]
    fn resume_keeps_lines_up_to_the_checkpoint_and_drops_a_partial_line() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("train_log.csv");
        let mut log = TrainLog::create(&p).unwrap();
        for (s, e) in [(1, 1), (1, 2), (2, 1), (2, 2), (2, 3)] {
            log.append(&rec(s, e)).unwrap();
        }
        drop(log);
        // A write cut off mid-line.
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push_str("3,1,31,0.");
        std::fs::write(&p, &text).unwrap();
        let lines = |p: &Path| -> Vec<(usize, usize)> {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .skip(1)
                .map(|l| {
                    let f: Vec<&str> = l.split(',').collect();
                    (f[0].parse().unwrap(), f[1].parse().unwrap())
                })
                .collect()
        };
        // Resumed inside stage 2 after its second epoch.
        let mut log = TrainLog::resume(&p, 1, Some(2)).unwrap();
        assert_eq!(lines(&p), [(1, 1), (1, 2), (2, 1), (2, 2)]);
        log.append(&rec(2, 3)).unwrap();
        assert_eq!(lines(&p), [(1, 1), (1, 2), (2, 1), (2, 2), (2, 3)]);
        // Resumed after stage 1.
        TrainLog::resume(&p, 1, None).unwrap();
        assert_eq!(lines(&p), [(1, 1), (1, 2)]);
        // No log yet: a fresh one.
        let q = tmp.path().join("none.csv");
        TrainLog::resume(&q, 1, None).unwrap();
        assert_eq!(std::fs::read_to_string(&q).unwrap(), format!("{}\n", TRAIN_LOG_COLUMNS.join(",")));
    }

    #[test]
    fn a_foreign_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("train_log.csv");
        std::fs::write(&p, "a,b\n1,2\n").unwrap();
        let msg = TrainLog::resume(&p, 1, None).err().unwrap().to_string();
        assert!(msg.contains("train_log.csv") && msg.contains("not a training log"), "{msg}");
        std::fs::write(&p, format!("{}\nx,1\n", TRAIN_LOG_COLUMNS.join(","))).unwrap();
        let msg = TrainLog::resume(&p, 1, None).err().unwrap().to_string();
        assert!(msg.contains("line 2") && msg.contains("stage"), "{msg}");
    }
}
