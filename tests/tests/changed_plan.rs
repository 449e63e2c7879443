//! A checkpoint restored into a changed query (Flink's operator-uid rule): `eddy run`
//! over a windowed query checkpoints its state (here in `.eddy/checkpoints` of its
//! working directory, without `--state-dir`); run again over an edited file whose window
//! is 2 minutes instead of 1, it finds the same query's checkpoint and fails with an
//! error that names the change and the way out, rather than reading the 1-minute
//! windows' state as 2-minute ones.

use std::process::{Command, Stdio};
use std::time::Duration;

use eddy_e2e::*;

const WAIT: Duration = Duration::from_secs(60);

fn statements(topic: &str, minutes: u32) -> String {
    format!(
        "CREATE STREAM s (K VARCHAR, TS BIGINT) WITH (kafka_topic='{topic}', value_format='json', partitions=1, timestamp='TS');
CREATE TABLE per_window WITH (kafka_topic='{topic}-agg') AS SELECT K, COUNT(*) AS N FROM s WINDOW TUMBLING (SIZE {minutes} MINUTES) GROUP BY K EMIT CHANGES;
"
    )
}

fn eddy_run(dir: &std::path::Path, file: &str, app: &str) -> Command {
    let mut cmd = Command::new(eddy_bin());
    cmd.args(["run", "--checkpoint-interval", "1s", file])
        .current_dir(dir)
        .env("EDDY_BOOTSTRAP_SERVERS", bootstrap())
        .env("EDDY_APPLICATION_ID", app)
        .env("EDDY_LOG", "info")
        .stdin(Stdio::null());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_window_does_not_restore_the_old_state() {
    let topic = unique("changed-plan");
    let dir = scratch_dir("eddy-changed-plan");
    let app = unique("changed-plan");
    std::fs::write(dir.join("one.sql"), statements(&topic, 1)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("two.sql"), statements(&topic, 2)).unwrap_or_else(|e| panic!("{e}"));
    let log = std::fs::File::create(dir.join("first.log")).unwrap_or_else(|e| panic!("{e}"));
    let mut first = eddy_run(&dir, "one.sql", &app)
        .stdout(log.try_clone().unwrap_or_else(|e| panic!("{e}")))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("eddy run: {e}"));
    produce(&topic, &[(None, r#"{"K": "a", "TS": 1700000040000}"#)]).await;
    assert_eq!(consume(&format!("{topic}-agg"), 1, WAIT).await.len(), 1);
    // A checkpoint with the window's state and the plan it was taken with.
    let checkpoints = dir.join(".eddy").join("checkpoints").join(format!("{app}-csas_per_window"));
    wait_until("a checkpoint with the plan", WAIT, || async {
        std::fs::read_dir(&checkpoints).map(|d| d.filter_map(|e| e.ok()).any(|e| e.path().join("plan.txt").is_file())).unwrap_or(false)
    })
    .await;
    let _ = Command::new("kill").arg("-TERM").arg(first.id().to_string()).status();
    assert!(first.wait().unwrap_or_else(|e| panic!("{e}")).success());

    let second = eddy_run(&dir, "two.sql", &app).output().unwrap_or_else(|e| panic!("eddy run: {e}"));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("query csas_per_window failed: query csas_per_window changed since its checkpoint"), "{stderr}");
    assert!(
        stderr.contains("so its operator state cannot be restored: the checkpoint has `window aggregate: tumbling(size=1min), grace 0s, emit CHANGES` where the query now has `window aggregate: tumbling(size=2min), grace 0s, emit CHANGES`"),
        "{stderr}"
    );
    // The directory as the run names it (relative to its working directory).
    assert!(stderr.contains(&format!("or delete .eddy/checkpoints/{app}-csas_per_window to start the query without state")), "{stderr}");
}
