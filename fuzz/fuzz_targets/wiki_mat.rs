//! The wiki loader with an arbitrary MAT file: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let dir = common::with_file("wiki", "raw_features.mat", data);
    let _ = seqmodal_data::load_wiki(&dir);
});
