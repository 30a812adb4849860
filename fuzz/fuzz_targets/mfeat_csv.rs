//! The mfeat loader with an arbitrary view CSV: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let dir = common::with_file("mfeat", "mfeat-mor.csv", data);
    let _ = seqmodal_data::load_mfeat(&dir);
});
