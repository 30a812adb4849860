//! Writing a figure: one drawing rendered twice, to SVG (compacted, for papers) and to PNG
//! (encoded here, for pages), each written atomically.

use crate::error::AnalysisError;

/// Encode a packed RGB8 buffer as PNG bytes.
pub fn encode_png(rgb: &[u8], w: u32, h: u32) -> std::result::Result<Vec<u8>, String> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    // Best compression with adaptive filters: figures are flat colours and text, and this
    // shrinks them by about a third at a few milliseconds each.
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::Adaptive)
        .write_image(rgb, w, h, image::ColorType::Rgb8)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// A plotting error for the figure file `path`.
pub fn plot_error(path: &std::path::Path) -> impl Fn(String) -> AnalysisError {
    let path = path.to_path_buf();
    move |message: String| AnalysisError::Plot { path: path.clone(), message }
}

/// Render one figure with `$draw(&root, args...)` into `dir/$stem.svg` and `dir/$stem.png`
/// (the SVG for papers, the PNG for pages).
///
/// A macro rather than a function because the drawing code is generic over the
/// backend and Rust closures cannot be.
macro_rules! render_both {
    ($dir:expr, $stem:expr, $size:expr, $draw:ident ( $($arg:expr),* )) => {{
        let dir: &std::path::Path = $dir;
        let (w, h): (u32, u32) = $size;
        let svg_path = dir.join(format!("{}.svg", $stem));
        let png_path = dir.join(format!("{}.png", $stem));
        $crate::style::ensure_font().map_err($crate::render::plot_error(&svg_path))?;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
            $draw(&root, $($arg),*).map_err($crate::render::plot_error(&svg_path))?;
            root.present().map_err(|e| $crate::render::plot_error(&svg_path)(e.to_string()))?;
        }
        let mut rgb = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            $draw(&root, $($arg),*).map_err($crate::render::plot_error(&png_path))?;
            root.present().map_err(|e| $crate::render::plot_error(&png_path)(e.to_string()))?;
        }
        let png = $crate::render::encode_png(&rgb, w, h).map_err($crate::render::plot_error(&png_path))?;
        let svg = $crate::svg::compact_svg(&svg);
        $crate::atomic::atomic_write(&svg_path, svg.as_bytes())?;
        $crate::atomic::atomic_write(&png_path, &png)
    }};
}
pub(crate) use render_both;
