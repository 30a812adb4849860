//! Reading a run's `train_log.csv` back and drawing its loss curves (`figures/loss.*` of a
//! run, and the report's training-loss section).

use std::path::Path;

use crate::charts::{line_figure, Axis, LineFigure, Panel, Series};
use crate::error::{AnalysisError, Result};
use crate::style::SeriesStyle;

/// The loss columns of `train_log.csv` drawn as panels: (column, panel caption).
pub const LOSS_PANELS: [(&str, &str); 4] = [
    ("loss", "learner's objective"),
    ("classification", "classification term"),
    ("pairwise", "pairwise term"),
    ("quantization", "quantisation term"),
];

/// One line of `train_log.csv` (the columns a figure needs).
#[derive(Clone, Debug, PartialEq)]
pub struct EpochLine {
    /// Stage (1-based).
    pub stage: usize,
    /// Epoch within the stage (1-based).
    pub epoch: usize,
    /// The loss columns, in [`LOSS_PANELS`] order.
    pub losses: [f64; 4],
}

/// Reads `train_log.csv`: every line must carry the header's columns; errors name the file,
/// the column and the row.
pub fn read_train_log(path: &Path) -> Result<Vec<EpochLine>> {
    let text = std::fs::read_to_string(path).map_err(|source| AnalysisError::Io {
        op: "read",
        path: path.into(),
        source,
    })?;
    let schema = |column: &str, row: Option<usize>, message: String| AnalysisError::Schema {
        path: path.into(),
        column: column.into(),
        row,
        message,
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let index = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| schema(name, None, "missing from the header".into()))
    };
    let (stage_i, epoch_i) = (index("stage")?, index("epoch")?);
    let loss_i: Vec<usize> = LOSS_PANELS.iter().map(|(c, _)| index(c)).collect::<Result<_>>()?;
    let mut out = Vec::new();
    for (r, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != header.len() {
            return Err(schema(
                "stage",
                Some(r + 1),
                format!("{} fields, the header has {}", fields.len(), header.len()),
            ));
        }
        let int = |i: usize| {
            fields[i]
                .parse::<usize>()
                .map_err(|_| schema(header[i], Some(r + 1), format!("`{}` is not a whole number", fields[i])))
        };
        let mut losses = [0.0; 4];
        for (k, &i) in loss_i.iter().enumerate() {
            losses[k] = fields[i]
                .parse::<f64>()
                .map_err(|_| schema(header[i], Some(r + 1), format!("`{}` is not a number", fields[i])))?;
        }
        out.push(EpochLine { stage: int(stage_i)?, epoch: int(epoch_i)?, losses });
    }
    Ok(out)
}

/// A y axis from 0 to a round value above `max` with about five ticks.
fn loss_axis(max: f64, desc: &str) -> Axis {
    let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
    let raw = max * 1.05 / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let n = (max * 1.05 / step).ceil().max(1.0) as usize;
    // As many decimals as the step needs (0.25 → 2, 0.5 → 1, 2 → 0).
    let step_text = format!("{step:.4}");
    let digits = step_text.trim_end_matches('0').split_once('.').map_or(0, |(_, f)| f.len());
    let ticks = (0..=n).map(|i| i as f64 * step).map(|v| (v, format!("{v:.digits$}"))).collect();
    Axis { range: 0.0..n as f64 * step, ticks, desc: desc.into() }
}

/// One learner's (or run's) loss curves: per epoch of the run (x = 1, 2, ...), the mean and
/// std of each loss column over `logs` (runs of one schedule; epochs missing from a log are
/// left out of that epoch's mean).
pub(crate) fn mean_curves(logs: &[&[EpochLine]]) -> [Vec<(f64, f64, f64)>; 4] {
    let mut keys: Vec<(usize, usize)> =
        logs.iter().flat_map(|l| l.iter().map(|e| (e.stage, e.epoch))).collect();
    keys.sort_unstable();
    keys.dedup();
    std::array::from_fn(|k| {
        keys.iter()
            .enumerate()
            .filter_map(|(x, key)| {
                let v: Vec<f64> = logs
                    .iter()
                    .filter_map(|l| l.iter().find(|e| (e.stage, e.epoch) == *key))
                    .map(|e| e.losses[k])
                    .filter(|v| v.is_finite())
                    .collect();
                crate::report::mean_std(&v).map(|(m, s)| ((x + 1) as f64, m, s))
            })
            .collect()
    })
}

/// x axis over the run's epochs with a tick where each stage starts, labelled with the
/// stage's modality (`stage_names[s - 1]`, or the stage number when unknown).
fn epoch_axis(lines: &[EpochLine], stage_names: &[String]) -> Axis {
    let mut keys: Vec<(usize, usize)> = lines.iter().map(|e| (e.stage, e.epoch)).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut ticks = Vec::new();
    for (x, (s, _)) in keys.iter().enumerate() {
        if x == 0 || keys[x - 1].0 != *s {
            let name = stage_names.get(s.wrapping_sub(1)).cloned().unwrap_or_else(|| format!("stage {s}"));
            ticks.push(((x + 1) as f64, name));
        }
    }
    let n = keys.len().max(1) as f64;
    Axis { range: 0.5..n + 0.5, ticks, desc: "epoch (ticks: first epoch of each stage's modality)".into() }
}

