//! seqmodal-analysis: results tables (polars), continual-learning metrics,
//! summaries and figures (plotters) for seqmodal runs.
//!
//! The flow: a run's evaluation becomes [`Record`]s, written as `metrics.csv`
//! ([`write_metrics_csv`]); an [`AccuracyMatrix`] of one metric feeds the
//! [`cl_metrics`], the [`Summary`] (`summary.json`) and the figures.

pub mod atomic;
mod charts;
pub mod cl_metrics;
pub mod csv;
pub mod error;
pub mod figures;
pub mod matrix;
pub mod paired;
pub mod paper;
pub mod provenance;
pub mod record;
mod render;
pub mod report;
pub mod style;
pub mod summary;
pub mod svg;
pub mod sweep;
pub mod train_log;

pub use atomic::atomic_write;
pub use csv::{read_metrics_csv, write_metrics_csv, METRICS_COLUMNS};
pub use error::{AnalysisError, Result};
pub use figures::{forgetting_curves, map_matrix_heatmap};
pub use matrix::AccuracyMatrix;
pub use paper::{load_sweep, write_report, PairPr, ReportFiles, ReportInputs, RunPr, SweepData};
pub use provenance::Provenance;
pub use record::Record;
pub use report::{learners_report, load_run, mean_std, RunData};
pub use summary::{write_summary_json, Summary};
pub use sweep::{aggregate as aggregate_sweep, CellStatus, SweepCell, SweepOutputs};
pub use train_log::{loss_curves, read_train_log, EpochLine};
