//! The one look of every figure: font, palette, line styles (colour + dash + marker, so
//! series stay apart in grey print), title block, legend, axes with exact ticks.

use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::sync::OnceLock;

/// Font family every figure uses; registered from the bundled DejaVu Sans.
pub const FONT: &str = "sans-serif";

/// Title size in pixels.
pub const TITLE_PX: f64 = 26.0;
/// Subtitle, legend and note size in pixels.
pub const TEXT_PX: f64 = 16.0;
/// Tick label size in pixels.
pub const TICK_PX: f64 = 15.0;
/// Axis description size in pixels.
pub const AXIS_PX: f64 = 17.0;
/// Panel caption size in pixels.
pub const CAPTION_PX: f64 = 18.0;

/// Grid lines: an opaque light grey (black at 10 % on white), so they merge into one SVG path.
pub const GRID: RGBColor = RGBColor(230, 230, 230);

/// Okabe–Ito colours (colour-blind safe) without the yellow, which vanishes on white, then
/// three dark colours of Paul Tol's palettes (wine, indigo, olive), so the eleven learners of
/// the flagship reports each get their own colour; their lightness differs, and
/// [`series_style`] adds dash and marker for grey print.
pub const PALETTE: [RGBColor; 11] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(0, 0, 0),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(128, 128, 128),
    RGBColor(136, 34, 85),
    RGBColor(51, 34, 136),
    RGBColor(153, 153, 51),
];

/// Colour `i` of [`PALETTE`], cycling.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Marker drawn at each data point of a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// Filled circle.
    Circle,
    /// Filled square.
    Square,
    /// Filled triangle.
    Triangle,
    /// Diagonal cross.
    Cross,
    /// Hollow circle.
    Ring,
    /// Hollow square.
    Box,
    /// Filled diamond.
    Diamond,
}

/// Line dash pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dash {
    /// Continuous line.
    Solid,
    /// Long dashes.
    Dashed,
    /// Short dots.
    Dotted,
}

/// How one series (a learner, a setting) is drawn, the same in every figure of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesStyle {
    /// Line and marker colour.
    pub color: RGBColor,
    /// Dash pattern.
    pub dash: Dash,
    /// Marker.
    pub marker: Marker,
}

/// Style of series `i`: colour, dash and marker cycle with periods 11, 3 and 7. Dash and marker
/// together repeat only after 21 series, so any two of the first 21 differ in more than hue
/// (in grey print, Okabe–Ito's blue and green, or blue and sky blue, look alike); with the
/// colour, 231 series are distinct.
pub fn series_style(i: usize) -> SeriesStyle {
    const DASHES: [Dash; 3] = [Dash::Solid, Dash::Dashed, Dash::Dotted];
    const MARKERS: [Marker; 7] = [
        Marker::Circle,
        Marker::Square,
        Marker::Triangle,
        Marker::Cross,
        Marker::Ring,
        Marker::Box,
        Marker::Diamond,
    ];
    SeriesStyle { color: color(i), dash: DASHES[i % 3], marker: MARKERS[i % 7] }
}

/// Register DejaVu Sans under [`FONT`] once; plotters' ab_glyph backend has no system fonts.
pub fn ensure_font() -> std::result::Result<(), String> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
                .and_then(|()| plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold()))
                .map_err(|_| "cannot load the bundled DejaVu Sans font".to_string())
        })
        .clone()
}

