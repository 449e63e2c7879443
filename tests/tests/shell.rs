//! `eddy shell` in a pseudo-terminal, as a user types: a statement over three lines,
//! a typo shown with a caret, a push query cancelled with Ctrl-C, history and catalog
//! back after a restart, and the engine's log in the state directory, not the terminal.

use std::process::Command;

use eddy_e2e::*;
use rexpect::session::{spawn_command, PtySession};

fn shell(state: &std::path::Path, history: &std::path::Path) -> PtySession {
    let mut cmd = Command::new(eddy_bin());
    cmd.arg("shell").arg("--state-dir").arg(state);
    cmd.env("EDDY_HISTORY", history).env("EDDY_BOOTSTRAP_SERVERS", bootstrap()).env("EDDY_LOG", "info").env("TERM", "xterm");
    cmd.env("EDDY_APPLICATION_ID", unique("shell"));
    let mut p = spawn_command(cmd, Some(30_000)).unwrap_or_else(|e| panic!("spawn eddy shell: {e}"));
    let before = p.exp_string("Ctrl-D exits.").unwrap_or_else(|e| panic!("banner: {e}"));
    // The embedded engine logs to <state dir>/eddy.log, never into the terminal.
    assert!(!before.contains("INFO") && !before.contains("eddy_engine"), "log lines in the terminal:\n{before}");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_multi_line_errors_push_query_ctrl_c_and_history() {
    let topic = unique("shell-in");
    let dir = scratch_dir("eddy-shell");
    let state = dir.join("state");
    let history = dir.join("history");
    let mut p = shell(&state, &history);
    let ok = |r: Result<String, rexpect::error::Error>, what: &str| r.unwrap_or_else(|e| panic!("{what}: {e}"));

    ok(p.send_line("CREATE STREAM pty_in (account_id VARCHAR,").map(|_| String::new()), "send");
    ok(p.send_line("  amount DOUBLE)").map(|_| String::new()), "send");
    ok(p.send_line(&format!("  WITH (kafka_topic='{topic}', value_format='json', partitions=1);")).map(|_| String::new()), "send");
    ok(p.exp_string("Stream created"), "multi-line CREATE");

    ok(p.send_line("SELECT acount_id FROM pty_in EMIT CHANGES;").map(|_| String::new()), "send");
    ok(p.exp_string("error: unknown column \"acount_id\" (line 1, column 8)"), "error message");
    ok(p.exp_string("1 | SELECT acount_id FROM pty_in EMIT CHANGES;"), "error line");
    ok(p.exp_string("  |        ^"), "caret under column 8");
    ok(p.exp_string("hint: did you mean \"account_id\"?"), "hint");

    produce(&topic, &[(None, r#"{"account_id":"a1","amount":5}"#)]).await;
    ok(p.send_line("SET 'auto.offset.reset'='earliest';").map(|_| String::new()), "send");
    ok(p.exp_string("Property 'auto.offset.reset' set to 'earliest'"), "SET");
    ok(p.send_line("SELECT * FROM pty_in EMIT CHANGES;").map(|_| String::new()), "send");
    ok(p.exp_string("| a1           | 5.0          |"), "a live row");
    p.send_control('c').unwrap_or_else(|e| panic!("ctrl-c: {e}"));
    ok(p.exp_string("Query terminated (1 rows)"), "Ctrl-C cancels the push query");
    ok(p.send_line("SHOW QUERIES;").map(|_| String::new()), "send");
    ok(p.exp_string("| Query ID"), "SHOW QUERIES header");
    let rest = ok(p.exp_string("eddy> "), "prompt after SHOW QUERIES");
    assert!(!rest.contains("transient_"), "the cancelled query is gone:\n{rest}");
    p.send_control('d').unwrap_or_else(|e| panic!("ctrl-d: {e}"));
    ok(p.exp_eof(), "Ctrl-D exits");

    let saved = read_file(&history);
    assert!(saved.contains("acount_id") && saved.contains("SHOW QUERIES;"), "{saved}");

    // Restarted: Up recalls the last statement; the catalog is still there.
    let mut p = shell(&state, &history);
    ok(p.send("\x1b[A").map(|_| String::new()), "up arrow");
    ok(p.send_line("").map(|_| String::new()), "enter");
    ok(p.exp_string("| Query ID"), "history recalled SHOW QUERIES");
    ok(p.send_line("SHOW STREAMS;").map(|_| String::new()), "send");
    ok(p.exp_string("| PTY_IN "), "the catalog survived the restart (ksqlDB spells names upper-case)");
    // Ctrl-D once the prompt is back, as a user presses it: typed while the terminal is
    // still in cooked mode (before the editor takes it raw again), the tty keeps it as a
    // NUL byte, not an end of input, and the shell waits on.
    ok(p.exp_string("eddy> "), "prompt after SHOW STREAMS");
    p.send_control('d').unwrap_or_else(|e| panic!("ctrl-d: {e}"));
    ok(p.exp_eof(), "Ctrl-D exits");
    let log = read_file(&state.join("eddy.log"));
    assert!(log.contains("catalog restored from"), "the engine's log is in the state directory:\n{log}");
}
