//! The figure toolkit: one line-chart renderer (small multiples with ± std bands: forgetting
//! curves, PR curves, mAP against code length, loss curves, sweep curves) and one heatmap
//! renderer (panels on one 0..1 colour scale: R matrices, a run's final mAP matrix).

use crate::error::Result;
use crate::render::render_both;
use crate::style::{
    draw_header, draw_legend, draw_series_styled, header_height, ink_on_viridis, legend_width_for, msg,
    text_width, viridis, KeyAxis, LegendEntry, SeriesStyle, AXIS_PX, CAPTION_PX, FONT, GRID, TEXT_PX,
    TICK_PX,
};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// One line: (x, mean, std) points; std 0 draws no band.
#[derive(Clone, Debug)]
pub(crate) struct Series {
    /// Legend label (a learner); equal labels share a legend row.
    pub label: String,
    /// Line style, fixed per learner across the report.
    pub style: SeriesStyle,
    /// (x, mean, std).
    pub points: Vec<(f64, f64, f64)>,
}

/// One panel of a [`LineFigure`].
#[derive(Clone, Debug)]
pub(crate) struct Panel {
    /// Panel caption, e.g. "image → text".
    pub caption: String,
    /// Lines.
    pub series: Vec<Series>,
}

/// An axis with explicit ticks.
#[derive(Clone, Debug)]
pub(crate) struct Axis {
    /// Plotted range.
    pub range: std::ops::Range<f64>,
    /// Tick positions and their labels.
    pub ticks: Vec<(f64, String)>,
    /// Axis description with unit.
    pub desc: String,
}

/// A grid of line charts sharing axes and one legend.
#[derive(Clone, Debug)]
pub(crate) struct LineFigure {
    /// Title.
    pub title: String,
    /// Subtitle lines (what is plotted, what the band is).
    pub subtitle: Vec<String>,
    /// Panels, filled row by row.
    pub panels: Vec<Panel>,
    /// Panels per row.
    pub cols: usize,
    /// x axis.
    pub x: Axis,
    /// y axis.
    pub y: Axis,
    /// Legend heading.
    pub legend: String,
    /// Bands only from this x on (points before it are shared by every series, e.g. the
    /// random initialisation, and a dozen stacked bands there would read as one dark one).
    pub band_from: f64,
}

/// Evenly spaced ticks 0, step, ..., up to `top`, labelled with `digits` decimals.
pub(crate) fn even_ticks(top: f64, step: f64, digits: usize) -> Vec<(f64, String)> {
    let n = (top / step).round() as usize;
    (0..=n).map(|i| (i as f64 * step, format!("{:.digits$}", i as f64 * step))).collect()
}

/// A y axis from 0 to a round top that holds `max` (the full 0..1 when values pass 0.5).
pub(crate) fn unit_axis(max: f64, desc: &str) -> Axis {
    let top = if max > 0.5 { 1.0 } else { ((max * 1.15 * 10.0).ceil() / 10.0).clamp(0.1, 1.0) };
    let step = if top > 0.5 { 0.2 } else { 0.1 };
    Axis { range: 0.0..top, ticks: even_ticks(top, step, 1), desc: desc.into() }
}

/// A y axis fitted to the data range `min..max` (within 0..1) with a little margin: for line
/// charts whose differences would vanish on the full 0..1 scale (code length).
pub(crate) fn zoom_axis(min: f64, max: f64, desc: &str) -> Axis {
    let lo = (((min - 0.05) * 10.0).floor() / 10.0).clamp(0.0, 1.0);
    let hi = (((max + 0.05) * 10.0).ceil() / 10.0).clamp(lo + 0.1, 1.0);
    let step = if hi - lo <= 0.4 { 0.05 } else { 0.1 };
    let n = ((hi - lo) / step).round() as usize;
    let ticks = (0..=n).map(|i| lo + i as f64 * step).map(|v| (v, format!("{v:.2}"))).collect();
    Axis { range: lo..hi, ticks, desc: desc.into() }
}

/// Opacity of a ± std band: low, because up to a dozen learners' bands overlap in one panel.
const BAND_ALPHA: f64 = 0.07;

/// Panel size (with its own axis labels) and font scale for a grid `cols` wide.
fn panel_geometry(cols: usize) -> (u32, u32, f64) {
    match cols {
        0..=2 => (540, 420, 1.0),
        3..=4 => (400, 330, 0.9),
        _ => (300, 270, 1.1),
    }
}

