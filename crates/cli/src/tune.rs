//! `seqmodal tune`: per-learner hyper-parameter search with the same budget for every learner.
//!
//! A tune file names a base experiment, the learners, a number of trials and a sampler over
//! each learner's declared tuning ranges ([`seqmodal_learner::Search`]). Every trial × seed
//! is one cell of an ordinary sweep (a run directory under `DIR/cells/`, a child
//! `seqmodal run`), so running, resuming, failure recording, `--jobs`, `--cell` and Slurm
//! are the sweep's own code. Each cell evaluates on `dataset.validation`: queries drawn from
//! the training rows, never the test split. The trial with the best mean final ACC on
//! validation (ties: the earlier trial) is written as an experiment file per learner,
//! without the validation key; `DIR/trials.csv` lists every trial.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use toml::Spanned;

use seqmodal_analysis::{atomic_write, cl_metrics, load_run, mean_std};
use seqmodal_learner::keys::KeyKind;
use seqmodal_learner::{overrides, Checker, Key, Registry, Role, Search};

use crate::sweep::spec::{absolute_dataset_path, check_text, value_strings, Cell, SlurmOptions, Sweep};
use crate::sweep::{self, cell_dir};

/// Validation fraction when the tune file gives none.
const DEFAULT_VALIDATION: f64 = 0.2;
/// Most trials per learner (a larger number is almost certainly a typo).
const MAX_TRIALS: usize = 10_000;

/// What `seqmodal tune` should do.
#[derive(clap::Args, Clone, Debug)]
pub struct TuneArgs {
    /// The tune file (TOML: base, learners, trials, sampler, seed, defaults, validation, seeds,
    /// [set], [ranges]).
    pub tune: PathBuf,
    #[command(flatten)]
    pub cells: sweep::CellArgs,
    /// Folder of the tuned experiment files [default: experiments/tuned/<base name>].
    #[arg(long, value_name = "DIR")]
    pub write_experiments: Option<PathBuf>,
}

/// Raw tune file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TuneFile {
    /// Tune name (default: the file stem).
    name: Option<Spanned<String>>,
    /// Base experiment, relative to the tune file.
    base: Spanned<String>,
    /// Learners tuned (default: every strategy and lower bound of the registry).
    learners: Option<Spanned<Vec<Spanned<String>>>>,
    /// Trials per learner: the equal budget.
    trials: Spanned<i64>,
    /// `random` (default) or `grid`.
    sampler: Option<Spanned<String>>,
    /// Seed of the sampler.
    seed: Option<u64>,
    /// Also run each learner's defaults as one more trial, after the sampled ones (default true).
    defaults: Option<bool>,
    /// Fraction of the training rows used as validation queries.
    validation: Option<Spanned<f64>>,
    /// Run seeds of every trial (default: the base's seed).
    seeds: Option<Spanned<Vec<Spanned<i64>>>>,
    /// Fixed overrides of every trial; a `learner.KEY` here is not tuned.
    #[serde(default)]
    set: BTreeMap<String, Spanned<toml::Value>>,
    /// Range overrides: `KEY` or `LEARNER.KEY` -> `{ log = [lo, hi] }`, `{ linear = [lo, hi] }`,
    /// `{ ints = [lo, hi] }` or `"fixed"`.
    #[serde(default)]
    ranges: BTreeMap<String, Spanned<toml::Value>>,
    /// Options of the Slurm job-array script.
    #[serde(default)]
    slurm: SlurmOptions,
}

/// How trial values are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sampler {
    Random,
    Grid,
}

impl Sampler {
    fn as_str(self) -> &'static str {
        match self {
            Sampler::Random => "random",
            Sampler::Grid => "grid",
        }
    }
}

/// One trial: a learner's key values, one cell per run seed.
#[derive(Clone, Debug)]
struct Trial {
    learner: String,
    /// 0-based within the learner.
    id: usize,
    /// (key, value) in the learner's key order.
    values: Vec<(String, toml::Value)>,
    /// Indices into the sweep's cells, one per seed.
    cells: Vec<usize>,
    /// Why the trial's experiment was refused (the values break a rule of the learner).
    invalid: Option<String>,
    /// The learner's defaults, run beside the sampled trials (`defaults = true`).
    defaults: bool,
}

