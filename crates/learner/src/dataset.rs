//! Loading the dataset an experiment names: generated or read from files, standardised
//! when the file asks for it; split-key errors name the experiment file, line and key.

use std::path::PathBuf;

use seqmodal_data::Dataset;

use crate::error::{LearnerError, Result};
use crate::experiment::Experiment;

impl Experiment {
    /// Loads (or generates) the dataset, standardised when the file asks for it; with
    /// `validation`, the queries and database come from the training rows only
    /// ([`seqmodal_data::Dataset::validation_split`]). A split
    /// key that does not fit the data (`queries + train` more than the rows, `queries` on a
    /// file with its own queries) is an error naming the file, the line and the key.
    pub fn load_dataset(&self) -> Result<Dataset> {
        let mut ds = match &self.dataset.synthetic {
            Some(params) => seqmodal_data::generate_synthetic(params)?,
            None => seqmodal_data::load_with(self.dataset.kind, &self.dataset_dir(), &self.dataset.load)
                .map_err(|e| match e {
                    seqmodal_data::DataError::Setting { key, message } => {
                        let (queries, train) = self.dataset.split_lines;
                        let line = match key.as_str() {
                            "queries" => queries,
                            "train" => train,
                            _ => 0,
                        };
                        LearnerError::Invalid {
                            path: self.source.clone(),
                            line,
                            key: format!("dataset.{key}"),
                            message,
                        }
                    }
                    other => other.into(),
                })?,
        };
        if let Some((fraction, line)) = self.dataset.validation {
            // Drawn with the dataset seed, so every learner and run seed of a tune sees the
            // same validation rows; standardisation below then fits on the remaining rows.
            let seed = self.dataset.synthetic.as_ref().map_or(self.dataset.load.seed, |p| p.seed);
            ds.validation_split(fraction, seed).map_err(|e| match e {
                seqmodal_data::DataError::Setting { key, message } => LearnerError::Invalid {
                    path: self.source.clone(),
                    line,
                    key: format!("dataset.{key}"),
                    message,
                },
                other => other.into(),
            })?;
        }
        if self.dataset.standardize {
            ds.standardize();
        }
        Ok(ds)
    }

    /// Resolves the dataset directory: as written (relative to the working directory),
    /// else relative to each folder above the experiment file.
    pub fn dataset_dir(&self) -> PathBuf {
        let p = PathBuf::from(&self.dataset.path);
        if p.is_absolute() || p.exists() {
            return p;
        }
        let mut dir = self.source.parent();
        while let Some(d) = dir {
            let cand = d.join(&p);
            if cand.exists() {
                return cand;
            }
            dir = d.parent();
        }
        p
    }
}
