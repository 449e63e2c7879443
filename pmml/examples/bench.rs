//! Scoring speed on one core: the logistic regression and the 100-tree random forest of
//! `tests/models/` (sklearn2pmml's documents) over 1,000,000 generated rows, in batches
//! of 8,192 rows, as ML_PREDICT calls them; each figure is the best of five passes. `make bench` runs it (release build).
//!
//! Usage: cargo build --release --workspace --examples && target/release/examples/bench [rows]

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Float64Array, StringArray};
use eddy_pmml::Pmml;

fn main() {
    let rows: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/models");
    const BATCH: usize = 8192;
    // A fixed linear congruential sequence: the same rows every run.
    let mut seed: u64 = 1;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let batches: Vec<Vec<(&str, ArrayRef)>> = (0..rows.div_ceil(BATCH))
        .map(|b| {
            let n = BATCH.min(rows - b * BATCH);
            let num = |f: &mut dyn FnMut() -> f64| -> ArrayRef { Arc::new((0..n).map(|_| f()).collect::<Float64Array>()) };
            let small = num(&mut || (next() * 8.0).floor());
            let ratio = num(&mut || next());
            let age = num(&mut || (next() * 2000.0).floor());
            let foreign = num(&mut || (next() * 2.0).floor());
            let channels = ["web", "pos", "atm"];
            let channel: ArrayRef = Arc::new((0..n).map(|_| Some(channels[(next() * 3.0) as usize % 3])).collect::<StringArray>());
            vec![("small_count", small), ("ratio", ratio), ("age_days", age), ("is_foreign", foreign), ("channel", channel)]
        })
        .collect();
    for name in ["logistic_regression", "random_forest", "gradient_boosting"] {
        let text = std::fs::read_to_string(dir.join(format!("{name}.pmml"))).unwrap_or_else(|e| panic!("{name}: {e}"));
        let load = Instant::now();
        let pmml = Pmml::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let loaded = load.elapsed();
        // The best of five passes: this machine's speed varies by a third from run to run.
        let mut secs = f64::INFINITY;
        let mut scored = 0usize;
        for _ in 0..5 {
            let start = Instant::now();
            scored = 0;
            for batch in &batches {
                let n = batch[0].1.len();
                let p = pmml.evaluate(batch, n).unwrap_or_else(|e| panic!("{name}: {e}"));
                scored += p.probability("1").map_or(0, |a| a.len());
            }
            secs = secs.min(start.elapsed().as_secs_f64());
        }
        println!(
            "{name:<22} {:>10.0} rows/s  ({scored} rows in {secs:.2} s, best of 5 passes, one core; loaded in {} ms)",
            scored as f64 / secs,
            loaded.as_millis()
        );
    }
}
