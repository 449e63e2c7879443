//! File-driven MATCH_RECOGNIZE tests: every directory of `tests/match_recognize/` holds
//! `query.sql` (run by `eddy run` over bounded file sources), `expected.csv` (the exact
//! rows, in order, computed by hand in the query's comments) and `expected.counters`.
//! With 2 workers (the input split in 2 partitions, PARTITION BY keys hashed across 2
//! matchers) every case gives the same rows, in any order.

use eddy_e2e::{read_file, repo_root, run_file_case};

fn run_case(name: &str) {
    let got = run_file_case("match_recognize", name, 1);
    let want = read_file(&repo_root().join("tests/match_recognize").join(name).join("expected.csv"));
    assert_eq!(got, want, "{name}: rows differ");
}

#[test]
fn fraud_alerts_scenario_cases() {
    run_case("fraud");
}

#[test]
fn fraud_alerts_out_of_order_with_a_late_row() {
    run_case("fraud_out_of_order");
}

#[test]
fn measures_one_row_per_match() {
    run_case("measures");
}

#[test]
fn all_rows_per_match_running_measures() {
    run_case("all_rows");
}

#[test]
fn after_match_skip_to_next_row() {
    run_case("skip_to_next_row");
}

#[test]
fn reluctant_quantifier_over_alternation() {
    run_case("reluctant_alternation");
}

#[test]
fn greedy_quantifier_over_alternation() {
    run_case("greedy_alternation");
}

#[test]
fn running_aggregate_in_define() {
    run_case("define_aggregate");
}

#[test]
fn parallelism_2_gives_the_rows_of_parallelism_1() {
    for name in ["fraud", "fraud_out_of_order", "measures", "all_rows"] {
        let sorted = |text: String| {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        let want = sorted(read_file(&repo_root().join("tests/match_recognize").join(name).join("expected.csv")));
        assert_eq!(sorted(run_file_case("match_recognize", name, 2)), want, "{name} with 2 workers");
    }
}