/// Sizes of the y (left) and x (bottom) label areas of a panel at font `scale`.
fn label_areas(scale: f64) -> (u32, u32) {
    ((64.0 * scale) as u32, (48.0 * scale) as u32)
}

/// Pixel layout of the panel grid: column widths and row heights. Every panel shares the axes,
/// so in a full grid of several panels only the left column carries y labels and the bottom
/// row x labels, and their space goes to the plots; otherwise every panel has its own.
struct GridLayout {
    cols: usize,
    rows: usize,
    shared: bool,
    widths: Vec<u32>,
    heights: Vec<u32>,
    scale: f64,
}

impl GridLayout {
    fn new(fig: &LineFigure) -> Self {
        let cols = fig.cols.max(1);
        let rows = fig.panels.len().div_ceil(cols).max(1);
        let (pw, ph, scale) = panel_geometry(cols);
        let shared = fig.panels.len() > 1 && fig.panels.len() == rows * cols;
        let (lw, lh) = label_areas(scale);
        let (widths, heights) = if shared {
            let w = (0..cols).map(|c| pw - lw + if c == 0 { lw } else { 0 }).collect();
            let h = (0..rows).map(|r| ph - lh + if r + 1 == rows { lh } else { 0 }).collect();
            (w, h)
        } else {
            (vec![pw; cols], vec![ph; rows])
        };
        GridLayout { cols, rows, shared, widths, heights, scale }
    }

    fn width(&self) -> u32 {
        self.widths.iter().sum()
    }

    fn height(&self) -> u32 {
        self.heights.iter().sum()
    }

    /// Label area sizes (y, x) of panel `i`.
    fn labels(&self, i: usize) -> (u32, u32) {
        let (lw, lh) = label_areas(self.scale);
        if !self.shared {
            return (lw, lh);
        }
        let (r, c) = (i / self.cols, i % self.cols);
        (if c == 0 { lw } else { 0 }, if r + 1 == self.rows { lh } else { 0 })
    }

    /// Breakpoints for [`DrawingArea::split_by_breakpoints`].
    fn breakpoints(&self) -> (Vec<u32>, Vec<u32>) {
        let cut = |v: &[u32]| {
            v.iter()
                .scan(0, |acc, x| {
                    *acc += x;
                    Some(*acc)
                })
                .take(v.len() - 1)
                .collect()
        };
        (cut(&self.widths), cut(&self.heights))
    }
}

/// Legend rows: every distinct label once, in order of first appearance.
fn legend_entries(fig: &LineFigure) -> Vec<LegendEntry> {
    let mut out: Vec<LegendEntry> = Vec::new();
    for s in fig.panels.iter().flat_map(|p| &p.series) {
        if !out.iter().any(|e| e.label == s.label) {
            out.push(LegendEntry { label: s.label.clone(), style: s.style, line: true });
        }
    }
    out
}

fn line_size(fig: &LineFigure) -> (u32, u32) {
    let grid = GridLayout::new(fig);
    let entries = legend_entries(fig);
    let legend_w = legend_width_for(&fig.legend, entries.iter().map(|e| e.label.as_str()));
    // The legend column must also be tall enough for its rows.
    let legend_h = 60 + 26 * entries.len() as u32;
    let w = (grid.width() + legend_w).max(text_width(&fig.title, 26.0) as u32 + 40);
    (w, grid.height().max(legend_h) + header_height(fig.subtitle.len()))
}

