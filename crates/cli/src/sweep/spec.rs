//! Sweep files: the raw TOML form ([`SweepFile`]), checked once into a typed [`Sweep`] whose
//! cells are fully resolved, validated experiment texts. Every error names the sweep file, the
//! line and the key, and comes before anything runs.
//!
//! Each axis value is validated by applying it to the base experiment and checking the result
//! with the experiment parser itself, so the sweep knows no key list of its own: whatever the
//! experiment file accepts, an axis accepts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Deserialize;
use toml::Spanned;

use seqmodal_learner::overrides;
use seqmodal_learner::{Checker, Experiment, ExperimentFile};

/// Column name of the ordering axis (shared with the analysis crate).
pub use seqmodal_analysis::sweep::ORDERING_COLUMN;

/// Above this many cells a sweep file is almost certainly a mistake (e.g. all permutations
/// of ten modalities); the error says how to sample instead.
const MAX_CELLS: usize = 100_000;
/// `orderings = "permutations"` is refused beyond this many orderings (6! = 720).
const MAX_PERMUTATIONS: usize = 720;

/// Raw sweep file as written by a user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    /// Sweep name (default: the file stem); default output `runs/sweeps/<name>/`.
    name: Option<Spanned<String>>,
    /// Base experiment file, relative to the sweep file.
    base: Spanned<String>,
    /// Fixed overrides applied to every cell (not an axis).
    #[serde(default)]
    set: BTreeMap<String, Spanned<toml::Value>>,
    /// Learner axis (shorthand for `axes."learner.kind"`).
    learners: Option<Spanned<Vec<Spanned<String>>>>,
    /// Ordering axis: a list of modality lists, `"permutations"`, or
    /// `{ permutations = true, limit = K, seed = S }`.
    orderings: Option<Spanned<toml::Value>>,
    /// Seed axis (shorthand for `axes.seed`).
    seeds: Option<Spanned<Vec<Spanned<i64>>>>,
    /// Any experiment key (dotted path) -> list of values.
    #[serde(default)]
    axes: BTreeMap<String, Spanned<Vec<toml::Value>>>,
    /// Options of the Slurm job-array script.
    #[serde(default)]
    slurm: SlurmOptions,
}

/// `[slurm]`: `#SBATCH` options of the emitted job-array script.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` per task, e.g. "00:30:00".
    pub time: Option<String>,
    /// `--cpus-per-task` (default 1: a cell trains on one thread).
    pub cpus_per_task: Option<u32>,
    /// `--mem` per task, e.g. "4G".
    pub mem: Option<String>,
    /// At most this many tasks at once (`--array=0-N%K`).
    pub max_parallel: Option<u32>,
    /// Further `#SBATCH` lines, verbatim, e.g. ["--account=lab"].
    #[serde(default)]
    pub extra: Vec<String>,
}

/// A checked sweep: every cell's experiment text resolved and validated.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// The sweep file.
    pub path: PathBuf,
    /// Sweep name.
    pub name: String,
    /// The base experiment file.
    pub base: PathBuf,
    /// Axis columns other than learner and seed (ordering first, then keys), for the CSVs.
    pub axis_columns: Vec<String>,
    /// Every cell, in cell order.
    pub cells: Vec<Cell>,
    /// Slurm script options.
    pub slurm: SlurmOptions,
}

/// One cell: a complete experiment.
#[derive(Clone, Debug)]
pub struct Cell {
    /// Cell number, 0-based (the Slurm array index).
    pub index: usize,
    /// Readable, unique id: the directory name under `cells/`.
    pub id: String,
    /// Values of [`Sweep::axis_columns`], as (column, value).
    pub axes: Vec<(String, String)>,
    /// Experiment name.
    pub experiment: String,
    /// Learner kind.
    pub learner: String,
    /// Seed.
    pub seed: u64,
    /// Code length.
    pub bits: usize,
    /// The resolved experiment file text (written as `cells/<id>/experiment.toml`).
    pub text: String,
}

