//! The checker of experiment files: the raw [`ExperimentFile`] becomes the typed, checked
//! [`Experiment`]; every error names the file, the line and the dotted key.

use std::path::Path;
use std::str::FromStr;

use toml::Spanned;

use seqmodal_data::{DatasetKind, Drift, LoadOptions, SyntheticParams};
use seqmodal_hamming::Metric;
use seqmodal_model::{AdapterKind, LossWeights};

use super::file::{DriftSection, ExperimentFile, RampValue};
use super::{
    DatabasePolicy, DatasetSpec, Experiment, LearnerSpec, ModelSpec, StageSpec, TrainSpec, MAX_BITS,
    MAX_REPEAT,
};
use crate::checker::{line_of, Checker};
use crate::error::{LearnerError, Result};
use crate::keys::TrainDefaults;
use crate::learners::Registry;

impl ExperimentFile {
    /// Validates every value that does not need the dataset (built-in learners).
    pub fn check(&self, text: &str, path: &Path) -> Result<Experiment> {
        self.check_with(text, path, &Registry::builtin())
    }

    /// Validates every value that does not need the dataset; the learner comes from `registry`.
    pub fn check_with(&self, text: &str, path: &Path, registry: &Registry) -> Result<Experiment> {
        let ck = Checker::new(text, path);
        let at = |span, key: &str, message| ck.err(span, key, message);
        let positive = |v: &Option<Spanned<i64>>, key: &str, default| ck.int(v, key, default, 1);
        let weight = |v: &Option<Spanned<f64>>, key: &str, default| ck.float(v, key, default, false);
        let name = ck.dir_name(&self.name, "name")?;
        let kind = DatasetKind::from_str(self.dataset.kind.get_ref())
            .map_err(|e| at(self.dataset.kind.span(), "dataset.kind", e.to_string()))?;
        let adapter = ck.choice(
            &self.model.adapter,
            "model.adapter",
            "adapter",
            AdapterKind::PerModality,
            &[AdapterKind::PerModality, AdapterKind::SharedPad],
            AdapterKind::as_str,
        )?;
        let defaults = LossWeights::default();
        let model = ModelSpec {
            bits: ck.int_at_most(&self.model.bits, "model.bits", 64, MAX_BITS)?,
            hidden: positive(&self.model.hidden, "model.hidden", 512)?,
            adapter,
            loss: LossWeights {
                classification: weight(
                    &self.model.classification,
                    "model.classification",
                    defaults.classification,
                )?,
                pairwise: weight(&self.model.pairwise, "model.pairwise", defaults.pairwise)?,
                quantization: weight(&self.model.quantization, "model.quantization", defaults.quantization)?,
            },
        };
        let entry = registry
            .get(self.learner.kind.get_ref())
            .map_err(|m| at(self.learner.kind.span(), "learner.kind", m))?;
        let train = TrainSpec {
            epochs: positive(&self.train.epochs, "train.epochs", 30)?,
            batch: positive(&self.train.batch, "train.batch", 128)?,
            lr: ck.float(&self.train.lr, "train.lr", 1e-3, true)?,
            checkpoint_every: ck.int(&self.train.checkpoint_every, "train.checkpoint_every", 0, 1)?,
        };
        let defaults = TrainDefaults { batch: train.batch, lr: train.lr };
        let others = registry.keys_except(entry.name);
        let values = crate::keys::check(&self.learner, &(entry.keys)(), &others, defaults, &ck)?;
        let learner = LearnerSpec { entry, values };
        // The learner's own rules across its keys: building it checks them.
        learner.build()?;
        if self.stages.is_empty() {
            return Err(LearnerError::Invalid {
                path: path.into(),
                line: 0,
                key: "stages".into(),
                message: "no [[stages]]: add at least one `[[stages]]` table with a `modality` key".into(),
            });
        }
        let mut stages = Vec::with_capacity(self.stages.len());
        for (i, s) in self.stages.iter().enumerate() {
            let classes = match &s.classes {
                None => None,
                Some(c) => {
                    if c.get_ref().is_empty() {
                        return Err(at(
                            c.span(),
                            &format!("stages[{i}].classes"),
                            "must not be empty".into(),
                        ));
                    }
                    if let Some(bad) = c.get_ref().iter().find(|&&v| v < 0) {
                        return Err(at(
                            c.span(),
                            &format!("stages[{i}].classes"),
                            format!("class id {bad} < 0"),
                        ));
                    }
                    Some(c.get_ref().iter().map(|&v| v as usize).collect())
                }
            };
            let epochs = positive(&s.epochs, &format!("stages[{i}].epochs"), train.epochs)?;
            // Bounded: a typo like `repeat = 233333333` would otherwise expand into
            // hundreds of millions of stages before anything runs (found by fuzzing).
            let repeat = ck.int_at_most(&s.repeat, &format!("stages[{i}].repeat"), 1, MAX_REPEAT)?;
            for k in 0..repeat {
                let drift = match &s.drift {
                    None => Drift::default(),
                    Some(d) => check_drift(d.get_ref(), k, repeat)
                        .map_err(|(key, m)| at(d.span(), &format!("stages[{i}].drift.{key}"), m))?,
                };
                stages.push(StageSpec {
                    modality: s.modality.get_ref().clone(),
                    classes: classes.clone(),
                    epochs,
                    drift,
                    line: line_of(text, s.modality.span().start),
                });
            }
        }
        let mut metrics = vec![Metric::Map];
        for m in self.eval.metrics.iter().flatten() {
            let metric =
                Metric::from_str(m.get_ref()).map_err(|e| at(m.span(), "eval.metrics", e.to_string()))?;
            if !metrics.contains(&metric) {
                metrics.push(metric);
            }
        }
        let database = ck.choice(
            &self.eval.database,
            "eval.database",
            "database policy",
            DatabasePolicy::Reencode,
            &[DatabasePolicy::Reencode, DatabasePolicy::Frozen],
            DatabasePolicy::as_str,
        )?;
        Ok(Experiment {
            database,
            source: path.into(),
            name,
            seed: self.seed.unwrap_or(0),
            dataset: self.check_dataset_section(kind, &ck)?,
            model,
            learner,
            train,
            stages,
            metrics,
        })
    }
}