/// A checked tune: the trials and the sweep that runs them.
struct Tune {
    sweep: Sweep,
    trials: Vec<Trial>,
    learners: Vec<String>,
    /// Tuned keys per learner (none: one trial of the defaults).
    tuned: BTreeMap<String, Vec<String>>,
    budget: usize,
    sampler: Sampler,
    seed: u64,
    /// Whether each learner's defaults run as one more trial.
    defaults: bool,
    validation: f64,
    /// Base text with the fixed overrides, the learner reset per learner in [`Tune::text`].
    common: String,
    /// `learner.KEY` overrides of [set], applied to learners that declare KEY.
    learner_set: Vec<(String, String)>,
    base: PathBuf,
    base_name: String,
}

/// A trial's outcome over its seeds.
struct TrialResult {
    status: &'static str,
    acc: Option<(f64, f64)>,
    forgetting: Option<(f64, f64)>,
    n_ok: usize,
}

/// Runs the `seqmodal tune` command.
pub fn tune(args: &TuneArgs) -> Result<()> {
    let c = &args.cells;
    let t = Tune::load(&args.tune)?;
    let dir = c.out.clone().unwrap_or_else(|| PathBuf::from("runs/tunes").join(&t.sweep.name));
    let n = t.sweep.cells.len();
    if c.emit_script(&t.sweep, "tune", &args.tune, &dir)? {
        return Ok(());
    }
    if c.collect && !dir.is_dir() {
        bail!("{}: no such tune directory (run the tune or its Slurm tasks first)", dir.display());
    }
    sweep::check_finished_cells_match(&t.sweep, &dir)?;
    if let Some((i, cell)) = c.one_cell(&t.sweep, &args.tune)? {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        return sweep::run_one(i, cell, &dir);
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create tune directory {}", dir.display()))?;
    let text = std::fs::read(&args.tune).with_context(|| format!("cannot read {}", args.tune.display()))?;
    atomic_write(&dir.join("tune.toml"), &text)?;
    let failed = if c.collect {
        Vec::new()
    } else {
        sweep::run_pending(&t.sweep, &dir, c.jobs.max(1), c.quiet, "tune")?
    };
    let out = args
        .write_experiments
        .clone()
        .unwrap_or_else(|| PathBuf::from("experiments/tuned").join(&t.base_name));
    let results = t.write_tables(&dir, &out, &args.tune)?;
    let not_ok: Vec<String> = t
        .trials
        .iter()
        .zip(&results)
        .filter(|(tr, r)| tr.invalid.is_none() && r.status != "ok")
        .map(|(tr, r)| format!("{} trial {} ({})", tr.learner, tr.id, r.status))
        .collect();
    if !failed.is_empty() {
        return Err(crate::sweep::failed_cells(&failed, n));
    }
    if !not_ok.is_empty() {
        bail!("{} trial(s) did not finish: {}", not_ok.len(), not_ok.join(", "));
    }
    Ok(())
}

impl Tune {
    /// Reads and checks a tune file; builds every trial's cells. Nothing runs.
    fn load(path: &Path) -> Result<Tune> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read tune file {}", path.display()))?;
        let file: TuneFile = toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        file.check(&text, path)
    }

    /// The experiment text of `learner` with `values` and run seed `seed` (None: the base's).
    fn text(
        &self,
        learner: &str,
        values: &[(String, toml::Value)],
        seed: Option<u64>,
        validation: bool,
    ) -> Result<String> {
        let registry = Registry::builtin();
        let entry = registry.get(learner).map_err(|e| anyhow!(e))?;
        let declared: Vec<&str> = (entry.keys)().iter().map(|k| k.name).collect();
        let mut list: Vec<String> = self
            .learner_set
            .iter()
            .filter(|(k, _)| declared.contains(&k.as_str()))
            .map(|(k, v)| format!("learner.{k}={v}"))
            .collect();
        list.extend(values.iter().map(|(k, v)| format!("learner.{k}={}", value_strings(v).0)));
        if validation {
            list.push(format!("dataset.validation={}", toml::Value::Float(self.validation)));
        }
        if let Some(s) = seed {
            list.push(format!("seed={s}"));
        }
        let text = overrides::reset_learner(&self.common, learner, &self.base)?;
        Ok(overrides::apply(&text, &list, &self.base)?)
    }

    /// Each trial's outcome, from the cells' own metrics.csv.
    fn results(&self, dir: &Path) -> Result<Vec<TrialResult>> {
        let mut out = Vec::new();
        for tr in &self.trials {
            if tr.invalid.is_some() {
                out.push(TrialResult { status: "invalid", acc: None, forgetting: None, n_ok: 0 });
                continue;
            }
            let (mut accs, mut forg, mut failed, mut missing) = (Vec::new(), Vec::new(), 0, 0);
            for &c in &tr.cells {
                let d = cell_dir(dir, &self.sweep.cells[c]);
                if d.join("summary.json").is_file() {
                    let run = load_run(&d).with_context(|| format!("reading {}", d.display()))?;
                    accs.extend(cl_metrics::acc(&run.matrix));
                    forg.extend(cl_metrics::forgetting_max_prev(&run.matrix));
                } else if d.join("error.txt").is_file() {
                    failed += 1;
                } else {
                    missing += 1;
                }
            }
            let status = match (failed, missing) {
                (0, 0) => "ok",
                (f, _) if f > 0 => "failed",
                _ => "missing",
            };
            out.push(TrialResult {
                status,
                acc: mean_std(&accs),
                forgetting: mean_std(&forg),
                n_ok: accs.len(),
            });
        }
        Ok(out)
    }

    /// Writes trials.csv, best.csv and one tuned experiment file per learner with a
    /// finished trial; returns the trial outcomes.
    fn write_tables(&self, dir: &Path, experiments: &Path, tune_file: &Path) -> Result<Vec<TrialResult>> {
        let results = self.results(dir)?;
        let mut key_columns: Vec<String> = Vec::new();
        for l in &self.learners {
            for k in &self.tuned[l] {
                if !key_columns.contains(k) {
                    key_columns.push(k.clone());
                }
            }
        }
        let f = |v: Option<(f64, f64)>, i: usize| {
            v.map_or(String::new(), |m| format!("{:.6}", if i == 0 { m.0 } else { m.1 }))
        };
        let mut csv = format!(
            "learner,trial,status,{}{}n_seeds,val_acc_mean,val_acc_std,val_forgetting_mean,val_forgetting_std,note\n",
            key_columns.join(","),
            if key_columns.is_empty() { "" } else { "," }
        );
        for (tr, r) in self.trials.iter().zip(&results) {
            let cols: Vec<String> = key_columns
                .iter()
                .map(|k| {
                    tr.values.iter().find(|(n, _)| n == k).map_or(String::new(), |(_, v)| value_strings(v).1)
                })
                .collect();
            let note = match (&tr.invalid, self.tuned[&tr.learner].is_empty()) {
                (Some(why), _) => why.lines().next().unwrap_or("").to_string(),
                (None, true) => "no tunable keys: one trial of the defaults".into(),
                (None, false) if tr.defaults => "the learner's defaults (not a sampled trial)".into(),
                _ => String::new(),
            };
            csv.push_str(&format!(
                "{},{},{},{}{}{},{},{},{},{},{}\n",
                tr.learner,
                tr.id,
                r.status,
                cols.join(","),
                if cols.is_empty() { "" } else { "," },
                r.n_ok,
                f(r.acc, 0),
                f(r.acc, 1),
                f(r.forgetting, 0),
                f(r.forgetting, 1),
                csv_field(&note)
            ));
        }
        atomic_write(&dir.join("trials.csv"), csv.as_bytes())?;
        let mut best_csv =
            String::from("learner,trials,trials_ok,best_trial,settings,val_acc_mean,val_acc_std,val_forgetting_mean,experiment\n");
        for l in &self.learners {
            let mine: Vec<(&Trial, &TrialResult)> =
                self.trials.iter().zip(&results).filter(|(t, _)| &t.learner == l).collect();
            let ok = mine.iter().filter(|(_, r)| r.status == "ok").count();
            // Highest mean ACC; a later trial must be strictly better (ties: trial order).
            let mut best: Option<(&Trial, &TrialResult)> = None;
            for &(t, r) in mine.iter().filter(|(_, r)| r.status == "ok") {
                let a = r.acc.map_or(f64::NEG_INFINITY, |m| m.0);
                if best.is_none_or(|(_, b)| a > b.acc.map_or(f64::NEG_INFINITY, |m| m.0)) {
                    best = Some((t, r));
                }
            }
            let Some((t, r)) = best else {
                best_csv.push_str(&format!("{l},{},{ok},,,,,,\n", mine.len()));
                continue;
            };
            let file = experiments.join(format!("{l}.toml"));
            let sampled = mine.iter().filter(|(t, _)| !t.defaults).count();
            self.write_experiment(t, r, sampled, &file, tune_file)?;
            let settings: Vec<String> =
                t.values.iter().map(|(k, v)| format!("{k}={}", value_strings(v).0)).collect();
            best_csv.push_str(&format!(
                "{l},{},{ok},{},{},{},{},{},{}\n",
                mine.len(),
                t.id,
                csv_field(&settings.join("; ")),
                f(r.acc, 0),
                f(r.acc, 1),
                f(r.forgetting, 0),
                csv_field(&file.to_string_lossy())
            ));
            let which =
                if t.defaults { "its defaults".to_string() } else { format!("trial {} of {sampled}", t.id) };
            say!("{l}: {which} best, val ACC {} -> {}", f(r.acc, 0), file.display());
        }
        atomic_write(&dir.join("best.csv"), best_csv.as_bytes())?;
        say!("wrote {} and {}", dir.join("trials.csv").display(), dir.join("best.csv").display());
        Ok(results)
    }

    /// The base with the chosen keys (no validation key), a header stating how it was chosen.
    fn write_experiment(
        &self,
        t: &Trial,
        r: &TrialResult,
        n: usize,
        file: &Path,
        tune_file: &Path,
    ) -> Result<()> {
        let mut text = self.text(&t.learner, &t.values, None, false)?;
        // Keep the base's dataset path when it resolves from the new file's place, as
        // `seqmodal run` looks it up (working directory, then folders above the file).
        if let Some(abs) = absolute_dataset_path(&text, &self.base) {
            let table: toml::Table = text.parse().map_err(|e| anyhow!("{}: {e}", self.base.display()))?;
            let rel = table.get("dataset").and_then(|d| d.get("path")).and_then(|p| p.as_str()).unwrap_or("");
            let resolves = Path::new(rel).exists() || file.ancestors().skip(1).any(|d| d.join(rel).exists());
            if !resolves {
                text = overrides::apply(
                    &text,
                    &[format!("dataset.path={}", toml::Value::String(abs))],
                    &self.base,
                )?;
            }
        }
        let chosen: Vec<String> =
            t.values.iter().map(|(k, v)| format!("{k} = {}", value_strings(v).0)).collect();
        let acc = r.acc.map_or("-".into(), |(m, s)| format!("{m:.4} ± {s:.4}"));
        let seeds: Vec<String> = t.cells.iter().map(|&c| self.sweep.cells[c].seed.to_string()).collect();
        let which = if t.defaults { "its defaults".to_string() } else { format!("trial {} of {n}", t.id) };
        let header = format!(
            "# Tuned by `seqmodal tune {}`: learner {}, {which} (budget {} {} trials per learner{}, seed {}).\n\
             # Validation ACC {acc} (mean ± std over run seeds [{}]) with {} of the training rows as queries; \
             the test split was not used.\n# Chosen: {}\n",
            tune_file.display(),
            t.learner,
            self.budget,
            self.sampler.as_str(),
            if self.defaults { " and the defaults" } else { "" },
            self.seed,
            seeds.join(", "),
            self.validation,
            if t.defaults {
                "the learner's defaults (no sampled trial did better on validation)".to_string()
            } else if chosen.is_empty() {
                "nothing to tune (the learner's defaults)".to_string()
            } else {
                chosen.join(", ")
            }
        );
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        atomic_write(file, format!("{header}{text}").as_bytes())?;
        Ok(())
    }
}