/// What one axis contributes to a cell.
#[derive(Clone, Debug)]
struct AxisValue {
    /// Value in the CSV column and the cell id.
    label: String,
    /// `key=value` override, for key, learner and seed axes.
    assignment: Option<String>,
    /// Stage order (indices into the base's stages), for the ordering axis.
    order: Option<Vec<usize>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum AxisKind {
    Learner,
    Ordering,
    Key,
    Seed,
}

#[derive(Clone, Debug)]
struct Axis {
    kind: AxisKind,
    /// CSV column (key axes: the dotted key).
    column: String,
    /// Prefix of the value in the cell id ("" for learner and ordering).
    short: String,
    values: Vec<AxisValue>,
}

/// Error helper: `sweep.toml:LINE: KEY: message`, from the one checker of seqmodal's files.
struct At<'a>(Checker<'a>);

impl At<'_> {
    fn err(&self, span: std::ops::Range<usize>, key: &str, message: impl std::fmt::Display) -> anyhow::Error {
        self.0.err(span, key, message.to_string()).into()
    }
}

/// TOML value as an override's right-hand side and as a readable label.
pub(crate) fn value_strings(v: &toml::Value) -> (String, String) {
    let toml_text = v.to_string();
    let label = match v {
        toml::Value::String(s) => s.clone(),
        _ => toml_text.clone(),
    };
    (toml_text, label)
}

/// Parses and checks experiment text (`path` only for messages).
pub(crate) fn check_text(
    text: &str,
    path: &Path,
) -> std::result::Result<Experiment, seqmodal_learner::LearnerError> {
    ExperimentFile::parse(text, path)?.check(text, path)
}

impl Sweep {
    /// Reads and checks a sweep file: every axis value, every ordering and every cell's
    /// experiment. Nothing runs and nothing is written.
    pub fn load(path: &Path) -> Result<Sweep> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read sweep file {}", path.display()))?;
        let file: SweepFile = toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        file.check(&text, path)
    }
}

impl SweepFile {
    fn check(self, text: &str, path: &Path) -> Result<Sweep> {
        let at = At(Checker::new(text, path));
        let name = match &self.name {
            Some(n) => at.0.dir_name(n, "name")?,
            None => {
                path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "sweep".into())
            }
        };
        let base = path.parent().unwrap_or(Path::new("")).join(self.base.get_ref());
        let base_text = std::fs::read_to_string(&base)
            .map_err(|e| at.err(self.base.span(), "base", format!("cannot read {}: {e}", base.display())))?;
        // Learners the sweep runs (`learners` or `axes."learner.kind"`): a learner-specific key
        // (`learner.memory`) in [set] or an axis applies if it applies under any of them.
        let swept_learners: Vec<String> = self
            .learners
            .iter()
            .flat_map(|ls| ls.get_ref().iter().map(|l| toml::Value::String(l.get_ref().clone())))
            .chain(
                self.axes
                    .iter()
                    .filter(|(k, _)| k.trim() == "learner.kind")
                    .flat_map(|(_, v)| v.get_ref().iter().cloned()),
            )
            .map(|v| format!("learner.kind={v}"))
            .collect();
        // Fixed overrides first: the axes vary on top of them.
        let set: Vec<String> =
            self.set.iter().map(|(k, v)| format!("{k}={}", value_strings(v.get_ref()).0)).collect();
        let set_text =
            overrides::apply(&base_text, &set, &base).map_err(|e| anyhow!("{}: set: {e}", path.display()))?;
        for (k, v) in &self.set {
            let one = format!("{k}={}", value_strings(v.get_ref()).0);
            let attempt = |with: Option<&String>| {
                let list: Vec<String> = with.into_iter().cloned().chain([one.clone()]).collect();
                overrides::apply(&set_text, &list, &base).and_then(|t| check_text(&t, &base)).map(|_| ())
            };
            if let Err(e) = attempt(None) {
                if !swept_learners.iter().any(|l| attempt(Some(l)).is_ok()) {
                    return Err(at.err(v.span(), &format!("set.\"{k}\""), e));
                }
            }
        }
        // The base with [set] must itself be valid, or valid under some swept learner.
        let base_exp = check_text(&set_text, &base).or_else(|e| {
            swept_learners
                .iter()
                .find_map(|l| {
                    overrides::apply(&set_text, std::slice::from_ref(l), &base)
                        .and_then(|t| check_text(&t, &base))
                        .ok()
                })
                .ok_or(e)
        });
        let base_exp =
            base_exp.map_err(|e| anyhow!("{}: base experiment {}: {e}", path.display(), base.display()))?;
        let base_text = set_text;
        let stage_modalities: Vec<String> = base_exp.stages.iter().map(|s| s.modality.clone()).collect();

