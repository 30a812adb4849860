//! `seqmodal learners` lists every registered learner from the registry, and
//! docs/learners.md embeds its markdown table verbatim.

use std::process::Command;

mod common;
use common::repo;

fn seqmodal(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_seqmodal")).current_dir(repo()).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn learners_lists_every_learner_with_role_keys_and_defaults() {
    let names = seqmodal(&["learners", "--names"]);
    let names: Vec<&str> = names.lines().collect();
    let registry = seqmodal_learner::Registry::builtin();
    let expected: Vec<&str> = registry.entries().iter().map(|e| e.name).collect();
    assert_eq!(names, expected);
    let text = seqmodal(&["learners"]);
    for e in registry.entries() {
        assert!(text.contains(&format!("{} ({}): {}", e.name, e.role.as_str(), e.summary)), "{text}");
        for k in (e.keys)() {
            assert!(
                text.contains(k.doc) && text.contains(&format!("default {}", k.default_text())),
                "{text}"
            );
        }
    }
    assert!(text.contains("finetune (lower bound)") && text.contains("joint (reference)"), "{text}");
}

#[test]
fn docs_learners_md_embeds_the_current_table() {
    let table = seqmodal(&["learners", "--markdown"]);
    let doc = std::fs::read_to_string(repo().join("docs/learners.md")).unwrap();
    let start = "<!-- seqmodal learners --markdown -->\n";
    let from = doc.find(start).expect("start marker") + start.len();
    let to = doc.find("<!-- end seqmodal learners --markdown -->").expect("end marker");
    assert!(
        doc[from..to] == table,
        "docs/learners.md's key table is stale: paste `seqmodal learners --markdown` between its markers"
    );
}
