//! File-driven SQL cases, discovered: every directory of `tests/windows/`, `tests/types/`, `tests/functions/` and
//! `tests/match_recognize/` is one test, named `<suite>::<case>`. A case holds
//! `query.sql` (run by `eddy run` over bounded file sources; `${CASES}` is the suite
//! directory, `${OUT}` the output file, `${PARALLELISM}` the workers), `expected.csv`
//! (the exact rows the sink file must hold, in order, worked out by hand in the query's
//! comments) and `expected.counters` (`name=value` lines checked against the query's
//! status). An optional `parallelism` file lists more worker counts (e.g. `1 2`): with
//! each, the case must give the same rows, in any order, as keyed work is split by key.
//!
//! They need neither the broker nor PostgreSQL (`make test-engine` runs them). Adding a
//! case is adding a directory; `cargo test --test cases -- windows::session` runs one.
//! `EDDY_UPDATE_CASES=1` writes what a case gave (at parallelism 1) to its `expected.csv`
//! instead of comparing: for a deliberate change of output, reviewed in the diff.

use std::path::Path;

use eddy_e2e::{read_file, repo_root, run_file_case};
use libtest_mimic::{Arguments, Failed, Trial};

const SUITES: [&str; 5] = ["windows", "match_recognize", "types", "functions", "joins"];

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for suite in SUITES {
        let dir = repo_root().join("tests").join(suite);
        let mut cases: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("query.sql").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        cases.sort();
        for case in cases {
            let parallelism = worker_counts(&dir.join(&case));
            trials.push(Trial::test(format!("{suite}::{case}"), move || run_case(suite, &case, &parallelism)));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

/// The worker counts a case runs with beyond 1 (its `parallelism` file).
fn worker_counts(case: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(case.join("parallelism")).unwrap_or_default();
    text.split_whitespace().filter_map(|w| w.parse().ok()).filter(|&n| n > 1).collect()
}

fn run_case(suite: &'static str, case: &str, parallelism: &[usize]) -> Result<(), Failed> {
    let expected_path = repo_root().join("tests").join(suite).join(case).join("expected.csv");
    let got = std::panic::catch_unwind(|| run_file_case(suite, case, 1)).map_err(panic_text)?;
    if std::env::var_os("EDDY_UPDATE_CASES").is_some() {
        std::fs::write(&expected_path, &got).map_err(|e| format!("{}: {e}", expected_path.display()))?;
    }
    let expected = read_file(&expected_path);
    if got != expected {
        return Err(format!("{suite}/{case}: rows differ\n--- expected\n{expected}--- got\n{got}").into());
    }
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    for &workers in parallelism {
        let got = std::panic::catch_unwind(|| run_file_case(suite, case, workers)).map_err(panic_text)?;
        if sorted(&got) != sorted(&expected) {
            return Err(format!("{suite}/{case} with {workers} workers: rows differ\n--- expected\n{expected}--- got\n{got}").into());
        }
    }
    Ok(())
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> Failed {
    let text = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
    text.into()
}
