//! Sweep aggregation: every cell's tidy rows in one `sweep.csv`, mean ± std over seeds per
//! setting in `summary.csv`, and the sweep figures (bars per learner, curves per ordering).
//!
//! The CL metrics are recomputed from each cell's `metrics.csv` (the stored record), never
//! copied from its `summary.json`; only the training time, which is not in the CSV, comes
//! from there. Grouping happens in plain Rust over at most thousands of cells: polars' eager
//! group-by is deprecated and its lazy engine (polars-plan, -expr, -mem-engine) would add
//! minutes to a cold build for a handful of means. polars builds, reads and writes the tables.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::atomic::atomic_write;
use crate::cl_metrics;
use crate::csv::METRICS_COLUMNS;
use crate::error::{AnalysisError, Result};
use crate::figures::{sweep_bars, sweep_curves, BarGroup, BarSeries, CurvePanel, CurveSeries};
use crate::report::{load_run, mean_std, RunData};

/// Column of the ordering axis in `sweep.csv` and `summary.csv`.
pub const ORDERING_COLUMN: &str = "ordering";

/// What became of one cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellStatus {
    /// Finished: `summary.json` and `metrics.csv` exist.
    Ok,
    /// Ran and failed (`error.txt` says why).
    Failed,
    /// Not run (yet): e.g. a Slurm task that has not finished.
    Missing,
}

impl CellStatus {
    /// Name in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            CellStatus::Ok => "ok",
            CellStatus::Failed => "failed",
            CellStatus::Missing => "missing",
        }
    }
}

/// One cell of a sweep, as the aggregation sees it.
#[derive(Clone, Debug)]
pub struct SweepCell {
    /// Cell number (0-based; the Slurm array index).
    pub index: usize,
    /// Readable id, also the directory name under `cells/`.
    pub id: String,
    /// The cell's run directory.
    pub dir: PathBuf,
    /// Axis values other than learner and seed, as (column, value), in axis order.
    pub axes: Vec<(String, String)>,
    /// Experiment name.
    pub experiment: String,
    /// Learner kind.
    pub learner: String,
    /// Seed.
    pub seed: u64,
    /// Code length.
    pub bits: usize,
    /// Outcome.
    pub status: CellStatus,
}

/// Metric columns of `summary.csv`, each written as `<name>_mean` and `<name>_std`.
pub const SUMMARY_METRICS: [&str; 5] = ["acc", "bwt", "forgetting", "fwt", "train_seconds"];

/// Per-cell figures that summary.csv averages.
#[derive(Clone, Debug, Default)]
struct CellFigures {
    values: [Option<f64>; 5],
    /// Mean map over pairs of modalities learned so far, after each stage 1..=T.
    curve: Vec<f64>,
    /// Trained modality of each stage 1..=T.
    schedule: Vec<String>,
}

fn figures_of(run: &RunData) -> CellFigures {
    let m = &run.matrix;
    let fact = |k: &str| run.facts.get(k).and_then(serde_json::Value::as_f64);
    let mut curve = Vec::new();
    for t in 1..m.stages() {
        let learned = |x: &str| m.trained_at(x).is_some_and(|s| s <= t);
        let vals: Vec<f64> = m
            .pairs
            .iter()
            .enumerate()
            .filter(|(_, (q, d))| learned(q) && learned(d))
            .map(|(p, _)| m.values[t][p])
            .collect();
        curve.push(if vals.is_empty() { f64::NAN } else { vals.iter().sum::<f64>() / vals.len() as f64 });
    }
    CellFigures {
        values: [
            cl_metrics::acc(m),
            cl_metrics::bwt(m),
            cl_metrics::forgetting_max_prev(m),
            cl_metrics::fwt(m),
            fact("train_seconds"),
        ],
        curve,
        schedule: m.trained.iter().skip(1).map(|t| t.clone().unwrap_or_default()).collect(),
    }
}

/// Files written by [`aggregate`].
#[derive(Clone, Debug)]
pub struct SweepOutputs {
    /// `sweep.csv`.
    pub sweep_csv: PathBuf,
    /// `summary.csv`.
    pub summary_csv: PathBuf,
    /// Figures (PNG and SVG), empty when no cell finished.
    pub figures: Vec<PathBuf>,
}

