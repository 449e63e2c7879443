//! `eddy run --validate` (ksql-migrations' validate): every file is parsed and planned,
//! every error is reported with file, line and column, nothing starts, and the exit code
//! says whether all planned.

use std::process::Command;

use eddy_e2e::{eddy_bin, repo_root, scratch_dir};

#[test]
fn validate_reports_every_error_and_starts_nothing() {
    let dir = scratch_dir("eddy-validate");
    for name in ["01_server_logs.sql", "02_server_log.sql", "03_alerts.sql"] {
        let text = std::fs::read_to_string(repo_root().join("queries/fraud").join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Two mistakes in two files: a misspelled column, and MATCH_RECOGNIZE ordered by
        // a column that is not the event time. A third file does not parse.
        let text = text.replace("    account_id,\n", "    acount_id,\n").replace("ORDER BY ts", "ORDER BY event_ts");
        std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(dir.join("04_bad.sql"), "CREATE STREAM x (a INT) WITH (kafka_topic='x', value_format='json');\nSELEC 1;\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(eddy_bin()).arg("run").arg("--validate").arg(&dir).output().unwrap_or_else(|e| panic!("eddy: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&format!("{}/", dir.display()), "");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(
        errors,
        [
            "error: 02_server_log.sql:20:5: unknown column \"acount_id\"",
            "error: 03_alerts.sql:32:14: MATCH_RECOGNIZE must be ordered by the event-time column \"ts\", ascending (as in Flink)",
            "error: 04_bad.sql:2:1: syntax error: expected an SQL statement, found SELEC",
        ],
        "{stderr}"
    );
    assert!(stderr.ends_with("3 errors in 3 of 4 files (3 statements plan)\n"), "{stderr}");

    let good = Command::new(eddy_bin())
        .args(["run", "--validate"])
        .arg(repo_root().join("queries/fraud"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(good.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&good.stderr), "5 statements in 3 files plan without errors\n");
    let _ = std::fs::remove_dir_all(&dir);
}