/// Quotes a CSV field when it holds a comma, a quote or a newline.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `x` rounded to 3 significant digits (readable tables and files; the search is not finer).
fn round3(x: f64) -> f64 {
    format!("{x:.2e}").parse().unwrap_or(x)
}

/// A value drawn from `search` (uniform in its own scale).
fn draw(search: Search, rng: &mut rand_chacha::ChaCha8Rng) -> Option<toml::Value> {
    match search {
        Search::Fixed => None,
        Search::Log(lo, hi) => {
            Some(toml::Value::Float(round3((rng.random_range(0.0..=1.0) * (hi / lo).ln()).exp() * lo)))
        }
        Search::Linear(lo, hi) => {
            Some(toml::Value::Float(round3(lo + rng.random_range(0.0..=1.0) * (hi - lo))))
        }
        Search::Ints(lo, hi) => Some(toml::Value::Integer(rng.random_range(lo..=hi))),
    }
}

/// `m` evenly spaced values of `search` (log-spaced for `Log`; distinct integers for `Ints`).
fn levels(search: Search, m: usize) -> Vec<toml::Value> {
    let at = |i: usize| if m == 1 { 0.5 } else { i as f64 / (m - 1) as f64 };
    let mut out: Vec<toml::Value> = Vec::new();
    for i in 0..m {
        let v = match search {
            Search::Fixed => continue,
            Search::Log(lo, hi) => toml::Value::Float(round3(lo * (hi / lo).powf(at(i)))),
            Search::Linear(lo, hi) => toml::Value::Float(round3(lo + at(i) * (hi - lo))),
            Search::Ints(lo, hi) => toml::Value::Integer(lo + ((hi - lo) as f64 * at(i)).round() as i64),
        };
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Up to `n` points of the grid over `keys`: `m` levels per key with `m^d >= n`, the full
/// product when it has no more than `n` points, else `n` of them spread evenly through it.
fn grid(keys: &[(String, Search)], n: usize) -> Vec<Vec<(String, toml::Value)>> {
    if keys.is_empty() {
        return vec![Vec::new()];
    }
    let d = keys.len() as u32;
    let mut m = 1usize;
    while m.saturating_pow(d) < n {
        m += 1;
    }
    let mut points: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
    for (k, s) in keys {
        let vals = levels(*s, m);
        points = points
            .into_iter()
            .flat_map(|p| {
                vals.iter().map(move |v| p.iter().cloned().chain([(k.clone(), v.clone())]).collect())
            })
            .collect();
    }
    if points.len() <= n {
        return points;
    }
    let len = points.len();
    (0..n).map(|i| points[i * len / n].clone()).collect()
}

/// A stable 64-bit hash of a learner name (FNV-1a), so each learner's draw depends on the
/// tune seed and its own name, not on the order of `learners`.
fn name_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// A `[ranges]` entry as a search range for `key`, checked against the key's type.
fn parse_range(v: &toml::Value, key: &Key) -> std::result::Result<Search, String> {
    if v.as_str() == Some("fixed") {
        return Ok(Search::Fixed);
    }
    let t = v.as_table().filter(|t| t.len() == 1).ok_or_else(|| {
        "expected \"fixed\", { log = [lo, hi] }, { linear = [lo, hi] } or { ints = [lo, hi] }".to_string()
    })?;
    let (kind, bounds) = t.iter().next().ok_or("empty table")?;
    let pair =
        bounds.as_array().filter(|a| a.len() == 2).ok_or_else(|| format!("{kind}: expected [lo, hi]"))?;
    let num = |x: &toml::Value| x.as_float().or_else(|| x.as_integer().map(|i| i as f64));
    let (lo, hi) = match (num(&pair[0]), num(&pair[1])) {
        (Some(lo), Some(hi)) if lo.is_finite() && hi.is_finite() && lo <= hi => (lo, hi),
        _ => return Err(format!("{kind}: expected two finite numbers lo <= hi, got {bounds}")),
    };
    match (kind.as_str(), key.kind) {
        ("ints", KeyKind::Count { min }) => {
            let (l, h) = (pair[0].as_integer(), pair[1].as_integer());
            match (l, h) {
                (Some(l), Some(h)) if l >= min => Ok(Search::Ints(l, h)),
                _ => Err(format!("ints: expected integers >= {min}, got {bounds}")),
            }
        }
        ("log" | "linear", KeyKind::Number { strictly_positive }) => {
            if kind == "log" && lo <= 0.0 {
                return Err(format!("log: bounds must be > 0, got {bounds}"));
            }
            if lo < 0.0 || (strictly_positive && lo == 0.0) {
                return Err(format!("{kind}: `{}` must be {}, got {bounds}", key.name, key.range_text()));
            }
            Ok(if kind == "log" { Search::Log(lo, hi) } else { Search::Linear(lo, hi) })
        }
        ("ints" | "log" | "linear", _) => {
            Err(format!("`{}` is {}: {kind} does not apply", key.name, key.range_text()))
        }
        _ => Err(format!("unknown range kind `{kind}` (log, linear, ints)")),
    }
}

impl TuneFile {
    fn check(self, text: &str, path: &Path) -> Result<Tune> {
        let ck = Checker::new(text, path);
        let err = |span: std::ops::Range<usize>, key: &str, m: String| -> anyhow::Error {
            ck.err(span, key, m).into()
        };
        let name = match &self.name {
            Some(n) => ck.dir_name(n, "name")?,
            None => {
                path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "tune".into())
            }
        };
        let base = path.parent().unwrap_or(Path::new("")).join(self.base.get_ref());
        let base_text = std::fs::read_to_string(&base)
            .map_err(|e| err(self.base.span(), "base", format!("cannot read {}: {e}", base.display())))?;
        let registry = Registry::builtin();
        let learners: Vec<String> = match &self.learners {
            None => registry
                .entries()
                .iter()
                .filter(|e| matches!(e.role, Role::Strategy | Role::LowerBound))
                .map(|e| e.name.to_string())
                .collect(),
            Some(ls) => {
                if ls.get_ref().is_empty() {
                    return Err(err(ls.span(), "learners", "list at least one learner".into()));
                }
                let mut out: Vec<String> = Vec::new();
                for l in ls.get_ref() {
                    registry.get(l.get_ref()).map_err(|e| err(l.span(), "learners", e))?;
                    if out.contains(l.get_ref()) {
                        return Err(err(
                            l.span(),
                            "learners",
                            format!("learner '{}' listed twice", l.get_ref()),
                        ));
                    }
                    out.push(l.get_ref().clone());
                }
                out
            }
        };
        let budget = *self.trials.get_ref();
        if budget < 1 || budget as usize > MAX_TRIALS {
            return Err(err(
                self.trials.span(),
                "trials",
                format!("must be an integer in 1..={MAX_TRIALS}, got {budget}"),
            ));
        }
        let budget = budget as usize;
        let sampler = match &self.sampler {
            None => Sampler::Random,
            Some(s) => match s.get_ref().as_str() {
                "random" => Sampler::Random,
                "grid" => Sampler::Grid,
                other => {
                    return Err(err(s.span(), "sampler", format!("unknown sampler '{other}' (random, grid)")))
                }
            },
        };
        let validation = match &self.validation {
            None => DEFAULT_VALIDATION,
            Some(v) if v.get_ref().is_finite() && *v.get_ref() > 0.0 && *v.get_ref() < 1.0 => *v.get_ref(),
            Some(v) => {
                return Err(err(
                    v.span(),
                    "validation",
                    format!("must be a fraction in (0, 1), got {}", v.get_ref()),
                ))
            }
        };
        let seeds: Vec<Option<u64>> = match &self.seeds {
            None => vec![None],
            Some(ss) => {
                if ss.get_ref().is_empty() {
                    return Err(err(ss.span(), "seeds", "list at least one seed".into()));
                }
                let mut out = Vec::new();
                for s in ss.get_ref() {
                    let v = *s.get_ref();
                    if v < 0 || out.contains(&Some(v as u64)) {
                        return Err(err(s.span(), "seeds", format!("seed {v} is negative or listed twice")));
                    }
                    out.push(Some(v as u64));
                }
                out
            }
        };
        // [set]: learner keys go to the learners that declare them; the rest to the base.
        let mut common_list = Vec::new();
        let mut learner_set = Vec::new();
        for (k, v) in &self.set {
            let shown = format!("set.\"{k}\"");
            let val = value_strings(v.get_ref()).0;
            match k.trim().strip_prefix("learner.") {
                Some("kind") => return Err(err(v.span(), &shown, "name the learners in `learners`".into())),
                Some(key) => {
                    let has = learners
                        .iter()
                        .any(|l| registry.get(l).is_ok_and(|e| (e.keys)().iter().any(|x| x.name == key)));
                    if !has {
                        return Err(err(v.span(), &shown, format!("no tuned learner has the key `{key}`")));
                    }
                    learner_set.push((key.to_string(), val));
                }
                None => {
                    if k.trim() == "dataset.validation" {
                        return Err(err(
                            v.span(),
                            &shown,
                            "give the fraction as the top-level `validation`".into(),
                        ));
                    }
                    let one = overrides::apply(&base_text, &[format!("{k}={val}")], &base)
                        .map_err(|e| err(v.span(), &shown, e.to_string()))?;
                    // An unknown or out-of-range key is reported with the experiment's message
                    // (the base's own learner keys may not matter: reset to a keyless learner first).
                    let plain = overrides::reset_learner(&one, keyless_learner()?, &base)?;
                    check_text(&plain, &base).map_err(|e| err(v.span(), &shown, e.to_string()))?;
                    common_list.push(format!("{k}={val}"));
                }
            }
        }
        let common = overrides::apply(&base_text, &common_list, &base)?;
        // Range overrides: `KEY` (every tuned learner that declares it) or `LEARNER.KEY`.
        let mut ranges: BTreeMap<(String, String), Search> = BTreeMap::new();
        for (k, v) in &self.ranges {
            let shown = format!("ranges.\"{k}\"");
            let (only, key) = match k.split_once('.') {
                Some((l, key)) => (Some(l), key),
                None => (None, k.as_str()),
            };
            if let Some(l) = only {
                if !learners.iter().any(|x| x == l) {
                    return Err(err(
                        v.span(),
                        &shown,
                        format!("'{l}' is not a tuned learner ({})", learners.join(", ")),
                    ));
                }
            }
            let mut hit = false;
            for l in learners.iter().filter(|l| only.is_none_or(|o| o == l.as_str())) {
                let entry = registry.get(l).map_err(|e| anyhow!(e))?;
                if let Some(decl) = (entry.keys)().into_iter().find(|x| x.name == key) {
                    let s = parse_range(v.get_ref(), &decl).map_err(|m| err(v.span(), &shown, m))?;
                    ranges.insert((l.clone(), key.to_string()), s);
                    hit = true;
                }
            }
            if !hit {
                return Err(err(v.span(), &shown, format!("no tuned learner has the key `{key}`")));
            }
        }
        let base_name = check_text(&overrides::reset_learner(&common, keyless_learner()?, &base)?, &base)
            .map_err(|e| anyhow!("{}: base experiment {}: {e}", path.display(), base.display()))?
            .name;
        let mut tune = Tune {
            sweep: Sweep {
                path: path.to_path_buf(),
                name,
                base: base.clone(),
                axis_columns: vec!["trial".into()],
                cells: Vec::new(),
                slurm: self.slurm.clone(),
            },
            trials: Vec::new(),
            learners: learners.clone(),
            tuned: BTreeMap::new(),
            budget,
            sampler,
            seed: self.seed.unwrap_or(0),
            defaults: self.defaults.unwrap_or(true),
            validation,
            common,
            learner_set,
            base: base.clone(),
            base_name,
        };
        for l in &learners {
            let entry = registry.get(l).map_err(|e| anyhow!(e))?;
            let keys: Vec<(String, Search)> = (entry.keys)()
                .into_iter()
                .filter(|k| !tune.learner_set.iter().any(|(s, _)| s == k.name))
                .map(|k| {
                    let s = ranges.get(&(l.clone(), k.name.to_string())).copied().unwrap_or(k.search);
                    (k.name.to_string(), s)
                })
                .filter(|(_, s)| *s != Search::Fixed)
                .collect();
            // The learner's defaults must run: an error here is the base's or [set]'s.
            let defaults = tune.text(l, &[], seeds[0], true)?;
            check_text(&defaults, &base)
                .map_err(|e| anyhow!("{}: learner {l} with its defaults: {e}", path.display()))?;
            let mut points: Vec<Vec<(String, toml::Value)>> = if keys.is_empty() {
                vec![Vec::new()]
            } else {
                match sampler {
                    Sampler::Grid => grid(&keys, budget),
                    Sampler::Random => {
                        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(tune.seed ^ name_hash(l));
                        (0..budget)
                            .map(|_| {
                                keys.iter()
                                    .filter_map(|(k, s)| Some((k.clone(), draw(*s, &mut rng)?)))
                                    .collect()
                            })
                            .collect()
                    }
                }
            };
            // The defaults join the sampled trials (after them: the sampled ids stay stable), so
            // tuning never picks something worse on validation than what the learner ships with.
            let sampled = points.len();
            if tune.defaults && !keys.is_empty() {
                points.push(Vec::new());
            }
            tune.tuned.insert(l.clone(), keys.iter().map(|(k, _)| k.clone()).collect());
            for (id, values) in points.into_iter().enumerate() {
                let defaults = !keys.is_empty() && id == sampled;
                let mut trial =
                    Trial { learner: l.clone(), id, values, cells: Vec::new(), invalid: None, defaults };
                for &seed in &seeds {
                    let mut text = tune.text(l, &trial.values, seed, true)?;
                    if let Some(abs) = absolute_dataset_path(&text, &base) {
                        text = overrides::apply(
                            &text,
                            &[format!("dataset.path={}", toml::Value::String(abs))],
                            &base,
                        )?;
                    }
                    match check_text(&text, &base) {
                        Err(e) => {
                            trial.invalid = Some(e.to_string());
                            trial.cells.clear();
                            break;
                        }
                        Ok(exp) => {
                            let index = tune.sweep.cells.len();
                            tune.sweep.cells.push(Cell {
                                index,
                                id: format!("{l}_t{id:02}_s{}", exp.seed),
                                axes: vec![("trial".into(), id.to_string())],
                                experiment: exp.name.clone(),
                                learner: l.clone(),
                                seed: exp.seed,
                                bits: exp.model.bits,
                                text,
                            });
                            trial.cells.push(index);
                        }
                    }
                }
                tune.trials.push(trial);
            }
        }
        if tune.sweep.cells.is_empty() {
            bail!("{}: every trial was refused by the experiment check", path.display());
        }
        Ok(tune)
    }
}

/// A registered learner without keys: checking the base with it checks everything but the
/// learner keys, which every trial replaces.
fn keyless_learner() -> Result<&'static str> {
    seqmodal_learner::Registry::builtin()
        .entries()
        .iter()
        .find(|e| (e.keys)().is_empty())
        .map(|e| e.name)
        .ok_or_else(|| anyhow!("no registered learner without keys to check the base experiment with"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_at_most_the_budget_and_spans_the_range() {
        let keys = vec![("a".to_string(), Search::Log(1e-3, 1e-1)), ("b".to_string(), Search::Ints(1, 5))];
        let g = grid(&keys, 9);
        assert_eq!(g.len(), 9);
        // 3 levels per key: log-spaced 0.001, 0.01, 0.1 and integers 1, 3, 5.
        let a: Vec<f64> = g.iter().filter_map(|p| p[0].1.as_float()).collect();
        assert!(a.contains(&0.001) && a.contains(&0.01) && a.contains(&0.1));
        let b: Vec<i64> = g.iter().filter_map(|p| p[1].1.as_integer()).collect();
        assert_eq!(b[..3], [1, 3, 5]);
        // 4 of a 9-point grid: spread, all distinct.
        let g4 = grid(&keys, 4);
        assert_eq!(g4.len(), 4);
        // Fewer distinct integers than levels: no repeated point.
        assert_eq!(grid(&[("n".into(), Search::Ints(1, 2))], 5).len(), 2);
    }

    #[test]
    fn shipped_tune_files_check_with_an_equal_budget() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tunes");
        for name in ["mfeat-shared", "wiki-shared"] {
            let t = Tune::load(&root.join(format!("{name}.toml"))).unwrap();
            assert_eq!(t.learners.len(), 8);
            for l in &t.learners {
                let mine: Vec<&Trial> = t.trials.iter().filter(|x| &x.learner == l).collect();
                // 12 sampled trials, then the defaults.
                assert_eq!(mine.len(), 13, "{name}: {l}");
                assert!(mine.iter().take(12).all(|x| !x.defaults && !x.values.is_empty()), "{name}: {l}");
                assert!(mine[12].defaults && mine[12].values.is_empty(), "{name}: {l}");
                // memory is fixed by [set]: never drawn.
                assert!(!t.tuned[l].contains(&"memory".to_string()));
            }
            // Every cell evaluates on validation rows, with the scenario's memory.
            for c in &t.sweep.cells {
                assert!(c.text.contains("validation = 0.2"), "{}", c.id);
            }
            // Deterministic per seed: loading twice gives the same cells.
            let again = Tune::load(&root.join(format!("{name}.toml"))).unwrap();
            let texts = |t: &Tune| t.sweep.cells.iter().map(|c| c.text.clone()).collect::<Vec<_>>();
            assert_eq!(texts(&t), texts(&again));
        }
    }

    #[test]
    fn random_draws_stay_in_range() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..200 {
            let x = draw(Search::Log(1e-4, 1e-2), &mut rng).and_then(|v| v.as_float()).unwrap();
            assert!((1e-4 * 0.999..=1e-2 * 1.001).contains(&x), "{x}");
            let i = draw(Search::Ints(16, 256), &mut rng).and_then(|v| v.as_integer()).unwrap();
            assert!((16..=256).contains(&i));
        }
        assert_eq!(round3(0.0123456), 0.0123);
        assert_eq!(round3(1234.5), 1230.0);
    }
}