/// Writes `dir/stem.png` and `.svg`: the loss curves of `curves` (label, style, logs of the
/// runs it averages), one panel per loss column; `stage_names` label the stage starts.
pub(crate) fn loss_figure(
    curves: &[(String, SeriesStyle, Vec<&[EpochLine]>)],
    stage_names: &[String],
    title: &str,
    subtitle: Vec<String>,
    dir: &Path,
    stem: &str,
) -> Result<bool> {
    let all: Vec<EpochLine> =
        curves.iter().flat_map(|c| c.2.iter().flat_map(|l| l.iter().cloned())).collect();
    if all.is_empty() {
        return Ok(false);
    }
    let means: Vec<[Vec<(f64, f64, f64)>; 4]> = curves.iter().map(|c| mean_curves(&c.2)).collect();
    let max = means
        .iter()
        .flat_map(|m| m.iter().flat_map(|pts| pts.iter().map(|p| p.1 + p.2)))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let panels = LOSS_PANELS
        .iter()
        .enumerate()
        .map(|(k, (_, caption))| Panel {
            caption: caption.to_string(),
            series: curves
                .iter()
                .zip(&means)
                .map(|((label, style, _), m)| Series {
                    label: label.clone(),
                    style: *style,
                    points: m[k].clone(),
                })
                .collect(),
        })
        .collect();
    let fig = LineFigure {
        title: title.into(),
        subtitle,
        panels,
        cols: 2,
        x: epoch_axis(&all, stage_names),
        y: loss_axis(max, "loss (mean over the epoch)"),
        legend: if curves.len() > 1 { "learner".into() } else { "run".into() },
        band_from: f64::NEG_INFINITY,
    };
    line_figure(&fig, dir, stem)?;
    Ok(true)
}

/// Writes `dir/loss.png` and `dir/loss.svg` for one run from its `train_log.csv`; the stages
/// are labelled with `stage_names` (the modality of each stage). Returns false, writing
/// nothing, when the log has no epochs.
pub fn loss_curves(train_log: &Path, stage_names: &[String], title: &str, dir: &Path) -> Result<bool> {
    let lines = read_train_log(train_log)?;
    let curves = vec![("run".to_string(), crate::style::series_style(0), vec![lines.as_slice()])];
    let subtitle =
        vec!["per epoch: mean over its batches (objective) or forward passes (terms, unweighted)".into()];
    loss_figure(&curves, stage_names, &format!("Training loss · {title}"), subtitle, dir, "loss")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str =
        "stage,epoch,steps,loss,classification,pairwise,quantization,lr,samples_per_second,seconds
1,1,10,2.5,2,0.5,0.25,0.001,100.0,1.0
1,2,20,1.5,1,0.4,0.2,0.001,100.0,1.0
2,1,30,1.75,1.25,0.45,0.15,0.001,100.0,1.0
";

    #[test]
    fn reads_the_log_and_draws_its_figure() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("train_log.csv");
        std::fs::write(&p, LOG).unwrap();
        let lines = read_train_log(&p).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2], EpochLine { stage: 2, epoch: 1, losses: [1.75, 1.25, 0.45, 0.15] });
        let names = ["image".to_string(), "text".to_string()];
        assert!(loss_curves(&p, &names, "demo", tmp.path()).unwrap());
        let svg = std::fs::read_to_string(tmp.path().join("loss.svg")).unwrap();
        // Stage starts are labelled with their modality.
        assert!(svg.contains("\nimage\n") && svg.contains("\ntext\n"), "stage ticks missing");
        assert!(std::fs::read(tmp.path().join("loss.png")).unwrap().starts_with(b"\x89PNG"));
    }

    #[test]
    fn mean_curves_average_runs_epoch_by_epoch() {
        let a = vec![EpochLine { stage: 1, epoch: 1, losses: [1.0, 2.0, 3.0, 4.0] }];
        let b = vec![EpochLine { stage: 1, epoch: 1, losses: [3.0, 2.0, 3.0, 4.0] }];
        let m = mean_curves(&[&a, &b]);
        assert_eq!(m[0], [(1.0, 2.0, 2f64.sqrt())]);
        assert_eq!(m[1], [(1.0, 2.0, 0.0)]);
    }

    #[test]
    fn a_bad_cell_is_named_by_column_and_row() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("train_log.csv");
        std::fs::write(&p, LOG.replace("1.75", "x")).unwrap();
        let msg = read_train_log(&p).unwrap_err().to_string();
        assert!(msg.contains("train_log.csv") && msg.contains("`loss` row 3"), "{msg}");
        std::fs::write(&p, "stage,epoch\n").unwrap();
        let msg = read_train_log(&p).unwrap_err().to_string();
        assert!(msg.contains("`loss`") && msg.contains("missing"), "{msg}");
    }

    #[test]
    fn the_loss_axis_holds_the_maximum_with_round_ticks() {
        for max in [0.03, 0.7, 2.5, 13.0] {
            let a = loss_axis(max, "loss");
            assert!(a.range.end >= max && a.range.end <= max * 2.6, "{max}: {:?}", a.range);
            assert!(a.ticks.len() >= 3 && a.ticks.len() <= 12, "{max}: {:?}", a.ticks);
        }
        assert_eq!(loss_axis(2.5, "l").ticks[1].1, "1");
        assert_eq!(loss_axis(0.7, "l").ticks[1].1, "0.2");
        assert_eq!(loss_axis(0.05, "l").ticks[1].1, "0.02");
    }
}
