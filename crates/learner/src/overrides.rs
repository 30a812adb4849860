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

/// Replaces the `[learner]` table's keys by `kind = learner` alone (the table's comments
/// stay), so the learner runs with its own defaults whatever the file's learner was.
pub fn reset_learner(text: &str, learner: &str, path: &Path) -> Result<String> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| LearnerError::Syntax {
        path: path.into(),
        message: e.to_string(),
    })?;
    let table =
        doc.get_mut("learner").and_then(Item::as_table_like_mut).ok_or_else(|| LearnerError::Override {
            assignment: format!("learner.kind={learner}"),
            message: "no [learner] table".into(),
        })?;
    let keys: Vec<String> = table.iter().map(|(k, _)| k.to_string()).filter(|k| k != "kind").collect();
    for k in keys {
        table.remove(&k);
    }
    table.insert("kind", Item::Value(Value::from(learner)));
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
    if table.get(part).is_some_and(Item::is_array_of_tables) {
        return Err(format!(
            "'{part}' is an array of tables: name an element by its 0-based index, e.g. {part}.0.{}",
            // `stages.x.epochs` meant an index in place of `x`; `stages.epochs` lacks one.
            parts[if parts.len() > 2 { 2 } else { 1 }..].join(".")
        ));
    }
    let sub = table
        .get_mut(part)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| format!("'{part}' is a value, not a table"))?;
    set_in(sub, &parts[1..], value)
}

/// The last `--set` of `key` (as errors name keys: `stages[1].epochs`), if any.
pub(crate) fn setting<'a>(overrides: &'a [String], key: &str) -> Option<&'a str> {
    overrides.iter().rev().map(String::as_str).find(|a| {
        let Some((k, _)) = a.split_once('=') else { return false };
        let mut named = String::new();
        for part in k.trim().split('.') {
            match part.parse::<usize>() {
                Ok(i) => named.push_str(&format!("[{i}]")),
                Err(_) if named.is_empty() => named.push_str(part),
                Err(_) => named.push_str(&format!(".{part}")),
            }
        }
        named == key
    })
}

/// A TOML parser message for a user who wrote `--set`, not the struct: "expected struct
/// ModelSection" becomes "expected a table", "expected i64" "expected an integer".
pub(crate) fn plain_message(message: &str) -> String {
    let mut out = message.trim().to_string();
    while let Some(at) = out.find("expected struct ") {
        let end = out[at + 16..].find(|c: char| !c.is_alphanumeric()).map_or(out.len(), |e| at + 16 + e);
        out.replace_range(at..end, "expected a table");
    }
    // Rust type names in words; the longest names first so `u64` does not match inside `usize`.
    let words = [
        ("usize", "a whole number ≥ 0"),
        ("isize", "an integer"),
        ("u64", "a whole number ≥ 0"),
        ("u32", "a whole number ≥ 0"),
        ("u8", "a whole number ≥ 0"),
        ("i64", "an integer"),
        ("i32", "an integer"),
        ("f64", "a number"),
        ("f32", "a number"),
    ];
    for (ty, word) in words {
        let pattern = format!("expected {ty}");
        while let Some(at) = out.find(&pattern) {
            let end = at + pattern.len();
            if out[end..].starts_with(|c: char| c.is_alphanumeric()) {
                break;
            }
            out.replace_range(at..end, &format!("expected {word}"));
        }
    }
    out
}

fn parse_value(raw: &str) -> Value {
    raw.parse::<Value>().unwrap_or_else(|_| Value::from(raw))
}

/// Reorders the `[[stages]]` tables: stage `i` of the result is stage `order[i]` of `text`.
///
/// `order` must be a permutation of `0..n` (n = number of stages). Each table moves whole,
/// with its keys and the comments above it, so per-stage settings follow their modality.
pub fn reorder_stages(text: &str, order: &[usize], path: &Path) -> Result<String> {
    let syntax = |message: String| LearnerError::Syntax { path: path.into(), message };
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| syntax(e.to_string()))?;
    let stages = doc
        .get_mut("stages")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| syntax("no [[stages]] to reorder".into()))?;
    let n = stages.len();
    let mut seen = vec![false; n];
    for &i in order {
        if i >= n || std::mem::replace(&mut seen[i], true) {
            return Err(syntax(format!("stage order {order:?} is not a permutation of 0..{n}")));
        }
    }
    if order.len() != n {
        return Err(syntax(format!("stage order {order:?} is not a permutation of 0..{n}")));
    }
    let old: Vec<toml_edit::Table> = stages.iter().cloned().collect();
    stages.clear();
    for (slot, &i) in order.iter().enumerate() {
        let mut t = old[i].clone();
        // toml_edit prints tables by their recorded document position, not by array order:
        // the moved table takes the position of the slot it fills.
        if let Some(p) = old[slot].position() {
            t.set_position(p);
        }
        stages.push(t);
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\n\n[[stages]]\nmodality = \"a\"\n\n# b runs short\n[[stages]]\nmodality = \"b\"\nepochs = 2\n\n[[stages]]\nmodality = \"c\"\n\n[eval]\nmetrics = [\"map\"]\n";

    fn modalities(text: &str) -> Vec<(String, Option<i64>)> {
        let doc: DocumentMut = text.parse().unwrap();
        doc["stages"]
            .as_array_of_tables()
            .unwrap()
            .iter()
            .map(|t| {
                (t["modality"].as_str().unwrap().to_string(), t.get("epochs").and_then(Item::as_integer))
            })
            .collect()
    }

    #[test]
    fn reorder_moves_whole_tables() {
        let out = reorder_stages(TEXT, &[2, 1, 0], Path::new("x.toml")).unwrap();
        assert_eq!(modalities(&out), vec![("c".into(), None), ("b".into(), Some(2)), ("a".into(), None)]);
        // The comment travels with its stage; the rest of the file is untouched.
        assert!(out.find("# b runs short").unwrap() < out.find("modality = \"b\"").unwrap());
        assert!(out.contains("[eval]\nmetrics = [\"map\"]"));
        // The identity gives back the same stages.
        let same = reorder_stages(TEXT, &[0, 1, 2], Path::new("x.toml")).unwrap();
        assert_eq!(modalities(&same), modalities(TEXT));
    }

    #[test]
    fn reorder_rejects_non_permutations() {
        for bad in [&[0, 1][..], &[0, 0, 1], &[0, 1, 3], &[0, 1, 2, 2]] {
            let e = reorder_stages(TEXT, bad, Path::new("x.toml")).unwrap_err().to_string();
            assert!(e.contains("x.toml") && e.contains("not a permutation"), "{e}");
        }
        let e = reorder_stages("name = \"x\"\n", &[0], Path::new("y.toml")).unwrap_err().to_string();
        assert!(e.contains("y.toml") && e.contains("no [[stages]]"), "{e}");
    }
}
