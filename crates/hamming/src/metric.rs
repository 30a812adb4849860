//! Retrieval metrics and their string forms.

use std::fmt;
use std::str::FromStr;

use crate::error::HammingError;

/// A retrieval metric, averaged over queries by [`crate::evaluate`].
///
/// The database is ranked by Hamming distance ascending, ties by database index ascending;
/// `N` is the database size and an item is relevant iff it shares at least one label with the
/// query. String forms (Display / FromStr): `"map"`, `"map@K"`, `"p@K"`, `"p@rR"`.
///
/// - `Map`: AP over the full ranking = (1/R) * sum over relevant positions k (1-based) of
///   (relevant in top k)/k, R = number of relevant database items; a query with R = 0 has
///   AP 0 and still counts in the mean.
/// - `MapAt(k)`: AP over the top min(k, N) = (1/R_k) * sum over relevant positions k' <= k of
///   P@k', where R_k = number of relevant items in the top k; 0 if R_k = 0 (the DCMH/DJSRH
///   "calc_map_k" convention).
/// - `PrecisionAt(k)`: relevant in top k / k (if k > N use N as divisor).
/// - `PrecisionRadius(r)`: among database items with Hamming distance <= r, the fraction
///   relevant; 0 if no item is within r.
///
/// Degenerate cases (only constructible directly, not parsed): `MapAt(0)` and
/// `PrecisionAt(0)` are 0, as is any metric against an empty database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Mean average precision over the full ranking (`"map"`).
    Map,
    /// Mean average precision over the top K (`"map@K"`).
    MapAt(usize),
    /// Precision of the top K (`"p@K"`).
    PrecisionAt(usize),
    /// Precision within Hamming radius R (`"p@rR"`).
    PrecisionRadius(u32),
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::Map => write!(f, "map"),
            Metric::MapAt(k) => write!(f, "map@{k}"),
            Metric::PrecisionAt(k) => write!(f, "p@{k}"),
            Metric::PrecisionRadius(r) => write!(f, "p@r{r}"),
        }
    }
}

/// Parses a plain decimal integer (digits only: no sign, no spaces).
fn digits<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl FromStr for Metric {
    type Err = HammingError;

    /// Parses `"map"`, `"map@K"`, `"p@K"` (K >= 1) or `"p@rR"` (R >= 0), ASCII case-insensitive.
    fn from_str(s: &str) -> Result<Metric, HammingError> {
        let bad = || HammingError::BadMetric(s.to_string());
        let lower = s.to_ascii_lowercase();
        let positive = |t: &str| digits::<usize>(t).filter(|&k| k >= 1);
        if lower == "map" {
            Ok(Metric::Map)
        } else if let Some(k) = lower.strip_prefix("map@") {
            positive(k).map(Metric::MapAt).ok_or_else(bad)
        } else if let Some(r) = lower.strip_prefix("p@r") {
            digits::<u32>(r).map(Metric::PrecisionRadius).ok_or_else(bad)
        } else if let Some(k) = lower.strip_prefix("p@") {
            positive(k).map(Metric::PrecisionAt).ok_or_else(bad)
        } else {
            Err(bad())
        }
    }
}
