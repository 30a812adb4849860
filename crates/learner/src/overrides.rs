//! `--set key=value` overrides, applied to the TOML text before parsing so that
//! every later error still points at a line of the (overridden) file.
//!
//! Keys are dotted (`learner.kind`, `model.bits`); a number selects an element of an
//! array of tables (`stages.1.epochs`). The value is read as TOML (`32`, `1e-3`,
//! `true`, `[1, 2]`, `"x"`), and as a plain string when it is not valid TOML.

use std::path::Path;

use toml_edit::{DocumentMut, Item, TableLike, Value};

use crate::error::{LearnerError, Result};

/// Applies every override in order and returns the new TOML text.
pub fn apply(text: &str, overrides: &[String], path: &Path) -> Result<String> {
    if overrides.is_empty() {
        return Ok(text.to_string());
    }
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| LearnerError::Syntax {
        path: path.into(),
        message: e.to_string(),
    })?;
    for a in overrides {
        let err = |message: String| LearnerError::Override { assignment: a.clone(), message };
        let (key, raw) = a.split_once('=').ok_or_else(|| err("expected key=value".into()))?;
        let parts: Vec<&str> = key.trim().split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err(format!("bad key '{}'", key.trim())));
        }
        set_in(doc.as_table_mut(), &parts, parse_value(raw.trim())).map_err(err)?;
    }
    Ok(doc.to_string())
}

/// Sets `parts` (dotted path) inside `table`, creating missing tables on the way.
fn set_in(table: &mut dyn TableLike, parts: &[&str], value: Value) -> std::result::Result<(), String> {
    let part = parts[0];
    if parts.len() == 1 {
        table.insert(part, Item::Value(value));
        return Ok(());
    }
    if let Ok(idx) = parts[1].parse::<usize>() {
        let arr = table
            .get_mut(part)
            .and_then(Item::as_array_of_tables_mut)
            .ok_or_else(|| format!("'{part}' is not an array of tables ([[{part}]])"))?;
        let len = arr.len();
        let t = arr
            .get_mut(idx)
            .ok_or_else(|| format!("index {idx} out of range: '{part}' has {len} entries"))?;
        if parts.len() == 2 {
            return Err("cannot replace a whole table; name a key inside it".into());
        }
        return set_in(t, &parts[2..], value);
    }
    if table.get(part).is_none() {
        table.insert(part, Item::Table(toml_edit::Table::new()));
    }
    let sub = table
        .get_mut(part)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| format!("'{part}' is a value, not a table"))?;
    set_in(sub, &parts[1..], value)
}

fn parse_value(raw: &str) -> Value {
    raw.parse::<Value>().unwrap_or_else(|_| Value::from(raw))
}
