//! Declared `[learner]` keys: each learner lists its keys ([`Key`]: type, default, valid
//! range, one-line doc, tuning range) next to its code; [`check`] turns the raw table of an
//! experiment file ([`LearnerSection`]) into checked [`Values`] with `file:line: learner.key:`
//! errors, and [`Values::to_section`] writes the resolved table back for `config.toml`.
//! Nothing here knows any particular key.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::Spanned;

use crate::checker::Checker;
use crate::error::{LearnerError, Result};

/// The type and valid range of a key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyKind {
    /// An integer `>= min`.
    Count {
        /// Smallest allowed value.
        min: i64,
    },
    /// A finite number, `> 0` when `strictly_positive`, else `>= 0`.
    Number {
        /// Whether 0 is refused.
        strictly_positive: bool,
    },
    /// `true` or `false`.
    Flag,
    /// One of these names.
    Choice {
        /// The allowed names.
        options: &'static [&'static str],
    },
}

/// A key's value when the file does not give it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyDefault {
    /// This integer.
    Int(i64),
    /// This number.
    Float(f64),
    /// This flag.
    Bool(bool),
    /// This name (of a [`KeyKind::Choice`] key).
    Name(&'static str),
    /// The experiment's `[train] batch`.
    TrainBatch,
    /// The experiment's `[train] lr`.
    TrainLr,
}

/// Where a tuning search draws a key's values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Search {
    /// Not tuned.
    Fixed,
    /// Log-uniform in `[lo, hi]`.
    Log(f64, f64),
    /// Uniform in `[lo, hi]`.
    Linear(f64, f64),
    /// Integers in `[lo, hi]`.
    Ints(i64, i64),
}

impl fmt::Display for Search {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Search::Fixed => write!(f, "fixed"),
            Search::Log(lo, hi) => write!(f, "log [{lo}, {hi}]"),
            Search::Linear(lo, hi) => write!(f, "[{lo}, {hi}]"),
            Search::Ints(lo, hi) => write!(f, "integers [{lo}, {hi}]"),
        }
    }
}

/// One declared `[learner]` key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Key {
    /// Name in the `[learner]` table.
    pub name: &'static str,
    /// Type and valid range.
    pub kind: KeyKind,
    /// Value when absent.
    pub default: KeyDefault,
    /// One line: what it does.
    pub doc: &'static str,
    /// Tuning range.
    pub search: Search,
    /// `key = 0` is accepted (and ignored) by learners without the key, so one file can
    /// sweep over learners with and without it.
    pub zero_means_none: bool,
}

impl Key {
    /// An integer key `>= min`.
    pub const fn count(name: &'static str, default: i64, min: i64, doc: &'static str) -> Key {
        Key::new(name, KeyKind::Count { min }, KeyDefault::Int(default), doc)
    }

    /// A number key, `> 0` when `strictly_positive`, else `>= 0`.
    pub const fn number(name: &'static str, default: f64, strictly_positive: bool, doc: &'static str) -> Key {
        Key::new(name, KeyKind::Number { strictly_positive }, KeyDefault::Float(default), doc)
    }

    /// A `true`/`false` key.
    pub const fn flag(name: &'static str, default: bool, doc: &'static str) -> Key {
        Key::new(name, KeyKind::Flag, KeyDefault::Bool(default), doc)
    }

    /// A key naming one of `options`.
    pub const fn choice(
        name: &'static str,
        options: &'static [&'static str],
        default: &'static str,
        doc: &'static str,
    ) -> Key {
        Key::new(name, KeyKind::Choice { options }, KeyDefault::Name(default), doc)
    }

    const fn new(name: &'static str, kind: KeyKind, default: KeyDefault, doc: &'static str) -> Key {
        Key { name, kind, default, doc, search: Search::Fixed, zero_means_none: false }
    }

    /// The same key with another default (e.g. one taken from `[train]`).
    pub const fn default_to(mut self, default: KeyDefault) -> Key {
        self.default = default;
        self
    }

    /// The same key with a tuning range.
    pub const fn search(mut self, search: Search) -> Key {
        self.search = search;
        self
    }

    /// The same key, accepted as `= 0` by learners that do not have it.
    pub const fn zero_means_none(mut self) -> Key {
        self.zero_means_none = true;
        self
    }

    /// The valid range in words.
    pub fn range_text(&self) -> String {
        match self.kind {
            KeyKind::Count { min: 1 } => "integer >= 1".into(),
            KeyKind::Count { min } => format!("integer >= {min}"),
            KeyKind::Number { strictly_positive: true } => "number > 0".into(),
            KeyKind::Number { strictly_positive: false } => "number >= 0".into(),
            KeyKind::Flag => "true or false".into(),
            KeyKind::Choice { options } => {
                options.iter().map(|o| format!("\"{o}\"")).collect::<Vec<_>>().join(" or ")
            }
        }
    }

    /// The default in words.
    pub fn default_text(&self) -> String {
        match self.default {
            KeyDefault::Int(v) => v.to_string(),
            KeyDefault::Float(v) => format!("{v:?}"),
            KeyDefault::Bool(v) => v.to_string(),
            KeyDefault::Name(v) => format!("\"{v}\""),
            KeyDefault::TrainBatch => "[train] batch".into(),
            KeyDefault::TrainLr => "[train] lr".into(),
        }
    }
}

