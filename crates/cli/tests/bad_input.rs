//! The bad-input suite: every refusal exits non-zero without a panic and names the file
//! and the key or line at fault. Each case builds its broken input in a temporary
//! directory (copies of the real datasets, then damaged) and runs the binary.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const WIKI: &str = r#"name = "bad"
seed = 1

[dataset]
kind = "wiki"
path = "DATA"

[model]
bits = 16
hidden = 32

[learner]
kind = "finetune"

[train]
epochs = 1

[[stages]]
modality = "image"

[[stages]]
modality = "text"
"#;

const MFEAT: &str = r#"name = "bad"
seed = 1

[dataset]
kind = "mfeat"
path = "DATA"

[model]
bits = 16
hidden = 32

[learner]
kind = "finetune"

[train]
epochs = 1

[[stages]]
modality = "fac"

[[stages]]
modality = "kar"
"#;

/// A temporary workspace: experiment files and damaged dataset copies.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Copies a shipped dataset into the case and returns its directory.
    fn dataset(&self, name: &str) -> PathBuf {
        let src = repo().join("datasets").join(name);
        let dst = self.path(name);
        std::fs::create_dir_all(&dst).unwrap();
        for e in std::fs::read_dir(&src).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
        dst
    }

    /// Writes an experiment file (DATA replaced by `data`) and returns its path.
    fn experiment(&self, text: &str, data: &Path) -> PathBuf {
        let p = self.path("exp.toml");
        std::fs::write(&p, text.replace("DATA", data.to_str().unwrap())).unwrap();
        p
    }

    fn wiki(&self, edit: impl Fn(&str) -> String) -> PathBuf {
        self.experiment(&edit(WIKI), &repo().join("datasets/wiki"))
    }
}

/// Runs `seqmodal args...`; asserts a clean refusal and that stderr names every `want`.
fn refuses(name: &str, args: &[&str], want: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_seqmodal")).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{name}: exited 0\n{err}");
    assert_eq!(o.status.code(), Some(1), "{name}: exit status {:?} (101 = panic)\n{err}", o.status.code());
    assert!(!err.contains("panicked"), "{name}: panicked\n{err}");
    for w in want {
        assert!(err.contains(w), "{name}: stderr does not name `{w}`:\n{err}");
    }
}

fn run_exp(name: &str, exp: &Path, want: &[&str]) {
    let out = exp.with_file_name("out");
    let mut all = vec!["exp.toml"];
    all.extend_from_slice(want);
    refuses(name, &["run", exp.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()], &all);
}

/// An edit of the experiment text.
type EditFn = Box<dyn Fn(&str) -> String>;

#[test]
fn experiment_file_errors() {
    let cases: Vec<(&str, EditFn, Vec<&str>)> = vec![
        ("toml syntax", Box::new(|t| t.replace("bits = 16", "bits = = 16")), vec!["line 9"]),
        ("wrong type", Box::new(|t| t.replace("bits = 16", "bits = \"many\"")), vec!["bits"]),
        ("unknown top-level key", Box::new(|t| format!("colour = 1\n{t}")), vec!["colour"]),
        ("unknown model key", Box::new(|t| t.replace("hidden = 32", "hiden = 32")), vec!["hiden"]),
        (
            "unknown learner",
            Box::new(|t| t.replace("\"finetune\"", "\"finetuned\"")),
            vec!["learner.kind", "finetuned"],
        ),
        (
            "unknown dataset kind",
            Box::new(|t| t.replace("\"wiki\"", "\"wikipedia\"")),
            vec!["dataset.kind", "wikipedia"],
        ),
        (
            "unknown modality",
            Box::new(|t| t.replace("\"text\"", "\"audio\"")),
            vec!["stages[1].modality", "audio"],
        ),
        ("bits 0", Box::new(|t| t.replace("bits = 16", "bits = 0")), vec!["model.bits"]),
        (
            "bits above maximum",
            Box::new(|t| t.replace("bits = 16", "bits = 100000")),
            vec!["model.bits", "4096"],
        ),
        ("no stages", Box::new(|t| t[..t.find("[[stages]]").unwrap()].to_string()), vec!["stages"]),
        ("epochs 0", Box::new(|t| t.replace("epochs = 1", "epochs = 0")), vec!["train.epochs"]),
        ("stage epochs 0", Box::new(|t| format!("{t}epochs = 0\n")), vec!["stages[1].epochs"]),
        ("negative lr", Box::new(|t| t.replace("epochs = 1", "epochs = 1\nlr = -0.1")), vec!["train.lr"]),
        (
            "checkpoint_every 0",
            Box::new(|t| t.replace("epochs = 1", "epochs = 1\ncheckpoint_every = 0")),
            vec!["train.checkpoint_every"],
        ),
        (
            "unknown metric",
            Box::new(|t| format!("{t}[eval]\nmetrics = [\"ndcg\"]\n")),
            vec!["eval.metrics", "ndcg"],
        ),
        (
            "unknown adapter",
            Box::new(|t| t.replace("hidden = 32", "hidden = 32\nadapter = \"mlp\"")),
            vec!["model.adapter"],
        ),
        (
            "key of another learner",
            Box::new(|t| t.replace("\"finetune\"", "\"finetune\"\nlambda = 3")),
            vec!["learner.lambda"],
        ),
        (
            "memory larger than the data",
            Box::new(|t| t.replace("\"finetune\"", "\"er\"\nmemory = 100000")),
            vec!["learner.memory"],
        ),
        (
            "class id out of range",
            Box::new(|t| format!("{t}classes = [3, 12]\n")),
            vec!["stages[1].classes", "12"],
        ),
        (
            "drift out of range",
            Box::new(|t| format!("{t}drift = {{ dropout = 1.5 }}\n")),
            vec!["stages[1].drift.dropout"],
        ),
        (
            "second-order alternating meta",
            Box::new(|t| {
                t.replace("\"finetune\"", "\"meta\"\nmeta_objective = \"alternating\"\nfirst_order = false")
            }),
            vec!["learner.first_order"],
        ),
        (
            "missing dataset",
            Box::new(|t| t.replace("kind = \"wiki\"\npath = \"", "kind = \"wiki\"\npath = \"/no/such")),
            vec!["dataset.path"],
        ),
        (
            "synthetic widths",
            Box::new(|_| {
                "name = \"s\"\n[dataset]\nkind = \"synthetic\"\nmodalities = [\"a\", \"b\"]\ndims = [3]\n[learner]\nkind = \"finetune\"\n[[stages]]\nmodality = \"a\"\n".into()
            }),
            vec!["dims"],
        ),
    ];
    for (name, edit, want) in cases {
        let c = Case::new();
        run_exp(name, &c.wiki(edit), &want);
    }
}