/// Shorthand: plotters errors carry the backend type; we only keep the message.
pub fn msg<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A continuous f64 axis whose ticks are exactly the given values (stages,
/// cell centres, code lengths) instead of plotters' "nice" numbers.
pub struct KeyAxis {
    inner: RangedCoordf64,
    keys: Vec<f64>,
}

impl KeyAxis {
    /// An axis over `range` with ticks at `keys`.
    pub fn new(range: std::ops::Range<f64>, keys: Vec<f64>) -> Self {
        KeyAxis { inner: range.into(), keys }
    }
}

impl Ranged for KeyAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        self.keys.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// Approximate rendered width of `text` at `px` pixels.
pub fn text_width(text: &str, px: f64) -> f64 {
    (FONT, px)
        .into_font()
        .box_size(text)
        .map(|(w, _)| w as f64)
        .unwrap_or(text.chars().count() as f64 * px * 0.6)
}

/// Pixels taken by the title and `lines` subtitle lines.
pub fn header_height(lines: usize) -> u32 {
    56 + 22 * lines as u32
}

/// Title and subtitle on top of `root` (filled white); returns the area below them.
pub fn draw_header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &[String],
) -> std::result::Result<DrawingArea<DB, Shift>, String> {
    root.fill(&WHITE).map_err(msg)?;
    let (w, _) = root.dim_in_pixel();
    let centre = (w / 2) as i32;
    root.draw(&Text::new(
        title.to_string(),
        (centre, 14),
        (FONT, TITLE_PX)
            .into_font()
            .style(FontStyle::Bold)
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top)),
    ))
    .map_err(msg)?;
    for (i, line) in subtitle.iter().enumerate() {
        root.draw(&Text::new(
            line.clone(),
            (centre, 48 + 22 * i as i32),
            (FONT, TEXT_PX).into_font().color(&BLACK.mix(0.7)).pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(msg)?;
    }
    Ok(root.split_vertically(header_height(subtitle.len())).1)
}

/// Draw `marker` centred on pixel `(x, y)` of `area`.
pub fn draw_marker_px<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    marker: Marker,
    color: RGBColor,
    size: i32,
) -> std::result::Result<(), String> {
    let stroke = color.stroke_width(2);
    match marker {
        Marker::Circle => area.draw(&Circle::new((x, y), size, color.filled())),
        Marker::Ring => area.draw(&Circle::new((x, y), size, stroke)),
        Marker::Square => {
            area.draw(&Rectangle::new([(x - size, y - size), (x + size, y + size)], color.filled()))
        }
        Marker::Box => area.draw(&Rectangle::new([(x - size, y - size), (x + size, y + size)], stroke)),
        Marker::Diamond => {
            let s = size + 1;
            area.draw(&Polygon::new(vec![(x, y - s), (x + s, y), (x, y + s), (x - s, y)], color.filled()))
        }
        Marker::Triangle => area.draw(&TriangleMarker::new((x, y), size + 1, color.filled())),
        Marker::Cross => area.draw(&Cross::new((x, y), size, stroke)),
    }
    .map_err(msg)
}

/// Dash and gap lengths in pixels of a dash pattern (None: solid).
pub fn dash_pattern(dash: Dash) -> Option<(u32, u32)> {
    match dash {
        Dash::Solid => None,
        Dash::Dashed => Some((9, 5)),
        Dash::Dotted => Some((3, 4)),
    }
}

/// Draw a polyline in pixel coordinates with a dash pattern.
pub fn draw_line_px<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[(i32, i32)],
    style: &SeriesStyle,
    width: u32,
) -> std::result::Result<(), String> {
    let line = style.color.stroke_width(width);
    match dash_pattern(style.dash) {
        None => area.draw(&PathElement::new(points.to_vec(), line)).map_err(msg),
        Some((on, off)) => {
            for seg in points.windows(2) {
                let ((x0, y0), (x1, y1)) = (seg[0], seg[1]);
                let (dx, dy) = ((x1 - x0) as f64, (y1 - y0) as f64);
                let len = dx.hypot(dy);
                let mut s = 0.0;
                while s < len {
                    let e = (s + on as f64).min(len);
                    let at = |t: f64| ((x0 as f64 + dx * t / len) as i32, (y0 as f64 + dy * t / len) as i32);
                    area.draw(&PathElement::new(vec![at(s), at(e)], line)).map_err(msg)?;
                    s += (on + off) as f64;
                }
            }
            Ok(())
        }
    }
}

/// Draw a series in data coordinates of `chart`: line with the style's dash, and its marker
/// at every point. Drawn in pixels so dashes and markers look the same in PNG and SVG.
pub fn draw_series_styled<DB, X, Y>(
    chart: &ChartContext<'_, DB, Cartesian2d<X, Y>>,
    points: &[(f64, f64)],
    style: &SeriesStyle,
    width: u32,
    marker_size: i32,
) -> std::result::Result<(), String>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let area = chart.plotting_area();
    let (bx, by) = area.get_base_pixel();
    let px: Vec<(i32, i32)> = points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|p| {
            let (x, y) = chart.backend_coord(p);
            (x - bx, y - by)
        })
        .collect();
    let shifted = area.strip_coord_spec();
    draw_line_px(&shifted, &px, style, width)?;
    for &p in &px {
        draw_marker_px(&shifted, p, style.marker, style.color, marker_size)?;
    }
    Ok(())
}

/// One legend row.
#[derive(Clone, Debug)]
pub struct LegendEntry {
    /// Text.
    pub label: String,
    /// Line, dash and marker drawn before it.
    pub style: SeriesStyle,
    /// Draw the line sample (false: marker only, e.g. for bars a filled square).
    pub line: bool,
}

