//! SVG compaction: plotters' SVG output made smaller without changing the picture.

/// Shrinks plotters' SVG output without changing what it draws: attributes at their default
/// (`opacity="1"`, `stroke="none"` and the stroke width that goes with it) are dropped,
/// fractional sizes (font sizes such as 20.967741935483872) are rounded to 2 decimals, and runs
/// of consecutive opaque `<polyline>`s and `<line>`s with the same stroke (the dashes of a
/// dashed line, grid lines, axis ticks) become one `<path>` with relative coordinates. Opaque
/// strokes of one paint look the same drawn as one path or many, so the picture is unchanged.
pub fn compact_svg(svg: &str) -> String {
    let mut out = String::with_capacity(svg.len() / 2);
    // The open merged path: its stroke attributes, its `d` so far and its current point.
    let mut open: Option<(String, String, (i64, i64))> = None;
    let flush = |out: &mut String, open: &mut Option<(String, String, (i64, i64))>| {
        if let Some((attrs, d, _)) = open.take() {
            out.push_str(&format!("<path fill=\"none\"{attrs} d=\"{d}\"/>\n"));
        }
    };
    for line in svg.lines() {
        let mut line = line.replace(" opacity=\"1\"", "");
        if line.starts_with("<circle") || line.starts_with("<rect") || line.starts_with("<polygon") {
            line = line.replace(" stroke=\"none\" stroke-width=\"1\"", "").replace(" stroke=\"none\"", "");
        }
        let line = round_decimals(&line);
        if let Some((attrs, points)) = mergeable_stroke(&line) {
            match &mut open {
                Some((a, d, at)) if *a == attrs => append_subpath(d, at, &points),
                _ => {
                    flush(&mut out, &mut open);
                    let (mut d, mut at) = (String::new(), (0, 0));
                    append_subpath(&mut d, &mut at, &points);
                    // The first move is absolute (from the origin), so relative is exact.
                    open = Some((attrs, d, at));
                }
            }
            continue;
        }
        flush(&mut out, &mut open);
        out.push_str(&line);
        out.push('\n');
    }
    flush(&mut out, &mut open);
    out
}

/// An opaque `<polyline fill="none" .. points=".."/>` or `<line .. x1 y1 x2 y2/>` with integer
/// coordinates: (its stroke attributes, its points).
fn mergeable_stroke(line: &str) -> Option<(String, Vec<(i64, i64)>)> {
    if line.contains("opacity") || line.contains("transform") {
        return None;
    }
    let int = |v: &str| v.parse::<i64>().ok();
    if let Some(rest) = line.strip_prefix("<polyline").and_then(|r| r.strip_suffix("\"/>")) {
        let (attrs, points) = rest.split_once(" points=\"")?;
        let attrs = attrs.strip_prefix(" fill=\"none\"")?;
        let pts = points
            .split_whitespace()
            .map(|p| p.split_once(',').and_then(|(x, y)| Some((int(x)?, int(y)?))))
            .collect::<Option<Vec<_>>>()?;
        return Some((attrs.to_string(), pts));
    }
    let rest = line.strip_prefix("<line").and_then(|r| r.strip_suffix("\"/>"))?;
    let (attrs, coords) = rest.split_once(" x1=\"")?;
    let parts: Vec<&str> = coords.split('"').collect();
    match parts[..] {
        [x1, " y1=", y1, " x2=", x2, " y2=", y2] => {
            Some((attrs.to_string(), vec![(int(x1)?, int(y1)?), (int(x2)?, int(y2)?)]))
        }
        _ => None,
    }
}

/// Appends `points` as a subpath of relative moves ("m dx,dy l dx,dy ...") to `d`, whose
/// current point is `at`.
fn append_subpath(d: &mut String, at: &mut (i64, i64), points: &[(i64, i64)]) {
    for (i, &(x, y)) in points.iter().enumerate() {
        let (dx, dy) = (x - at.0, y - at.1);
        let cmd = if i == 0 { 'm' } else { 'l' };
        d.push_str(&format!("{cmd}{dx} {dy}"));
        *at = (x, y);
    }
}