/// The `[learner]` table as written: `kind` and the learner's own keys, in file order.
#[derive(Clone, Debug)]
pub struct LearnerSection {
    /// Learner name.
    pub kind: Spanned<String>,
    /// Every other key with its value.
    pub keys: Vec<(Spanned<String>, Spanned<toml::Value>)>,
}

impl<'de> Deserialize<'de> for LearnerSection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Table;
        impl<'de> Visitor<'de> for Table {
            type Value = LearnerSection;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a [learner] table")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<LearnerSection, A::Error> {
                let (mut kind, mut keys) = (None, Vec::new());
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    if key.get_ref() == "kind" {
                        if kind.is_some() {
                            return Err(de::Error::duplicate_field("kind"));
                        }
                        kind = Some(map.next_value::<Spanned<String>>()?);
                    } else {
                        keys.push((key, map.next_value::<Spanned<toml::Value>>()?));
                    }
                }
                let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
                Ok(LearnerSection { kind, keys })
            }
        }
        d.deserialize_map(Table)
    }
}

impl Serialize for LearnerSection {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1 + self.keys.len()))?;
        map.serialize_entry("kind", self.kind.get_ref())?;
        for (k, v) in &self.keys {
            map.serialize_entry(k.get_ref(), v.get_ref())?;
        }
        map.end()
    }
}

/// A checked value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// A count.
    Int(i64),
    /// A number.
    Float(f64),
    /// A flag.
    Bool(bool),
    /// One of a choice key's names.
    Name(&'static str),
}

/// What `[train]` gives keys that default to it.
#[derive(Clone, Copy, Debug)]
pub struct TrainDefaults {
    /// `[train] batch`.
    pub batch: usize,
    /// `[train] lr`.
    pub lr: f64,
}

/// A learner's checked keys: every declared key, given or defaulted, in declaration order.
/// Equal when the learner and its values are: where they were written does not count.
#[derive(Clone, Debug)]
pub struct Values {
    learner: String,
    path: PathBuf,
    entries: Vec<(&'static str, Value, usize)>,
}

impl PartialEq for Values {
    fn eq(&self, other: &Self) -> bool {
        let values = |v: &Values| v.entries.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>();
        self.learner == other.learner && values(self) == values(other)
    }
}

impl Values {
    fn find(&self, name: &str) -> Result<&(&'static str, Value, usize)> {
        self.entries.iter().find(|e| e.0 == name).ok_or_else(|| LearnerError::Learner {
            learner: self.learner.clone(),
            message: format!("reads key '{name}', which it does not declare"),
        })
    }

    fn wrong(&self, name: &str, want: &str) -> LearnerError {
        LearnerError::Learner {
            learner: self.learner.clone(),
            message: format!("reads key '{name}' as {want}, which is not its declared type"),
        }
    }

    /// A declared number key.
    pub fn float(&self, name: &str) -> Result<f64> {
        match self.find(name)?.1 {
            Value::Float(v) => Ok(v),
            _ => Err(self.wrong(name, "a number")),
        }
    }

    /// A declared count key.
    pub fn count(&self, name: &str) -> Result<usize> {
        match self.find(name)?.1 {
            Value::Int(v) => Ok(v as usize),
            _ => Err(self.wrong(name, "a count")),
        }
    }

    /// A declared flag key.
    pub fn flag(&self, name: &str) -> Result<bool> {
        match self.find(name)?.1 {
            Value::Bool(v) => Ok(v),
            _ => Err(self.wrong(name, "a flag")),
        }
    }

    /// A declared choice key: the name it holds.
    pub fn choice(&self, name: &str) -> Result<&'static str> {
        match self.find(name)?.1 {
            Value::Name(v) => Ok(v),
            _ => Err(self.wrong(name, "a choice")),
        }
    }

