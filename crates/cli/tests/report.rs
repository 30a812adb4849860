//! `seqmodal report RUNS... --out DIR`: the full report of tiny synthetic runs (and a sweep made of
//! them) has every section, and every figure it references is a valid PNG with an SVG beside it.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::seqmodal;

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Two modalities, two stages, one epoch each: a run takes well under a second.
const EXPERIMENT: &str = r#"name = "tiny"
seed = 1
[dataset]
kind = "synthetic"
modalities = ["a", "b"]
dims = [6, 4]
classes = 3
train = 60
test = 20
[model]
bits = 16
hidden = 16
[learner]
kind = "finetune"
[train]
epochs = 1
batch = 32
[[stages]]
modality = "a"
[[stages]]
modality = "b"
"#;

fn run(root: &Path, out: &str, sets: &[&str]) -> PathBuf {
    let mut args = vec!["run", "exp.toml", "--quiet", "--log", "warn", "--out", out];
    for s in sets {
        args.extend(["--set", s]);
    }
    ok(&seqmodal(&args, root));
    root.join(out)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A sweep directory as `seqmodal sweep` leaves it (sweep.csv + cells/), made of finished runs,
/// with one axis `ordering`.
fn fake_sweep(root: &Path, cells: &[(&str, &Path, &str)]) -> PathBuf {
    let dir = root.join("sweep-tiny");
    let mut csv = String::from(
        "cell,status,ordering,experiment,learner,seed,bits,stage,trained,query,database,metric,value\n",
    );
    for (id, run, ordering) in cells {
        copy_dir(run, &dir.join("cells").join(id));
        let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        for line in metrics.lines().skip(1) {
            csv.push_str(&format!("{id},ok,{ordering},{line}\n"));
        }
    }
    std::fs::write(dir.join("sweep.csv"), csv).unwrap();
    dir
}

/// Targets of `](figures/...)` links in the markdown.
fn figure_links(md: &str) -> Vec<String> {
    md.split("](")
        .skip(1)
        .filter_map(|s| s.split(')').next())
        .filter(|l| l.starts_with("figures/"))
        .map(String::from)
        .collect()
}

fn check_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", path.display());
    let img = image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        img.width() >= 300 && img.height() >= 200,
        "{}: {}x{}",
        path.display(),
        img.width(),
        img.height()
    );
}

fn check_svg(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut root = None;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(e)) if root.is_none() => {
                root = Some(String::from_utf8_lossy(e.name().as_ref()).into_owned())
            }
            Ok(_) => {}
            Err(e) => panic!("{} is not well-formed XML: {e}", path.display()),
        }
    }
    assert_eq!(root.as_deref(), Some("svg"), "{}: root element", path.display());
}

