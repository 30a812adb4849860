//! The experiment parser and checker on arbitrary text: errors, never panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use seqmodal_learner::ExperimentFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("fuzz.toml");
    if let Ok(file) = ExperimentFile::parse(text, path) {
        if let Ok(exp) = file.check(text, path) {
            // The resolved form must itself parse and check.
            let again = exp.to_toml();
            let f2 = ExperimentFile::parse(&again, path).expect("resolved config parses");
            f2.check(&again, path).expect("resolved config checks");
        }
    }
});
