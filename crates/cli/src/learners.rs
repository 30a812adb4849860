//! `seqmodal learners`: every registered learner, its role, keys, defaults, ranges and docs,
//! straight from the registry (`--markdown` prints the table docs/learners.md embeds).

use seqmodal_learner::{Registry, Search};

/// The listing as plain text (one block per learner).
pub fn text(registry: &Registry) -> String {
    let mut out = String::new();
    for e in registry.entries() {
        out.push_str(&format!("{} ({}): {}\n", e.name, e.role.as_str(), e.summary));
        let keys = (e.keys)();
        if keys.is_empty() {
            out.push_str("    no keys\n");
        }
        for k in keys {
            let search =
                if k.search == Search::Fixed { String::new() } else { format!("; tune {}", k.search) };
            out.push_str(&format!(
                "    {:<15} {} (default {}{search})\n    {:<15} {}\n",
                k.name,
                k.range_text(),
                k.default_text(),
                "",
                k.doc
            ));
        }
    }
    out
}

/// The listing as one markdown table (a row per key; learners without keys get one row).
pub fn markdown(registry: &Registry) -> String {
    let mut out = String::from(
        "| learner | role | key | range | default | tuning range | what it does |\n|---|---|---|---|---|---|---|\n",
    );
    for e in registry.entries() {
        let keys = (e.keys)();
        let head = format!("| `{}` | {} |", e.name, e.role.as_str());
        if keys.is_empty() {
            out.push_str(&format!("{head} | | | | {} |\n", e.summary));
        }
        for (i, k) in keys.iter().enumerate() {
            let head = if i == 0 { head.clone() } else { "| | |".to_string() };
            let search = if k.search == Search::Fixed { "—".to_string() } else { k.search.to_string() };
            out.push_str(&format!(
                "{head} `{}` | {} | {} | {search} | {} |\n",
                k.name,
                k.range_text(),
                k.default_text(),
                k.doc
            ));
        }
    }
    out
}

/// Prints the built-in learners: described, as a markdown table, or names only.
pub fn learners(markdown_table: bool, names: bool) -> anyhow::Result<()> {
    let registry = Registry::builtin();
    let s = if names {
        registry.entries().iter().map(|e| e.name).collect::<Vec<_>>().join("\n")
    } else if markdown_table {
        markdown(&registry)
    } else {
        text(&registry)
    };
    say!("{}", s.trim_end());
    Ok(())
}