#[test]
fn full_report_has_every_section_and_valid_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::write(root.join("exp.toml"), EXPERIMENT).unwrap();
    let ft1 = run(root, "runs/finetune-s1", &[]);
    run(root, "runs/finetune-s2", &["seed=2"]);
    let joint = run(root, "runs/joint-s1", &["learner.kind=joint"]);
    // Another code length: feeds the code-length figure only.
    run(root, "runs/finetune-b32", &["model.bits=32"]);
    let sweep = fake_sweep(root, &[("c0", &ft1, "a>b"), ("c1", &joint, "a>b"), ("c2", &ft1, "b>a")]);

    let o = seqmodal(
        &[
            "report",
            "runs",
            sweep.to_str().unwrap(),
            "--out",
            "report",
            "--title",
            "Tiny",
            "--note",
            "Settings: a test's own.",
        ],
        root,
    );
    ok(&o);
    let out = root.join("report");
    let md = std::fs::read_to_string(out.join("index.md")).unwrap();
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    for section in [
        "Learner comparison",
        "Forgetting curves",
        "R matrices",
        "Precision–recall by Hamming radius",
        "mAP against code length",
        "Sweeps",
    ] {
        assert!(md.contains(&format!("## {section}")), "index.md lacks {section}:\n{md}");
        assert!(html.contains(&format!(">{section}</h2>")), "index.html lacks {section}");
    }
    // The table: both learners, main code length 16 (three runs vs one at 32), directions stated.
    assert!(md.contains("### tiny (16 bits)"), "{md}");
    assert!(md.contains("| finetune | 2 |") && md.contains("| joint | 1 |"), "{md}");
    assert!(md.contains("ACC ↑") && md.contains("forgetting ↓"), "{md}");
    // No section fell back to its "nothing to show" sentence.
    assert!(
        !md.contains("No PR curves")
            && !md.contains("more than one code length")
            && !md.contains("No sweeps"),
        "{md}"
    );

    // The note under the header; each sweep axis also as a table of paired differences from
    // its first value (finetune's two orderings are one run twice: a difference of 0, n = 1).
    assert!(md.contains("\nSettings: a test's own.\n"), "{md}");
    assert!(
        md.contains(
            "| learner | ordering | runs | ACC ↑ | Δ ACC vs a>b | forgetting ↓ | Δ forgetting vs a>b |"
        ),
        "{md}"
    );
    assert!(md.contains("| finetune | b>a | 1 |") && md.contains("| +0.0000 ± 0.0000 |"), "{md}");
    assert!(out.join("tables/sweep-sweep-tiny-ordering-paired.csv").exists());
    // Provenance in the header, then the contents linking every section into the page.
    assert!(md.contains("Written by seqmodal ") && md.contains("Runs: 4 runs by seqmodal "), "{md}");
    assert!(md.contains("**Contents**") && md.contains("- [R matrices](#r-matrices)"), "{md}");
    assert!(md.contains("<a id=\"r-matrices\"></a>") && html.contains("<a href=\"#r-matrices\">"), "{md}");
    // Two stages: FWT would measure stage 1 alone, so it is left out; wall time is shown but
    // not ranked, compute beside it.
    assert!(!md.contains("FWT ↑ |") && md.contains("FWT is left out"), "{md}");
    assert!(md.contains("| train s | compute ↓ |") && md.contains("overlaps the best's"), "{md}");
    // Every table as CSV (means and stds) and LaTeX (booktabs), linked under it.
    let csv = std::fs::read_to_string(out.join("tables/tiny-16bit-learners.csv")).unwrap();
    assert!(csv.starts_with("learner,seeds,ACC mean,ACC std,BWT mean,BWT std,"), "{csv}");
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let tex = std::fs::read_to_string(out.join("tables/tiny-16bit-learners.tex")).unwrap();
    assert!(tex.contains("\\toprule") && tex.contains("\\bottomrule") && tex.contains("$\\pm$"), "{tex}");
    assert!(
        md.contains("[CSV](tables/tiny-16bit-learners.csv) · [LaTeX](tables/tiny-16bit-learners.tex)"),
        "{md}"
    );
    // R matrices: one panel per query modality, stages named by their modality.
    let r = std::fs::read_to_string(out.join("figures/tiny-16bit-R-finetune.svg")).unwrap();
    assert!(
        r.contains("query: a") && r.contains("query: b") && r.contains("\n1 a\n") && r.contains("\n0 init\n"),
        "R grid"
    );

    let links = figure_links(&md);
    for kind in [
        "-loss.png",
        "-forgetting-mean.png",
        "-forgetting.png",
        "-R-finetune.png",
        "-R-joint.png",
        "-pr.png",
        "-code-length.png",
        "sweep-sweep-tiny-ordering.png",
    ] {
        assert!(links.iter().any(|l| l.ends_with(kind)), "no figure *{kind} in {links:?}");
    }
    // The headline (mean over pairs) comes before the per-pair grid of its scenario.
    let at = |kind: &str| links.iter().position(|l| l.ends_with(kind)).unwrap();
    assert!(at("tiny-16bit-forgetting-mean.png") < at("tiny-16bit-forgetting.png"), "{links:?}");
    // Its panels: cross-modal and same-modality means, captioned.
    let mean_svg = std::fs::read_to_string(out.join("figures/tiny-16bit-forgetting-mean.svg")).unwrap();
    assert!(
        mean_svg.contains("all 2 cross-modal pairs") && mean_svg.contains("all 2 same-modality pairs"),
        "headline panels"
    );
    for link in &links {
        let path = out.join(link);
        if link.ends_with(".png") {
            check_png(&path);
            check_svg(&path.with_extension("svg"));
            assert!(html.contains(&format!("src=\"{link}\"")), "index.html does not show {link}");
        } else {
            assert!(link.ends_with(".svg"), "{link}");
            check_svg(&path);
        }
    }
}

#[test]
fn md_out_still_writes_the_learners_table() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::write(root.join("exp.toml"), EXPERIMENT).unwrap();
    run(root, "runs/finetune-s1", &[]);
    ok(&seqmodal(&["report", "runs", "--out", "learners.md", "--note", "Settings: defaults."], root));
    let md = std::fs::read_to_string(root.join("learners.md")).unwrap();
    assert!(md.contains("\nSettings: defaults.\n"), "{md}");
    assert!(md.contains("## tiny (16 bits)") && md.contains("| finetune | 1 |"), "{md}");
    assert!(!root.join("index.html").exists());
}
