//! Typed errors of the learner crate.

use std::path::PathBuf;

/// Errors from reading an experiment file or running it.
#[derive(Debug, thiserror::Error)]
pub enum LearnerError {
    /// The experiment file could not be read.
    #[error("cannot read experiment file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax error or a key of the wrong type / unknown key (message names line and key).
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// toml's message, with line, column and the offending key.
        message: String,
    },
    /// A value that parses but is not allowed; names the file, the line and the key.
    #[error("{path}:{line}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key (0 when the key is absent from the file).
        line: usize,
        /// Dotted key, e.g. `stages[1].modality`.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A `--set key=value` override that cannot be applied.
    #[error("--set {assignment}: {message}")]
    Override {
        /// The override as given.
        assignment: String,
        /// Why it cannot be applied.
        message: String,
    },
    /// The dataset failed to load.
    #[error(transparent)]
    Data(#[from] seqmodal_data::DataError),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] seqmodal_model::ModelError),
    /// Retrieval evaluation failed.
    #[error(transparent)]
    Hamming(#[from] seqmodal_hamming::HammingError),
    /// A tensor operation in a learner failed.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// A learner cannot run on this dataset or configuration.
    #[error("learner '{learner}': {message}")]
    Learner {
        /// The learner kind.
        learner: String,
        /// Why.
        message: String,
    },
    /// A checkpoint cannot be resumed (corrupt, or from a different experiment).
    #[error("cannot resume from {path}: {message}")]
    Resume {
        /// The checkpoint file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The run was interrupted (Ctrl-C) during a stage; the last finished stage's
    /// checkpoint is on disk.
    #[error("interrupted during stage {stage}")]
    Interrupted {
        /// The stage that was running (its work is redone on resume).
        stage: usize,
    },
    /// Reading or appending the training log failed.
    #[error("training log {path}: {message}")]
    TrainLog {
        /// The file (train_log.csv).
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Writing a checkpoint failed.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Result alias of the learner crate.
pub type Result<T> = std::result::Result<T, LearnerError>;