/// Writes `dir/sweep.csv`, `dir/summary.csv` and `dir/figures/` from the cells' run
/// directories. `axis_columns` names the axis columns (other than learner and seed) in order;
/// every cell must carry exactly these. `title` heads the figures.
pub fn aggregate(
    cells: &[SweepCell],
    axis_columns: &[String],
    dir: &Path,
    title: &str,
) -> Result<SweepOutputs> {
    let mut runs: BTreeMap<usize, CellFigures> = BTreeMap::new();
    for c in cells.iter().filter(|c| c.status == CellStatus::Ok) {
        let run = load_run(&c.dir)?;
        runs.insert(c.index, figures_of(&run));
    }
    let sweep_csv = dir.join("sweep.csv");
    write_sweep_csv(cells, axis_columns, &sweep_csv)?;
    let summary_csv = dir.join("summary.csv");
    let settings = settings(cells, axis_columns);
    write_summary_csv(&settings, &runs, axis_columns, &summary_csv)?;
    let mut figures = Vec::new();
    if !runs.is_empty() {
        let fig_dir = dir.join("figures");
        let bars = bar_groups(cells, &runs);
        sweep_bars(&bars, title, &fig_dir)?;
        figures.extend(["learners.png", "learners.svg"].map(|f| fig_dir.join(f)));
        let panels = curve_panels(cells, &runs);
        sweep_curves(&panels, title, &fig_dir)?;
        figures.extend(["orderings.png", "orderings.svg"].map(|f| fig_dir.join(f)));
    }
    Ok(SweepOutputs { sweep_csv, summary_csv, figures })
}

/// A column of `n` copies of `value` (None: null, an empty CSV cell).
fn constant(name: &str, value: Option<&str>, n: usize) -> Column {
    Column::new(name.into(), vec![value; n])
}

/// `sweep.csv`: `cell,status,<axis columns>,` then the ten metrics.csv columns, every cell's
/// rows in cell order. Values are copied as text from each metrics.csv, so they are exactly the
/// run's. A failed or missing cell has one row with its axis values and empty metric cells.
fn write_sweep_csv(cells: &[SweepCell], axis_columns: &[String], path: &Path) -> Result<()> {
    let polars_err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| AnalysisError::Polars { path: p, source }
    };
    let mut out: Option<DataFrame> = None;
    for c in cells {
        let frame = if c.status == CellStatus::Ok {
            let csv = c.dir.join("metrics.csv");
            let bytes = std::fs::read(&csv).map_err(|source| AnalysisError::Io {
                op: "read",
                path: csv.clone(),
                source,
            })?;
            // Every column as text: values keep the exact digits the run wrote.
            CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(0))
                .into_reader_with_file_handle(Cursor::new(bytes))
                .finish()
                .map_err(polars_err(&csv))?
                .select(METRICS_COLUMNS)
                .map_err(polars_err(&csv))?
        } else {
            let (seed, bits) = (c.seed.to_string(), c.bits.to_string());
            let fixed: [(&str, Option<&str>); 4] = [
                ("experiment", Some(&c.experiment)),
                ("learner", Some(&c.learner)),
                ("seed", Some(&seed)),
                ("bits", Some(&bits)),
            ];
            let cols = METRICS_COLUMNS
                .iter()
                .map(|&name| {
                    let v = fixed.iter().find(|(k, _)| *k == name).and_then(|(_, v)| *v);
                    constant(name, v, 1)
                })
                .collect();
            DataFrame::new(1, cols).map_err(polars_err(path))?
        };
        let n = frame.height();
        let mut cols = vec![constant("cell", Some(&c.id), n), constant("status", Some(c.status.as_str()), n)];
        for name in axis_columns {
            let v = c.axes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
            cols.push(constant(name, v, n));
        }
        cols.extend(frame.columns().iter().cloned());
        let frame = DataFrame::new(n, cols).map_err(polars_err(path))?;
        match &mut out {
            None => out = Some(frame),
            Some(df) => {
                df.vstack_mut(&frame).map_err(polars_err(path))?;
            }
        }
    }
    let mut df = match out {
        Some(df) => df,
        None => {
            let mut names = vec!["cell".to_string(), "status".to_string()];
            names.extend(axis_columns.iter().cloned());
            names.extend(METRICS_COLUMNS.iter().map(|s| s.to_string()));
            DataFrame::new(0, names.iter().map(|n| constant(n, None, 0)).collect())
                .map_err(polars_err(path))?
        }
    };
    let mut buf = Vec::new();
    CsvWriter::new(&mut buf).include_header(true).finish(&mut df).map_err(polars_err(path))?;
    atomic_write(path, &buf)
}

