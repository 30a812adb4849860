//! A private copy of a shipped dataset whose file `name` is replaced by the fuzz input.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub fn with_file(dataset: &str, name: &str, data: &[u8]) -> PathBuf {
    static DIRS: OnceLock<PathBuf> = OnceLock::new();
    let root = DIRS.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("seqmodal-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    });
    let dir = root.join(dataset);
    if !dir.exists() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets").join(dataset);
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    std::fs::write(dir.join(name), data).unwrap();
    dir
}
