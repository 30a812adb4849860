//! Figures of one run (forgetting curves, the final mAP matrix) and of sweeps (bars, curves per
//! ordering), as PNG and SVG, drawn with the toolkit's line chart and heatmap (`charts`)
//! and, for bars, here.

use crate::charts::{heatmap, line_figure, unit_axis, Axis, HeatPanel, Heatmap, LineFigure, Panel, Series};
use crate::error::Result;
use crate::matrix::AccuracyMatrix;
use crate::render::render_both;
use crate::style::{
    color, draw_header, draw_legend, header_height, legend_width_for, metric_label, msg, series_style, Dash,
    KeyAxis, LegendEntry, Marker, SeriesStyle, FONT, GRID,
};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// At most this many modalities share one panel of forgetting curves; beyond
/// it (more than 9 pairs) the figure becomes one panel per query modality.
const SINGLE_PANEL_MAX_MODALITIES: usize = 3;

/// Width of the y tick-label area of the bar panels.
const Y_LABEL_AREA: f64 = 64.0;

/// Stage ticks: the trained modality of each stage ("init" for stage 0), so the x axis reads
/// as the schedule.
pub(crate) fn stage_ticks(m: &AccuracyMatrix) -> Vec<(f64, String)> {
    (0..m.stages())
        .map(|t| {
            let name = match m.trained.get(t).and_then(|x| x.as_deref()) {
                _ if t == 0 => "init".to_string(),
                Some(x) => x.to_string(),
                None => t.to_string(),
            };
            (t as f64, name)
        })
        .collect()
}

/// Line style of a pair: dashed when query = database, so the cross-modal curves (the point
/// of the study) stand out; markers still vary with `i`, so curves of similar grey differ in print.
fn pair_style(i: usize, intra: bool) -> SeriesStyle {
    let marker = series_style(i).marker;
    SeriesStyle { color: color(i), dash: if intra { Dash::Dashed } else { Dash::Solid }, marker }
}

/// Pair `p`'s values over the stages (no band: one run).
fn pair_points(m: &AccuracyMatrix, p: usize) -> Vec<(f64, f64, f64)> {
    m.values
        .iter()
        .enumerate()
        .filter(|(_, row)| row[p].is_finite())
        .map(|(t, row)| (t as f64, row[p], 0.0))
        .collect()
}

/// Forgetting curves: every pair's metric across stages, written to dir/forgetting.png and dir/forgetting.svg.
///
/// Up to three modalities (nine pairs) share one panel; with more, there is one panel per
/// query modality, styled by database modality, so 36 curves stay readable.
pub fn forgetting_curves(m: &AccuracyMatrix, title: &str, dir: &Path) -> Result<()> {
    let n = m.modalities.len();
    let metric = metric_label(&m.metric);
    let (panels, subtitle, legend) = if n <= SINGLE_PANEL_MAX_MODALITIES {
        let series = (0..m.pairs.len())
            .map(|p| {
                let (q, d) = &m.pairs[p];
                Series {
                    label: format!("{q}→{d}"), style: pair_style(p, q == d), points: pair_points(m, p)
                }
            })
            .collect();
        (
            vec![Panel { caption: String::new(), series }],
            format!("{metric} of every (query → database) pair after each stage · solid: cross-modal, dashed: same modality"),
            "query → database",
        )
    } else {
        let db_index = |d: &str| m.modalities.iter().position(|x| x == d).unwrap_or(0);
        let panels = m
            .modalities
            .iter()
            .map(|q| Panel {
                caption: format!("query: {q}"),
                series: (0..m.pairs.len())
                    .filter(|&p| &m.pairs[p].0 == q)
                    .map(|p| {
                        let d = &m.pairs[p].1;
                        Series {
                            label: format!("→ {d}"),
                            style: series_style(db_index(d)),
                            points: pair_points(m, p),
                        }
                    })
                    .collect(),
            })
            .collect();
        (
            panels,
            format!(
                "{metric} after each stage, one panel per query modality · line style: database modality"
            ),
            "database",
        )
    };
    let max = m.values.iter().flatten().copied().filter(|v| v.is_finite()).fold(0.0f64, f64::max);
    let fig = LineFigure {
        title: title.into(),
        subtitle: vec![subtitle],
        cols: panels.len().min(3),
        panels,
        x: Axis {
            range: -0.2..m.last_stage() as f64 + 0.2,
            ticks: stage_ticks(m),
            desc: "stage (modality trained)".into(),
        },
        y: unit_axis(max, &metric),
        legend: legend.into(),
        band_from: f64::INFINITY,
    };
    line_figure(&fig, dir, "forgetting")
}