fn draw_line_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &LineFigure,
) -> std::result::Result<(), String> {
    let body = draw_header(root, &fig.title, &fig.subtitle)?;
    let entries = legend_entries(fig);
    let legend_w = legend_width_for(&fig.legend, entries.iter().map(|e| e.label.as_str()));
    let (w, _) = body.dim_in_pixel();
    // Legend in its own column right of the panels: it never covers data.
    let (plot, legend) = body.split_horizontally(w.saturating_sub(legend_w));
    let grid = GridLayout::new(fig);
    let scale = grid.scale;
    let plot = plot.shrink((0, 0), (grid.width(), grid.height()));
    let (xs, ys) = grid.breakpoints();
    let areas = plot.split_by_breakpoints(xs, ys);
    let x_keys: Vec<f64> = fig.x.ticks.iter().map(|t| t.0).collect();
    let y_keys: Vec<f64> = fig.y.ticks.iter().map(|t| t.0).collect();
    let label_of = |ticks: &[(f64, String)], v: f64| {
        ticks.iter().find(|t| (t.0 - v).abs() < 1e-9).map(|t| t.1.clone()).unwrap_or_default()
    };
    for (i, (panel, area)) in fig.panels.iter().zip(&areas).enumerate() {
        let (y_labels, x_labels) = grid.labels(i);
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .margin_right(18)
            .caption(&panel.caption, (FONT, CAPTION_PX * scale).into_font().style(FontStyle::Bold))
            .x_label_area_size(x_labels)
            .y_label_area_size(y_labels)
            .build_cartesian_2d(
                KeyAxis::new(fig.x.range.clone(), x_keys.clone()),
                KeyAxis::new(fig.y.range.clone(), y_keys.clone()),
            )
            .map_err(msg)?;
        chart
            .configure_mesh()
            .x_labels(x_keys.len())
            .y_labels(y_keys.len())
            .x_label_formatter(&|x| label_of(&fig.x.ticks, *x))
            .y_label_formatter(&|y| label_of(&fig.y.ticks, *y))
            .x_desc(fig.x.desc.as_str())
            .y_desc(fig.y.desc.as_str())
            .label_style((FONT, TICK_PX * scale))
            .axis_desc_style((FONT, AXIS_PX * scale))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(GRID)
            .draw()
            .map_err(msg)?;
        let (lo, hi) = (fig.y.range.start, fig.y.range.end);
        // Bands first, lines on top; a faint fill so overlapping bands stay see-through.
        for s in &panel.series {
            if s.points.len() < 2 || s.points.iter().all(|p| p.2 <= 0.0) {
                continue;
            }
            let pts: Vec<(f64, f64, f64)> =
                s.points.iter().copied().filter(|p| p.0 >= fig.band_from).collect();
            if pts.len() < 2 {
                continue;
            }
            let band: Vec<(f64, f64)> = pts
                .iter()
                .map(|&(x, m, sd)| (x, (m + sd).min(hi)))
                .chain(pts.iter().rev().map(|&(x, m, sd)| (x, (m - sd).max(lo))))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(band, s.style.color.mix(BAND_ALPHA).filled())))
                .map_err(msg)?;
        }
        for s in &panel.series {
            let line: Vec<(f64, f64)> = s.points.iter().map(|&(x, m, _)| (x, m)).collect();
            let width = if scale < 1.0 { 2 } else { 3 };
            draw_series_styled(&chart, &line, &s.style, width, if scale < 1.0 { 3 } else { 4 })?;
        }
    }
    draw_legend(&legend, &fig.legend, &entries, &[])?;
    Ok(())
}

/// Writes a [`LineFigure`] to dir/`stem`.png and .svg.
pub(crate) fn line_figure(fig: &LineFigure, dir: &Path, stem: &str) -> Result<()> {
    render_both!(dir, stem, line_size(fig), draw_line_figure(fig))
}

/// One panel of a [`Heatmap`]: a labelled matrix of values in 0..1.
#[derive(Clone, Debug)]
pub(crate) struct HeatPanel {
    /// Caption above the panel (empty: none).
    pub caption: String,
    /// Row labels ("0 init", "1 image", ...).
    pub rows: Vec<String>,
    /// Column labels.
    pub cols: Vec<String>,
    /// `values[row][col]`; NaN is drawn grey.
    pub values: Vec<Vec<f64>>,
}

/// Heatmaps on a fixed 0..1 colour scale (one colour bar), panels in a grid: the R matrix of a
/// learner (a panel per query modality, rows = stages, columns = databases) or a run's final
/// query × database matrix (one panel).
#[derive(Clone, Debug)]
pub(crate) struct Heatmap {
    /// Title.
    pub title: String,
    /// Subtitle lines.
    pub subtitle: Vec<String>,
    /// Heading above the row labels (e.g. "stage").
    pub row_desc: String,
    /// Heading above the column labels (e.g. "database").
    pub col_desc: String,
    /// Panels, filled row by row.
    pub panels: Vec<HeatPanel>,
    /// Panels per row.
    pub cols: usize,
}

/// Cell size: wide cells with 3 decimals for few columns, narrow with 2 for many.
fn cell_size(cols: usize) -> (u32, u32, f64, usize) {
    if cols <= 9 {
        (86, 40, 16.0, 3)
    } else {
        (48, 36, 12.0, 2)
    }
}