        let mut axes: Vec<Axis> = Vec::new();
        // Validates `key=value` on the base; the error names the sweep's own key and line.
        // Learner-specific keys (`learner.memory`) only check under a learner that has them: a
        // key axis value passes if it applies to the base alone or with any swept learner.
        let learner_sets = &swept_learners;
        let try_assign = |key: &str,
                          shown: &str,
                          span: std::ops::Range<usize>,
                          toml_text: &str|
         -> Result<()> {
            let assignment = format!("{key}={toml_text}");
            let attempt = |with: Option<&String>| {
                let list: Vec<String> = with.into_iter().cloned().chain([assignment.clone()]).collect();
                overrides::apply(&base_text, &list, &base).and_then(|t| check_text(&t, &base)).map(|_| ())
            };
            match attempt(None) {
                Ok(()) => Ok(()),
                Err(e) if key == "learner.kind" || !learner_sets.iter().any(|l| attempt(Some(l)).is_ok()) => {
                    Err(at.err(
                        span,
                        shown,
                        format!("{key} = {toml_text} does not apply to {}: {e}", base.display()),
                    ))
                }
                Err(_) => Ok(()),
            }
        };
        let mut learners_axis: Option<(Vec<AxisValue>, std::ops::Range<usize>)> = None;
        if let Some(ls) = &self.learners {
            if ls.get_ref().is_empty() {
                return Err(at.err(ls.span(), "learners", "empty axis: list at least one learner"));
            }
            let mut values = Vec::new();
            for l in ls.get_ref() {
                let v = toml::Value::String(l.get_ref().clone());
                let (t, label) = value_strings(&v);
                if values.iter().any(|x: &AxisValue| x.label == label) {
                    return Err(at.err(l.span(), "learners", format!("learner '{label}' listed twice")));
                }
                try_assign("learner.kind", "learners", l.span(), &t)?;
                values.push(AxisValue { label, assignment: Some(format!("learner.kind={t}")), order: None });
            }
            learners_axis = Some((values, ls.span()));
        }
        let mut seeds_axis: Option<(Vec<AxisValue>, std::ops::Range<usize>)> = None;
        if let Some(ss) = &self.seeds {
            if ss.get_ref().is_empty() {
                return Err(at.err(ss.span(), "seeds", "empty axis: list at least one seed"));
            }
            let mut values: Vec<AxisValue> = Vec::new();
            for s in ss.get_ref() {
                let v = *s.get_ref();
                if v < 0 {
                    return Err(at.err(s.span(), "seeds", format!("seed {v} < 0")));
                }
                if values.iter().any(|x| x.label == v.to_string()) {
                    return Err(at.err(s.span(), "seeds", format!("seed {v} listed twice")));
                }
                values.push(AxisValue {
                    label: v.to_string(),
                    assignment: Some(format!("seed={v}")),
                    order: None,
                });
            }
            seeds_axis = Some((values, ss.span()));
        }
        let mut key_axes = Vec::new();
        let mut seen_keys: Vec<&str> = Vec::new();
        for (key, vals) in &self.axes {
            let shown = format!("axes.\"{key}\"");
            if vals.get_ref().is_empty() {
                return Err(at.err(vals.span(), &shown, "empty axis: list at least one value"));
            }
            let key = key.trim();
            if seen_keys.contains(&key) {
                return Err(at.err(
                    vals.span(),
                    &shown,
                    format!("the same key as another axis, \"{key}\": give it once"),
                ));
            }
            seen_keys.push(key);
            // Orderings are checked against the base's stages: an axis (or [set]) that changes
            // a stage's modality would run one ordering and label it another.
            if self.orderings.is_some() && key.starts_with("stages.") && key.ends_with(".modality") {
                return Err(at.err(
                    vals.span(),
                    &shown,
                    "a stage's modality cannot vary together with `orderings`: set the stages in the base file",
                ));
            }
            let mut values: Vec<AxisValue> = Vec::new();
            for v in vals.get_ref() {
                let (t, label) = value_strings(v);
                try_assign(key, &shown, vals.span(), &t)?;
                if values.iter().any(|x| x.assignment.as_deref() == Some(&format!("{key}={t}"))) {
                    return Err(at.err(vals.span(), &shown, format!("value {t} listed twice")));
                }
                values.push(AxisValue { label, assignment: Some(format!("{key}={t}")), order: None });
            }
            // `learner.kind` and `seed` are the learner and seed axes under another name.
            let slot = match key {
                "learner.kind" => Some((&mut learners_axis, "learners")),
                "seed" => Some((&mut seeds_axis, "seeds")),
                _ => None,
            };
            match slot {
                Some((s, other)) if s.is_some() => {
                    return Err(at.err(
                        vals.span(),
                        &shown,
                        format!("the same axis as `{other}`: give it once"),
                    ));
                }
                Some((s, _)) => *s = Some((values, vals.span())),
                None => {
                    let short = key.rsplit('.').next().unwrap_or(key).to_string();
                    key_axes.push(Axis { kind: AxisKind::Key, column: key.to_string(), short, values });
                }
            }
        }
        if let Some((values, _)) = learners_axis {
            axes.push(Axis {
                kind: AxisKind::Learner,
                column: "learner".into(),
                short: String::new(),
                values,
            });
        }
        if let Some(o) = &self.orderings {
            let orders = check_orderings(o, &stage_modalities, &at)?;
            let values = orders
                .into_iter()
                .map(|order| AxisValue {
                    label: order.iter().map(|&i| stage_modalities[i].as_str()).collect::<Vec<_>>().join(">"),
                    assignment: None,
                    order: Some(order),
                })
                .collect();
            axes.push(Axis {
                kind: AxisKind::Ordering,
                column: ORDERING_COLUMN.into(),
                short: String::new(),
                values,
            });
        }
        axes.extend(key_axes);
        if let Some((values, _)) = seeds_axis {
            axes.push(Axis { kind: AxisKind::Seed, column: "seed".into(), short: "s".into(), values });
        }