/// The final query × database matrix of a run, written to dir/map_matrix.png and .svg.
pub fn map_matrix_heatmap(m: &AccuracyMatrix, title: &str, dir: &Path) -> Result<()> {
    let last = m.values.last().cloned().unwrap_or_default();
    let value = |q: &str, d: &str| m.pair_index(q, d).and_then(|p| last.get(p).copied()).unwrap_or(f64::NAN);
    let fig = Heatmap {
        title: title.into(),
        subtitle: vec![format!(
            "final {} after stage {} · rows: query, columns: database",
            metric_label(&m.metric),
            m.last_stage()
        )],
        row_desc: "query".into(),
        col_desc: "database".into(),
        panels: vec![HeatPanel {
            caption: String::new(),
            rows: m.modalities.clone(),
            cols: m.modalities.clone(),
            values: m.modalities.iter().map(|q| m.modalities.iter().map(|d| value(q, d)).collect()).collect(),
        }],
        cols: 1,
    };
    heatmap(&fig, dir, "map_matrix")
}

/// One learner's bars in the sweep bar chart.
#[derive(Clone, Debug)]
pub struct BarGroup {
    /// Learner name (the group's tick label).
    pub learner: String,
    /// One bar per setting of the other axes, in the legend's order.
    pub series: Vec<BarSeries>,
}

/// One bar pair (ACC and forgetting) of a [`BarGroup`].
#[derive(Clone, Debug)]
pub struct BarSeries {
    /// Setting of the other axes ("" when the sweep varies only learner, ordering and seed).
    pub label: String,
    /// Mean and std of ACC.
    pub acc: Option<(f64, f64)>,
    /// Mean and std of forgetting.
    pub forgetting: Option<(f64, f64)>,
    /// Runs behind the bar.
    pub n: usize,
}

/// One panel of the sweep curves: one stage ordering.
#[derive(Clone, Debug)]
pub struct CurvePanel {
    /// Panel title (the ordering).
    pub caption: String,
    /// Trained modality of stages 1..=T.
    pub stage_labels: Vec<String>,
    /// One line per setting.
    pub series: Vec<CurveSeries>,
}

/// One line of a [`CurvePanel`].
#[derive(Clone, Debug)]
pub struct CurveSeries {
    /// Legend label; equal labels share a colour across panels.
    pub label: String,
    /// (stage, mean, std) for stages 1..=T.
    pub points: Vec<(usize, f64, f64)>,
}

/// Distinct bar/curve labels in order of first appearance, for stable colours.
fn labels_in_order<'a>(labels: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in labels {
        if !out.iter().any(|x| x == l) {
            out.push(l.to_string());
        }
    }
    out
}

fn bars_size(groups: &[BarGroup]) -> (u32, u32) {
    let bars: usize = groups.iter().map(|g| g.series.len().max(1)).sum();
    let panel_w = (bars as u32 * 46 + groups.len() as u32 * 30 + 140).clamp(480, 900);
    (2 * panel_w + legend_width(groups), 560 + header_height(2))
}

