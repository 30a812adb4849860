//! The npz loader on arbitrary files: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("seqmodal-fuzz-npz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let p = dir.join("x.npz");
    if std::fs::write(&p, data).is_ok() {
        let _ = seqmodal_data::load_npz(&p);
    }
});