        let count = axes.iter().try_fold(1usize, |n, a| n.checked_mul(a.values.len())).unwrap_or(usize::MAX);
        if count > MAX_CELLS {
            bail!(
                "{}: {count} cells (more than {MAX_CELLS}): shrink an axis or sample orderings",
                path.display()
            );
        }
        let axis_columns: Vec<String> = axes
            .iter()
            .filter(|a| matches!(a.kind, AxisKind::Ordering | AxisKind::Key))
            .map(|a| a.column.clone())
            .collect();
        let width = (count.max(2) - 1).to_string().len();
        let mut cells = Vec::with_capacity(count);
        for index in 0..count {
            // Mixed radix, last axis fastest: seeds of one setting are neighbours.
            let mut rest = index;
            let mut picks = vec![0; axes.len()];
            for (i, a) in axes.iter().enumerate().rev() {
                picks[i] = rest % a.values.len();
                rest /= a.values.len();
            }
            let chosen: Vec<(&Axis, &AxisValue)> =
                axes.iter().zip(&picks).map(|(a, &p)| (a, &a.values[p])).collect();
            cells.push(resolve_cell(index, width, &chosen, &base_text, &base, path)?);
        }
        Ok(Sweep { path: path.into(), name, base, axis_columns, cells, slurm: self.slurm })
    }
}

