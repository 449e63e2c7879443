//! File-driven window tests: every directory of `tests/windows/` holds `query.sql` (run by
//! `eddy run` over bounded file sources), `expected.csv` (the exact rows the sink file
//! must hold, in order) and `expected.counters` (`name=value` lines checked against the
//! query's status). `${CASES}` is the `tests/windows` directory, `${OUT}` the output file.
//! The expected rows are computed by hand in the comments of each case. `${PARALLELISM}`
//! (default 1) sets the workers; with 2, keyed cases must give the same rows (in any order).

use std::path::Path;
use std::process::Command;

use eddy_e2e::{eddy_bin, repo_root, scratch_dir};

fn run_case(name: &str) {
    let got = run_with(name, 1);
    let want = read(&repo_root().join("tests/windows").join(name).join("expected.csv"));
    assert_eq!(got, want, "{name}: rows differ");
}

/// Runs a case with `parallelism` workers, checks its counters, returns the sink file.
fn run_with(name: &str, parallelism: usize) -> String {
    let cases = repo_root().join("tests/windows");
    let dir = cases.join(name);
    let scratch = scratch_dir(&format!("window-{name}"));
    let out = scratch.join("out.csv");
    let status = scratch.join("status.json");
    let result = Command::new(eddy_bin())
        .arg("run")
        .arg(dir.join("query.sql"))
        .arg("--status-file")
        .arg(&status)
        .arg("--application-id")
        .arg(format!("window-test-{name}"))
        .env("CASES", &cases)
        .env("OUT", &out)
        .env("PARALLELISM", parallelism.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run eddy: {e}"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{name}: eddy run failed ({}):\n{stderr}", result.status);
    let got = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{name}: {}: {e}\n{stderr}", out.display()));
    let status: serde_json::Value = serde_json::from_str(&read(&status)).unwrap_or_else(|e| panic!("{name}: status: {e}"));
    for line in read(&dir.join("expected.counters")).lines().filter(|l| !l.trim().is_empty()) {
        let (counter, value) = line.split_once('=').unwrap_or_else(|| panic!("{name}: bad counter line {line}"));
        let got = status["queries"][0][counter].as_u64();
        assert_eq!(got, value.trim().parse::<u64>().ok(), "{name}: counter {counter}");
    }
    let _ = std::fs::remove_dir_all(&scratch);
    got
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn tumbling_flink_tvf() {
    run_case("tumbling_flink");
}

#[test]
fn tumbling_ksqldb() {
    run_case("tumbling_ksql");
}

#[test]
fn hopping() {
    run_case("hopping");
}

#[test]
fn session() {
    run_case("session");
}

#[test]
fn emit_changes_row_by_row() {
    run_case("emit_changes");
}

#[test]
fn table_changes_with_having() {
    run_case("table_changes");
}

#[test]
fn banking_having_and_last_value_by_event_time() {
    run_case("banking");
}

#[test]
fn allowed_lateness_re_emits_corrected_rows() {
    run_case("allowed_lateness");
}

/// Keyed aggregations on 2 workers (the file split in 2 partitions, keys hashed across 2
/// aggregation workers) give exactly the rows of 1 worker.
#[test]
fn parallelism_2_gives_the_rows_of_parallelism_1() {
    for name in ["session", "banking", "hopping", "hopping_ksql"] {
        let sorted = |text: String| {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        let want = sorted(read(&repo_root().join("tests/windows").join(name).join("expected.csv")));
        assert_eq!(sorted(run_with(name, 2)), want, "{name} with 2 workers");
    }
}

#[test]
fn session_ksqldb() {
    run_case("session_ksql");
}

#[test]
fn hopping_ksqldb() {
    run_case("hopping_ksql");
}