/// Pixel layout shared by every panel: (left label width, top label height, panel width,
/// panel height), a panel including its caption and labels.
fn heat_layout(m: &Heatmap) -> (u32, u32, u32, u32) {
    let ncols = m.panels.iter().map(|p| p.cols.len()).max().unwrap_or(1);
    let nrows = m.panels.iter().map(|p| p.rows.len()).max().unwrap_or(1);
    let (cw, ch, _, _) = cell_size(ncols);
    let widest_row =
        m.panels.iter().flat_map(|p| &p.rows).map(|r| text_width(r, TICK_PX)).fold(0.0, f64::max);
    let left = (widest_row.max(text_width(&m.row_desc, AXIS_PX)) as u32) + 24;
    let widest_col =
        m.panels.iter().flat_map(|p| &p.cols).map(|c| text_width(c, TICK_PX)).fold(0.0, f64::max) as u32;
    // Column labels turn vertical when they do not fit across a cell.
    let labels = if widest_col + 8 <= cw { 26 } else { widest_col + 16 };
    let caption = if m.panels.iter().any(|p| !p.caption.is_empty()) { 34 } else { 0 };
    let top = caption + 28 + labels;
    let pw = (left + ncols as u32 * cw + 30).max(text_width(&m.col_desc, AXIS_PX) as u32 + left + 30);
    (left, top, pw, top + nrows as u32 * ch + 24)
}

/// Width of the colour bar and its labels.
const BAR_W: u32 = 110;

fn heat_size(m: &Heatmap) -> (u32, u32) {
    let (_, _, pw, ph) = heat_layout(m);
    let cols = m.cols.clamp(1, m.panels.len().max(1)) as u32;
    let rows = m.panels.len().div_ceil(cols as usize).max(1) as u32;
    let w = (cols * pw + BAR_W + 30).max(text_width(&m.title, 26.0) as u32 + 40).max(480);
    // The colour bar is at least 120 px tall: a one- or two-row matrix must leave it room.
    let (_, top, _, _) = heat_layout(m);
    (w, header_height(m.subtitle.len()) + (rows * ph).max(top + 120 + 24) + 10)
}

