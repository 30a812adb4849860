//! Packed binary hash codes, exact popcount Hamming search and retrieval metrics.
//!
//! Codes are packed sign bits ([`Codes`]), labels are packed multi-hot sets ([`LabelSet`]);
//! two items are relevant iff they share a label. [`rank`] orders a database for one query by
//! Hamming distance (ties by index) with an O(N) counting sort, and [`evaluate`] averages
//! [`Metric`]s over all queries on the CPU backend ([`CpuBackend`], rayon over queries).
//!
//! ```
//! use seqmodal_hamming::{evaluate, rank, Codes, LabelSet, Metric};
//!
//! // 4-bit codes: one query, three database items.
//! let q = Codes::from_bools(&[false, false, false, false], 1, 4)?;
//! let db = Codes::from_bools(
//!     &[true, true, false, false, // distance 2
//!       false, false, false, false, // distance 0
//!       true, false, false, false], // distance 1
//!     3, 4,
//! )?;
//! assert_eq!(rank(q.row(0), &db), vec![1, 2, 0]);
//!
//! let ql = LabelSet::from_class_ids(&[0], 2)?;
//! let dl = LabelSet::from_class_ids(&[0, 1, 0], 2)?;
//! let metrics: Vec<Metric> = ["map", "p@1"].iter().map(|s| s.parse()).collect::<Result<_, _>>()?;
//! // Ranked relevance 0,1,1: AP = (1/2 + 2/3) / 2, P@1 = 0.
//! let v = evaluate(&q, &ql, &db, &dl, &metrics)?;
//! assert!((v[0] - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
//! assert_eq!(v[1], 0.0);
//! # Ok::<(), seqmodal_hamming::HammingError>(())
//! ```

#![warn(missing_docs)]

mod backend;
mod cand;
mod codes;
#[cfg(any(feature = "cuda", feature = "cuda-emulator"))]
pub mod cuda;
mod error;
mod eval;
mod kernel;
mod knn;
mod labels;
mod metric;
pub mod npy;
mod search;
mod sliced;

pub use backend::{CpuBackend, SearchBackend};
pub use codes::{hamming_distance, Codes, CodesView};
pub use error::{HammingError, Result};
pub use eval::{evaluate_with, EvalReport, PrPoint};
pub use kernel::{Engine, Kernel, Width};
pub use knn::{distances_into, knn, topk_path, Neighbors, NO_DISTANCE, NO_ID};
pub use labels::LabelSet;
pub use metric::Metric;
pub use search::{evaluate, rank};
