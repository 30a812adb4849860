//! Episodic memory of earlier stages' samples, bounded by `[learner] memory`.
//!
//! Selection is balanced: after each stage the budget is split evenly over the
//! modalities trained so far (a modality with fewer rows than its share keeps them all and
//! the rest of its share goes to the others) and, inside a modality, over its classes
//! (round-robin over classes, random rows within a class), so no modality or class crowds
//! out the others. Stored targets (codes/logits at storage time) serve distillation learners.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::trainer::{Item, ModalityTrain};

/// One stored sample with optional targets recorded when it was stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stored {
    /// (modality, row) of the sample.
    pub item: Item,
    /// Classifier logits of the model that stored it (DER++); checkpointed as bit
    /// patterns, since JSON float text does not always parse back to the same value.
    #[serde(with = "f32_bits")]
    pub logits: Option<Vec<f32>>,
}

/// Serde for optional f32 vectors as their exact bit patterns.
mod f32_bits {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<f32>>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref().map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f32>>, D::Error> {
        Ok(Option::<Vec<u32>>::deserialize(d)?.map(|v| v.into_iter().map(f32::from_bits).collect()))
    }
}

/// A bounded, modality- and class-balanced replay memory.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Memory {
    capacity: usize,
    /// Candidate rows per modality (everything that modality's stages showed).
    pools: BTreeMap<u32, Vec<u32>>,
    stored: Vec<Stored>,
}

impl Memory {
    /// An empty memory holding at most `capacity` samples.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, pools: BTreeMap::new(), stored: Vec::new() }
    }

    /// Maximum number of samples.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Stored samples.
    pub fn stored(&self) -> &[Stored] {
        &self.stored
    }

    /// Number of stored samples.
    pub fn len(&self) -> usize {
        self.stored.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.stored.is_empty()
    }

    /// Adds a finished stage's rows to the candidates and re-selects the memory.
    /// Samples already stored are kept where the new quota allows (their targets stay).
    pub fn add_stage(&mut self, items: &[Item], data: &[ModalityTrain], rng: &mut ChaCha8Rng) {
        if self.capacity == 0 {
            return;
        }
        for &(m, r) in items {
            let pool = self.pools.entry(m).or_default();
            if !pool.contains(&r) {
                pool.push(r);
            }
        }
        let modalities: Vec<u32> = self.pools.keys().copied().collect();
        let sizes: Vec<usize> = self.pools.values().map(Vec::len).collect();
        let quotas = quotas(self.capacity, &sizes);
        let mut kept: Vec<Stored> = Vec::with_capacity(self.capacity);
        for (&m, &quota) in modalities.iter().zip(&quotas) {
            let md = &data[m as usize];
            // Rows by class (a multi-label row is listed under its first class).
            let mut by_class: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
            let previous: Vec<&Stored> = self.stored.iter().filter(|s| s.item.0 == m).collect();
            for &r in &self.pools[&m] {
                let row = &md.y[r as usize * md.classes..(r as usize + 1) * md.classes];
                let c = row.iter().position(|&v| v > 0.0).unwrap_or(0);
                by_class.entry(c).or_default().push(r);
            }
            // Previously stored rows first in each class, then a random order of the rest.
            for rows in by_class.values_mut() {
                rows.shuffle(rng);
                rows.sort_by_key(|r| !previous.iter().any(|s| s.item.1 == *r));
            }
            let mut cursors: Vec<(usize, &Vec<u32>)> = by_class.values().map(|v| (0, v)).collect();
            let mut picked = 0;
            let total: usize = cursors.iter().map(|(_, v)| v.len()).sum();
            let start = if cursors.is_empty() { 0 } else { rng.random_range(0..cursors.len()) };
            let mut k = start;
            while picked < quota && picked < total {
                let n_classes = cursors.len();
                let (cur, rows) = &mut cursors[k % n_classes];
                if *cur < rows.len() {
                    let r = rows[*cur];
                    *cur += 1;
                    let logits = previous.iter().find(|s| s.item.1 == r).and_then(|s| s.logits.clone());
                    kept.push(Stored { item: (m, r), logits });
                    picked += 1;
                }
                k += 1;
            }
        }
        self.stored = kept;
    }

    /// A random batch of up to `n` stored samples (without replacement).
    pub fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Vec<Stored> {
        let mut idx: Vec<usize> = (0..self.stored.len()).collect();
        idx.shuffle(rng);
        idx.truncate(n);
        idx.into_iter().map(|i| self.stored[i].clone()).collect()
    }

    /// Records targets for stored samples that lack them.
    pub fn set_logits(&mut self, item: Item, logits: Vec<f32>) {
        if let Some(s) = self.stored.iter_mut().find(|s| s.item == item) {
            s.logits = Some(logits);
        }
    }

    /// Puts the memory (candidates, stored samples and their targets) into a checkpoint.
    pub fn save(&self, state: &mut crate::checkpoint::LearnerState) -> crate::error::Result<()> {
        state.put("memory", self)
    }

    /// Restores the memory saved by [`Memory::save`] (left empty when the checkpoint has none).
    pub fn load(&mut self, state: &crate::checkpoint::LearnerState) -> crate::error::Result<()> {
        if let Some(m) = state.get::<Memory>("memory")? {
            *self = m;
        }
        Ok(())
    }

    /// Number of stored samples per modality index.
    pub fn per_modality(&self) -> BTreeMap<u32, usize> {
        let mut out = BTreeMap::new();
        for s in &self.stored {
            *out.entry(s.item.0).or_insert(0) += 1;
        }
        out
    }
}