/// The drift of repeat `k` of `n`, range-checked; errors are (key, message).
fn check_drift(d: &DriftSection, k: usize, n: usize) -> std::result::Result<Drift, (&'static str, String)> {
    let value = |v: Option<RampValue>, key: &'static str, default: f64, ok: fn(f64) -> bool, want: &str| {
        let Some(v) = v else { return Ok(default) };
        let ends = match v {
            RampValue::Fixed(x) => [x, x],
            RampValue::Ramp { from, to } => [from, to],
        };
        match ends.into_iter().find(|&x| !(x.is_finite() && ok(x))) {
            Some(bad) => Err((key, format!("must be {want}, got {bad}"))),
            None => Ok(v.at(k, n)),
        }
    };
    let class_prior = match &d.class_prior {
        None => None,
        Some(w) if w.iter().all(|x| x.is_finite() && *x >= 0.0) && w.iter().any(|&x| x > 0.0) => {
            Some(w.clone())
        }
        Some(_) => return Err(("class_prior", "weights must be finite, >= 0, and not all 0".into())),
    };
    Ok(Drift {
        noise: value(d.noise, "noise", 0.0, |x| x >= 0.0, "a number >= 0")?,
        rotation: value(d.rotation, "rotation", 0.0, |_| true, "a finite angle in degrees")?,
        scale: value(d.scale, "scale", 1.0, |_| true, "a finite number")?,
        shift: value(d.shift, "shift", 0.0, |_| true, "a finite number")?,
        dropout: value(d.dropout, "dropout", 0.0, |x| (0.0..1.0).contains(&x), "in [0, 1)")?,
        class_prior,
    })
}

