//! Progress bars and the per-stage mAP table on the terminal.

use indicatif::{ProgressBar, ProgressStyle};
use seqmodal_hamming::Metric;
use seqmodal_learner::{EvalRow, Observer};

/// Draws one bar over all epochs of all stages and prints a table after each evaluation.
pub struct Progress {
    bar: ProgressBar,
    modalities: Vec<String>,
}

impl Progress {
    /// A bar over `total_epochs`; hidden when `quiet`.
    pub fn new(total_epochs: u64, modalities: Vec<String>, quiet: bool) -> Self {
        let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(total_epochs) };
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} epochs  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self { bar, modalities }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Observer for Progress {
    fn on_stage_start(&mut self, stage: usize, modality: &str, _epochs: usize) {
        self.bar.set_message(format!("stage {stage} ({modality})"));
    }

    fn on_epoch(&mut self, stage: usize, epoch: usize, mean_loss: f64) {
        self.bar.inc(1);
        self.bar.set_message(format!("stage {stage} epoch {epoch} loss {mean_loss:.4}"));
    }

    fn on_evaluated(&mut self, stage: usize, rows: &[EvalRow]) {
        let table = map_table(stage, rows, &self.modalities);
        self.bar.suspend(|| say!("{table}"));
    }
}

/// mAP table of one stage: rows = query modality, columns = database modality.
pub fn map_table(stage: usize, rows: &[EvalRow], modalities: &[String]) -> String {
    let trained = rows.first().and_then(|r| r.trained.clone()).unwrap_or_else(|| "random init".into());
    let w = modalities.iter().map(String::len).max().unwrap_or(5).max(6);
    let mut s = format!("stage {stage} ({trained}): mAP, query \\ database\n{:>w$}", "");
    for d in modalities {
        s.push_str(&format!(" {d:>w$}"));
    }
    for q in modalities {
        s.push_str(&format!("\n{q:>w$}"));
        for d in modalities {
            let v = rows
                .iter()
                .find(|r| r.metric == Metric::Map && &r.query == q && &r.database == d)
                .map_or("-".to_string(), |r| format!("{:.4}", r.value));
            s.push_str(&format!(" {v:>w$}"));
        }
    }
    s
}
