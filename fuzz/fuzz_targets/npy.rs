//! The .npy reader (header parse + memory map) on arbitrary files: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = seqmodal_hamming::npy::parse_header(data, std::path::Path::new("fuzz.npy"));
    let dir = std::env::temp_dir().join(format!("seqmodal-fuzz-npy-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let p = dir.join("x.npy");
    if std::fs::write(&p, data).is_ok() {
        if let Ok(f) = seqmodal_hamming::npy::NpyFile::open(&p) {
            let _ = f.data().len();
        }
    }
});
