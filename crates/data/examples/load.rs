//! Loads a dataset and prints its modalities and the load time (for memory/time checks):
//! `cargo run --release --example load -- KIND PATH [QUERIES [TRAIN]]`, e.g. under
//! `/usr/bin/time -f "%e s %M KB"`.

use std::path::Path;
use std::time::Instant;

use seqmodal_data::{load_with, DatasetKind, LoadOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, path, rest @ ..] = args.as_slice() else {
        return Err("usage: load KIND PATH [QUERIES [TRAIN]]".into());
    };
    let kind: DatasetKind = kind.parse()?;
    let num = |i: usize| rest.get(i).map(|s| s.parse::<usize>()).transpose();
    let opts = LoadOptions { queries: num(0)?, train: num(1)?, seed: 0 };
    let t0 = Instant::now();
    let ds = load_with(kind, Path::new(path), &opts)?;
    let secs = t0.elapsed().as_secs_f64();
    for m in &ds.modalities {
        println!(
            "{}: train {}x{}, test {}x{}, database {} rows",
            m.name,
            m.train.features.rows(),
            m.dim(),
            m.test.features.rows(),
            m.dim(),
            m.database().features.rows()
        );
    }
    println!("{} classes, loaded in {secs:.2} s", ds.classes());
    Ok(())
}
