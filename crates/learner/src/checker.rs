//! The one checker of seqmodal's TOML inputs (experiment and sweep files): every error
//! names the file, the 1-based line and the dotted key, as `file:line: key: message`.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use crate::error::{LearnerError, Result};

/// Range checks over a file's spanned values; errors name the file, the line and the key.
#[derive(Clone, Copy, Debug)]
pub struct Checker<'a> {
    /// The file's text (spans index into it).
    pub text: &'a str,
    /// The file, for messages.
    pub path: &'a Path,
}

impl<'a> Checker<'a> {
    /// A checker of `text`, read from `path`.
    pub fn new(text: &'a str, path: &'a Path) -> Self {
        Self { text, path }
    }

    /// 1-based line of a span's start.
    pub fn line(&self, span: Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    /// `file:line: key: message` at the line of `span`.
    pub fn err(&self, span: Range<usize>, key: &str, message: String) -> LearnerError {
        LearnerError::Invalid { path: self.path.into(), line: self.line(span), key: key.into(), message }
    }

    /// A name used as a directory (experiment, sweep): non-empty, no separators, not `.`/`..`.
    pub fn dir_name(&self, v: &Spanned<String>, key: &str) -> Result<String> {
        let name = v.get_ref();
        if name.trim().is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            // The name is a directory under runs/: `..` would write beside it.
            return Err(self.err(
                v.span(),
                key,
                "must be non-empty, not . or .., and contain no path separators".into(),
            ));
        }
        Ok(name.clone())
    }

    /// An integer `>= min` (default when absent).
    pub fn int(&self, v: &Option<Spanned<i64>>, key: &str, default: usize, min: i64) -> Result<usize> {
        match v {
            None => Ok(default),
            Some(s) => self.int_value(*s.get_ref(), s.span(), key, min),
        }
    }

    /// A given integer `>= min`.
    pub fn int_value(&self, v: i64, span: Range<usize>, key: &str, min: i64) -> Result<usize> {
        if v >= min {
            return Ok(v as usize);
        }
        let bound = if min == 1 { "a positive integer".to_string() } else { format!("an integer >= {min}") };
        Err(self.err(span, key, format!("must be {bound}, got {v}")))
    }

    /// A finite number `> 0` (`strictly_positive`) or `>= 0` (default when absent).
    pub fn float(
        &self,
        v: &Option<Spanned<f64>>,
        key: &str,
        default: f64,
        strictly_positive: bool,
    ) -> Result<f64> {
        match v {
            None => Ok(default),
            Some(s) => self.float_value(*s.get_ref(), s.span(), key, strictly_positive),
        }
    }

    /// A given finite number `> 0` (`strictly_positive`) or `>= 0`.
    pub fn float_value(&self, x: f64, span: Range<usize>, key: &str, strictly_positive: bool) -> Result<f64> {
        if x.is_finite() && (x > 0.0 || (!strictly_positive && x == 0.0)) {
            return Ok(x);
        }
        let bound = if strictly_positive { "> 0" } else { ">= 0" };
        Err(self.err(span, key, format!("must be a finite number {bound}, got {x}")))
    }

    /// A positive integer no larger than `max` (default when absent).
    pub fn int_at_most(
        &self,
        v: &Option<Spanned<i64>>,
        key: &str,
        default: usize,
        max: usize,
    ) -> Result<usize> {
        let n = self.int(v, key, default, 1)?;
        match v {
            Some(s) if n > max => Err(self.err(s.span(), key, format!("at most {max} supported, got {n}"))),
            _ => Ok(n),
        }
    }

    /// A list of positive integers.
    pub fn positive_list(&self, v: &Spanned<Vec<i64>>, key: &str) -> Result<Vec<usize>> {
        match v.get_ref().iter().find(|&&x| x < 1) {
            Some(bad) => {
                Err(self.err(v.span(), key, format!("every entry must be a positive integer, got {bad}")))
            }
            None => Ok(v.get_ref().iter().map(|&x| x as usize).collect()),
        }
    }

    /// One of `options`, named by `name` (default when absent).
    pub fn choice<T: Copy>(
        &self,
        v: &Option<Spanned<String>>,
        key: &str,
        what: &str,
        default: T,
        options: &[T],
        name: fn(T) -> &'static str,
    ) -> Result<T> {
        let Some(s) = v else { return Ok(default) };
        options.iter().copied().find(|&o| name(o) == s.get_ref()).ok_or_else(|| {
            let known: Vec<&str> = options.iter().map(|&o| name(o)).collect();
            self.err(s.span(), key, format!("unknown {what} '{}' (known: {})", s.get_ref(), known.join(", ")))
        })
    }
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_file_line_and_key() {
        let text = "a = 1\nb = -2\n";
        let ck = Checker::new(text, Path::new("f.toml"));
        let e = ck.int_value(-2, 10..12, "x.b", 1).unwrap_err().to_string();
        assert_eq!(e, "f.toml:2: x.b: must be a positive integer, got -2");
        let e = ck.float_value(f64::NAN, 0..1, "x.a", false).unwrap_err().to_string();
        assert_eq!(e, "f.toml:1: x.a: must be a finite number >= 0, got NaN");
        assert_eq!(ck.int_value(0, 0..1, "k", 0).unwrap(), 0);
        let dots = Spanned::new(0..1, "..".to_string());
        assert!(ck.dir_name(&dots, "name").unwrap_err().to_string().contains("path separators"));
    }
}