/// The legend column is only drawn when bars differ by more than their learner.
fn legend_width(groups: &[BarGroup]) -> u32 {
    let labelled = groups.iter().flat_map(|g| &g.series).any(|s| !s.label.is_empty());
    if labelled {
        // Entries read "N  label" (the number is also drawn on the bars).
        let numbered: Vec<String> =
            groups.iter().flat_map(|g| g.series.iter().map(|s| format!("00  {}", s.label))).collect();
        legend_width_for("setting", numbered.iter().map(String::as_str))
    } else {
        0
    }
}

fn draw_bars_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    groups: &[BarGroup],
    labels: &[String],
    caption: &str,
    value: fn(&BarSeries) -> Option<(f64, f64)>,
) -> std::result::Result<(), String> {
    let all: Vec<(f64, f64)> = groups.iter().flat_map(|g| g.series.iter().filter_map(value)).collect();
    let hi = all.iter().map(|(m, s)| m + s).fold(0.0f64, f64::max);
    let lo = all.iter().map(|(m, s)| m - s).fold(0.0f64, f64::min);
    let top = if hi > 0.5 { hi.max(1.0).min(hi * 1.12) } else { ((hi * 1.2 * 10.0).ceil() / 10.0).max(0.1) };
    let bottom = if lo < 0.0 { (lo * 1.2 * 20.0).floor() / 20.0 } else { 0.0 };
    let n = groups.len();
    let keys: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption(caption, (FONT, 20).into_font().style(FontStyle::Bold))
        .x_label_area_size(44)
        .y_label_area_size(Y_LABEL_AREA as u32)
        .build_cartesian_2d(KeyAxis::new(-0.6..n as f64 - 0.4, keys), bottom..top)
        .map_err(msg)?;
    chart
        .configure_mesh()
        .x_labels(n)
        .y_labels(8)
        .x_label_formatter(&|x| {
            let i = x.round();
            if i >= 0.0 && (x - i).abs() < 1e-6 {
                groups.get(i as usize).map(|g| g.learner.clone()).unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.2}"))
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 17))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(GRID)
        .draw()
        .map_err(msg)?;
    for (gi, g) in groups.iter().enumerate() {
        let k = g.series.len().max(1) as f64;
        // Narrow bars get shorter, smaller value labels so neighbours' labels do not overlap.
        let (digits, value_px) = if g.series.len() > 3 { (2, 12) } else { (3, 14) };
        let width = 0.8 / k;
        for (si, s) in g.series.iter().enumerate() {
            let Some((mean, std)) = value(s) else { continue };
            let li = labels.iter().position(|l| *l == s.label).unwrap_or(0);
            let fill = color(li);
            let x0 = gi as f64 - 0.4 + si as f64 * width + width * 0.08;
            let x1 = x0 + width * 0.84;
            let xc = (x0 + x1) / 2.0;
            chart
                .draw_series(std::iter::once(Rectangle::new([(x0, 0.0), (x1, mean)], fill.filled())))
                .map_err(msg)?;
            if labels.len() > 1 {
                // The setting's number in a white disc at the bar's foot (the legend numbers
                // them too): bars stay identifiable where colours print as similar greys.
                let foot = (xc, bottom.max(0.0) + (top - bottom) * 0.035);
                chart
                    .draw_series([
                        Circle::new(foot, 9, WHITE.filled()),
                        Circle::new(foot, 9, BLACK.stroke_width(1)),
                    ])
                    .map_err(msg)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        (li + 1).to_string(),
                        foot,
                        (FONT, 12).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center)),
                    )))
                    .map_err(msg)?;
            }
            if std > 0.0 {
                // Whisker and caps drawn as paths: plotters' ErrorBar needs another cargo feature.
                let cap = width * 0.2;
                let (a, b) = (mean - std, mean + std);
                let paths = [
                    vec![(xc, a), (xc, b)],
                    vec![(xc - cap, a), (xc + cap, a)],
                    vec![(xc - cap, b), (xc + cap, b)],
                ];
                chart
                    .draw_series(paths.into_iter().map(|p| PathElement::new(p, BLACK.stroke_width(2))))
                    .map_err(msg)?;
            }
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{mean:.digits$}"),
                    (xc, mean.max(0.0) + std + (top - bottom) * 0.015),
                    (FONT, value_px).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom)),
                )))
                .map_err(msg)?;
        }
    }
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    groups: &[BarGroup],
    title: &str,
) -> std::result::Result<(), String> {
    let runs: Vec<String> =
        labels_in_order(groups.iter().flat_map(|g| g.series.iter().map(|s| s.label.as_str())));
    let n_runs: Vec<usize> = groups.iter().flat_map(|g| g.series.iter().map(|s| s.n)).collect();
    let (lo, hi) = (n_runs.iter().min().copied().unwrap_or(0), n_runs.iter().max().copied().unwrap_or(0));
    let runs_text = if lo == hi { format!("{lo} runs") } else { format!("{lo}–{hi} runs") };
    let subtitle = [
        "final cross-modal mAP (ACC) and forgetting (best earlier value − final) per learner".to_string(),
        format!("bar: mean · whisker: ± std over seeds and orderings ({runs_text} per bar)"),
    ];
    let body = draw_header(root, title, &subtitle)?;
    let (w, _) = body.dim_in_pixel();
    let (plots, legend) = body.split_horizontally(w.saturating_sub(legend_width(groups)));
    let panels = plots.split_evenly((1, 2));
    draw_bars_panel(&panels[0], groups, &runs, "ACC (higher is better)", |s| s.acc)?;
    draw_bars_panel(&panels[1], groups, &runs, "forgetting (lower is better)", |s| s.forgetting)?;
    if legend_width(groups) > 0 {
        let entries: Vec<_> =
            runs.iter().enumerate().map(|(i, l)| bar_legend_entry(&format!("{}  {l}", i + 1), i)).collect();
        draw_legend(&legend, "setting", &entries, &[])?;
    }
    Ok(())
}

