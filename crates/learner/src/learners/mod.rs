//! Strategies that train the unified model across stages, and the registry they are
//! found in.
//!
//! A learner is one file: it declares its `[learner]` keys ([`Key`]), reads its checked
//! [`Values`], trains through [`crate::Trainer`], and exports one [`LearnerEntry`] named
//! `ENTRY`; the list at the bottom of this file registers it. `seqmodal learners` and
//! `docs/learners.md` list what each keeps, costs, and its keys; `docs/adding-a-learner.md`
//! walks through adding one.

pub mod params;
mod replay;

use crate::checkpoint::LearnerState;
use crate::error::Result;
use crate::footprint::Footprint;
use crate::keys::{Key, Values};
use crate::trainer::{ModalityTrain, StageData, Trainer};

/// What a learner is in a comparison, so reports need no learner names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The floor every strategy must beat (e.g. plain sequential fine-tuning).
    LowerBound,
    /// Not sequential, or not under the scenario's rules: the ceiling to compare with.
    Reference,
    /// A continual-learning strategy under the scenario's rules.
    Strategy,
}

impl Role {
    /// Every role, in report order.
    pub const ALL: [Role; 3] = [Role::LowerBound, Role::Reference, Role::Strategy];

    /// Name written to `summary.json` (`learner_role`) and shown by `seqmodal learners`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::LowerBound => "lower bound",
            Role::Reference => "reference",
            Role::Strategy => "strategy",
        }
    }
}

/// A learner as the registry knows it: name, role, keys and how to build it.
#[derive(Debug)]
pub struct LearnerEntry {
    /// Name in experiment files (`[learner] kind`).
    pub name: &'static str,
    /// Its role in comparisons.
    pub role: Role,
    /// One line: what it does.
    pub summary: &'static str,
    /// Its declared `[learner]` keys, in the order `config.toml` writes them.
    pub keys: fn() -> Vec<Key>,
    /// Builds it from its checked keys; refuses combinations of values its rules forbid
    /// (the experiment check calls it once, so such errors come before anything runs).
    pub build: fn(&Values) -> Result<Box<dyn Learner>>,
}

/// A continual-learning strategy.
pub trait Learner {
    /// Checks that the learner can run on this dataset, whose stages train the modalities
    /// `trained` (e.g. `paired` needs aligned data, a memory no more rows than the stages show).
    fn check(&self, _ds: &seqmodal_data::Dataset, _trained: &[&str]) -> Result<()> {
        Ok(())
    }

    /// Trains the model for one stage. `stage` holds the rows this stage may see.
    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()>;

    /// Puts what the learner keeps between stages into a checkpoint.
    fn save_state(&self, _state: &mut LearnerState) -> Result<()> {
        Ok(())
    }

    /// Restores what [`Learner::save_state`] kept; `model` is the restored model (the
    /// template for a kept previous model).
    fn load_state(&mut self, _state: &LearnerState, _model: &seqmodal_model::UnifiedModel) -> Result<()> {
        Ok(())
    }

    /// What the learner keeps (memory, copies of parameters).
    fn footprint(&self, _trainer_data: &[ModalityTrain]) -> Footprint {
        Footprint::default()
    }
}

/// The learners an experiment may name: the built-in ones plus any registered by the caller
/// (a learner defined outside this crate runs through the same checker and runner).
#[derive(Clone, Debug)]
pub struct Registry {
    entries: Vec<&'static LearnerEntry>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// The learners shipped with seqmodal.
    pub fn builtin() -> Self {
        Self { entries: BUILTIN.to_vec() }
    }

    /// This registry and `entry`; an entry of the same name is replaced.
    pub fn with(mut self, entry: &'static LearnerEntry) -> Self {
        match self.entries.iter_mut().find(|e| e.name == entry.name) {
            Some(e) => *e = entry,
            None => self.entries.push(entry),
        }
        self
    }

    /// Every learner, in documentation order.
    pub fn entries(&self) -> &[&'static LearnerEntry] {
        &self.entries
    }

    /// The learner called `name`, or the `unknown learner` message listing the known ones.
    pub fn get(&self, name: &str) -> std::result::Result<&'static LearnerEntry, String> {
        self.entries.iter().copied().find(|e| e.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.entries.iter().map(|e| e.name).collect();
            format!("unknown learner '{name}' (known: {})", known.join(", "))
        })
    }

    /// Every key of every learner except `name`'s (for "a key of another learner" messages).
    pub fn keys_except(&self, name: &str) -> Vec<Key> {
        self.entries.iter().filter(|e| e.name != name).flat_map(|e| (e.keys)()).collect()
    }
}

/// Registers the built-in learners: one line per learner, naming its file (module).
macro_rules! registry {
    ($($learner:ident),* $(,)?) => {
        $(mod $learner;)*
        /// The learners shipped with seqmodal, in documentation order.
        pub static BUILTIN: &[&LearnerEntry] = &[$(&$learner::ENTRY),*];
    };
}

registry! {
    finetune,
    joint,
    paired,
    ewc,
    si,
    lwf,
    er,
    agem,
    der,
    mer,
    meta,
}

/// Checks a `[learner]` table body for `entry` as an experiment file would (test helper of
/// the learners' own rules).
#[cfg(test)]
pub(crate) fn check_body(entry: &LearnerEntry, body: &str) -> Result<Values> {
    let text = format!("[learner]\nkind = \"{}\"\n{body}\n", entry.name);
    let path = std::path::Path::new("exp.toml");
    #[derive(serde::Deserialize)]
    struct File {
        learner: crate::keys::LearnerSection,
    }
    let file: File = toml::from_str(&text)
        .map_err(|e| crate::error::LearnerError::Syntax { path: path.into(), message: e.to_string() })?;
    let ck = crate::checker::Checker::new(&text, path);
    let train = crate::keys::TrainDefaults { batch: 128, lr: 1e-3 };
    let others = Registry::builtin().keys_except(entry.name);
    let values = crate::keys::check(&file.learner, &(entry.keys)(), &others, train, &ck)?;
    (entry.build)(&values)?;
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_unknown_ones_list_the_known() {
        let r = Registry::builtin();
        let mut names: Vec<&str> = r.entries().iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), r.entries().len());
        let e = r.get("magic").unwrap_err();
        assert!(e.starts_with("unknown learner 'magic' (known: finetune, joint,"), "{e}");
        // Every role is taken by some built-in learner; keys are unique within a learner.
        for role in Role::ALL {
            assert!(r.entries().iter().any(|e| e.role == role), "{role:?}");
        }
        for e in r.entries() {
            let mut keys: Vec<&str> = (e.keys)().iter().map(|k| k.name).collect();
            let n = keys.len();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), n, "{}", e.name);
            assert!(check_body(e, "").is_ok(), "{}: defaults must check", e.name);
        }
    }
}