/// One setting: every axis but the seed. Cells in cell order.
struct Setting<'a> {
    learner: &'a str,
    axes: Vec<Option<&'a str>>,
    cells: Vec<&'a SweepCell>,
}

/// Groups cells by setting, in order of first appearance (so summary.csv follows the cell numbering).
fn settings<'a>(cells: &'a [SweepCell], axis_columns: &[String]) -> Vec<Setting<'a>> {
    let mut out: Vec<Setting<'a>> = Vec::new();
    for c in cells {
        let axes: Vec<Option<&str>> = axis_columns
            .iter()
            .map(|name| c.axes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()))
            .collect();
        match out.iter_mut().find(|s| s.learner == c.learner && s.axes == axes) {
            Some(s) => s.cells.push(c),
            None => out.push(Setting { learner: &c.learner, axes, cells: vec![c] }),
        }
    }
    out
}

/// `summary.csv`: `learner,<axis columns>,n_seeds,n_failed,` then `<metric>_mean,<metric>_std`
/// for acc, bwt, forgetting (max over previous stages − final), fwt and train_seconds. Mean and
/// sample std (n − 1; 0 for one seed) over the finished seeds; empty when none finished.
fn write_summary_csv(
    settings: &[Setting<'_>],
    runs: &BTreeMap<usize, CellFigures>,
    axis_columns: &[String],
    path: &Path,
) -> Result<()> {
    let polars_err = |source| AnalysisError::Polars { path: path.to_path_buf(), source };
    let mut cols =
        vec![Column::new("learner".into(), settings.iter().map(|s| s.learner).collect::<Vec<_>>())];
    for (i, name) in axis_columns.iter().enumerate() {
        cols.push(Column::new(name.as_str().into(), settings.iter().map(|s| s.axes[i]).collect::<Vec<_>>()));
    }
    let finished = |s: &Setting<'_>| s.cells.iter().filter_map(|c| runs.get(&c.index)).collect::<Vec<_>>();
    cols.push(Column::new(
        "n_seeds".into(),
        settings.iter().map(|s| finished(s).len() as u64).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "n_failed".into(),
        settings
            .iter()
            .map(|s| s.cells.iter().filter(|c| c.status == CellStatus::Failed).count() as u64)
            .collect::<Vec<_>>(),
    ));
    for (k, name) in SUMMARY_METRICS.iter().enumerate() {
        let stats: Vec<Option<(f64, f64)>> = settings
            .iter()
            .map(|s| {
                let v: Vec<f64> = finished(s).iter().filter_map(|f| f.values[k]).collect();
                mean_std(&v)
            })
            .collect();
        cols.push(Column::new(
            format!("{name}_mean").into(),
            stats.iter().map(|s| s.map(|s| s.0)).collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            format!("{name}_std").into(),
            stats.iter().map(|s| s.map(|s| s.1)).collect::<Vec<_>>(),
        ));
    }
    let mut df = DataFrame::new(settings.len(), cols).map_err(polars_err)?;
    let mut buf = Vec::new();
    CsvWriter::new(&mut buf).include_header(true).finish(&mut df).map_err(polars_err)?;
    atomic_write(path, &buf)
}

/// Label of a cell's axes other than learner, ordering and seed ("" when there are none).
fn series_label(c: &SweepCell) -> String {
    c.axes
        .iter()
        .filter(|(k, _)| k != ORDERING_COLUMN)
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ACC and forgetting of one cell.
type AccForgetting = (Option<f64>, Option<f64>);

/// Bars: one group per learner (in order of appearance), one bar per combination of the other
/// non-seed, non-ordering axes; spread over seeds and orderings.
fn bar_groups(cells: &[SweepCell], runs: &BTreeMap<usize, CellFigures>) -> Vec<BarGroup> {
    let mut groups: Vec<BarGroup> = Vec::new();
    // Per group, per series: (ACC, forgetting) of every finished cell.
    let mut acc: Vec<Vec<Vec<AccForgetting>>> = Vec::new();
    for c in cells {
        let Some(f) = runs.get(&c.index) else { continue };
        let gi = match groups.iter().position(|g| g.learner == c.learner) {
            Some(i) => i,
            None => {
                groups.push(BarGroup { learner: c.learner.clone(), series: Vec::new() });
                acc.push(Vec::new());
                groups.len() - 1
            }
        };
        let label = series_label(c);
        let si = match groups[gi].series.iter().position(|s| s.label == label) {
            Some(i) => i,
            None => {
                groups[gi].series.push(BarSeries { label, acc: None, forgetting: None, n: 0 });
                acc[gi].push(Vec::new());
                groups[gi].series.len() - 1
            }
        };
        acc[gi][si].push((f.values[0], f.values[2]));
    }
    for (g, vals) in groups.iter_mut().zip(&acc) {
        for (s, v) in g.series.iter_mut().zip(vals) {
            s.n = v.len();
            s.acc = mean_std(&v.iter().filter_map(|x| x.0).collect::<Vec<_>>());
            s.forgetting = mean_std(&v.iter().filter_map(|x| x.1).collect::<Vec<_>>());
        }
    }
    groups
}

/// Curves: one panel per ordering (one panel when the sweep has no ordering axis), one line per
/// learner and other non-seed axes, mean ± std over seeds.
fn curve_panels(cells: &[SweepCell], runs: &BTreeMap<usize, CellFigures>) -> Vec<CurvePanel> {
    let mut panels: Vec<(CurvePanel, Vec<Vec<Vec<f64>>>)> = Vec::new();
    for c in cells {
        let Some(f) = runs.get(&c.index) else { continue };
        let caption = f.schedule.join(" › ");
        let pi = match panels.iter().position(|(p, _)| p.caption == caption) {
            Some(i) => i,
            None => {
                panels.push((
                    CurvePanel { caption, stage_labels: f.schedule.clone(), series: Vec::new() },
                    Vec::new(),
                ));
                panels.len() - 1
            }
        };
        let rest = series_label(c);
        let label = if rest.is_empty() { c.learner.clone() } else { format!("{} ({rest})", c.learner) };
        let (panel, curves) = &mut panels[pi];
        let si = match panel.series.iter().position(|s| s.label == label) {
            Some(i) => i,
            None => {
                panel.series.push(CurveSeries { label, points: Vec::new() });
                curves.push(Vec::new());
                panel.series.len() - 1
            }
        };
        curves[si].push(f.curve.clone());
    }
    panels
        .into_iter()
        .map(|(mut panel, curves)| {
            for (s, runs) in panel.series.iter_mut().zip(&curves) {
                let stages = runs.iter().map(Vec::len).max().unwrap_or(0);
                s.points = (0..stages)
                    .filter_map(|t| {
                        let v: Vec<f64> =
                            runs.iter().filter_map(|r| r.get(t).copied()).filter(|v| v.is_finite()).collect();
                        mean_std(&v).map(|(m, sd)| (t + 1, m, sd))
                    })
                    .collect();
            }
            panel
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv::write_metrics_csv;
    use crate::record::Record;

    /// A finished 2-modality run whose final cross-modal values are `x`.
    fn write_run(dir: &Path, learner: &str, seed: u64, x: f64, order: [&str; 2]) {
        let mut recs = Vec::new();
        for (s, t) in [(0, None), (1, Some(order[0])), (2, Some(order[1]))] {
            for (q, d) in [("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")] {
                let value = if s == 2 && q != d { x } else { 0.5 + 0.1 * s as f64 };
                recs.push(Record {
                    experiment: "e".into(),
                    learner: learner.into(),
                    seed,
                    bits: 16,
                    stage: s,
                    trained: t.map(String::from),
                    query: q.into(),
                    database: d.into(),
                    metric: "map".into(),
                    value,
                });
            }
        }
        write_metrics_csv(&recs, &dir.join("metrics.csv")).unwrap();
        std::fs::write(dir.join("summary.json"), format!(r#"{{"train_seconds": {}}}"#, seed as f64)).unwrap();
    }

    fn cell(
        root: &Path,
        index: usize,
        learner: &str,
        seed: u64,
        order: [&str; 2],
        status: CellStatus,
    ) -> SweepCell {
        let id = format!("c{index}");
        let dir = root.join(&id);
        std::fs::create_dir_all(&dir).unwrap();
        if status == CellStatus::Ok {
            write_run(&dir, learner, seed, 0.1 * seed as f64, order);
        }
        SweepCell {
            index,
            id,
            dir,
            axes: vec![(ORDERING_COLUMN.into(), order.join(">"))],
            experiment: "e".into(),
            learner: learner.into(),
            seed,
            bits: 16,
            status,
        }
    }

    #[test]
    fn aggregates_tidy_rows_and_seed_statistics() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        let cells = vec![
            cell(r, 0, "finetune", 1, ["a", "b"], CellStatus::Ok),
            cell(r, 1, "finetune", 2, ["a", "b"], CellStatus::Ok),
            cell(r, 2, "finetune", 1, ["b", "a"], CellStatus::Ok),
            cell(r, 3, "finetune", 2, ["b", "a"], CellStatus::Failed),
        ];
        let out = aggregate(&cells, &[ORDERING_COLUMN.to_string()], r, "test sweep").unwrap();
        let sweep = std::fs::read_to_string(&out.sweep_csv).unwrap();
        let mut lines = sweep.lines();
        assert_eq!(
            lines.next().unwrap(),
            "cell,status,ordering,experiment,learner,seed,bits,stage,trained,query,database,metric,value"
        );
        // 3 finished cells x 3 stages x 4 pairs, plus one row for the failed cell.
        assert_eq!(sweep.lines().count(), 1 + 3 * 12 + 1);
        assert!(sweep.contains("c0,ok,a>b,e,finetune,1,16,0,,a,a,map,0.5\n"), "{sweep}");
        assert!(sweep.ends_with("c3,failed,b>a,e,finetune,2,16,,,,,,\n"), "{sweep}");
        let summary = std::fs::read_to_string(&out.summary_csv).unwrap();
        let rows: Vec<&str> = summary.lines().collect();
        assert_eq!(
            rows[0],
            "learner,ordering,n_seeds,n_failed,acc_mean,acc_std,bwt_mean,bwt_std,forgetting_mean,\
             forgetting_std,fwt_mean,fwt_std,train_seconds_mean,train_seconds_std"
        );
        assert_eq!(rows.len(), 3);
        // a>b: final cross values 0.1 and 0.2 -> mean 0.15, sample std 0.0707; seconds 1, 2.
        let f: Vec<&str> = rows[1].split(',').collect();
        assert_eq!(&f[..4], ["finetune", "a>b", "2", "0"]);
        assert!((f[4].parse::<f64>().unwrap() - 0.15).abs() < 1e-12, "{}", rows[1]);
        assert!((f[5].parse::<f64>().unwrap() - 0.05f64.sqrt() / 10f64.sqrt()).abs() < 1e-12);
        assert_eq!((f[12], f[13]), ("1.5", "0.7071067811865476"));
        let f: Vec<&str> = rows[2].split(',').collect();
        assert_eq!(&f[..4], ["finetune", "b>a", "1", "1"]);
        assert_eq!(f[5], "0.0", "one seed: std 0");
        for fig in &out.figures {
            assert!(std::fs::metadata(fig).unwrap().len() > 1000, "{}", fig.display());
        }
        assert_eq!(out.figures.len(), 4);
    }

    #[test]
    fn no_finished_cell_still_writes_tables() {
        let tmp = tempfile::tempdir().unwrap();
        let cells = vec![cell(tmp.path(), 0, "er", 1, ["a", "b"], CellStatus::Missing)];
        let out = aggregate(&cells, &[ORDERING_COLUMN.to_string()], tmp.path(), "t").unwrap();
        let summary = std::fs::read_to_string(&out.summary_csv).unwrap();
        assert_eq!(summary.lines().nth(1).unwrap(), "er,a>b,0,0,,,,,,,,,,");
        assert!(out.figures.is_empty());
    }
}