/// Sweep bar chart: ACC and forgetting per learner with ± std error bars, written to
/// dir/learners.png and dir/learners.svg.
pub fn sweep_bars(groups: &[BarGroup], title: &str, dir: &Path) -> Result<()> {
    sweep_bars_as(groups, title, dir, "learners")
}

/// [`sweep_bars`] written to dir/`stem`.png and dir/`stem`.svg (one chart per sweep axis in a report).
pub fn sweep_bars_as(groups: &[BarGroup], title: &str, dir: &Path, stem: &str) -> Result<()> {
    render_both!(dir, stem, bars_size(groups), draw_bars(groups, title))
}

/// Legend row of bar colour `i`: a filled square, no line.
fn bar_legend_entry(label: &str, i: usize) -> LegendEntry {
    LegendEntry {
        label: label.to_string(),
        style: SeriesStyle { color: color(i), dash: Dash::Solid, marker: Marker::Square },
        line: false,
    }
}

/// Sweep curves per stage ordering (mean ± std over seeds), written to dir/orderings.png and
/// dir/orderings.svg.
pub fn sweep_curves(panels: &[CurvePanel], title: &str, dir: &Path) -> Result<()> {
    let labels = labels_in_order(panels.iter().flat_map(|p| p.series.iter().map(|s| s.label.as_str())));
    let t = panels.iter().map(|p| p.stage_labels.len()).max().unwrap_or(1).max(1);
    let max = panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|s| s.points.iter().map(|&(_, m, sd)| m + sd)))
        .fold(0.0f64, f64::max);
    let fig = LineFigure {
        title: title.into(),
        subtitle: vec![
            "mean mAP over all pairs of the modalities learned so far, after each stage".into(),
            "line: mean over seeds, band: ± std · one panel per stage ordering (its caption)".into(),
        ],
        cols: panels.len().clamp(1, 3),
        panels: panels
            .iter()
            .map(|p| Panel {
                caption: p.caption.clone(),
                series: p
                    .series
                    .iter()
                    .map(|s| Series {
                        label: s.label.clone(),
                        style: series_style(labels.iter().position(|l| *l == s.label).unwrap_or(0)),
                        points: s.points.iter().map(|&(x, m, sd)| (x as f64, m, sd)).collect(),
                    })
                    .collect(),
            })
            .collect(),
        x: Axis {
            range: 0.75..t as f64 + 0.25,
            ticks: (1..=t).map(|s| (s as f64, s.to_string())).collect(),
            desc: "stage".into(),
        },
        y: unit_axis(max, "mean mAP"),
        legend: "learner".into(),
        band_from: f64::NEG_INFINITY,
    };
    line_figure(&fig, dir, "orderings")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run over `mods` trained in order, with plausible forgetting.
    pub(crate) fn demo(mods: &[&str]) -> AccuracyMatrix {
        let n = mods.len();
        let pairs: Vec<(String, String)> =
            mods.iter().flat_map(|q| mods.iter().map(move |d| (q.to_string(), d.to_string()))).collect();
        let values = (0..=n)
            .map(|t| {
                (0..n * n)
                    .map(|p| {
                        let (qi, di) = (p / n, p % n);
                        let learned = qi.max(di) + 1;
                        let base = 0.08 + 0.01 * (p % 5) as f64;
                        if t < learned {
                            base + 0.03 * t as f64
                        } else {
                            let peak = 0.55 + 0.35 * (((p * 7) % 10) as f64 / 10.0);
                            peak - 0.06 * (t - learned) as f64 * (1.0 + (p % 3) as f64)
                        }
                    })
                    .collect()
            })
            .collect();
        AccuracyMatrix {
            metric: "map".into(),
            modalities: mods.iter().map(|s| s.to_string()).collect(),
            trained: std::iter::once(None).chain(mods.iter().map(|m| Some(m.to_string()))).collect(),
            values,
            pairs,
        }
    }

    fn check_dir(dir: &Path) {
        for stem in ["forgetting", "map_matrix"] {
            let png = std::fs::read(dir.join(format!("{stem}.png"))).unwrap();
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{stem}.png is not a PNG");
            let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
            assert!(svg.contains("<svg"), "{stem}.svg is not an SVG");
        }
    }

    #[test]
    fn renders_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let m = demo(&["image", "text"]);
        forgetting_curves(&m, "finetune on wiki", dir.path()).unwrap();
        map_matrix_heatmap(&m, "finetune on wiki", dir.path()).unwrap();
        check_dir(dir.path());
        // No temp files left next to the figures.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn renders_many_modalities() {
        let dir = tempfile::tempdir().unwrap();
        let m = demo(&["fac", "fou", "kar", "mor", "pix", "zer"]);
        forgetting_curves(&m, "meta on mfeat", dir.path()).unwrap();
        map_matrix_heatmap(&m, "meta on mfeat", dir.path()).unwrap();
        check_dir(dir.path());
    }

    /// Renders sample figures to /tmp/fig_check for a human to look at:
    /// `cargo test -p seqmodal-analysis -- --ignored fig_check`.
    #[test]
    #[ignore]
    fn fig_check() {
        let root = Path::new("/tmp/fig_check");
        for (name, mods) in [
            ("two", &["image", "text"][..]),
            ("three", &["image", "text", "audio"][..]),
            ("six", &["fac", "fou", "kar", "mor", "pix", "zer"][..]),
            ("long", &["image", "text", "audio", "video", "depth", "thermal"][..]),
            ("one", &["image"][..]),
        ] {
            let m = demo(mods);
            let dir = root.join(name);
            let title = format!("finetune · {} modalities · 64 bits · seed 7", mods.len());
            forgetting_curves(&m, &title, &dir).unwrap();
            map_matrix_heatmap(&m, &title, &dir).unwrap();
            check_dir(&dir);
        }
    }
}
