//! Typed errors of the model crate.

/// Errors from building, running or saving the unified model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A tensor operation failed (shape bug or backend error).
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// A modality without an input adapter was used.
    #[error("modality '{0}' has no input adapter yet (call ensure_modality first)")]
    UnknownModality(String),
    /// A modality's feature width disagrees with its adapter or the padded width.
    #[error("modality '{modality}': {message}")]
    Dim {
        /// The modality.
        modality: String,
        /// What disagrees.
        message: String,
    },
    /// A configuration value is out of range.
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// A checkpoint could not be written or read.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Result alias of the model crate.
pub type Result<T> = std::result::Result<T, ModelError>;