    /// Where `name` was given (line 0: defaulted), for errors found later (e.g. against the data).
    pub fn at(&self, name: &str) -> At {
        let line = self.entries.iter().find(|e| e.0 == name).map_or(0, |e| e.2);
        At { path: self.path.clone(), line, key: format!("learner.{name}") }
    }

    /// The learner's name.
    pub fn learner(&self) -> &str {
        &self.learner
    }

    /// The resolved table for `config.toml`: `kind` and every key, in declaration order.
    pub fn to_section(&self) -> LearnerSection {
        let keys = self
            .entries
            .iter()
            .map(|&(name, v, _)| {
                let v = match v {
                    Value::Int(i) => toml::Value::Integer(i),
                    Value::Float(x) => toml::Value::Float(x),
                    Value::Bool(b) => toml::Value::Boolean(b),
                    Value::Name(n) => toml::Value::String(n.to_string()),
                };
                (Spanned::new(0..0, name.to_string()), Spanned::new(0..0, v))
            })
            .collect();
        LearnerSection { kind: Spanned::new(0..0, self.learner.clone()), keys }
    }
}

/// A key's place in a file, for an error found after checking.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct At {
    path: PathBuf,
    line: usize,
    key: String,
}

impl At {
    /// `file:line: learner.key: message`.
    pub fn err(&self, message: String) -> LearnerError {
        LearnerError::Invalid { path: self.path.clone(), line: self.line, key: self.key.clone(), message }
    }
}