/// Builds and checks one cell's experiment text.
fn resolve_cell(
    index: usize,
    width: usize,
    chosen: &[(&Axis, &AxisValue)],
    base_text: &str,
    base: &Path,
    sweep: &Path,
) -> Result<Cell> {
    let mut id = format!("{index:0width$}");
    for (a, v) in chosen {
        let part = match a.kind {
            AxisKind::Ordering => v.label.replace('>', "."),
            _ => format!("{}{}", a.short, v.label),
        };
        id.push('_');
        id.push_str(&sanitize(&part));
    }
    // Keep ids (directory names) short; the index prefix keeps them unique.
    id.truncate(120);
    let assignments: Vec<String> = chosen.iter().filter_map(|(_, v)| v.assignment.clone()).collect();
    let what = || {
        let mut parts = assignments.clone();
        parts.extend(
            chosen
                .iter()
                .filter(|(a, _)| a.kind == AxisKind::Ordering)
                .map(|(_, v)| format!("ordering={}", v.label)),
        );
        format!("{}: cell {index} ({})", sweep.display(), parts.join(", "))
    };
    // Key overrides address the base's stage order (`stages.0.epochs`), so they come first.
    let mut text = overrides::apply(base_text, &assignments, base).with_context(what)?;
    if let Some(order) = chosen.iter().find_map(|(_, v)| v.order.as_ref()) {
        text = overrides::reorder_stages(&text, order, base).with_context(what)?;
    }
    if let Some(abs) = absolute_dataset_path(&text, base) {
        let assignment = format!("dataset.path={}", toml::Value::String(abs));
        text = overrides::apply(&text, &[assignment], base).with_context(what)?;
    }
    let exp = check_text(&text, base).with_context(what)?;
    let axes = chosen
        .iter()
        .filter(|(a, _)| matches!(a.kind, AxisKind::Ordering | AxisKind::Key))
        .map(|(a, v)| (a.column.clone(), v.label.clone()))
        .collect();
    Ok(Cell {
        index,
        id,
        axes,
        experiment: exp.name.clone(),
        learner: exp.learner.name().to_string(),
        seed: exp.seed,
        bits: exp.model.bits,
        text,
    })
}