/// Width of a legend column that fits `labels` (and the heading).
pub fn legend_width_for<'a>(heading: &str, labels: impl Iterator<Item = &'a str>) -> u32 {
    let widest = labels.map(|l| text_width(l, TEXT_PX)).fold(text_width(heading, AXIS_PX), f64::max);
    // 10% slack: the glyph-box estimate runs short for some strings (seen with "a>b>c" labels).
    (widest * 1.1 + 52.0 + 30.0).clamp(160.0, 460.0) as u32
}

/// Draw the legend (entries in order) in `area`, one column from the top; `note` lines below.
pub fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: &str,
    entries: &[LegendEntry],
    note: &[&str],
) -> std::result::Result<(), String> {
    let heading_font = (FONT, AXIS_PX).into_font().style(FontStyle::Bold);
    let font = (FONT, TEXT_PX).into_font();
    let x0 = 10;
    let mut y = 20;
    area.draw(&Text::new(heading.to_string(), (x0, y), heading_font)).map_err(msg)?;
    y += 34;
    for e in entries {
        if e.line {
            draw_line_px(area, &[(x0, y), (x0 + 42, y)], &e.style, 3)?;
        }
        draw_marker_px(area, (x0 + 21, y), e.style.marker, e.style.color, 5)?;
        area.draw(&Text::new(
            e.label.clone(),
            (x0 + 52, y),
            font.color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(msg)?;
        y += 26;
    }
    y += 14;
    let note_font = (FONT, TEXT_PX - 2.0).into_font().color(&BLACK.mix(0.7));
    for line in note {
        area.draw(&Text::new(line.to_string(), (x0, y), note_font.clone())).map_err(msg)?;
        y += 20;
    }
    Ok(())
}

/// Viridis colormap (matplotlib's anchors), `v` clamped to 0..1: perceptually uniform and
/// monotone in lightness, so heatmaps read in grey print too.
pub fn viridis(v: f64) -> RGBColor {
    const ANCHORS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    let x = v.clamp(0.0, 1.0) * (ANCHORS.len() - 1) as f64;
    let i = (x.floor() as usize).min(ANCHORS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (ANCHORS[i], ANCHORS[i + 1]);
    let lerp = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

/// Ink that stays readable on a viridis cell of value `v`.
pub fn ink_on_viridis(v: f64) -> RGBColor {
    if v < 0.62 {
        WHITE
    } else {
        BLACK
    }
}

/// Display name of a metric: "map" -> "mAP", "map@100" -> "mAP@100".
pub fn metric_label(metric: &str) -> String {
    match metric.strip_prefix("map") {
        Some(rest) => format!("mAP{rest}"),
        None => metric.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative luminance (sRGB, linearised), the grey a printer makes of a colour.
    fn luminance(c: RGBColor) -> f64 {
        let lin = |v: u8| {
            let v = v as f64 / 255.0;
            if v <= 0.04045 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(c.0) + 0.7152 * lin(c.1) + 0.0722 * lin(c.2)
    }

    #[test]
    fn neighbouring_series_differ_beyond_hue() {
        for i in 0..24 {
            let (a, b) = (series_style(i), series_style(i + 1));
            assert!(a.dash != b.dash && a.marker != b.marker, "series {i} and {}", i + 1);
        }
        // Beyond hue: dash and marker alone tell the first 21 series apart (grey print).
        for i in 0..21 {
            for j in i + 1..21 {
                let (a, b) = (series_style(i), series_style(j));
                assert!(a.dash != b.dash || a.marker != b.marker, "series {i} and {j} differ only by hue");
            }
        }
        let styles: Vec<SeriesStyle> = (0..24).map(series_style).collect();
        for (i, a) in styles.iter().enumerate() {
            for b in &styles[i + 1..] {
                assert_ne!(a, b, "24 series must all look different");
            }
        }
    }

    #[test]
    fn palette_is_visible_on_white() {
        // Every colour is darker than light grey, so thin lines stay visible on white paper.
        for c in PALETTE {
            assert!(luminance(c) < 0.5, "{c:?} is too light on white");
        }
    }

    #[test]
    fn viridis_ends_and_clamps() {
        assert_eq!(viridis(-1.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(2.0), RGBColor(253, 231, 37));
        assert!(luminance(viridis(0.2)) < luminance(viridis(0.8)), "viridis is monotone in lightness");
    }
}
