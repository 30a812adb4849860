//! Figures of one run: forgetting curves and the final mAP matrix, as PNG and SVG.

use crate::error::Result;
use crate::matrix::AccuracyMatrix;
use crate::style::{
    color, draw_header, draw_legend, draw_series_styled, header_height, ink_on_viridis, legend_width_for,
    metric_label, msg, render_both, series_style, text_width, viridis, Dash, KeyAxis, LegendEntry, Marker,
    SeriesStyle, FONT, GRID,
};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// At most this many modalities share one panel of forgetting curves; beyond
/// it (more than 9 pairs) the figure becomes one panel per query modality.
const SINGLE_PANEL_MAX_MODALITIES: usize = 3;

/// Stage tick label: "0 init", "1 image", ...
fn stage_label(m: &AccuracyMatrix, stage: usize) -> String {
    match m.trained.get(stage).and_then(|t| t.as_deref()) {
        _ if stage == 0 => "0 init".to_string(),
        Some(t) => format!("{stage} {t}"),
        None => stage.to_string(),
    }
}

/// x axis of the forgetting curves: tick labels and axis description.
struct StageAxis {
    labels: Vec<String>,
    desc: String,
    /// Extra subtitle line spelling out the schedule when the ticks are bare numbers.
    schedule: Option<String>,
}

/// "0 init", "1 image", ... ticks when they fit in `plot_width` pixels; bare
/// stage numbers plus a schedule line in the subtitle when they would overlap.
fn stage_axis(m: &AccuracyMatrix, plot_width: f64, px: f64) -> StageAxis {
    let labels: Vec<String> = (0..m.stages()).map(|t| stage_label(m, t)).collect();
    let spacing = plot_width / (m.stages() as f64 - 0.5).max(1.0);
    let widest = labels.iter().map(|l| text_width(l, px)).fold(0.0, f64::max);
    if widest + 10.0 <= spacing {
        StageAxis { labels, desc: "stage (trained modality)".into(), schedule: None }
    } else {
        StageAxis {
            schedule: Some(format!("stages: {}", labels.join(" · "))),
            labels: (0..m.stages()).map(|t| t.to_string()).collect(),
            desc: "stage (trained modality: see schedule above)".into(),
        }
    }
}

/// Upper end of the mAP axis: the full 0..1 scale unless all values are small.
fn y_max(m: &AccuracyMatrix) -> f64 {
    let max = m.values.iter().flatten().copied().filter(|v| v.is_finite()).fold(0.0f64, f64::max);
    if max > 0.5 {
        1.0
    } else {
        ((max * 1.15 * 10.0).ceil() / 10.0).max(0.1)
    }
}

/// Line style of a pair: dashed with hollow markers when query = database, so the
/// cross-modal curves (the point of the study) stand out.
/// Markers still vary with `i`, so curves of similar grey differ in print.
fn pair_style(i: usize, intra: bool) -> SeriesStyle {
    let marker = series_style(i).marker;
    if intra {
        SeriesStyle { color: color(i), dash: Dash::Dashed, marker }
    } else {
        SeriesStyle { color: color(i), dash: Dash::Solid, marker }
    }
}

/// One curve: a pair's values over all stages.
struct Curve {
    label: String,
    style: SeriesStyle,
    intra: bool,
    points: Vec<(f64, f64)>,
}

fn curve(m: &AccuracyMatrix, p: usize, label: String, style: SeriesStyle) -> Curve {
    let (q, d) = &m.pairs[p];
    Curve {
        label,
        style,
        intra: q == d,
        points: m
            .values
            .iter()
            .enumerate()
            .filter(|(_, row)| row[p].is_finite())
            .map(|(t, row)| (t as f64, row[p]))
            .collect(),
    }
}

