//! Strategies that train the unified model across stages.
//!
//! A learner sees the current stage's training rows and, if it keeps them, what it
//! stored from earlier stages; [`crate::Trainer`] gives it batching and optimiser steps.

mod finetune;
mod joint;

use std::str::FromStr;

pub use finetune::Finetune;
pub use joint::Joint;

use crate::error::Result;
use crate::trainer::{StageData, Trainer};

/// The strategies seqmodal implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LearnerKind {
    /// Sequential fine-tuning on each stage's data only; keeps nothing.
    Finetune,
    /// Trains on the union of every stage's data so far (non-sequential reference).
    Joint,
}

impl LearnerKind {
    /// Every kind, in documentation order.
    pub const ALL: [LearnerKind; 2] = [LearnerKind::Finetune, LearnerKind::Joint];

    /// Name used in experiment files.
    pub fn as_str(self) -> &'static str {
        match self {
            LearnerKind::Finetune => "finetune",
            LearnerKind::Joint => "joint",
        }
    }

    /// Builds the learner.
    pub fn build(self) -> Box<dyn Learner> {
        match self {
            LearnerKind::Finetune => Box::new(Finetune),
            LearnerKind::Joint => Box::new(Joint::default()),
        }
    }
}

impl FromStr for LearnerKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown learner '{s}' (known: {})", known.join(", "))
        })
    }
}

/// A continual-learning strategy.
pub trait Learner {
    /// Trains the model for one stage. `stage` holds the rows this stage may see.
    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()>;
}