/// Numbers with more than 2 decimals inside attribute values rounded to 2 (trailing zeros
/// dropped); text content (outside tags) is left alone.
fn round_decimals(line: &str) -> String {
    if !line.starts_with('<') || !line.contains('.') {
        return line.to_string();
    }
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    // `line[copied..i]` is still to be copied; numbers and quotes are ASCII, so every cut is
    // on a char boundary.
    let (mut i, mut copied, mut in_value) = (0, 0, false);
    while i < b.len() {
        if b[i] == b'"' {
            in_value = !in_value;
        }
        let starts_number = in_value
            && b[i].is_ascii_digit()
            && !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.' || b[i - 1] == b'#');
        if !starts_number {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        let number = &line[start..i];
        // A token glued to letters (a name, a hex colour) is not a number to round.
        let glued = i < b.len() && b[i].is_ascii_alphabetic();
        if let Some((_, frac)) = number.split_once('.') {
            if frac.len() > 2 && !glued {
                let v: f64 = number.parse().unwrap_or(0.0);
                out.push_str(&line[copied..start]);
                let text = format!("{v:.2}");
                out.push_str(text.trim_end_matches('0').trim_end_matches('.'));
                copied = i;
            }
        }
    }
    out.push_str(&line[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_svg_merges_dashes_and_rounds_sizes() {
        let svg = "<svg width=\"10\" height=\"10\" xmlns=\"http://www.w3.org/2000/svg\">\n\
<text x=\"1\" y=\"2\" font-size=\"20.967741935483872\" opacity=\"1\" fill=\"#0072B2\">\n\
a 1.23456 b\n\
</text>\n\
<polyline fill=\"none\" opacity=\"1\" stroke=\"#000000\" stroke-width=\"2\" points=\"1,2 3,4 \"/>\n\
<polyline fill=\"none\" opacity=\"1\" stroke=\"#000000\" stroke-width=\"2\" points=\"5,6 7,8 \"/>\n\
<line opacity=\"1\" stroke=\"#000000\" stroke-width=\"2\" x1=\"9\" y1=\"2\" x2=\"9\" y2=\"8\"/>\n\
<circle cx=\"3\" cy=\"3\" r=\"3\" fill=\"#0072B2\" stroke=\"none\" stroke-width=\"1\"/>\n\
<polyline fill=\"none\" opacity=\"1\" stroke=\"#D55E00\" stroke-width=\"2\" points=\"0,0 1,1 \"/>\n\
<polyline fill=\"none\" opacity=\"0.5\" stroke=\"#D55E00\" stroke-width=\"2\" points=\"0,0 1,1 \"/>\n\
</svg>\n";
        let c = compact_svg(svg);
        assert!(c.contains("font-size=\"20.97\" fill=\"#0072B2\""), "{c}");
        assert!(c.contains("\na 1.23456 b\n"), "text content untouched: {c}");
        assert!(
            c.contains(
                "<path fill=\"none\" stroke=\"#000000\" stroke-width=\"2\" d=\"m1 2l2 2m2 2l2 2m2 -6l0 6\"/>"
            ),
            "{c}"
        );
        assert!(c.contains("stroke=\"#D55E00\" stroke-width=\"2\" d=\"m0 0l1 1\"/>"), "{c}");
        assert!(c.contains("<polyline fill=\"none\" opacity=\"0.5\""), "translucent lines stay apart: {c}");
        assert_eq!(c.matches("<path").count(), 2, "{c}");
        assert!(c.contains("<circle cx=\"3\" cy=\"3\" r=\"3\" fill=\"#0072B2\"/>"), "{c}");
        assert!(!c.contains("opacity=\"1\""), "{c}");
    }
}