/// Draw one line chart of curves into `area`.
fn draw_curves_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    m: &AccuracyMatrix,
    caption: Option<&str>,
    curves: &[Curve],
    axis: &StageAxis,
    font_scale: f64,
) -> std::result::Result<(), String> {
    let last = m.last_stage() as f64;
    let ymax = y_max(m);
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(10)
        .x_label_area_size((50.0 * font_scale) as u32)
        .y_label_area_size((Y_LABEL_AREA * font_scale) as u32);
    if let Some(c) = caption {
        builder.caption(c, (FONT, 20.0 * font_scale).into_font().style(FontStyle::Bold));
    }
    let x_keys: Vec<f64> = (0..m.stages()).map(|t| t as f64).collect();
    let mut chart =
        builder.build_cartesian_2d(KeyAxis::new(-0.25..last + 0.25, x_keys), 0.0..ymax).map_err(msg)?;
    let label_font = (FONT, 15.0 * font_scale).into_font();
    let desc_font = (FONT, 17.0 * font_scale).into_font();
    chart
        .configure_mesh()
        .x_labels(m.stages())
        .y_labels(11)
        .x_label_formatter(&|x| {
            let t = x.round();
            if t >= 0.0 && (x - t).abs() < 1e-6 {
                axis.labels.get(t as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.1}"))
        .x_desc(axis.desc.as_str())
        .y_desc(metric_label(&m.metric))
        .label_style(label_font)
        .axis_desc_style(desc_font)
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(GRID)
        .draw()
        .map_err(msg)?;
    // Intra-modal curves first so the cross-modal ones (the point of the study) lie on top.
    for c in curves.iter().filter(|c| c.intra).chain(curves.iter().filter(|c| !c.intra)) {
        let stroke = (2.5 * font_scale).max(1.5) as u32;
        draw_series_styled(&chart, &c.points, &c.style, stroke, 4)?;
    }
    Ok(())
}

/// Legend column width in pixels.
const LEGEND_W: u32 = 230;
/// Width of the y tick-label area of a curves panel at font scale 1.
const Y_LABEL_AREA: f64 = 64.0;
/// Font scale of the small-multiple panels.
const PANEL_SCALE: f64 = 0.85;

fn forgetting_size(m: &AccuracyMatrix) -> (u32, u32) {
    let n = m.modalities.len();
    let (w, body_h) = if n <= SINGLE_PANEL_MAX_MODALITIES {
        (1100, 580)
    } else {
        let (cols, rows) = grid(n);
        (cols as u32 * 440 + LEGEND_W, rows as u32 * 380)
    };
    let lines = 1 + usize::from(forgetting_axis(m, w).schedule.is_some());
    (w, body_h + header_height(lines))
}

/// Stage axis of a forgetting figure `w` pixels wide (single panel or one of the grid).
fn forgetting_axis(m: &AccuracyMatrix, w: u32) -> StageAxis {
    let plot_w = w.saturating_sub(LEGEND_W) as f64;
    let n = m.modalities.len();
    let (panel_w, scale) = if n <= SINGLE_PANEL_MAX_MODALITIES {
        (plot_w, 1.0)
    } else {
        (plot_w / grid(n).0 as f64, PANEL_SCALE)
    };
    stage_axis(m, panel_w - Y_LABEL_AREA * scale - 30.0, 15.0 * scale)
}

/// Panel grid (columns, rows) for `n` panels: at most 3 columns.
fn grid(n: usize) -> (usize, usize) {
    let cols = n.clamp(1, 3);
    (cols, n.div_ceil(cols))
}

fn draw_forgetting<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    m: &AccuracyMatrix,
    title: &str,
) -> std::result::Result<(), String> {
    let n = m.modalities.len();
    let single = n <= SINGLE_PANEL_MAX_MODALITIES;
    let metric = metric_label(&m.metric);
    let mut subtitle = vec![if single {
        format!("{metric} of every (query → database) pair after each stage · solid: cross-modal, dashed: same modality")
    } else {
        format!("{metric} after each stage, one panel per query modality · line style (colour, dash, marker): database modality")
    }];
    let (w, _) = root.dim_in_pixel();
    let axis = forgetting_axis(m, w);
    subtitle.extend(axis.schedule.clone());
    let body = draw_header(root, title, &subtitle)?;
    let (plot, legend) = body.split_horizontally(w.saturating_sub(LEGEND_W));
    if single {
        let curves: Vec<Curve> = (0..m.pairs.len())
            .map(|p| {
                let (q, d) = &m.pairs[p];
                curve(m, p, format!("{q}→{d}"), pair_style(p, q == d))
            })
            .collect();
        draw_curves_panel(&plot, m, None, &curves, &axis, 1.0)?;
        let entries: Vec<_> = curves
            .iter()
            .map(|c| LegendEntry { label: c.label.clone(), style: c.style, line: true })
            .collect();
        draw_legend(&legend, "query → database", &entries, &[])?;
    } else {
        let (cols, rows) = grid(n);
        let panels = plot.split_evenly((rows, cols));
        let db_index = |d: &str| m.modalities.iter().position(|x| x == d).unwrap_or(0);
        for (qi, q) in m.modalities.iter().enumerate() {
            let Some(panel) = panels.get(qi) else { break };
            let curves: Vec<Curve> = (0..m.pairs.len())
                .filter(|&p| &m.pairs[p].0 == q)
                .map(|p| {
                    let d = &m.pairs[p].1;
                    curve(m, p, format!("{q}→{d}"), series_style(db_index(d)))
                })
                .collect();
            let caption = format!("query: {q}");
            draw_curves_panel(panel, m, Some(&caption), &curves, &axis, PANEL_SCALE)?;
        }
        let entries: Vec<_> = m
            .modalities
            .iter()
            .enumerate()
            .map(|(i, d)| LegendEntry { label: format!("→ {d}"), style: series_style(i), line: true })
            .collect();
        draw_legend(&legend, "database", &entries, &[])?;
    }
    Ok(())
}

/// Forgetting curves: every pair's metric across stages, written to dir/forgetting.png and dir/forgetting.svg.
///
/// Up to three modalities (nine pairs) share one panel, with a legend right of
/// the plot; with more, there is one panel per query modality, coloured by
/// database modality, so 36 curves stay readable.
pub fn forgetting_curves(m: &AccuracyMatrix, title: &str, dir: &Path) -> Result<()> {
    render_both!(dir, "forgetting", forgetting_size(m), draw_forgetting(m, title))
}

/// Cell edge in pixels for an `n`×`n` heatmap.
fn cell_px(n: usize) -> u32 {
    if n <= 3 {
        130
    } else {
        95
    }
}

/// Heatmap layout in pixels: label areas, top margin, gap and width of the colour bar.
const HEAT_Y_LABELS: u32 = 100;
const HEAT_X_LABELS: u32 = 64;
const HEAT_TOP: u32 = 8;
const HEAT_GAP: u32 = 30;
const HEAT_BAR_W: u32 = 70;

fn heatmap_size(m: &AccuracyMatrix) -> (u32, u32) {
    let side = m.modalities.len().max(1) as u32 * cell_px(m.modalities.len());
    let w = side + HEAT_Y_LABELS + HEAT_GAP + HEAT_BAR_W + 120;
    let h = header_height(1) + side + HEAT_X_LABELS + HEAT_TOP + 30;
    (w.max(640), h)
}

fn draw_heatmap<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    m: &AccuracyMatrix,
    title: &str,
) -> std::result::Result<(), String> {
    let n = m.modalities.len();
    let last = m.last_stage();
    let subtitle = [format!(
        "{} after the last stage ({}) · rows: query, columns: database",
        metric_label(&m.metric),
        stage_label(m, last)
    )];
    let body = draw_header(root, title, &subtitle)?;
    let (w, _) = body.dim_in_pixel();
    let side = n.max(1) as u32 * cell_px(n);
    let (chart_w, chart_h) = (side + HEAT_Y_LABELS, side + HEAT_X_LABELS + HEAT_TOP);
    // Centre grid + colour bar horizontally.
    let left = w.saturating_sub(chart_w + HEAT_GAP + HEAT_BAR_W) / 2;
    let matrix_area = body.clone().shrink((left, 0), (chart_w, chart_h));
    let bar_area = body.shrink((left + chart_w + HEAT_GAP, HEAT_TOP), (HEAT_BAR_W, side));
    let nf = n as f64;
    let centres: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
    let name = |v: f64, flip: bool| -> String {
        let i = (v - 0.5).round();
        if i < 0.0 || (v - 0.5 - i).abs() > 1e-6 {
            return String::new();
        }
        let i = i as usize;
        // Rows are drawn bottom-up, so the first query modality sits at the top.
        let row = if flip { n.checked_sub(i + 1) } else { Some(i) };
        row.and_then(|r| m.modalities.get(r)).cloned().unwrap_or_default()
    };
    let mut chart = ChartBuilder::on(&matrix_area)
        .x_label_area_size(HEAT_X_LABELS)
        .y_label_area_size(HEAT_Y_LABELS)
        .margin_top(HEAT_TOP)
        .build_cartesian_2d(KeyAxis::new(0.0..nf, centres.clone()), KeyAxis::new(0.0..nf, centres))
        .map_err(msg)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(n)
        .y_labels(n)
        .x_label_formatter(&|x| name(*x, false))
        .y_label_formatter(&|y| name(*y, true))
        .x_desc("database")
        .y_desc("query")
        // Cells carry the grid; axis lines would only add a stray frame.
        .axis_style(TRANSPARENT)
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18).into_font().style(FontStyle::Bold))
        .draw()
        .map_err(msg)?;
    let value_font = if n <= 3 { 24 } else { 19 };
    for (qi, q) in m.modalities.iter().enumerate() {
        for (di, d) in m.modalities.iter().enumerate() {
            let (x, y) = (di as f64, (n - 1 - qi) as f64);
            let value = m.get(last, q, d);
            let (fill, text) = match value {
                Some(v) if v.is_finite() => (viridis(v), format!("{v:.3}")),
                Some(_) => (RGBColor(200, 200, 200), "nan".to_string()),
                None => (RGBColor(235, 235, 235), "–".to_string()),
            };
            chart
                .draw_series([
                    Rectangle::new([(x, y), (x + 1.0, y + 1.0)], fill.filled()),
                    Rectangle::new([(x, y), (x + 1.0, y + 1.0)], WHITE.stroke_width(2)),
                ])
                .map_err(msg)?;
            let ink = match value {
                Some(v) if v.is_finite() => ink_on_viridis(v),
                _ => BLACK,
            };
            chart
                .draw_series(std::iter::once(Text::new(
                    text,
                    (x + 0.5, y + 0.5),
                    (FONT, value_font).into_font().color(&ink).pos(Pos::new(HPos::Center, VPos::Center)),
                )))
                .map_err(msg)?;
        }
    }
    // Colour bar: fixed 0..1 so heatmaps of different runs compare by colour.
    let mut bar = ChartBuilder::on(&bar_area)
        .y_label_area_size(0)
        .right_y_label_area_size(HEAT_BAR_W - 22)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .map_err(msg)?;
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&|y| format!("{y:.1}"))
        .label_style((FONT, 14))
        .draw()
        .map_err(msg)?;
    let steps = 100;
    bar.draw_series((0..steps).map(|i| {
        let lo = i as f64 / steps as f64;
        let hi = (i + 1) as f64 / steps as f64;
        Rectangle::new([(0.0, lo), (1.0, hi)], viridis((lo + hi) / 2.0).filled())
    }))
    .map_err(msg)?;
    Ok(())
}