#[test]
fn command_line_errors() {
    let c = Case::new();
    let exp = c.wiki(|t| t.to_string());
    let e = exp.to_str().unwrap();
    refuses("missing experiment file", &["run", "/no/such/exp.toml"], &["/no/such/exp.toml"]);
    refuses("--set without =", &["run", e, "--set", "model.bits"], &["--set model.bits", "key=value"]);
    refuses(
        "--set index out of range",
        &["run", e, "--set", "stages.7.epochs=2"],
        &["stages.7.epochs", "out of range"],
    );
    refuses("--set bad value", &["run", e, "--set", "model.bits=-3"], &["model.bits"]);
    let other = c.path("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("config.toml"), "name = \"another\"\n").unwrap();
    refuses(
        "resume from another experiment",
        &["run", e, "--resume", other.to_str().unwrap()],
        &["config.toml", "different experiment"],
    );
}

#[test]
fn damaged_dataset_files() {
    // wiki: a truncated and a corrupt MAT file.
    for (name, damage) in [("truncated MAT", 0usize), ("corrupt MAT", 1)] {
        let c = Case::new();
        let d = c.dataset("wiki");
        let mat = d.join("raw_features.mat");
        let bytes = std::fs::read(&mat).unwrap();
        let broken = if damage == 0 { bytes[..bytes.len() / 3].to_vec() } else { vec![7u8; 4096] };
        std::fs::write(&mat, broken).unwrap();
        run_exp(name, &c.experiment(WIKI, &d), &["raw_features.mat"]);
    }
    // wiki: a split list naming a category that does not exist.
    let c = Case::new();
    let d = c.dataset("wiki");
    let list = d.join("trainset_txt_img_cat.list");
    let text = std::fs::read_to_string(&list).unwrap();
    // The category (third field) of line 2 becomes 99: not one of the 10 classes.
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 1 { format!("{}\t99", &l[..l.rfind('\t').unwrap()]) } else { l.to_string() })
        .collect();
    std::fs::write(&list, lines.join("\n") + "\n").unwrap();
    run_exp("bad split list", &c.experiment(WIKI, &d), &["trainset_txt_img_cat.list:2"]);

    // mfeat: NaN, Inf, a ragged row, a missing view, an empty view, a bad label.
    type Edit = fn(&str) -> String;
    let edits: [(&str, &str, Edit, &str); 6] = [
        (
            "NaN feature",
            "mfeat-kar.csv",
            |t| replace_line(t, 5, |l| l.replacen(',', ",NaN,", 1)),
            "mfeat-kar.csv",
        ),
        (
            "Inf feature",
            "mfeat-fac.csv",
            |t| replace_line(t, 9, |l| format!("inf{}", &l[l.find(',').unwrap()..])),
            "mfeat-fac.csv",
        ),
        (
            "ragged row",
            "mfeat-fac.csv",
            |t| replace_line(t, 3, |l| l[..l.len() / 2].to_string()),
            "mfeat-fac.csv:3",
        ),
        ("zero-row view", "mfeat-kar.csv", |t| t.lines().next().unwrap().to_string() + "\n", "mfeat-kar.csv"),
        (
            "truncated view (label and feature rows differ)",
            "mfeat-kar.csv",
            |t| t.lines().take(900).collect::<Vec<_>>().join("\n") + "\n",
            "mfeat-kar.csv",
        ),
        (
            "bad label",
            "mfeat-fac.csv",
            |t| replace_line(t, 4, |l| format!("{},x", &l[..l.rfind(',').unwrap()])),
            "mfeat-fac.csv:4",
        ),
    ];
    for (name, file, edit, want) in edits {
        let c = Case::new();
        let d = c.dataset("mfeat");
        let p = d.join(file);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, edit(&text)).unwrap();
        run_exp(name, &c.experiment(MFEAT, &d), &[want]);
    }
    let c = Case::new();
    let d = c.dataset("mfeat");
    std::fs::remove_file(d.join("mfeat-kar.csv")).unwrap();
    run_exp("missing view", &c.experiment(MFEAT, &d), &["mfeat-kar.csv"]);
    let c = Case::new();
    let d = c.dataset("mfeat");
    std::fs::write(d.join("split_seed0_1500_500.json"), "{\"train\": [1, 2,").unwrap();
    run_exp("truncated split JSON", &c.experiment(MFEAT, &d), &["split_seed0_1500_500.json"]);
}

/// `text` with its 1-based line `n` replaced by `f(line)`.
fn replace_line(text: &str, n: usize, f: impl Fn(&str) -> String) -> String {
    let mut out: Vec<String> = text.lines().map(String::from).collect();
    out[n - 1] = f(&out[n - 1]);
    out.join("\n") + "\n"
}
