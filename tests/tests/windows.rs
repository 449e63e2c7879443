//! File-driven window tests: every directory of `tests/windows/` holds `query.sql` (run by
//! `eddy run` over bounded file sources), `expected.csv` (the exact rows the sink file
//! must hold, in order) and `expected.counters` (`name=value` lines checked against the
//! query's status). `${CASES}` is the `tests/windows` directory, `${OUT}` the output file.
//! The expected rows are computed by hand in the comments of each case. `${PARALLELISM}`
//! (default 1) sets the workers; with 2, keyed cases must give the same rows (in any order).

use eddy_e2e::{read_file, repo_root, run_file_case};

fn run_case(name: &str) {
    let got = run_with(name, 1);
    let want = read_file(&repo_root().join("tests/windows").join(name).join("expected.csv"));
    assert_eq!(got, want, "{name}: rows differ");
}

fn run_with(name: &str, parallelism: usize) -> String {
    run_file_case("windows", name, parallelism)
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
        let want = sorted(read_file(&repo_root().join("tests/windows").join(name).join("expected.csv")));
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