/// Checks the `[learner]` table against `keys`, the declared keys of `section.kind`.
/// `elsewhere` holds the keys every other registered learner declares: a key of another
/// learner gets a message saying so, and one declared `zero_means_none` is accepted at 0.
pub fn check(
    section: &LearnerSection,
    keys: &[Key],
    elsewhere: &[Key],
    train: TrainDefaults,
    ck: &Checker<'_>,
) -> Result<Values> {
    let learner = section.kind.get_ref().clone();
    let full = |k: &str| format!("learner.{k}");
    let mut given: Vec<(&'static str, Value, usize)> = Vec::new();
    for (k, v) in &section.keys {
        let name = k.get_ref().as_str();
        let Some(key) = keys.iter().find(|key| key.name == name) else {
            let other = elsewhere.iter().find(|key| key.name == name);
            if other.is_some_and(|o| o.zero_means_none) && is_zero(v.get_ref()) {
                continue;
            }
            let own = if keys.is_empty() {
                "none".to_string()
            } else {
                keys.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
            };
            let message = match other {
                Some(_) => format!("not a key of learner '{learner}' (its keys: {own})"),
                None => format!(
                    "unknown key on line {}: no learner has it (learner '{learner}' keys: {own})",
                    ck.line(k.span())
                ),
            };
            return Err(ck.err(k.span(), &full(name), message));
        };
        let span = v.span();
        let bad_type = |want: &str| {
            ck.err(span.clone(), &full(name), format!("must be {want}, got {}", v.get_ref().type_str()))
        };
        let value = match (key.kind, v.get_ref()) {
            (KeyKind::Count { min }, toml::Value::Integer(i)) => {
                Value::Int(ck.int_value(*i, span.clone(), &full(name), min)? as i64)
            }
            (KeyKind::Count { .. }, _) => return Err(bad_type("an integer")),
            (KeyKind::Number { strictly_positive }, toml::Value::Float(x)) => {
                Value::Float(ck.float_value(*x, span.clone(), &full(name), strictly_positive)?)
            }
            // An integer literal is a number too (`lambda = 100`).
            (KeyKind::Number { strictly_positive }, toml::Value::Integer(i)) => {
                Value::Float(ck.float_value(*i as f64, span.clone(), &full(name), strictly_positive)?)
            }
            (KeyKind::Number { .. }, _) => return Err(bad_type("a number")),
            (KeyKind::Flag, toml::Value::Boolean(b)) => Value::Bool(*b),
            (KeyKind::Flag, _) => return Err(bad_type("true or false")),
            (KeyKind::Choice { options }, toml::Value::String(s)) => {
                match options.iter().find(|o| **o == s.as_str()) {
                    Some(o) => Value::Name(o),
                    None => {
                        let known = options.join(", ");
                        let message = format!("unknown value '{s}' (known: {known})");
                        return Err(ck.err(span.clone(), &full(name), message));
                    }
                }
            }
            (KeyKind::Choice { options }, _) => {
                return Err(bad_type(&format!("one of {}", options.join(", "))))
            }
        };
        given.push((key.name, value, ck.line(k.span())));
    }
    let entries = keys
        .iter()
        .map(|key| match given.iter().find(|g| g.0 == key.name) {
            Some(&g) => g,
            None => {
                let v = match key.default {
                    KeyDefault::Int(i) => Value::Int(i),
                    KeyDefault::Float(x) => Value::Float(x),
                    KeyDefault::Bool(b) => Value::Bool(b),
                    KeyDefault::Name(n) => Value::Name(n),
                    KeyDefault::TrainBatch => Value::Int(train.batch as i64),
                    KeyDefault::TrainLr => Value::Float(train.lr),
                };
                (key.name, v, 0)
            }
        })
        .collect();
    Ok(Values { learner, path: ck.path.into(), entries })
}

fn is_zero(v: &toml::Value) -> bool {
    matches!(v, toml::Value::Integer(0)) || matches!(v, toml::Value::Float(x) if *x == 0.0)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const KEYS: [Key; 4] = [
        Key::count("steps", 1, 1, "steps"),
        Key::number("rate", 0.5, true, "rate").search(Search::Log(1e-3, 1.0)),
        Key::flag("on", true, "on"),
        Key::choice("mode", &["fast", "slow"], "fast", "mode"),
    ];

    fn section(text: &str) -> LearnerSection {
        #[derive(Deserialize)]
        struct File {
            learner: LearnerSection,
        }
        toml::from_str::<File>(text).unwrap().learner
    }

    fn checked(text: &str) -> Result<Values> {
        let others =
            [Key::count("memory", 200, 0, "m").zero_means_none(), Key::number("lambda", 1.0, false, "l")];
        let ck = Checker::new(text, Path::new("x.toml"));
        check(&section(text), &KEYS, &others, TrainDefaults { batch: 64, lr: 1e-3 }, &ck)
    }

    #[test]
    fn defaults_fill_in_and_integers_are_numbers() {
        let v = checked("[learner]\nkind = \"t\"\nrate = 2\n").unwrap();
        assert_eq!(
            (v.count("steps").unwrap(), v.float("rate").unwrap(), v.flag("on").unwrap()),
            (1, 2.0, true)
        );
        assert_eq!(v.at("rate").err("x".into()).to_string(), "x.toml:3: learner.rate: x");
        assert!(v.float("steps").is_err() && v.count("nope").is_err());
        let s = toml::to_string(&v.to_section()).unwrap();
        assert_eq!(s, "kind = \"t\"\nsteps = 1\nrate = 2.0\non = true\nmode = \"fast\"\n");
        let v = checked("[learner]\nkind = \"t\"\nmode = \"slow\"\n").unwrap();
        assert_eq!(v.choice("mode").unwrap(), "slow");
        assert!(v.flag("mode").is_err());
    }

    #[test]
    fn bad_values_name_file_line_and_key() {
        let e = |t: &str| checked(t).unwrap_err().to_string();
        assert_eq!(
            e("[learner]\nkind = \"t\"\nsteps = 0\n"),
            "x.toml:3: learner.steps: must be a positive integer, got 0"
        );
        assert_eq!(
            e("[learner]\nkind = \"t\"\nrate = 0.0\n"),
            "x.toml:3: learner.rate: must be a finite number > 0, got 0"
        );
        assert_eq!(
            e("[learner]\nkind = \"t\"\non = 1\n"),
            "x.toml:3: learner.on: must be true or false, got integer"
        );
        assert_eq!(
            e("[learner]\nkind = \"t\"\nsteps = 1.5\n"),
            "x.toml:3: learner.steps: must be an integer, got float"
        );
        assert_eq!(
            e("[learner]\nkind = \"t\"\nlambda = 3\n"),
            "x.toml:3: learner.lambda: not a key of learner 't' (its keys: steps, rate, on, mode)"
        );
        assert_eq!(
            e("[learner]\nkind = \"t\"\nmode = \"quick\"\n"),
            "x.toml:3: learner.mode: unknown value 'quick' (known: fast, slow)"
        );
        assert_eq!(
            e("[learner]\nkind = \"t\"\nmode = 1\n"),
            "x.toml:3: learner.mode: must be one of fast, slow, got integer"
        );
        assert!(e("[learner]\nkind = \"t\"\nmomentum = 3\n").contains("unknown key on line 3"));
        // Another learner's key that means "none" at 0 is accepted.
        assert!(checked("[learner]\nkind = \"t\"\nmemory = 0\n").is_ok());
        assert!(checked("[learner]\nkind = \"t\"\nmemory = 5\n").is_err());
    }
}