/// Final-stage metric of every (query, database) pair as a heatmap, written to dir/map_matrix.png and dir/map_matrix.svg.
pub fn map_matrix_heatmap(m: &AccuracyMatrix, title: &str, dir: &Path) -> Result<()> {
    render_both!(dir, "map_matrix", heatmap_size(m), draw_heatmap(m, title))
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

fn curves_size(panels: &[CurvePanel]) -> (u32, u32) {
    let (cols, rows) = grid(panels.len());
    ((cols as u32 * 460 + LEGEND_W).max(900), rows as u32 * 380 + header_height(2))
}

fn draw_sweep_curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[CurvePanel],
    title: &str,
) -> std::result::Result<(), String> {
    let labels = labels_in_order(panels.iter().flat_map(|p| p.series.iter().map(|s| s.label.as_str())));
    let subtitle = [
        "mean mAP over all pairs of the modalities learned so far, after each stage".to_string(),
        "line: mean over seeds, band: ± std · one panel per stage ordering".to_string(),
    ];
    let body = draw_header(root, title, &subtitle)?;
    let (w, _) = body.dim_in_pixel();
    let (plot, legend) = body.split_horizontally(w.saturating_sub(LEGEND_W));
    let (cols, rows) = grid(panels.len());
    let areas = plot.split_evenly((rows, cols));
    let top = panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|s| s.points.iter().map(|&(_, m, sd)| m + sd)))
        .fold(0.0f64, f64::max);
    let top = if top > 0.5 { 1.0 } else { ((top * 1.15 * 10.0).ceil() / 10.0).max(0.1) };
    for (panel, area) in panels.iter().zip(&areas) {
        let t = panel.stage_labels.len().max(1);
        let keys: Vec<f64> = (1..=t).map(|s| s as f64).collect();
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .caption(&panel.caption, (FONT, 16).into_font().style(FontStyle::Bold))
            .x_label_area_size(42)
            .y_label_area_size((Y_LABEL_AREA * PANEL_SCALE) as u32)
            .build_cartesian_2d(KeyAxis::new(0.75..t as f64 + 0.25, keys), 0.0..top)
            .map_err(msg)?;
        chart
            .configure_mesh()
            .x_labels(t)
            .y_labels(6)
            .x_label_formatter(&|x| format!("{}", x.round() as i64))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .x_desc("stage")
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(GRID)
            .draw()
            .map_err(msg)?;
        for s in &panel.series {
            let li = labels.iter().position(|l| *l == s.label).unwrap_or(0);
            let style = series_style(li);
            let color = style.color;
            let band: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|&(x, m, sd)| (x as f64, (m + sd).min(top)))
                .chain(s.points.iter().rev().map(|&(x, m, sd)| (x as f64, (m - sd).max(0.0))))
                .collect();
            chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.18).filled()))).map_err(msg)?;
            let line: Vec<(f64, f64)> = s.points.iter().map(|&(x, m, _)| (x as f64, m)).collect();
            draw_series_styled(&chart, &line, &style, 2, 4)?;
        }
    }
    let entries: Vec<_> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| LegendEntry { label: l.clone(), style: series_style(i), line: true })
        .collect();
    draw_legend(&legend, "learner", &entries, &[])?;
    Ok(())
}

/// Sweep curves per stage ordering (mean ± std over seeds), written to dir/orderings.png and
/// dir/orderings.svg.
pub fn sweep_curves(panels: &[CurvePanel], title: &str, dir: &Path) -> Result<()> {
    render_both!(dir, "orderings", curves_size(panels), draw_sweep_curves(panels, title))
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