/// `part` as a file-name fragment: runs of characters other than ASCII letters, digits and
/// `.` become one `-`, with none at the ends (`classes[0, 1]` -> `classes-0-1`).
fn sanitize(part: &str) -> String {
    let mut out = String::new();
    for c in part.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// The dataset directory of `text` as an absolute path, resolved the way `seqmodal run` does
/// for the base file (working directory, then the base file's folders), so the cell file works
/// from the sweep directory wherever that is. None when there is no relative path to fix or it
/// does not exist (the run will then say so).
pub(crate) fn absolute_dataset_path(text: &str, base: &Path) -> Option<String> {
    let table: toml::Table = text.parse().ok()?;
    let p = PathBuf::from(table.get("dataset")?.get("path")?.as_str()?);
    if p.is_absolute() {
        return None;
    }
    let found = if p.exists() {
        Some(p.clone())
    } else {
        base.ancestors().skip(1).map(|d| d.join(&p)).find(|c| c.exists())
    }?;
    Some(found.canonicalize().ok()?.to_string_lossy().into_owned())
}

/// Checks the `orderings` value against the base's stage modalities and returns each ordering
/// as stage indices of the base.
fn check_orderings(o: &Spanned<toml::Value>, stages: &[String], at: &At<'_>) -> Result<Vec<Vec<usize>>> {
    let err = |m: String| at.err(o.span(), "orderings", m);
    let mut sorted = stages.to_vec();
    sorted.sort();
    let orders: Vec<Vec<usize>> = match o.get_ref() {
        toml::Value::String(s) if s == "permutations" => {
            // Counted before any is listed: 9 stages would be 362 880.
            let total = distinct_orderings(stages);
            if total > MAX_PERMUTATIONS {
                return Err(err(format!(
                    "{} stages have {total} distinct orderings (more than {MAX_PERMUTATIONS}): sample some with \
                     orderings = {{ permutations = true, limit = 6, seed = 1 }}",
                    stages.len(),
                )));
            }
            permutations(stages)
        }
        toml::Value::Table(t) => {
            for k in t.keys() {
                if !["permutations", "limit", "seed"].contains(&k.as_str()) {
                    return Err(err(format!("unknown key `{k}` (expected permutations, limit, seed)")));
                }
            }
            if t.get("permutations").and_then(toml::Value::as_bool) != Some(true) {
                return Err(err("a table needs `permutations = true`".into()));
            }
            let int = |k: &str| -> Result<Option<i64>> {
                match t.get(k) {
                    None => Ok(None),
                    Some(v) => v.as_integer().filter(|&i| i >= 0).map(Some).ok_or_else(|| {
                        err(format!("`{k}` must be a non-negative integer, got {v}"))
                    }),
                }
            };
            let limit = int("limit")?;
            let seed = int("seed")?.unwrap_or(0) as u64;
            sample_permutations(stages, limit.map(|l| l as usize), seed, &err)?
        }
        toml::Value::Array(list) => {
            let mut out = Vec::new();
            for (i, item) in list.iter().enumerate() {
                let names: Vec<&str> = item
                    .as_array()
                    .and_then(|a| a.iter().map(toml::Value::as_str).collect::<Option<Vec<_>>>())
                    .ok_or_else(|| err(format!("entry {i} must be a list of modality names, got {item}")))?;
                if let Some(bad) = names.iter().find(|n| !stages.iter().any(|s| s == *n)) {
                    return Err(err(format!(
                        "entry {i}: unknown modality '{bad}' (the base's stages train: {})",
                        stages.join(", ")
                    )));
                }
                let mut given: Vec<String> = names.iter().map(|s| s.to_string()).collect();
                given.sort();
                if given != sorted {
                    return Err(err(format!(
                        "entry {i} [{}] is not an ordering of the base's stages [{}]: name each stage once",
                        names.join(", "),
                        stages.join(", ")
                    )));
                }
                // k-th occurrence of a modality takes the base's k-th stage of that modality.
                let mut used = vec![false; stages.len()];
                let mut order = Vec::with_capacity(stages.len());
                for n in &names {
                    let j = (0..stages.len()).find(|&j| !used[j] && stages[j] == *n).unwrap_or(0);
                    used[j] = true;
                    order.push(j);
                }
                if out.iter().any(|o: &Vec<usize>| same_modalities(o, &order, stages)) {
                    return Err(err(format!("entry {i} [{}] listed twice", names.join(", "))));
                }
                out.push(order);
            }
            out
        }
        v => {
            return Err(err(format!(
                "expected a list of modality lists, \"permutations\" or {{ permutations = true, limit = K, seed = S }}, got {v}"
            )))
        }
    };
    if orders.is_empty() {
        return Err(err("empty axis: list at least one ordering".into()));
    }
    Ok(orders)
}

fn same_modalities(a: &[usize], b: &[usize], stages: &[String]) -> bool {
    a.iter().map(|&i| &stages[i]).eq(b.iter().map(|&i| &stages[i]))
}

/// How many distinct orderings the stages have: n! over the factorial of each modality's
/// count (stages of one modality are interchangeable), saturating.
fn distinct_orderings(stages: &[String]) -> usize {
    let mut counts: std::collections::BTreeMap<&str, u128> = std::collections::BTreeMap::new();
    for s in stages {
        *counts.entry(s.as_str()).or_default() += 1;
    }
    // The multinomial as a product of binomials C(placed + c, c), each built exactly
    // (r · (n − c + i) is divisible by i at every step).
    let mut total: u128 = 1;
    let mut placed: u128 = 0;
    for &c in counts.values() {
        let n = placed + c;
        let mut r: u128 = 1;
        for i in 1..=c {
            let Some(x) = r.checked_mul(n - c + i) else { return usize::MAX };
            r = x / i;
        }
        let Some(t) = total.checked_mul(r) else { return usize::MAX };
        total = t;
        placed = n;
    }
    usize::try_from(total).unwrap_or(usize::MAX)
}

/// Every distinct ordering of the stages, in lexicographic order of stage indices (identity
/// first); orderings that only swap stages of the same modality count once, each given as
/// its smallest stage-index form (a modality's k-th occurrence takes its k-th base stage).
/// Walks the distinct modality sequences only, so the cost is the number of orderings (the
/// callers check it first), not n!.
fn permutations(stages: &[String]) -> Vec<Vec<usize>> {
    // Modality of each stage as a small id; a sequence of ids is one ordering.
    let mut names: Vec<&str> = stages.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let ids: Vec<usize> = stages.iter().map(|s| names.binary_search(&s.as_str()).unwrap_or(0)).collect();
    let mut seq = ids.clone();
    seq.sort_unstable();
    let mut out: Vec<Vec<usize>> = Vec::new();
    loop {
        let mut used = vec![false; stages.len()];
        let order = seq
            .iter()
            .map(|&m| {
                let j = (0..stages.len()).find(|&j| !used[j] && ids[j] == m).unwrap_or(0);
                used[j] = true;
                j
            })
            .collect();
        out.push(order);
        // Next lexicographic arrangement of the multiset `seq`.
        let Some(i) = (1..seq.len()).rev().find(|&i| seq[i - 1] < seq[i]) else { break };
        let j = (i..seq.len()).rev().find(|&j| seq[j] > seq[i - 1]).unwrap_or(i);
        seq.swap(i - 1, j);
        seq[i..].reverse();
    }
    out.sort();
    out
}

/// `limit` distinct orderings drawn uniformly with a seeded ChaCha8 (all of them when there
/// are no more than `limit`, or `limit` is absent and they are few).
fn sample_permutations(
    stages: &[String],
    limit: Option<usize>,
    seed: u64,
    err: &dyn Fn(String) -> anyhow::Error,
) -> Result<Vec<Vec<usize>>> {
    let n = stages.len();
    let total = distinct_orderings(stages);
    let Some(limit) = limit else {
        if total > MAX_PERMUTATIONS {
            return Err(err(format!("{n} stages have {total} distinct orderings: give `limit`")));
        }
        return Ok(permutations(stages));
    };
    if limit == 0 {
        return Err(err("`limit` must be at least 1".into()));
    }
    if total <= MAX_PERMUTATIONS {
        let mut all = permutations(stages);
        if all.len() <= limit {
            return Ok(all);
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        all.shuffle(&mut rng);
        all.truncate(limit);
        return Ok(all);
    }
    if limit > MAX_PERMUTATIONS {
        return Err(err(format!("`limit` {limit} is more than {MAX_PERMUTATIONS} orderings")));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut seen: std::collections::HashSet<Vec<&str>> = std::collections::HashSet::new();
    // More than MAX_PERMUTATIONS orderings and at most that many wanted: rejecting repeats
    // ends after a few thousand draws at worst.
    while out.len() < limit {
        let mut p: Vec<usize> = (0..n).collect();
        p.shuffle(&mut rng);
        if seen.insert(p.iter().map(|&i| stages[i].as_str()).collect()) {
            out.push(p);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ids_are_file_name_safe() {
        assert_eq!(sanitize("classes[0, 1, 2]"), "classes-0-1-2");
        assert_eq!(sanitize("lr0.001"), "lr0.001");
        assert_eq!(sanitize("a/b c"), "a-b-c");
    }

    #[test]
    fn permutations_are_lexicographic_and_distinct() {
        let p = permutations(&names(&["a", "b", "c"]));
        assert_eq!(
            p,
            vec![vec![0, 1, 2], vec![0, 2, 1], vec![1, 0, 2], vec![1, 2, 0], vec![2, 0, 1], vec![2, 1, 0]]
        );
        // A repeated modality: a,a,b has 3 distinct orderings, not 6.
        assert_eq!(permutations(&names(&["a", "a", "b"])).len(), 3);
        assert_eq!(permutations(&names(&["a", "b", "c", "d", "e", "f"])).len(), 720);
        // The same list as every permutation, in order, keeping the first of each modality
        // sequence (what the function did by brute force before).
        let stages = names(&["b", "a", "c", "a", "b"]);
        let mut brute: Vec<Vec<usize>> = Vec::new();
        let mut p: Vec<usize> = (0..5).collect();
        loop {
            if !brute.iter().any(|o| same_modalities(o, &p, &stages)) {
                brute.push(p.clone());
            }
            let Some(i) = (1..5).rev().find(|&i| p[i - 1] < p[i]) else { break };
            let j = (i..5).rev().find(|&j| p[j] > p[i - 1]).unwrap();
            p.swap(i - 1, j);
            p[i..].reverse();
        }
        assert_eq!(permutations(&stages), brute);
        assert_eq!(brute.len(), distinct_orderings(&stages));
        assert_eq!(distinct_orderings(&names(&["a", "b", "c", "a", "b", "c", "a"])), 210);
    }

    #[test]
    fn many_stages_are_counted_not_listed() {
        let e = |m: String| anyhow!(m);
        // 7 stages with repeats: 210 distinct orderings; a limit above that gives them all
        // (it looped forever drawing an 211th).
        let rep = names(&["a", "b", "c", "a", "b", "c", "a"]);
        assert_eq!(sample_permutations(&rep, Some(300), 1, &e).unwrap().len(), 210);
        assert_eq!(sample_permutations(&rep, None, 1, &e).unwrap().len(), 210);
        // 9 distinct stages: refused at once, with the count.
        let nine = names(&["a", "b", "c", "d", "e", "f", "g", "h", "i"]);
        assert!(sample_permutations(&nine, None, 1, &e).unwrap_err().to_string().contains("362880"));
        assert!(sample_permutations(&nine, Some(721), 1, &e)
            .unwrap_err()
            .to_string()
            .contains("more than 720"));
        assert_eq!(sample_permutations(&nine, Some(720), 1, &e).unwrap().len(), 720);
        assert_eq!(distinct_orderings(&names(&["x"; 40])), 1);
        assert_eq!(distinct_orderings(&(0..40).map(|i| i.to_string()).collect::<Vec<_>>()), usize::MAX);
    }

    #[test]
    fn sampling_is_seeded_and_distinct() {
        let stages = names(&["a", "b", "c", "d", "e", "f", "g", "h"]);
        let e = |m: String| anyhow!(m);
        let x = sample_permutations(&stages, Some(6), 1, &e).unwrap();
        let y = sample_permutations(&stages, Some(6), 1, &e).unwrap();
        let z = sample_permutations(&stages, Some(6), 2, &e).unwrap();
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert_eq!(x.len(), 6);
        for (i, a) in x.iter().enumerate() {
            assert!(x[i + 1..].iter().all(|b| b != a));
            let mut s = a.clone();
            s.sort();
            assert_eq!(s, (0..8).collect::<Vec<_>>());
        }
        assert!(sample_permutations(&stages, None, 1, &e).unwrap_err().to_string().contains("limit"));
        // Fewer orderings than the limit: all of them.
        assert_eq!(sample_permutations(&stages[..3], Some(10), 1, &e).unwrap().len(), 6);
    }
}
