//! Generated reports: the figures and tables of a paper from finished runs and sweeps,
//! written as `index.md` and `index.html` (same content) with PNG + SVG figures in `figures/`.
//!
//! Sections, always all present (an empty one says why): learner comparison table,
//! forgetting curves, R matrices, precision–recall by Hamming radius, mAP against code
//! length, sweep bar charts. Runs of one experiment at several code lengths feed the
//! code-length figure; the other sections use the code length with the most runs.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use seqmodal_hamming::PrPoint;

use crate::atomic::atomic_write;
use crate::charts::{
    even_ticks, heatmap, line_figure, unit_axis, zoom_axis, Axis, HeatPanel, Heatmap, LineFigure, Panel,
    Series,
};
use crate::cl_metrics;
use crate::error::{AnalysisError, Result};
use crate::figures::{sweep_bars_as, BarGroup, BarSeries};
use crate::provenance::Provenance;
use crate::report::{fmt_num, fmt_stat, load_run, mean_std, RunData};
use crate::style::{series_style, SeriesStyle};
use crate::sweep::{CellStatus, SweepCell};

/// The PR curve by Hamming radius of one (query, database) pair of a run's final model.
#[derive(Clone, Debug)]
pub struct PairPr {
    /// Query modality.
    pub query: String,
    /// Database modality.
    pub database: String,
    /// One point per radius 0..=bits.
    pub points: Vec<PrPoint>,
}

/// PR curves of one run (identified by its directory).
#[derive(Clone, Debug)]
pub struct RunPr {
    /// The run directory, as in [`RunData::dir`].
    pub dir: PathBuf,
    /// Every pair's curve.
    pub pairs: Vec<PairPr>,
}

/// A sweep directory as read back from its `sweep.csv`.
#[derive(Clone, Debug)]
pub struct SweepData {
    /// Sweep name (the directory name).
    pub name: String,
    /// Axis columns other than learner and seed, in order.
    pub axes: Vec<String>,
    /// Every cell.
    pub cells: Vec<SweepCell>,
}

/// Everything a report is made of.
#[derive(Clone, Debug, Default)]
pub struct ReportInputs {
    /// Report title.
    pub title: String,
    /// A paragraph under the header (e.g. where the runs' settings come from).
    pub note: Option<String>,
    /// Finished runs (not sweep cells).
    pub runs: Vec<RunData>,
    /// Sweeps.
    pub sweeps: Vec<SweepData>,
    /// PR curves of some runs (matched by directory).
    pub pr: Vec<RunPr>,
    /// How the PR curves were obtained (one sentence for the report).
    pub pr_note: String,
    /// The inputs as given on the command line, listed in the report.
    pub sources: Vec<String>,
    /// Which code, command and machine wrote the report (its header says so).
    pub provenance: Option<Provenance>,
}

/// Files written by [`write_report`].
#[derive(Clone, Debug)]
pub struct ReportFiles {
    /// `index.md`.
    pub markdown: PathBuf,
    /// `index.html`.
    pub html: PathBuf,
    /// Figure files, PNG and SVG.
    pub figures: Vec<PathBuf>,
    /// Table files, CSV and LaTeX.
    pub tables: Vec<PathBuf>,
}

/// Reads a sweep directory's `sweep.csv` (columns `cell,status,<axes>,experiment,learner,seed,bits,...`).
pub fn load_sweep(dir: &Path) -> Result<SweepData> {
    let path = dir.join("sweep.csv");
    let bytes = std::fs::read(&path).map_err(|source| AnalysisError::Io {
        op: "read",
        path: path.clone(),
        source,
    })?;
    let polars_err = |source| AnalysisError::Polars { path: path.clone(), source };
    // Every column as text: axis values are labels, never numbers to re-format.
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .into_reader_with_file_handle(Cursor::new(bytes))
        .finish()
        .map_err(polars_err)?;
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    let schema = |column: &str, message: String| AnalysisError::Schema {
        path: path.clone(),
        column: column.into(),
        row: None,
        message,
    };
    let exp_at =
        names.iter().position(|n| n == "experiment").ok_or_else(|| schema("experiment", "missing".into()))?;
    if names.len() < 2 || names[0] != "cell" || names[1] != "status" || exp_at < 2 {
        return Err(schema(
            "cell",
            format!("expected cell,status,<axes>,experiment,... got {}", names.join(",")),
        ));
    }
    let axes: Vec<String> = names[2..exp_at].to_vec();
    let col = |name: &str| -> Result<Vec<Option<String>>> {
        let c = df.column(name).map_err(polars_err)?;
        let s = c.str().map_err(polars_err)?;
        Ok((0..s.len()).map(|i| s.get(i).map(String::from)).collect())
    };
    let (cell, status, exp, learner, seed, bits) =
        (col("cell")?, col("status")?, col("experiment")?, col("learner")?, col("seed")?, col("bits")?);
    let axis_cols: Vec<Vec<Option<String>>> = axes.iter().map(|a| col(a)).collect::<Result<_>>()?;
    let mut cells: Vec<SweepCell> = Vec::new();
    for i in 0..df.height() {
        let Some(id) = cell[i].clone() else { continue };
        if cells.last().is_some_and(|c| c.id == id) || cells.iter().any(|c| c.id == id) {
            continue;
        }
        let number = |v: &Option<String>, column: &str| -> Result<u64> {
            v.as_deref().unwrap_or("").parse::<u64>().map_err(|e| AnalysisError::Schema {
                path: path.clone(),
                column: column.into(),
                row: Some(i + 1),
                message: e.to_string(),
            })
        };
        let status = match status[i].as_deref() {
            Some("ok") => CellStatus::Ok,
            Some("failed") => CellStatus::Failed,
            _ => CellStatus::Missing,
        };
        cells.push(SweepCell {
            index: cells.len(),
            dir: dir.join("cells").join(&id),
            id,
            axes: axes
                .iter()
                .zip(&axis_cols)
                .map(|(a, c)| (a.clone(), c[i].clone().unwrap_or_default()))
                .collect(),
            experiment: exp[i].clone().unwrap_or_default(),
            learner: learner[i].clone().unwrap_or_default(),
            seed: number(&seed[i], "seed")?,
            bits: number(&bits[i], "bits")? as usize,
            status,
        });
    }
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "sweep".into());
    Ok(SweepData { name, axes, cells })
}

/// One cell of a table, bold when among the best in its column.
#[derive(Clone, Debug)]
struct Cell {
    text: String,
    bold: bool,
    /// (mean, std) behind a number cell, for the CSV file.
    stat: Option<(f64, f64)>,
}

impl Cell {
    fn text(text: impl Into<String>) -> Self {
        Cell { text: text.into(), bold: false, stat: None }
    }
}

/// A piece of the report, rendered to markdown and HTML alike.
#[derive(Clone, Debug)]
enum Block {
    Heading(usize, String),
    Para(String),
    /// A table, also written as `tables/<stem>.csv` and `.tex` and linked under it.
    Table {
        head: Vec<String>,
        rows: Vec<Vec<Cell>>,
        stem: String,
        caption: String,
    },
    Figure {
        stem: String,
        caption: String,
    },
    /// The table of contents: every heading below the title.
    Contents,
}

/// Which way a table column is better; `Unranked` columns are never bold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
    Unranked,
}

/// Each learner's role as its runs recorded it (`learner_role` in summary.json): reports order,
/// rank and group learners by role, never by name. A run written before roles existed counts
/// as a strategy.
#[derive(Clone, Debug, Default)]
struct Roles(BTreeMap<String, String>);

impl Roles {
    fn of<'a>(runs: impl Iterator<Item = &'a RunData>) -> Self {
        Roles(runs.filter_map(|r| Some((r.learner.clone(), r.role()?.to_string()))).collect())
    }

    /// Report order of a learner's role: the lower bound, then references, then strategies.
    fn rank(&self, learner: &str) -> u8 {
        match self.0.get(learner).map(String::as_str) {
            Some("lower bound") => 0,
            Some("reference") => 1,
            _ => 2,
        }
    }

    /// Not a strategy: the lower bound and the references, drawn on every page of a split grid.
    fn is_context(&self, learner: &str) -> bool {
        self.rank(learner) < 2
    }

    /// Learners in report order: by role, then by name.
    fn order<'a>(&self, names: impl Iterator<Item = &'a str>) -> Vec<String> {
        let mut v: Vec<String> = names.map(String::from).collect();
        v.sort_by_key(|n| (self.rank(n), n.clone()));
        v.dedup();
        v
    }
}

/// Runs of a learner that is a reference (outside the scenario's rules, e.g. trained on all
/// data so far): shown beside the ranked learners, never ranked.
fn is_reference(runs: &[&RunData]) -> bool {
    runs.first().and_then(|r| r.role()) == Some("reference")
}

/// A file-name-safe version of `s`.
fn slug(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect()
}