impl ExperimentFile {
    /// Checks `[dataset]`: a path for file formats, generator keys only for `synthetic`.
    fn check_dataset_section(&self, kind: DatasetKind, ck: &Checker<'_>) -> Result<DatasetSpec> {
        let d = &self.dataset;
        let validation = match &d.validation {
            None => None,
            Some(v) => {
                let f = *v.get_ref();
                if !(f.is_finite() && f > 0.0 && f < 1.0) {
                    return Err(ck.err(
                        v.span(),
                        "dataset.validation",
                        format!("must be a fraction in (0, 1) of the training rows, got {f}"),
                    ));
                }
                Some((f, line_of(ck.text, v.span().start)))
            }
        };
        let synthetic_keys: [(&str, Option<std::ops::Range<usize>>); 10] = [
            ("modalities", d.modalities.as_ref().map(Spanned::span)),
            ("dims", d.dims.as_ref().map(Spanned::span)),
            ("classes", d.classes.as_ref().map(Spanned::span)),
            ("labels_per_item", d.labels_per_item.as_ref().map(Spanned::span)),
            ("train", d.train.as_ref().map(Spanned::span)),
            ("test", d.test.as_ref().map(Spanned::span)),
            ("latent", d.latent.as_ref().map(Spanned::span)),
            ("spread", d.spread.as_ref().map(Spanned::span)),
            ("noise", d.noise.as_ref().map(Spanned::span)),
            ("nonlinearity", d.nonlinearity.as_ref().map(Spanned::span)),
        ];
        if kind != DatasetKind::Synthetic {
            // `train` (training rows drawn from the database) is a key of every kind.
            if let Some((key, Some(span))) = synthetic_keys.iter().find(|(k, s)| s.is_some() && *k != "train")
            {
                let message = if *key == "test" {
                    format!(
                        "the rows generated for a synthetic test split; '{}' files come with their queries{}",
                        kind.as_str(),
                        if kind == DatasetKind::Mat73 { " or draw them with `queries = N`" } else { "" }
                    )
                } else {
                    format!("only a key of kind = \"synthetic\", not of '{}'", kind.as_str())
                };
                return Err(ck.err(span.clone(), &format!("dataset.{key}"), message));
            }
            if let (Some(q), false) = (&d.queries, kind == DatasetKind::Mat73) {
                return Err(ck.err(
                    q.span(),
                    "dataset.queries",
                    format!(
                        "'{}' datasets come with their own queries (test split); `queries` draws them \
                         from a mat73 file with one IAll/YAll/LAll set",
                        kind.as_str()
                    ),
                ));
            }
            let Some(path) = &d.path else {
                return Err(ck.err(
                    d.kind.span(),
                    "dataset.path",
                    format!("missing: kind '{}' reads its files from a directory", kind.as_str()),
                ));
            };
            let rows = |v: &Option<Spanned<i64>>, key: &str| -> Result<Option<usize>> {
                v.as_ref().map(|_| ck.int(v, key, 0, 1)).transpose()
            };
            let load = LoadOptions {
                queries: rows(&d.queries, "dataset.queries")?,
                train: rows(&d.train, "dataset.train")?,
                seed: d.seed.unwrap_or(0),
            };
            let line = |v: &Option<Spanned<i64>>| v.as_ref().map_or(0, |v| line_of(ck.text, v.span().start));
            return Ok(DatasetSpec {
                kind,
                path: path.get_ref().clone(),
                standardize: d.standardize.unwrap_or(true),
                synthetic: None,
                load,
                split_lines: (line(&d.queries), line(&d.train)),
                validation,
            });
        }
        if let Some(p) = &d.path {
            return Err(ck.err(
                p.span(),
                "dataset.path",
                "a synthetic dataset is generated; remove `path`".into(),
            ));
        }
        if let Some(q) = &d.queries {
            return Err(ck.err(
                q.span(),
                "dataset.queries",
                "a synthetic dataset generates its queries: `test` rows per modality".into(),
            ));
        }
        let defaults = SyntheticParams::default();
        let modalities = d.modalities.as_ref().map_or(defaults.modalities.clone(), |m| m.get_ref().clone());
        let dims = match &d.dims {
            None if d.modalities.is_none() => defaults.dims.clone(),
            None => {
                return Err(ck.err(d.kind.span(), "dataset.dims", "give one width per modality".into()));
            }
            Some(v) => ck.positive_list(v, "dataset.dims")?,
        };
        let labels_per_item = match &d.labels_per_item {
            None => defaults.labels_per_item,
            Some(v) => match ck.positive_list(v, "dataset.labels_per_item")?[..] {
                [lo, hi] => (lo, hi),
                _ => return Err(ck.err(v.span(), "dataset.labels_per_item", "write [min, max]".into())),
            },
        };
        let params = SyntheticParams {
            modalities,
            dims,
            classes: ck.int(&d.classes, "dataset.classes", defaults.classes, 1)?,
            labels_per_item,
            train: ck.int(&d.train, "dataset.train", defaults.train, 1)?,
            test: ck.int(&d.test, "dataset.test", defaults.test, 1)?,
            latent: ck.int(&d.latent, "dataset.latent", defaults.latent, 1)?,
            spread: ck.float(&d.spread, "dataset.spread", defaults.spread, false)?,
            noise: ck.float(&d.noise, "dataset.noise", defaults.noise, false)?,
            nonlinearity: ck.float(&d.nonlinearity, "dataset.nonlinearity", defaults.nonlinearity, false)?,
            seed: d.seed.unwrap_or(defaults.seed),
        };
        // The remaining cross-key checks (names distinct, widths per modality, labels per
        // item within the classes) live with the generator; report them at `[dataset]`.
        params.check().map_err(|e| ck.err(d.kind.span(), "dataset", e.to_string()))?;
        Ok(DatasetSpec {
            kind,
            path: String::new(),
            standardize: d.standardize.unwrap_or(true),
            synthetic: Some(params),
            load: LoadOptions::default(),
            split_lines: (0, 0),
            validation,
        })
    }
}
