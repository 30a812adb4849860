//! Cross-modal retrieval evaluation of the current model: every ordered pair of
//! modalities, queries = test split of q, database = retrieval database of d (its train
//! split unless the dataset keeps a larger one).

use std::borrow::Cow;
use std::collections::BTreeMap;

use seqmodal_data::{Dataset, Labels, Matrix};
use seqmodal_hamming::{evaluate, Codes, LabelSet, Metric};
use seqmodal_model::UnifiedModel;

use crate::error::Result;

/// One evaluated number.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalRow {
    /// Stage after which it was measured (0 = before training).
    pub stage: usize,
    /// Modality trained in that stage (None for stage 0).
    pub trained: Option<String>,
    /// Query modality.
    pub query: String,
    /// Database modality.
    pub database: String,
    /// Metric.
    pub metric: Metric,
    /// Value.
    pub value: f64,
}

/// Packed codes of a split.
pub fn encode_split(model: &UnifiedModel, modality: &str, x: &Matrix) -> Result<Codes> {
    let h = model.encode(modality, x.data(), x.rows())?;
    Ok(Codes::from_signs(&h, x.rows(), model.config().bits)?)
}

/// Packed labels of a split.
pub fn label_set(labels: &Labels) -> Result<LabelSet> {
    Ok(LabelSet::from_multi_hot(labels.data(), labels.rows(), labels.classes())?)
}

/// Evaluates every ordered pair (query, database) of the dataset's modalities.
/// Queries are always encoded by the current model; `drifted_queries` replaces the test
/// features of a modality whose latest stage drifted.
pub fn evaluate_all(
    model: &UnifiedModel,
    ds: &Dataset,
    metrics: &[Metric],
    stage: usize,
    trained: Option<&str>,
    frozen: &BTreeMap<String, Codes>,
    drifted_queries: &BTreeMap<String, Matrix>,
) -> Result<Vec<EvalRow>> {
    let mut queries = Vec::new();
    let mut database = Vec::new();
    for m in &ds.modalities {
        let x = drifted_queries.get(&m.name).unwrap_or(&m.test.features);
        queries.push((encode_split(model, &m.name, x)?, label_set(&m.test.labels)?));
        // `frozen` holds the database codes made when a modality was last trained;
        // modalities not in it are re-encoded with the current model.
        let db = match frozen.get(&m.name) {
            Some(c) => Cow::Borrowed(c),
            None => Cow::Owned(encode_split(model, &m.name, &m.database().features)?),
        };
        database.push((db, label_set(&m.database().labels)?));
    }
    let mut rows = Vec::new();
    for (qi, q) in ds.modalities.iter().enumerate() {
        for (di, d) in ds.modalities.iter().enumerate() {
            let values = evaluate(&queries[qi].0, &queries[qi].1, &database[di].0, &database[di].1, metrics)?;
            for (metric, value) in metrics.iter().zip(values) {
                rows.push(EvalRow {
                    stage,
                    trained: trained.map(String::from),
                    query: q.name.clone(),
                    database: d.name.clone(),
                    metric: *metric,
                    value,
                });
            }
        }
    }
    Ok(rows)
}