/// Mean ± std over seeds of the values of stage `t` of `pair` in `runs`.
fn stage_stats(runs: &[&RunData], t: usize, pair: &(String, String)) -> Option<(f64, f64)> {
    let v: Vec<f64> = runs
        .iter()
        .filter_map(|r| {
            let p = r.matrix.pair_index(&pair.0, &pair.1)?;
            r.matrix.values.get(t).map(|row| row[p]).filter(|v| v.is_finite())
        })
        .collect();
    mean_std(&v)
}

/// One scenario: the runs of one experiment at one code length, by learner.
struct Scenario<'a> {
    experiment: String,
    bits: usize,
    learners: Vec<(String, Vec<&'a RunData>)>,
}

impl Scenario<'_> {
    fn slug(&self) -> String {
        format!("{}-{}bit", slug(&self.experiment), self.bits)
    }

    fn name(&self) -> String {
        format!("{} ({} bits)", self.experiment, self.bits)
    }

    /// The run with the most stages: its pairs and stage labels describe the scenario.
    fn reference(&self) -> Option<&RunData> {
        self.learners.iter().flat_map(|(_, rs)| rs.iter().copied()).max_by_key(|r| r.matrix.stages())
    }
}

/// Writes `out/index.md`, `out/index.html` and `out/figures/`.
pub fn write_report(inputs: &ReportInputs, out: &Path) -> Result<ReportFiles> {
    let fig_dir = out.join("figures");
    std::fs::create_dir_all(&fig_dir).map_err(|source| AnalysisError::Io {
        op: "create",
        path: fig_dir.clone(),
        source,
    })?;
    let roles = Roles::of(inputs.runs.iter());
    let order = roles.order(
        inputs
            .runs
            .iter()
            .map(|r| r.learner.as_str())
            .chain(inputs.sweeps.iter().flat_map(|s| s.cells.iter().map(|c| c.learner.as_str()))),
    );
    // One style per learner across every figure of the report.
    let style_of = |l: &str| series_style(order.iter().position(|x| x == l).unwrap_or(0));

    // experiment -> bits -> learner -> runs
    let mut by_exp: BTreeMap<&str, BTreeMap<usize, BTreeMap<&str, Vec<&RunData>>>> = BTreeMap::new();
    for r in &inputs.runs {
        by_exp
            .entry(&r.experiment)
            .or_default()
            .entry(r.bits)
            .or_default()
            .entry(&r.learner)
            .or_default()
            .push(r);
    }
    let scenarios: Vec<Scenario> = by_exp
        .iter()
        .filter_map(|(exp, by_bits)| {
            // The code length with the most runs (the smaller on a tie) is the scenario's main one.
            let (bits, learners) = by_bits
                .iter()
                .max_by_key(|(b, ls)| (ls.values().map(Vec::len).sum::<usize>(), std::cmp::Reverse(**b)))?;
            let names = roles.order(learners.keys().copied());
            Some(Scenario {
                experiment: exp.to_string(),
                bits: *bits,
                learners: names.iter().map(|n| (n.clone(), learners[n.as_str()].clone())).collect(),
            })
        })
        .collect();

    let mut blocks = vec![Block::Heading(1, inputs.title.clone())];
    blocks.extend(provenance_paragraphs(inputs));
    let n_cells: usize = inputs.sweeps.iter().map(|s| s.cells.len()).sum();
    blocks.push(Block::Para(format!(
        "Generated by `seqmodal report` from {}{}: {}. Every number is \
         recomputed from the runs' `metrics.csv` (training time and memory from `summary.json`); \
         definitions in docs/metrics.md. Mean ± sample std over seeds. Each figure is a PNG here \
         and an SVG (for papers) beside it in `figures/`; each table also a CSV and a LaTeX (booktabs) \
         file in `tables/`.",
        crate::report::count(inputs.runs.len(), "run"),
        if inputs.sweeps.is_empty() {
            String::new()
        } else {
            format!(" and {} ({n_cells} cells)", crate::report::count(inputs.sweeps.len(), "sweep"))
        },
        if inputs.sources.is_empty() {
            "–".to_string()
        } else {
            inputs.sources.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
        }
    )));
    if let Some(note) = &inputs.note {
        blocks.push(Block::Para(note.clone()));
    }
    blocks.push(Block::Contents);
    let mut figures: Vec<String> = Vec::new();

    // 1. Learner comparison.
    blocks.push(Block::Heading(2, "Learner comparison".into()));
    blocks.push(Block::Para(
        "ACC: mean final mAP over cross-modal pairs (↑ higher is better). BWT: final − value when the pair \
         was learned (↑). Forgetting: best earlier value − final (↓ lower is better). FWT: gain on a pair \
         before its last modality was trained (↑), shown only where some pair completes at stage 3 or \
         later (before that it measures stage 1 alone, which the learners train alike). Train s: \
         wall-clock seconds in optimiser steps as each run measured them, on machines shared with \
         other runs, so not ranked. Compute: forward+backward sample passes per sample of the \
         stages' own data (1.00 = fine-tuning; deterministic) (↓). Memory: samples kept from earlier \
         stages (↓). **Bold**: the best mean in the column among continual learners, and every \
         continual learner whose mean ± std interval overlaps the best's (a difference within one \
         standard deviation over seeds is not called a win; with one seed only equal printed values \
         tie); the references `joint` (retrains on all data seen so far) and `paired` (aligned rows \
         of every seen modality) are not ranked."
            .into(),
    ));
    if scenarios.is_empty() {
        blocks.push(Block::Para("No runs given: nothing to compare.".into()));
    }
    for sc in &scenarios {
        blocks.push(Block::Heading(3, sc.name()));
        if !fwt_defined(sc) {
            blocks.push(Block::Para(
                "FWT is left out: with this schedule every pair is complete by stage 2, so FWT would \
                 measure stage 1 alone."
                    .into(),
            ));
        }
        blocks.push(learner_table(sc));
    }

    // 2. Forgetting curves.
    blocks.push(Block::Heading(2, "Forgetting curves".into()));
    blocks.push(Block::Para(
        "mAP after each stage (stage 0: random initialisation, which differs by seed), one line per \
         learner; x ticks name the modality each stage trains; line: mean over seeds, band: ± std \
         over seeds from stage 0 on. First per scenario: the mean over cross-modal pairs (its last point is ACC) \
         and over same-modality pairs; then every query → database pair, with at most 7 learners per \
         figure (finetune, joint and meta on each for reference)."
            .into(),
    ));
    if scenarios.is_empty() {
        blocks.push(Block::Para("No runs given.".into()));
    }
    for sc in &scenarios {
        if sc.reference().is_none() {
            continue;
        }
        blocks.push(Block::Heading(3, sc.name()));
        for (stem, caption) in forgetting_figures(sc, &style_of, &fig_dir)? {
            blocks.push(Block::Figure { stem: stem.clone(), caption });
            figures.push(stem);
        }
    }

    // 3. R matrices.
    blocks.push(Block::Heading(2, "R matrices".into()));
    blocks.push(Block::Para(
        "R[stage][pair]: mAP of each query → database pair after each stage, mean over seeds; one \
         figure per learner, laid out as a grid of panels, one per query modality (rows: stages, \
         named by the modality they train; columns: database modality). Colour scale fixed to 0–1 so \
         heatmaps compare across learners."
            .into(),
    ));
    if scenarios.is_empty() {
        blocks.push(Block::Para("No runs given.".into()));
    }
    for sc in &scenarios {
        let Some(reference) = sc.reference() else { continue };
        let m = &reference.matrix;
        blocks.push(Block::Heading(3, sc.name()));
        let rows: Vec<String> = crate::figures::stage_ticks(m)
            .into_iter()
            .enumerate()
            .map(|(t, (_, n))| format!("{t} {n}"))
            .collect();
        for (l, rs) in &sc.learners {
            let stem = format!("{}-R-{}", sc.slug(), slug(l));
            let value = |t: usize, q: &str, d: &str| {
                let pair = (q.to_string(), d.to_string());
                stage_stats(rs, t, &pair).map_or(f64::NAN, |s| s.0)
            };
            let hm = Heatmap {
                title: format!("R matrix · {l} · {}", sc.name()),
                subtitle: vec![format!(
                    "mAP after each stage, mean over {} seed(s) · one panel per query modality",
                    rs.len()
                )],
                row_desc: "stage".into(),
                col_desc: "database".into(),
                panels: m
                    .modalities
                    .iter()
                    .map(|q| HeatPanel {
                        caption: format!("query: {q}"),
                        rows: rows.clone(),
                        cols: m.modalities.clone(),
                        values: (0..m.stages())
                            .map(|t| m.modalities.iter().map(|d| value(t, q, d)).collect())
                            .collect(),
                    })
                    .collect(),
                cols: m.modalities.len().clamp(1, 3),
            };
            heatmap(&hm, &fig_dir, &stem)?;
            blocks.push(Block::Figure {
                caption: format!("R matrix of {l} on {}.", sc.name()),
                stem: stem.clone(),
            });
            figures.push(stem);
        }
    }

    // Training loss.
    blocks.push(Block::Heading(2, "Training loss".into()));
    blocks.push(Block::Para(
        "From each run's `train_log.csv`: per epoch, the learner's objective (model loss plus its own \
         penalties, mean over the epoch's batches) and the model's three loss terms (unweighted, mean \
         over the epoch's forward passes, replayed and reference passes included); line: mean over \
         seeds, band: ± std. x ticks mark the first epoch of each stage, named by its modality."
            .into(),
    ));
    let mut any_loss = false;
    for sc in &scenarios {
        let Some(reference) = sc.reference() else { continue };
        type Curve<'r> = (String, SeriesStyle, Vec<&'r [crate::train_log::EpochLine]>);
        let curves: Vec<Curve> = sc
            .learners
            .iter()
            .map(|(l, rs)| {
                (l.clone(), style_of(l), rs.iter().filter_map(|r| r.train_log.as_deref()).collect())
            })
            .filter(|c: &Curve| !c.2.is_empty())
            .collect();
        let names: Vec<String> =
            reference.matrix.trained.iter().skip(1).map(|t| t.clone().unwrap_or_default()).collect();
        let stem = format!("{}-loss", sc.slug());
        let subtitle = vec!["line: mean over seeds · band: ± std".into()];
        let title = format!("Training loss · {}", sc.name());
        if crate::train_log::loss_figure(&curves, &names, &title, subtitle, &fig_dir, &stem)? {
            any_loss = true;
            let without = sc.learners.len() - curves.len();
            blocks.push(Block::Heading(3, sc.name()));
            blocks.push(Block::Figure {
                caption: format!(
                    "Training loss per epoch, {}{}.",
                    sc.name(),
                    if without > 0 {
                        format!(" ({without} learner(s) without a training log left out)")
                    } else {
                        String::new()
                    }
                ),
                stem: stem.clone(),
            });
            figures.push(stem);
        }
    }
    if !any_loss {
        blocks.push(Block::Para("No run has a `train_log.csv` (runs written before it existed).".into()));
    }

    // 4. Precision–recall.
    blocks.push(Block::Heading(2, "Precision–recall by Hamming radius".into()));
    blocks.push(Block::Para(format!(
        "Precision and recall of the database items within Hamming radius r of the query, r = 0 … bits, \
         averaged over queries, for the final model; one line per learner (mean over seeds; band: ± std of \
         precision). {}",
        inputs.pr_note
    )));
    let pr_by_dir: BTreeMap<&Path, &RunPr> = inputs.pr.iter().map(|p| (p.dir.as_path(), p)).collect();
    let mut any_pr = false;
    for sc in &scenarios {
        if let Some(stem) = pr_figure(sc, &pr_by_dir, &style_of, &fig_dir)? {
            any_pr = true;
            blocks.push(Block::Heading(3, sc.name()));
            blocks.push(Block::Figure {
                caption: format!("Precision–recall by Hamming radius, {}.", sc.name()),
                stem: stem.clone(),
            });
            figures.push(stem);
        }
    }
    if !any_pr {
        blocks.push(Block::Para("No PR curves available for these runs.".into()));
    }

    // 5. Code length.
    blocks.push(Block::Heading(2, "mAP against code length".into()));
    blocks.push(Block::Para(
        "ACC (mean final cross-modal mAP) of runs of the same experiment at different code lengths; one \
         line per learner, band: ± std over seeds (none with one seed)."
            .into(),
    ));
    let mut any_bits = false;
    for (exp, by_bits) in &by_exp {
        if by_bits.len() < 2 {
            continue;
        }
        let stem = format!("{}-code-length", slug(exp));
        let bits: Vec<usize> = by_bits.keys().copied().collect();
        let names = roles.order(by_bits.values().flat_map(|ls| ls.keys().copied()));
        let series: Vec<Series> = names
            .iter()
            .map(|l| Series {
                label: l.clone(),
                style: style_of(l),
                points: bits
                    .iter()
                    .enumerate()
                    .filter_map(|(i, b)| {
                        let accs: Vec<f64> = by_bits[b]
                            .get(l.as_str())?
                            .iter()
                            .filter_map(|r| cl_metrics::acc(&r.matrix))
                            .collect();
                        mean_std(&accs).map(|(m, s)| (i as f64, m, s))
                    })
                    .collect(),
            })
            // A learner run at one code length only has no trend to show.
            .filter(|s| s.points.len() >= 2)
            .collect();
        if series.is_empty() {
            continue;
        }
        any_bits = true;
        let max = series.iter().flat_map(|s| s.points.iter().map(|p| p.1 + p.2)).fold(0.0, f64::max);
        let min = series.iter().flat_map(|s| s.points.iter().map(|p| p.1 - p.2)).fold(1.0, f64::min);
        let fig = LineFigure {
            title: format!("mAP against code length · {exp}"),
            subtitle: vec![
                "final cross-modal mAP (ACC); line: mean, band: ± std over seeds · y axis zoomed to the data"
                    .into(),
            ],
            panels: vec![Panel { caption: String::new(), series }],
            cols: 1,
            x: Axis {
                range: -0.3..bits.len() as f64 - 0.7,
                ticks: bits.iter().enumerate().map(|(i, b)| (i as f64, b.to_string())).collect(),
                desc: "code length (bits, log scale)".into(),
            },
            y: zoom_axis(min, max, "ACC (cross-modal mAP)"),
            legend: "learner".into(),
            band_from: f64::NEG_INFINITY,
        };
        line_figure(&fig, &fig_dir, &stem)?;
        blocks.push(Block::Heading(3, exp.to_string()));
        blocks.push(Block::Figure {
            caption: format!(
                "ACC of {exp} by code length (seeds per learner: {}).",
                bits.iter()
                    .map(|b| {
                        let n = by_bits[b].values().map(Vec::len).max().unwrap_or(0);
                        format!("{b} bits: {n}")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            stem: stem.clone(),
        });
        figures.push(stem);
    }
    if !any_bits {
        blocks.push(Block::Para("No experiment has runs at more than one code length.".into()));
    }

    // 6. Sweeps.
    blocks.push(Block::Heading(2, "Sweeps".into()));
    blocks.push(Block::Para(
        "Per sweep axis: ACC (↑) and forgetting (↓) per learner and axis value; bar: mean, whisker: ± std \
         over seeds and the other axes."
            .into(),
    ));
    if inputs.sweeps.is_empty() {
        blocks.push(Block::Para("No sweeps given.".into()));
    }
    for sw in &inputs.sweeps {
        blocks.push(Block::Heading(3, format!("sweep {}", sw.name)));
        let finished: Vec<(&SweepCell, RunData)> = sw
            .cells
            .iter()
            .filter(|c| c.status == CellStatus::Ok)
            .map(|c| load_run(&c.dir).map(|r| (c, r)))
            .collect::<Result<_>>()?;
        let failed = sw.cells.len() - finished.len();
        let axes: Vec<Option<&str>> =
            if sw.axes.is_empty() { vec![None] } else { sw.axes.iter().map(|a| Some(a.as_str())).collect() };
        for axis in axes {
            let stem = format!("sweep-{}-{}", slug(&sw.name), slug(axis.unwrap_or("learner")));
            let groups = sweep_groups(&finished, axis);
            if groups.is_empty() {
                continue;
            }
            let title = match axis {
                Some(a) => format!("sweep {} · by {a}", sw.name),
                None => format!("sweep {}", sw.name),
            };
            sweep_bars_as(&groups, &title, &fig_dir, &stem)?;
            blocks.push(Block::Figure {
                caption: format!(
                    "{title}: {} finished cells{}.",
                    finished.len(),
                    if failed > 0 { format!(", {failed} failed or missing") } else { String::new() }
                ),
                stem: stem.clone(),
            });
            if let Some(axis) = axis {
                blocks.extend(sweep_axis_table(&finished, axis, &format!("{stem}-paired")));
            }
            figures.push(stem);
        }
    }

    let tables = write_tables(&blocks, &out.join("tables"))?;
    let markdown = out.join("index.md");
    let html = out.join("index.html");
    atomic_write(&markdown, to_markdown(&blocks).as_bytes())?;
    atomic_write(&html, to_html(&inputs.title, &blocks).as_bytes())?;
    Ok(ReportFiles {
        markdown,
        html,
        figures: figures
            .iter()
            .flat_map(|s| [fig_dir.join(format!("{s}.png")), fig_dir.join(format!("{s}.svg"))])
            .collect(),
        tables,
    })
}

/// Learners per page of the per-pair forgetting grid: more than this and the grid is split.
const GRID_LEARNERS: usize = 7;

/// Pages of the per-pair forgetting grid: (stem suffix, what the page adds, its learners in report
/// order). One page with every learner when they are few; else the strategies, in report order,
/// go on pages of at most [`GRID_LEARNERS`] lines together with the learners that are not
/// strategies (the lower bound and the references, see [`Roles`]), drawn on every page.
fn grid_pages(learners: &[String], roles: &Roles) -> Vec<(String, String, Vec<String>)> {
    if learners.len() <= GRID_LEARNERS {
        return vec![(String::new(), String::new(), learners.to_vec())];
    }
    let context = learners.iter().filter(|l| roles.is_context(l)).count();
    let room = GRID_LEARNERS.saturating_sub(context).max(1);
    let strategies: Vec<&String> = learners.iter().filter(|l| !roles.is_context(l)).collect();
    strategies
        .chunks(room)
        .enumerate()
        .map(|(k, chunk)| {
            let suffix = if k == 0 { "-strategies".to_string() } else { format!("-strategies-{}", k + 1) };
            let what =
                format!("strategies: {}", chunk.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(", "));
            let on_page =
                learners.iter().filter(|l| roles.is_context(l) || chunk.contains(l)).cloned().collect();
            (suffix, what, on_page)
        })
        .collect()
}

/// Mean ± std over a learner's runs of the per-run mean of stage `t` over `pairs` (pairs a run
/// lacks are skipped; a run with none of them adds nothing).
fn pairs_mean_stats(runs: &[&RunData], t: usize, pairs: &[&(String, String)]) -> Option<(f64, f64)> {
    let per_run: Vec<f64> = runs
        .iter()
        .filter_map(|r| {
            let row = r.matrix.values.get(t)?;
            let v: Vec<f64> = pairs
                .iter()
                .filter_map(|(q, d)| r.matrix.pair_index(q, d).map(|p| row[p]))
                .filter(|v| v.is_finite())
                .collect();
            mean_std(&v).map(|s| s.0)
        })
        .collect();
    mean_std(&per_run)
}

/// The forgetting figures of a scenario, in page order: (stem, caption). First the headline
/// (mean over cross-modal pairs, over the cross-modal pairs of modalities already learned
/// when that has 3 stages or more, and over same-modality pairs), then the per-pair grid,
/// split into pages by [`grid_pages`].
fn forgetting_figures(
    sc: &Scenario<'_>,
    style_of: &dyn Fn(&str) -> SeriesStyle,
    fig_dir: &Path,
) -> Result<Vec<(String, String)>> {
    let Some(reference) = sc.reference() else { return Ok(Vec::new()) };
    let m = &reference.matrix;
    let n = m.modalities.len().max(1);
    let schedule: Vec<String> =
        (0..m.stages()).map(|t| format!("{t} {}", m.trained[t].as_deref().unwrap_or("init"))).collect();
    let last = m.last_stage() as f64;
    let x = Axis {
        range: -0.2..last + 0.2,
        ticks: crate::figures::stage_ticks(m),
        desc: "stage (modality trained)".into(),
    };
    let band_note = "line: mean over seeds · band: ± std over seeds (stage 0 too: the random initialisation differs by seed)";
    let mut out = Vec::new();

    // Headline: means over groups of pairs.
    let cross: Vec<&(String, String)> = m.pairs.iter().filter(|(q, d)| q != d).collect();
    let same: Vec<&(String, String)> = m.pairs.iter().filter(|(q, d)| q == d).collect();
    let learned = |t: usize| -> Vec<&(String, String)> {
        let seen: Vec<&str> = m.trained.iter().take(t + 1).filter_map(|s| s.as_deref()).collect();
        cross
            .iter()
            .copied()
            .filter(|(q, d)| seen.contains(&q.as_str()) && seen.contains(&d.as_str()))
            .collect()
    };
    let learned_stages: Vec<usize> = (0..m.stages()).filter(|&t| !learned(t).is_empty()).collect();
    // Pairs averaged at each stage.
    let mean_series = |pairs_at: &[Vec<&(String, String)>]| -> Vec<Series> {
        sc.learners
            .iter()
            .map(|(l, rs)| Series {
                label: l.clone(),
                style: style_of(l),
                points: (0..m.stages())
                    .filter_map(|t| {
                        let pairs = pairs_at.get(t).filter(|p| !p.is_empty())?;
                        pairs_mean_stats(rs, t, pairs).map(|(mu, sd)| (t as f64, mu, sd))
                    })
                    .collect(),
            })
            .collect()
    };
    let mut panels = Vec::new();
    if !cross.is_empty() {
        panels.push(Panel {
            caption: format!("all {} cross-modal pairs (q ≠ d)", cross.len()),
            series: mean_series(&vec![cross.clone(); m.stages()]),
        });
    }
    if learned_stages.len() >= 3 {
        panels.push(Panel {
            caption: "cross-modal pairs of learned modalities".into(),
            series: mean_series(&(0..m.stages()).map(learned).collect::<Vec<_>>()),
        });
    }
    if !same.is_empty() {
        panels.push(Panel {
            caption: format!("all {} same-modality pairs (q = d)", same.len()),
            series: mean_series(&vec![same.clone(); m.stages()]),
        });
    }
    let max = panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|s| s.points.iter().map(|p| p.1 + p.2)))
        .fold(0.0, f64::max);
    let stem = format!("{}-forgetting-mean", sc.slug());
    let fig = LineFigure {
        title: format!("Forgetting curves, mean over pairs · {}", sc.name()),
        subtitle: vec![
            format!("stages: {} · mAP averaged over the pairs of each panel, per run", schedule.join(" · ")),
            band_note.into(),
        ],
        cols: panels.len().max(1),
        panels,
        x: x.clone(),
        y: unit_axis(max, "mean mAP"),
        legend: "learner".into(),
        band_from: 0.0,
    };
    line_figure(&fig, fig_dir, &stem)?;
    out.push((
        stem,
        format!(
            "Mean mAP over pairs after each stage, {}: over all cross-modal pairs (the last point is ACC){}, \
             and over the same-modality pairs.",
            sc.name(),
            if fig.panels.len() == 3 {
                ", over the cross-modal pairs whose two modalities were learned by then (drops are forgetting)"
            } else {
                ""
            }
        ),
    ));

    // Every pair, split into pages of a few learners.
    let max = sc
        .learners
        .iter()
        .flat_map(|(_, rs)| rs.iter().flat_map(|r| r.matrix.values.iter().flatten().copied()))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let names: Vec<String> = sc.learners.iter().map(|(l, _)| l.clone()).collect();
    let roles = Roles::of(sc.learners.iter().flat_map(|(_, rs)| rs.iter().copied()));
    let pages = grid_pages(&names, &roles);
    let split = pages.len() > 1;
    for (suffix, what, on_page) in &pages {
        let panels: Vec<Panel> = m
            .pairs
            .iter()
            .map(|pair| Panel {
                caption: format!("{} → {}", pair.0, pair.1),
                series: sc
                    .learners
                    .iter()
                    .filter(|(l, _)| on_page.contains(l))
                    .map(|(l, rs)| Series {
                        label: l.clone(),
                        style: style_of(l),
                        points: (0..m.stages())
                            .filter_map(|t| stage_stats(rs, t, pair).map(|(mu, sd)| (t as f64, mu, sd)))
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        let stem = format!("{}-forgetting{suffix}", sc.slug());
        let mut title = format!("Forgetting curves · {}", sc.name());
        if split {
            title.push_str(&format!(" · {what}"));
        }
        let fig = LineFigure {
            title,
            subtitle: vec![
                format!("stages: {} · rows: query, columns: database", schedule.join(" · ")),
                band_note.into(),
            ],
            panels,
            cols: n,
            x: x.clone(),
            y: unit_axis(max, "mAP"),
            legend: "learner".into(),
            band_from: 0.0,
        };
        line_figure(&fig, fig_dir, &stem)?;
        let page = if split {
            let context: Vec<&str> =
                on_page.iter().filter(|l| roles.is_context(l)).map(String::as_str).collect();
            format!(" Learners {what}, with {} for reference.", context.join(", "))
        } else {
            String::new()
        };
        out.push((
            stem,
            format!(
                "Forgetting curves of {}: panel (row q, column d) is the pair q → d; stages {}.{page}",
                sc.name(),
                schedule.join(", ")
            ),
        ));
    }
    Ok(out)
}

/// A cell's value on `axis`, if it has that axis.
fn axis_value(c: &SweepCell, axis: &str) -> Option<String> {
    c.axes.iter().find(|(k, _)| k == axis).map(|(_, v)| v.clone())
}

/// The distinct values `value_of` gives the cells (cells without one are skipped) and the
/// learners, each in order of first appearance.
fn values_and_learners(
    finished: &[(&SweepCell, RunData)],
    value_of: impl Fn(&SweepCell) -> Option<String>,
) -> (Vec<String>, Vec<String>) {
    let (mut values, mut learners): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for (c, _) in finished {
        if let Some(v) = value_of(c) {
            if !values.contains(&v) {
                values.push(v);
            }
        }
        if !learners.contains(&c.learner) {
            learners.push(c.learner.clone());
        }
    }
    (values, learners)
}

/// A sweep axis as an ablation table: per learner and axis value, ACC and forgetting (mean ±
/// std) and their paired difference from the axis's first value (matched on seed and every
/// other axis; [`crate::paired`]), bold where significant. None for an axis with one value.
fn sweep_axis_table(finished: &[(&SweepCell, RunData)], axis: &str, stem: &str) -> Option<Block> {
    let value_of = |c: &SweepCell| axis_value(c, axis);
    // What must match for two cells to be a pair: learner, seed and the other axes.
    let key = |c: &SweepCell| {
        let others: Vec<&(String, String)> = c.axes.iter().filter(|(k, _)| k != axis).collect();
        format!("{}|{}|{others:?}", c.learner, c.seed)
    };
    let (values, learners) = values_and_learners(finished, value_of);
    let reference = values.first()?.clone();
    if values.len() < 2 {
        return None;
    }
    type Metric = (&'static str, fn(&RunData) -> Option<f64>);
    let metrics: [Metric; 2] = [
        ("ACC ↑", |r| cl_metrics::acc(&r.matrix)),
        ("forgetting ↓", |r| cl_metrics::forgetting_max_prev(&r.matrix)),
    ];
    let mut head = vec!["learner".to_string(), axis.to_string(), "runs".to_string()];
    for (name, _) in &metrics {
        head.push(name.to_string());
        head.push(format!("Δ {} vs {reference}", name.trim_end_matches([' ', '↑', '↓'])));
    }
    let mut rows = Vec::new();
    for l in &learners {
        let cells_of = |v: &str| -> Vec<&(&SweepCell, RunData)> {
            finished.iter().filter(|(c, _)| &c.learner == l && value_of(c).as_deref() == Some(v)).collect()
        };
        let refs: BTreeMap<String, &RunData> =
            cells_of(&reference).into_iter().map(|(c, r)| (key(c), r)).collect();
        for v in &values {
            let cells = cells_of(v);
            if cells.is_empty() {
                continue;
            }
            let mut row =
                vec![Cell::text(l.clone()), Cell::text(v.clone()), Cell::text(cells.len().to_string())];
            for (_, f) in &metrics {
                let xs: Vec<f64> = cells.iter().filter_map(|(_, r)| f(r)).collect();
                row.push(Cell { text: fmt_stat(&xs, 3), bold: false, stat: mean_std(&xs) });
                if v == &reference {
                    row.push(Cell::text("–"));
                    continue;
                }
                let pairs: Vec<(f64, f64)> =
                    cells.iter().filter_map(|(c, r)| Some((f(r)?, f(refs.get(&key(c))?)?))).collect();
                row.push(match crate::paired::paired_diff(&pairs) {
                    Some(d) => Cell {
                        text: format!(
                            "{}{} ± {}{}",
                            if d.mean >= 0.0 { "+" } else { "" },
                            fmt_num(d.mean, 4),
                            fmt_num(d.se, 4),
                            if d.significant { " †" } else { "" }
                        ),
                        bold: d.significant,
                        stat: Some((d.mean, d.se)),
                    },
                    None => Cell::text("–"),
                });
            }
            rows.push(row);
        }
    }
    Some(Block::Table {
        head,
        rows,
        stem: stem.to_string(),
        caption: format!(
            "By {axis}: mean ± std over runs; Δ: the paired difference from {axis} = {reference} (runs matched \
             on seed and every other axis), mean ± its standard error. † and bold: |t| above Student's \
             two-sided 5 % critical value with n − 1 degrees of freedom (docs/reports.md)."
        ),
    })
}

/// Bar groups of a sweep by one axis: per learner, one bar per axis value, spread over the rest.
fn sweep_groups(finished: &[(&SweepCell, RunData)], axis: Option<&str>) -> Vec<BarGroup> {
    let value_of = |c: &SweepCell| -> String { axis.and_then(|a| axis_value(c, a)).unwrap_or_default() };
    let (values, learners) = values_and_learners(finished, |c| Some(value_of(c)));
    learners
        .iter()
        .map(|l| BarGroup {
            learner: l.clone(),
            series: values
                .iter()
                .filter_map(|v| {
                    let runs: Vec<&RunData> = finished
                        .iter()
                        .filter(|(c, _)| &c.learner == l && value_of(c) == *v)
                        .map(|(_, r)| r)
                        .collect();
                    if runs.is_empty() {
                        return None;
                    }
                    let acc: Vec<f64> = runs.iter().filter_map(|r| cl_metrics::acc(&r.matrix)).collect();
                    let fg: Vec<f64> =
                        runs.iter().filter_map(|r| cl_metrics::forgetting_max_prev(&r.matrix)).collect();
                    Some(BarSeries {
                        label: v.clone(),
                        acc: mean_std(&acc),
                        forgetting: mean_std(&fg),
                        n: runs.len(),
                    })
                })
                .collect(),
        })
        .collect()
}

/// The PR figure of a scenario, when any of its runs has PR curves: one panel per cross-modal
/// pair (up to four), else one panel of the mean over cross-modal pairs.
fn pr_figure(
    sc: &Scenario<'_>,
    pr_by_dir: &BTreeMap<&Path, &RunPr>,
    style_of: &dyn Fn(&str) -> SeriesStyle,
    fig_dir: &Path,
) -> Result<Option<String>> {
    let Some(reference) = sc.reference() else { return Ok(None) };
    let cross: Vec<&(String, String)> = reference.matrix.pairs.iter().filter(|(q, d)| q != d).collect();
    if cross.is_empty() {
        return Ok(None);
    }
    let per_pair = cross.len() <= 4;
    let panel_pairs: Vec<Vec<&(String, String)>> =
        if per_pair { cross.iter().map(|p| vec![*p]).collect() } else { vec![cross.clone()] };
    let mut panels = Vec::new();
    let mut any = false;
    for pairs in &panel_pairs {
        let mut series = Vec::new();
        for (l, rs) in &sc.learners {
            // Per run: the curve averaged over the panel's pairs, radius by radius.
            let curves: Vec<Vec<(f64, f64)>> = rs
                .iter()
                .filter_map(|r| pr_by_dir.get(r.dir.as_path()))
                .filter_map(|pr| {
                    let cs: Vec<&PairPr> = pairs
                        .iter()
                        .filter_map(|(q, d)| pr.pairs.iter().find(|c| &c.query == q && &c.database == d))
                        .collect();
                    if cs.len() != pairs.len() {
                        return None;
                    }
                    let n = cs.iter().map(|c| c.points.len()).min().unwrap_or(0);
                    Some(
                        (0..n)
                            .map(|i| {
                                let k = cs.len() as f64;
                                let rec = cs.iter().map(|c| c.points[i].recall).sum::<f64>() / k;
                                let pre = cs.iter().map(|c| c.points[i].precision).sum::<f64>() / k;
                                (rec, pre)
                            })
                            .collect(),
                    )
                })
                .collect();
            let Some(n) = curves.iter().map(Vec::len).min() else { continue };
            let points: Vec<(f64, f64, f64)> = (0..n)
                .filter_map(|i| {
                    let rec: Vec<f64> = curves.iter().map(|c| c[i].0).collect();
                    let pre: Vec<f64> = curves.iter().map(|c| c[i].1).collect();
                    let (r, _) = mean_std(&rec)?;
                    let (p, s) = mean_std(&pre)?;
                    Some((r, p, s))
                })
                // A radius that retrieves nothing has precision 0 by convention: not a point of the curve.
                .filter(|&(r, _, _)| r > 0.0)
                .collect();
            if !points.is_empty() {
                any = true;
                series.push(Series { label: l.clone(), style: style_of(l), points });
            }
        }
        let caption = if per_pair {
            format!("{} → {}", pairs[0].0, pairs[0].1)
        } else {
            format!("mean over the {} cross-modal pairs", pairs.len())
        };
        panels.push(Panel { caption, series });
    }
    if !any {
        return Ok(None);
    }
    let stem = format!("{}-pr", sc.slug());
    let fig = LineFigure {
        title: format!("Precision–recall by Hamming radius · {}", sc.name()),
        subtitle: vec![format!(
            "final model; points at radius r = 0 … {} (recall grows with r); line: mean over seeds · band: ± std",
            sc.bits
        )],
        cols: panels.len().min(2),
        panels,
        x: Axis { range: 0.0..1.0, ticks: even_ticks(1.0, 0.2, 1), desc: "recall".into() },
        y: Axis { range: 0.0..1.0, ticks: even_ticks(1.0, 0.2, 1), desc: "precision".into() },
        legend: "learner".into(),
        band_from: f64::NEG_INFINITY,
    };
    line_figure(&fig, fig_dir, &stem)?;
    Ok(Some(stem))
}

/// Whether FWT says something in this scenario: some pair completes at stage 3 or later. Before
/// that every FWT term is `R[1][p] − R[0][p]`, the effect of stage 1 alone.
fn fwt_defined(sc: &Scenario<'_>) -> bool {
    sc.reference().is_some_and(|r| {
        let m = &r.matrix;
        m.pairs.iter().any(|(q, d)| m.both_trained_at(q, d).is_some_and(|t| t >= 3))
    })
}

/// Report paragraphs naming the code and machine behind the report and its runs.
fn provenance_paragraphs(inputs: &ReportInputs) -> Vec<Block> {
    let mut out = Vec::new();
    if let Some(p) = &inputs.provenance {
        out.push(Block::Para(format!(
            "Written by {} with {} on {}.",
            p.code(),
            code_span(&p.command),
            p.machine()
        )));
    }
    // Runs by the code that produced them, most runs first.
    let mut by: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut unknown = 0;
    for r in &inputs.runs {
        match r.facts.get("provenance").and_then(|v| serde_json::from_value::<Provenance>(v.clone()).ok()) {
            Some(p) => *by.entry((p.code(), p.cpu.clone())).or_default() += 1,
            None => unknown += 1,
        }
    }
    if !by.is_empty() || unknown > 0 {
        let mut parts: Vec<(usize, String)> = by
            .into_iter()
            .map(|((code, cpu), n)| (n, format!("{} by {code} on {cpu}", crate::report::count(n, "run"))))
            .collect();
        parts.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut text: Vec<String> = parts.into_iter().map(|p| p.1).collect();
        if unknown > 0 {
            text.push(format!(
                "{} without a provenance record (written before seqmodal kept one)",
                crate::report::count(unknown, "run")
            ));
        }
        out.push(Block::Para(format!("Runs: {}.", text.join("; "))));
    }
    out
}

/// The learner comparison table of one scenario.
fn learner_table(sc: &Scenario<'_>) -> Block {
    type Col = (&'static str, Better, usize, fn(&RunData) -> Option<f64>);
    let all: [Col; 7] = [
        ("ACC ↑", Better::Higher, 3, |r| cl_metrics::acc(&r.matrix)),
        ("BWT ↑", Better::Higher, 3, |r| cl_metrics::bwt(&r.matrix)),
        ("forgetting ↓", Better::Lower, 3, |r| cl_metrics::forgetting_max_prev(&r.matrix)),
        ("FWT ↑", Better::Higher, 3, |r| cl_metrics::fwt(&r.matrix)),
        ("train s", Better::Unranked, 1, |r| {
            r.facts.get("train_seconds").and_then(serde_json::Value::as_f64)
        }),
        ("compute ↓", Better::Lower, 2, |r| {
            r.facts.get("compute_ratio").and_then(serde_json::Value::as_f64)
        }),
        ("memory (samples) ↓", Better::Lower, 0, |r| {
            r.facts.get("memory_samples").and_then(serde_json::Value::as_f64)
        }),
    ];
    let show_fwt = fwt_defined(sc);
    let cols: Vec<Col> = all.into_iter().filter(|c| show_fwt || c.0 != "FWT ↑").collect();
    let values: Vec<Vec<Vec<f64>>> = sc
        .learners
        .iter()
        .map(|(_, rs)| cols.iter().map(|c| rs.iter().filter_map(|r| (c.3)(r)).collect()).collect())
        .collect();
    // The best (mean, std) per column among ranked learners.
    let best: Vec<Option<(f64, f64)>> = (0..cols.len())
        .map(|k| {
            let stats = sc
                .learners
                .iter()
                .zip(&values)
                .filter(|((_, rs), _)| !is_reference(rs))
                .filter_map(|(_, v)| mean_std(&v[k]));
            match cols[k].1 {
                Better::Higher => stats.max_by(|a, b| a.0.total_cmp(&b.0)),
                Better::Lower => stats.min_by(|a, b| a.0.total_cmp(&b.0)),
                Better::Unranked => None,
            }
        })
        .collect();
    let ranked = sc.learners.iter().filter(|(_, rs)| !is_reference(rs)).count();
    let mut head = vec!["learner".to_string(), "seeds".to_string()];
    head.extend(cols.iter().map(|c| c.0.to_string()));
    let rows = sc
        .learners
        .iter()
        .zip(&values)
        .map(|((l, rs), v)| {
            let mut row = vec![Cell::text(l.clone()), Cell::text(rs.len().to_string())];
            for (k, c) in cols.iter().enumerate() {
                let text = fmt_stat(&v[k], c.2);
                let stat = mean_std(&v[k]);
                // "Best" needs a comparison: with one ranked learner nothing is bold.
                let bold = ranked > 1
                    && !is_reference(rs)
                    && matches!((stat, best[k]), (Some(a), Some(b)) if ties_with_best(a, b, c.2));
                row.push(Cell { text, bold, stat });
            }
            row
        })
        .collect();
    Block::Table {
        head,
        rows,
        stem: format!("{}-learners", sc.slug()),
        caption: format!(
            "Learners on {}: mean ± std over seeds. Bold: best mean among continual learners and every \
             one whose mean ± std interval overlaps the best's.",
            sc.name()
        ),
    }
}

/// Whether a learner's (mean, std) ties with the best's: their mean ± std intervals overlap,
/// or the means print the same with `digits` decimals.
fn ties_with_best(a: (f64, f64), best: (f64, f64), digits: usize) -> bool {
    (a.0 - best.0).abs() <= a.1 + best.1 || looks_equal(a.0, best.0, digits)
}

/// Whether `a` and `b` print the same with `digits` decimals (as [`fmt_num`] prints them, so
/// -0.0001 and 0.0001 are both "0.000"): equal-looking values are all bold.
fn looks_equal(a: f64, b: f64, digits: usize) -> bool {
    fmt_num(a, digits) == fmt_num(b, digits)
}

/// Anchor ids of the headings, in block order (None for other blocks): a slug of the text,
/// numbered when it repeats (scenario headings repeat in every section). Markdown and HTML use
/// the same ids, so the contents link into both.
fn heading_ids(blocks: &[Block]) -> Vec<Option<String>> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    blocks
        .iter()
        .map(|b| match b {
            Block::Heading(_, text) => {
                let base = slug(&text.to_lowercase());
                let count = seen.entry(base.clone()).or_insert(0usize);
                *count += 1;
                Some(if *count == 1 { base } else { format!("{base}-{count}") })
            }
            _ => None,
        })
        .collect()
}

/// Contents entries: (depth, text, id) of every section (level 2) and subsection (level 3)
/// heading; the subsection text names its section ("R matrices · wiki (64 bits)").
fn contents(blocks: &[Block]) -> Vec<(usize, String, String)> {
    let ids = heading_ids(blocks);
    blocks
        .iter()
        .zip(ids)
        .filter_map(|(b, id)| match (b, id) {
            (Block::Heading(level @ 2..=3, text), Some(id)) => Some((*level - 2, text.clone(), id)),
            _ => None,
        })
        .collect()
}

/// A table as CSV: text columns as they are, number columns as `<name> mean` and `<name> std`
/// (full precision), arrows dropped from the names.
fn table_csv(head: &[String], rows: &[Vec<Cell>]) -> String {
    let clean = |h: &str| h.trim_end_matches(['↑', '↓', ' ']).to_string();
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let numeric: Vec<bool> =
        (0..head.len()).map(|k| rows.iter().any(|r| r.get(k).is_some_and(|c| c.stat.is_some()))).collect();
    let mut out = Vec::new();
    let mut names = Vec::new();
    for (k, h) in head.iter().enumerate() {
        if numeric[k] {
            names.push(quote(&format!("{} mean", clean(h))));
            names.push(quote(&format!("{} std", clean(h))));
        } else {
            names.push(quote(&clean(h)));
        }
    }
    out.push(names.join(","));
    for r in rows {
        let mut fields = Vec::new();
        for (k, c) in r.iter().enumerate() {
            match (numeric[k], c.stat) {
                (true, Some((m, sd))) => {
                    fields.push(m.to_string());
                    fields.push(sd.to_string());
                }
                (true, None) => fields.extend([String::new(), String::new()]),
                (false, _) => fields.push(quote(&c.text)),
            }
        }
        out.push(fields.join(","));
    }
    out.join("\n") + "\n"
}

/// LaTeX-escapes text for a table cell.
fn tex(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '\\' => out.push_str("\\textbackslash{}"),
            '↑' => out.push_str("$\\uparrow$"),
            '↓' => out.push_str("$\\downarrow$"),
            '±' => out.push_str("$\\pm$"),
            '→' => out.push_str("$\\to$"),
            '−' => out.push('-'),
            '†' => out.push_str("\\textsuperscript{\\dag}"),
            _ => out.push(c),
        }
    }
    out
}

/// A table as a LaTeX `table` with booktabs rules (`\usepackage{booktabs}`), bold as `\textbf`.
fn table_tex(head: &[String], rows: &[Vec<Cell>], caption: &str, label: &str) -> String {
    let spec: String = (0..head.len()).map(|k| if k == 0 { 'l' } else { 'r' }).collect();
    let mut out = String::from("% Generated by seqmodal report; needs \\usepackage{booktabs}.\n");
    out.push_str("\\begin{table}[t]\n\\centering\n");
    out.push_str(&format!("\\caption{{{}}}\n\\label{{tab:{label}}}\n", tex(caption)));
    out.push_str(&format!("\\begin{{tabular}}{{{spec}}}\n\\toprule\n"));
    out.push_str(&format!(
        "{} \\\\\n\\midrule\n",
        head.iter().map(|h| tex(h)).collect::<Vec<_>>().join(" & ")
    ));
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .map(|c| if c.bold { format!("\\textbf{{{}}}", tex(&c.text)) } else { tex(&c.text) })
            .collect();
        out.push_str(&format!("{} \\\\\n", cells.join(" & ")));
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n\\end{table}\n");
    out
}

/// Writes every table of `blocks` to `dir/<stem>.csv` and `.tex`; returns the files.
fn write_tables(blocks: &[Block], dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for b in blocks {
        if let Block::Table { head, rows, stem, caption } = b {
            std::fs::create_dir_all(dir).map_err(|source| AnalysisError::Io {
                op: "create",
                path: dir.into(),
                source,
            })?;
            let (csv, texf) = (dir.join(format!("{stem}.csv")), dir.join(format!("{stem}.tex")));
            atomic_write(&csv, table_csv(head, rows).as_bytes())?;
            atomic_write(&texf, table_tex(head, rows, caption, stem).as_bytes())?;
            files.extend([csv, texf]);
        }
    }
    Ok(files)
}

fn to_markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    let ids = heading_ids(blocks);
    for (b, id) in blocks.iter().zip(&ids) {
        match b {
            Block::Heading(level, text) => {
                // An explicit anchor: renderers differ in how they derive heading ids.
                let anchor = id
                    .as_ref()
                    .filter(|_| *level > 1)
                    .map(|id| format!("<a id=\"{id}\"></a>\n"))
                    .unwrap_or_default();
                out.push_str(&format!("{anchor}{} {text}\n\n", "#".repeat(*level)))
            }
            Block::Para(text) => out.push_str(&format!("{text}\n\n")),
            Block::Contents => {
                out.push_str("**Contents**\n\n");
                for (depth, text, id) in contents(blocks) {
                    out.push_str(&format!("{}- [{text}](#{id})\n", "  ".repeat(depth)));
                }
                out.push('\n');
            }
            Block::Table { head, rows, stem, caption } => {
                out.push_str(&format!("| {} |\n", head.join(" | ")));
                out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
                for row in rows {
                    let cells: Vec<String> = row
                        .iter()
                        .map(|c| if c.bold { format!("**{}**", c.text) } else { c.text.clone() })
                        .collect();
                    out.push_str(&format!("| {} |\n", cells.join(" | ")));
                }
                out.push_str(&format!(
                    "\n*{caption}* [CSV](tables/{stem}.csv) · [LaTeX](tables/{stem}.tex)\n\n"
                ));
            }
            Block::Figure { stem, caption } => out.push_str(&format!(
                "![{caption}](figures/{stem}.png)\n\n*{caption}* [SVG](figures/{stem}.svg)\n\n"
            )),
        }
    }
    out
}

/// HTML-escapes `s`.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Escapes `s` and turns the markdown `code` and **bold** spans of our paragraphs into HTML.
fn inline_html(s: &str) -> String {
    let strong = |text: &str, out: &mut String| {
        for (j, p) in text.split("**").enumerate() {
            if j % 2 == 1 {
                out.push_str(&format!("<strong>{p}</strong>"));
            } else {
                out.push_str(p);
            }
        }
    };
    // Code spans as Markdown reads them: a run of n backticks up to the next run of exactly n
    // (so ``a `b` c`` holds backticks; see `code_span`), one padding space trimmed each side.
    let s = esc(s);
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(start) = rest.find('`') {
        let n = rest[start..].len() - rest[start..].trim_start_matches('`').len();
        let body = &rest[start + n..];
        let close = body.char_indices().map(|(i, _)| i).find(|&i| {
            body[i..].starts_with(&"`".repeat(n))
                && !body[i + n..].starts_with('`')
                && (i == 0 || !body[..i].ends_with('`'))
        });
        let Some(end) = close else { break };
        strong(&rest[..start], &mut out);
        let code = &body[..end];
        let code = code.strip_prefix(' ').and_then(|c| c.strip_suffix(' ')).unwrap_or(code);
        out.push_str(&format!("<code>{code}</code>"));
        rest = &body[end + n..];
    }
    strong(rest, &mut out);
    out
}

/// `s` as a Markdown code span: single backticks, or double ones with padding when `s` holds a
/// backtick (a command line with a `--note` that quotes code).
fn code_span(s: &str) -> String {
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

fn to_html(title: &str, blocks: &[Block]) -> String {
    let mut body = String::new();
    let ids = heading_ids(blocks);
    for (b, id) in blocks.iter().zip(&ids) {
        match b {
            Block::Heading(level, text) => {
                let id = id.clone().unwrap_or_default();
                body.push_str(&format!("<h{level} id=\"{id}\">{}</h{level}>\n", esc(text)))
            }
            Block::Para(text) => body.push_str(&format!("<p>{}</p>\n", inline_html(text))),
            Block::Contents => {
                body.push_str("<nav class=\"toc\"><strong>Contents</strong>\n<ul>\n");
                let entries = contents(blocks);
                for (i, (depth, text, id)) in entries.iter().enumerate() {
                    let link = format!("<a href=\"#{id}\">{}</a>", esc(text));
                    let next = entries.get(i + 1).map_or(0, |e| e.0);
                    match (depth, next) {
                        (0, 1) => body.push_str(&format!("<li>{link}<ul>")),
                        (0, _) => body.push_str(&format!("<li>{link}</li>\n")),
                        (_, 1) => body.push_str(&format!("<li>{link}</li>")),
                        _ => body.push_str(&format!("<li>{link}</li></ul></li>\n")),
                    }
                }
                body.push_str("</ul></nav>\n");
            }
            Block::Table { head, rows, stem, caption } => {
                body.push_str("<table>\n<thead><tr>");
                for h in head {
                    body.push_str(&format!("<th>{}</th>", esc(h)));
                }
                body.push_str("</tr></thead>\n<tbody>\n");
                for row in rows {
                    body.push_str("<tr>");
                    for c in row {
                        if c.bold {
                            body.push_str(&format!("<td><strong>{}</strong></td>", esc(&c.text)));
                        } else {
                            body.push_str(&format!("<td>{}</td>", esc(&c.text)));
                        }
                    }
                    body.push_str("</tr>\n");
                }
                body.push_str("</tbody></table>\n");
                body.push_str(&format!(
                    "<p class=\"caption\">{} <a href=\"tables/{stem}.csv\">CSV</a> · <a href=\"tables/{stem}.tex\">LaTeX</a></p>\n",
                    esc(caption)
                ));
            }
            Block::Figure { stem, caption } => body.push_str(&format!(
                "<figure><a href=\"figures/{stem}.svg\"><img src=\"figures/{stem}.png\" alt=\"{c}\"></a>\
                 <figcaption>{c} <a href=\"figures/{stem}.svg\">SVG</a></figcaption></figure>\n",
                c = esc(caption)
            )),
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        esc(title)
    )
}

/// Page style: the figures' font family, readable line length, tables that scroll on small screens.
const CSS: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;color:#222;margin:0;background:#fff}
main{max-width:1200px;margin:0 auto;padding:1.5em 2em;line-height:1.5}
h1{font-size:1.9em;border-bottom:2px solid #333;padding-bottom:.2em}
h2{font-size:1.45em;margin-top:2em;border-bottom:1px solid #bbb}
h3{font-size:1.15em;margin-top:1.5em}
p{max-width:60em}
table{border-collapse:collapse;margin:1em 0;font-size:.95em;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.35em .7em;text-align:right;white-space:nowrap}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
tbody tr:nth-child(even){background:#fafafa}
figure{margin:1.2em 0}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#555;margin-top:.3em}
code{background:#f3f3f3;padding:0 .2em}
nav.toc{background:#f7f7f7;border:1px solid #ddd;padding:.6em 1.2em;margin:1em 0;columns:2;font-size:.92em}
nav.toc ul{margin:.2em 0;padding-left:1.2em}nav.toc>ul{padding-left:0;list-style:none}
p.caption{font-size:.9em;color:#555;margin-top:-.5em}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_may_hold_backticks() {
        assert_eq!(code_span("a b"), "`a b`");
        let cmd = "seqmodal report --note 'see `x.toml`'";
        assert_eq!(code_span(cmd), "`` seqmodal report --note 'see `x.toml`' ``");
        assert_eq!(
            inline_html(&format!("with {} on **cpu**", code_span(cmd))),
            "with <code>seqmodal report --note 'see `x.toml`'</code> on <strong>cpu</strong>"
        );
        assert_eq!(inline_html("a `b` and `c`"), "a <code>b</code> and <code>c</code>");
        // An unclosed backtick stays text; text around spans may be any UTF-8.
        assert_eq!(inline_html("it`s ±"), "it`s ±");
        assert_eq!(inline_html("± `→` ±"), "± <code>→</code> ±");
    }

    #[test]
    fn markdown_and_html_render_the_same_blocks() {
        let blocks = vec![
            Block::Heading(2, "Learner comparison".into()),
            Block::Para("see `metrics.csv` and **bold**".into()),
            Block::Table {
                head: vec!["learner".into(), "ACC ↑".into()],
                rows: vec![vec![
                    Cell::text("a<b"),
                    Cell { text: "0.5".into(), bold: true, stat: Some((0.5, 0.0)) },
                ]],
                stem: "x-learners".into(),
                caption: "cap".into(),
            },
            Block::Figure { stem: "x-forgetting".into(), caption: "c".into() },
        ];
        let md = to_markdown(&blocks);
        assert!(md.contains("## Learner comparison"));
        assert!(md.contains("| a<b | **0.5** |"), "{md}");
        assert!(md.contains("](figures/x-forgetting.png)"));
        let html = to_html("t", &blocks);
        assert!(html.contains("<td>a&lt;b</td><td><strong>0.5</strong></td>"), "{html}");
        assert!(html.contains("<code>metrics.csv</code> and <strong>bold</strong>"), "{html}");
        assert!(html.contains("src=\"figures/x-forgetting.png\""));
        let twice = to_html("t", &[Block::Heading(3, "a b".into()), Block::Heading(3, "a b".into())]);
        assert!(twice.contains("id=\"a-b\"") && twice.contains("id=\"a-b-2\""), "{twice}");
    }

    /// Roles as the shipped learners record them (tests may name learners).
    fn roles() -> Roles {
        let role = |l: &str| match l {
            "finetune" => "lower bound",
            "joint" | "paired" => "reference",
            _ => "strategy",
        };
        let names = ["finetune", "joint", "paired", "ewc", "si", "lwf", "er", "agem", "der", "mer", "meta"];
        Roles(names.iter().map(|l| (l.to_string(), role(l).to_string())).collect())
    }

    #[test]
    fn forgetting_grid_pages_hold_few_learners_and_every_learner() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let roles = roles();
        let few = names(&["finetune", "joint", "ewc"]);
        assert_eq!(grid_pages(&few, &roles), vec![(String::new(), String::new(), few.clone())]);
        let all = roles.order(
            ["finetune", "joint", "paired", "ewc", "si", "lwf", "er", "agem", "der", "mer", "meta"]
                .into_iter(),
        );
        let pages = grid_pages(&all, &roles);
        let suffixes: Vec<&str> = pages.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(suffixes, ["-strategies", "-strategies-2"]);
        assert_eq!(pages[0].1, "strategies: agem, der, er, ewc");
        for (_, _, on_page) in &pages {
            assert!(on_page.len() <= GRID_LEARNERS, "{on_page:?}");
            // The lower bound and the references are on every page.
            for c in ["finetune", "joint", "paired"] {
                assert!(on_page.iter().any(|l| l == c), "{c} missing from {on_page:?}");
            }
        }
        for l in &all {
            assert!(pages.iter().any(|p| p.2.contains(l)), "{l} on no page");
        }
        // Runs without a recorded role are strategies: chunks of the whole room, numbered.
        let many = names(&["a", "b", "c", "d", "e", "f", "g", "h", "i"]);
        let pages = grid_pages(&many, &Roles::default());
        assert_eq!(pages.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(), ["-strategies", "-strategies-2"]);
        assert_eq!(pages[0].2.len(), GRID_LEARNERS);
    }

    #[test]
    fn learners_order_by_role_then_name() {
        let v = roles().order(["meta", "joint", "er", "finetune", "er", "paired"].into_iter());
        assert_eq!(v, ["finetune", "joint", "paired", "er", "meta"]);
    }

    #[test]
    fn one_ranked_learner_is_not_bold() {
        let run = |learner: &str, acc: f64| RunData {
            dir: PathBuf::from(learner),
            matrix: crate::AccuracyMatrix {
                metric: "map".into(),
                modalities: vec!["a".into(), "b".into()],
                trained: vec![None, Some("a".into()), Some("b".into())],
                pairs: [("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")]
                    .iter()
                    .map(|(q, d)| (q.to_string(), d.to_string()))
                    .collect(),
                values: vec![vec![0.1; 4], vec![0.5; 4], vec![acc; 4]],
            },
            experiment: "x".into(),
            learner: learner.into(),
            seed: 1,
            bits: 16,
            facts: serde_json::json!({ "learner_role": roles().0.get(learner).cloned() }),
            train_log: None,
        };
        let bolds = |runs: &[RunData]| {
            let sc = Scenario {
                experiment: "x".into(),
                bits: 16,
                learners: runs.iter().map(|r| (r.learner.clone(), vec![r])).collect(),
            };
            let Block::Table { rows, .. } = learner_table(&sc) else { panic!("not a table") };
            rows.iter().map(|r| r.iter().filter(|c| c.bold).count()).collect::<Vec<_>>()
        };
        // finetune beside the joint reference: nothing to rank against.
        assert_eq!(bolds(&[run("finetune", 0.4), run("joint", 0.9)]), [0, 0]);
        // Two ranked learners: the better ACC (and BWT, forgetting) is bold.
        let b = bolds(&[run("finetune", 0.4), run("er", 0.6)]);
        assert!(b[0] < b[1] && b[1] >= 3, "{b:?}");
    }

    #[test]
    fn bold_compares_the_printed_numbers() {
        // wiki-per-modality BWT means of si and meta: both print 0.000, so both are best.
        assert!(looks_equal(-8.7e-5, 1.25e-5, 3));
        assert!(!looks_equal(-0.0016, 0.0001, 3));
        assert!(looks_equal(0.12349, 0.1231, 3));
    }

    #[test]
    fn numbers_never_print_negative_zero() {
        assert_eq!(fmt_num(-0.0001, 3), "0.000");
        assert_eq!(fmt_num(-0.0016, 3), "-0.002");
        assert_eq!(fmt_stat(&[-0.0004, 0.0002], 3), "0.000 ± 0.000");
        assert_eq!(fmt_stat(&[600.0, 600.0, 600.0], 0), "600");
        assert_eq!(fmt_stat(&[600.0, 602.0], 0), "601 ± 1");
        assert_eq!(fmt_stat(&[0.5, 0.5], 3), "0.500 ± 0.000");
        assert_eq!(fmt_stat(&[2.0], 1), "2.0");
    }

    #[test]
    fn overlapping_intervals_tie_with_the_best() {
        // 3 seeds: 0.50 ± 0.02 against the best 0.53 ± 0.02 is inside one std of each: bold.
        assert!(ties_with_best((0.50, 0.02), (0.53, 0.02), 3));
        assert!(!ties_with_best((0.45, 0.02), (0.53, 0.02), 3));
        // One seed (std 0): only values that print the same tie.
        assert!(ties_with_best((0.5301, 0.0), (0.5304, 0.0), 3));
        assert!(!ties_with_best((0.52, 0.0), (0.53, 0.0), 3));
    }

    #[test]
    fn tables_export_to_csv_and_booktabs() {
        let head: Vec<String> = vec!["learner".into(), "ACC ↑".into()];
        let rows = vec![
            vec![
                Cell::text("er_x"),
                Cell { text: "0.500 ± 0.010".into(), bold: true, stat: Some((0.5, 0.01)) },
            ],
            vec![Cell::text("a,b"), Cell::text("–")],
        ];
        assert_eq!(table_csv(&head, &rows), "learner,ACC mean,ACC std\ner_x,0.5,0.01\n\"a,b\",,\n");
        let t = table_tex(&head, &rows, "Bold: 50% best", "x");
        assert!(t.contains("\\toprule\nlearner & ACC $\\uparrow$ \\\\\n\\midrule\n"), "{t}");
        assert!(t.contains("er\\_x & \\textbf{0.500 $\\pm$ 0.010} \\\\"), "{t}");
        assert!(t.contains("\\caption{Bold: 50\\% best}") && t.contains("\\bottomrule"), "{t}");
    }

    #[test]
    fn contents_link_every_section_and_scenario_with_unique_ids() {
        let blocks = vec![
            Block::Heading(1, "Title".into()),
            Block::Contents,
            Block::Heading(2, "A".into()),
            Block::Heading(3, "x (8 bits)".into()),
            Block::Heading(2, "B".into()),
            Block::Heading(3, "x (8 bits)".into()),
        ];
        let c = contents(&blocks);
        let ids: Vec<&str> = c.iter().map(|e| e.2.as_str()).collect();
        assert_eq!(ids, ["a", "x--8-bits-", "b", "x--8-bits--2"]);
        let md = to_markdown(&blocks);
        assert!(md.contains("- [A](#a)\n  - [x (8 bits)](#x--8-bits-)\n"), "{md}");
        assert!(md.contains("<a id=\"x--8-bits--2\"></a>\n### x (8 bits)"), "{md}");
        let html = to_html("t", &blocks);
        assert!(
            html.contains("<a href=\"#x--8-bits--2\">") && html.contains("id=\"x--8-bits--2\""),
            "{html}"
        );
        assert_eq!(html.matches("<ul>").count(), html.matches("</ul>").count(), "{html}");
    }

    #[test]
    fn slugs_are_file_safe() {
        assert_eq!(slug("fac>fou x/y"), "fac-fou-x-y");
    }
}