fn draw_heatmap<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    m: &Heatmap,
) -> std::result::Result<(), String> {
    let body = draw_header(root, &m.title, &m.subtitle)?;
    let (left, top, pw, ph) = heat_layout(m);
    let ncols = m.panels.iter().map(|p| p.cols.len()).max().unwrap_or(1);
    let (cw, ch, value_px, digits) = cell_size(ncols);
    let grid_cols = m.cols.clamp(1, m.panels.len().max(1));
    let tick = (FONT, TICK_PX).into_font().color(&BLACK);
    let desc = (FONT, AXIS_PX).into_font().style(FontStyle::Bold).color(&BLACK);
    let caption_font = (FONT, CAPTION_PX).into_font().style(FontStyle::Bold).color(&BLACK);
    let labels_h = top - 28 - if m.panels.iter().any(|p| !p.caption.is_empty()) { 34 } else { 0 };
    let vertical = labels_h > 26;
    for (k, panel) in m.panels.iter().enumerate() {
        let (px, py) = ((k % grid_cols) as i32 * pw as i32, (k / grid_cols) as i32 * ph as i32);
        let x0 = px + left as i32;
        let y0 = py + top as i32;
        let gw = panel.cols.len() as i32 * cw as i32;
        if !panel.caption.is_empty() {
            body.draw(&Text::new(
                panel.caption.clone(),
                (x0 + gw / 2, py + 4),
                caption_font.pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(msg)?;
        }
        body.draw(&Text::new(
            m.col_desc.clone(),
            (x0 + gw / 2, y0 - labels_h as i32 - 6),
            desc.pos(Pos::new(HPos::Center, VPos::Bottom)),
        ))
        .map_err(msg)?;
        // Row heading above the row labels: a rotated side label would crowd short matrices.
        body.draw(&Text::new(
            m.row_desc.clone(),
            (x0 - 10, y0 - 8),
            desc.pos(Pos::new(HPos::Right, VPos::Bottom)),
        ))
        .map_err(msg)?;
        for (j, c) in panel.cols.iter().enumerate() {
            let cx = x0 + j as i32 * cw as i32 + cw as i32 / 2;
            if vertical {
                body.draw(&Text::new(
                    c.clone(),
                    (cx, y0 - 6),
                    tick.transform(FontTransform::Rotate270).pos(Pos::new(HPos::Left, VPos::Center)),
                ))
            } else {
                body.draw(&Text::new(c.clone(), (cx, y0 - 8), tick.pos(Pos::new(HPos::Center, VPos::Bottom))))
            }
            .map_err(msg)?;
        }
        for (i, r) in panel.rows.iter().enumerate() {
            let cy = y0 + i as i32 * ch as i32 + ch as i32 / 2;
            body.draw(&Text::new(r.clone(), (x0 - 10, cy), tick.pos(Pos::new(HPos::Right, VPos::Center))))
                .map_err(msg)?;
            for (j, v) in panel.values.get(i).into_iter().flatten().enumerate() {
                let (cx0, cy0) = (x0 + j as i32 * cw as i32, y0 + i as i32 * ch as i32);
                let fill = if v.is_finite() { viridis(*v) } else { RGBColor(200, 200, 200) };
                // Inset by a pixel on the white page: the white grid lines without a second rectangle.
                body.draw(&Rectangle::new(
                    [(cx0 + 1, cy0 + 1), (cx0 + cw as i32, cy0 + ch as i32)],
                    fill.filled(),
                ))
                .map_err(msg)?;
                let text = if v.is_finite() { format!("{v:.digits$}") } else { "–".into() };
                let ink = if v.is_finite() { ink_on_viridis(*v) } else { BLACK };
                body.draw(&Text::new(
                    text,
                    (cx0 + cw as i32 / 2, cy0 + ch as i32 / 2),
                    (FONT, value_px).into_font().color(&ink).pos(Pos::new(HPos::Center, VPos::Center)),
                ))
                .map_err(msg)?;
            }
        }
    }
    // Colour bar on a fixed 0..1 scale, so matrices of different learners compare by colour.
    let nrows = m.panels.iter().map(|p| p.rows.len()).max().unwrap_or(1);
    let gh = (nrows as u32 * ch).max(120) as i32;
    let bx = grid_cols as i32 * pw as i32 + 16;
    let y0 = top as i32;
    let steps = 100;
    for k in 0..steps {
        let (a, b) = (k as f64 / steps as f64, (k + 1) as f64 / steps as f64);
        let ya = y0 + gh - (a * gh as f64) as i32;
        let yb = y0 + gh - (b * gh as f64) as i32;
        body.draw(&Rectangle::new([(bx, yb), (bx + 22, ya)], viridis((a + b) / 2.0).filled()))
            .map_err(msg)?;
    }
    for k in 0..=5 {
        let v = k as f64 / 5.0;
        let y = y0 + gh - (v * gh as f64) as i32;
        body.draw(&PathElement::new(vec![(bx + 22, y), (bx + 27, y)], BLACK.stroke_width(1))).map_err(msg)?;
        body.draw(&Text::new(format!("{v:.1}"), (bx + 31, y), tick.pos(Pos::new(HPos::Left, VPos::Center))))
            .map_err(msg)?;
    }
    body.draw(&Text::new(
        "mAP".to_string(),
        (bx, y0 - 8),
        (FONT, TEXT_PX).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Bottom)),
    ))
    .map_err(msg)?;
    Ok(())
}

/// Writes a [`Heatmap`] to dir/`stem`.png and .svg.
pub(crate) fn heatmap(m: &Heatmap, dir: &Path, stem: &str) -> Result<()> {
    render_both!(dir, stem, heat_size(m), draw_heatmap(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoomed_axis_holds_the_data_within_unit_range() {
        let a = zoom_axis(0.42, 0.53, "ACC");
        assert!(a.range.start <= 0.42 - 0.05 + 1e-9 && a.range.end >= 0.53 + 0.05 - 1e-9, "{:?}", a.range);
        assert!(a.range.start >= 0.0 && a.range.end <= 1.0);
        assert_eq!(a.ticks.first().map(|t| t.0), Some(a.range.start));
        let full = zoom_axis(0.01, 0.99, "ACC");
        assert_eq!(full.range, 0.0..1.0);
    }

    #[test]
    fn unit_axis_uses_full_scale_past_one_half() {
        assert_eq!(unit_axis(0.7, "mAP").range, 0.0..1.0);
        assert_eq!(unit_axis(0.2, "mAP").range, 0.0..0.3);
    }
}
