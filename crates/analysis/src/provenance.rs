//! Provenance: which code (version, git commit, uncommitted changes), command and machine
//! (CPU model, threads) produced a run or a report. Stored in `summary.json`, as comments at
//! the top of `config.toml`, and in the report's header.

use serde::{Deserialize, Serialize};

/// Which code, command and machine produced an output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// seqmodal version (the workspace's).
    pub version: String,
    /// Git commit the binary was built from; none when built outside a git checkout.
    pub commit: Option<String>,
    /// Whether tracked files differed from that commit at build time; none without git.
    pub dirty: Option<bool>,
    /// The command line, shell-quoted where needed.
    pub command: String,
    /// CPU model (from /proc/cpuinfo on Linux, else the architecture).
    pub cpu: String,
    /// Threads used for training (candle's kernels).
    pub train_threads: usize,
    /// Threads used for retrieval evaluation (rayon's pool).
    pub eval_threads: usize,
    /// Hardware threads available to the process.
    pub available_threads: usize,
}

impl Provenance {
    /// The code in one phrase: `seqmodal 0.1.0, commit 1a2b3c4d5e6f (uncommitted changes)`.
    pub fn code(&self) -> String {
        let commit = match (&self.commit, self.dirty) {
            (Some(c), Some(true)) => format!("commit {} with uncommitted changes", short(c)),
            (Some(c), _) => format!("commit {}", short(c)),
            (None, _) => "commit unknown (built outside git)".into(),
        };
        format!("seqmodal {}, {commit}", self.version)
    }

    /// The machine in one phrase: CPU and threads.
    pub fn machine(&self) -> String {
        format!(
            "{}; threads: train {}, eval {} of {} available",
            self.cpu, self.train_threads, self.eval_threads, self.available_threads
        )
    }

    /// TOML comment lines (each starting with `# `) for the top of `config.toml`.
    pub fn toml_header(&self) -> String {
        let mut s = String::new();
        for line in [
            format!("written by {}", self.code()),
            format!("command: {}", self.command),
            format!("machine: {}", self.machine()),
        ] {
            // A newline in a quoted argument must not end the comment.
            s.push_str(&format!("# {}\n", line.replace(['\n', '\r'], " ")));
        }
        s
    }
}

/// The first 12 hex digits of a commit.
fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// `text` without its leading comment lines (a [`Provenance::toml_header`]): what is compared
/// when a run directory's `config.toml` is checked against an experiment.
pub fn strip_comment_header(text: &str) -> &str {
    let mut rest = text;
    while rest.starts_with('#') {
        rest = rest.split_once('\n').map_or("", |(_, r)| r);
    }
    rest
}

/// The CPU model name, e.g. `Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz`.
pub fn cpu_model() -> String {
    let from_proc = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim().to_string()))
    });
    from_proc.unwrap_or_else(|| format!("unknown {} CPU", std::env::consts::ARCH))
}

/// The process's command line, each argument shell-quoted when it needs it.
pub fn command_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    quote_args(&args)
}

/// Joins arguments as a POSIX shell would read them back.
pub fn quote_args(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let plain =
                !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Provenance {
        Provenance {
            version: "0.1.0".into(),
            commit: Some("0123456789abcdef0123".into()),
            dirty: Some(true),
            command: "seqmodal run 'a b.toml'".into(),
            cpu: "Some CPU".into(),
            train_threads: 1,
            eval_threads: 2,
            available_threads: 2,
        }
    }

    #[test]
    fn the_header_is_comments_that_strip_back_to_the_config() {
        let config = "name = \"x\"\n# not a header: after the first key\nseed = 1\n";
        let text = format!("{}{config}", p().toml_header());
        assert!(
            text.starts_with("# written by seqmodal 0.1.0, commit 0123456789ab with uncommitted changes\n")
        );
        assert_eq!(strip_comment_header(&text), config);
        assert_eq!(strip_comment_header(config), config);
        // Still valid TOML with the same table.
        let a: toml::Table = text.parse().unwrap();
        let b: toml::Table = config.parse().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn newlines_in_arguments_stay_inside_the_comment() {
        let mut q = p();
        q.command = quote_args(&["seqmodal".into(), "--set".into(), "name=a\nb".into()]);
        let header = q.toml_header();
        assert_eq!(header.lines().count(), 3);
        assert!(header.lines().all(|l| l.starts_with("# ")));
    }

    #[test]
    fn arguments_are_quoted_only_when_needed() {
        let args: Vec<String> =
            ["seqmodal", "run", "a b.toml", "--set", "x=it's", ""].map(String::from).to_vec();
        assert_eq!(quote_args(&args), r"seqmodal run 'a b.toml' --set 'x=it'\''s' ''");
    }

    #[test]
    fn without_git_the_code_says_so() {
        let mut q = p();
        (q.commit, q.dirty) = (None, None);
        assert_eq!(q.code(), "seqmodal 0.1.0, commit unknown (built outside git)");
        q.commit = Some("abc".into());
        q.dirty = Some(false);
        assert_eq!(q.code(), "seqmodal 0.1.0, commit abc");
    }
}