impl Memory {
    /// Bytes of the stored samples: features, labels and targets as f32.
    pub fn bytes(&self, data: &[ModalityTrain]) -> usize {
        self.stored
            .iter()
            .map(|s| {
                let md = &data[s.item.0 as usize];
                4 * (md.dim + md.classes + s.logits.as_ref().map_or(0, Vec::len))
            })
            .sum()
    }

    /// The footprint report of a memory-based learner.
    pub fn footprint(&self, data: &[ModalityTrain]) -> crate::footprint::Footprint {
        crate::footprint::Footprint {
            memory_samples: self.len(),
            memory_bytes: self.bytes(data),
            extra_param_copies: 0,
        }
    }
}

/// Each modality's share of `capacity`, given how many rows each can offer (`sizes`): an
/// even split (the first `capacity % k` one more), except that a modality with fewer rows
/// than its share gets them all and the others split what it leaves. With no modality
/// short it is the plain even split.
fn quotas(capacity: usize, sizes: &[usize]) -> Vec<usize> {
    let mut quota = vec![0; sizes.len()];
    let mut open: Vec<usize> = (0..sizes.len()).collect();
    let mut left = capacity;
    while !open.is_empty() {
        let k = open.len();
        let share = |j: usize| left / k + usize::from(j < left % k);
        let short: Vec<usize> =
            open.iter().enumerate().filter(|&(j, &m)| sizes[m] < share(j)).map(|(_, &m)| m).collect();
        if short.is_empty() {
            for (j, &m) in open.iter().enumerate() {
                quota[m] = share(j);
            }
            break;
        }
        for &m in &short {
            quota[m] = sizes[m];
            left -= sizes[m];
        }
        open.retain(|m| !short.contains(m));
    }
    quota
}

#[cfg(test)]
mod tests {
    use super::quotas;

    #[test]
    fn quotas_split_evenly_and_pass_on_what_a_short_modality_leaves() {
        assert_eq!(quotas(200, &[1500, 1500]), [100, 100]);
        assert_eq!(quotas(201, &[1500, 1500, 1500]), [67, 67, 67]);
        assert_eq!(quotas(202, &[1500, 1500, 1500]), [68, 67, 67]);
        // One class of 48 rows, then 1000 rows: 48 + 352 (was 48 + 200, 152 left unused).
        assert_eq!(quotas(400, &[48, 1000]), [48, 352]);
        // Cascades: 10 leaves 140 for two; 60 is short of 70 too, leaving 80.
        assert_eq!(quotas(150, &[10, 60, 500]), [10, 60, 80]);
        // More budget than rows: everything.
        assert_eq!(quotas(1000, &[10, 20]), [10, 20]);
        assert_eq!(quotas(7, &[]), Vec::<usize>::new());
    }
}
