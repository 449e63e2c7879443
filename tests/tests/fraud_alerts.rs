//! SCENARIOS.md §1 end to end: `eddy run queries/fraud` against the real broker and the
//! real PostgreSQL. The four cases' lines go to a fresh topic; exactly one alert comes
//! out (case 1, account 9726, RU -> IN), none for cases 2 (different accounts), 3 (420 s
//! apart) and 4 (a log-out between). The same holds when each case's lines arrive in
//! reverse order within the 5 s watermark delay, and when they are spread over 4
//! partitions. A sentinel event an hour later on every partition moves the watermark
//! past the cases, as later traffic would.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use eddy_e2e::*;

const ID: &str = "395805b6-7aee-409a-85cc-";

/// The cases' lines, `(case, event_id, line)`, in the order SCENARIOS.md gives them.
fn cases() -> Vec<(u32, String, String)> {
    let lines = [
        (1, "d2ffb7eb7ef2", "9726,login,RU,1601736282"),
        (1, "d2ffb7eb7ef2", "9726,login,IN,1601736283"),
        (2, "111111111111", "9727,login,RU,1601736282"),
        (2, "222222222222", "9728,login,IN,1601736283"),
        (3, "333333333333", "9729,login,RU,1601737420"),
        (3, "444444444444", "9729,login,IN,1601737840"),
        (4, "555555555555", "9730,login,RU,1601737420"),
        (4, "666666666666", "9730,log-out,IN,1601737840"),
        (4, "777777777777", "9730,login,IN,1601737840"),
    ];
    lines.iter().map(|(case, id, rest)| (*case, format!("{ID}{id}"), format!("{ID}{id},{rest}"))).collect()
}

#[derive(Clone, Copy, Debug)]
enum Delivery {
    /// One partition, the lines in order.
    InOrder,
    /// One partition, each case's lines reversed where they are at most 5 s apart.
    Reversed,
    /// Four partitions, the lines dealt round-robin (case 1's two lines on different ones).
    FourPartitions,
}

async fn run(delivery: Delivery) {
    let topic = unique("server-logs-alerts");
    let alerts = format!("{topic}-alerts");
    let app = unique("alerts");
    let db = TestDb::create().await;
    let partitions = match delivery {
        Delivery::FourPartitions => 4,
        _ => 1,
    };
    let created = Command::new(eddy_bin())
        .args(["topics", "create", &topic, "--partitions", &partitions.to_string()])
        .env("EDDY_BOOTSTRAP_SERVERS", bootstrap())
        .status();
    assert!(created.is_ok_and(|s| s.success()), "cannot create {topic}");

    let mut lines = cases();
    if let Delivery::Reversed = delivery {
        // Case 1: IN (…283) before RU (…282); case 2 likewise; case 4's two lines at …840
        // swap. Cases 3 and 4 cannot put …840 before …420: 420 s is beyond the delay.
        lines.swap(0, 1);
        lines.swap(2, 3);
        lines.swap(7, 8);
    }
    let records: Vec<(Option<i32>, Option<&str>, &str)> =
        lines.iter().enumerate().map(|(i, (_, id, line))| (Some(i as i32 % partitions), Some(id.as_str()), line.as_str())).collect();
    // An hour after the last case, on every partition: the watermark passes all cases.
    let sentinels: Vec<String> = (0..partitions).map(|p| format!("{ID}99999999999{p},1,other,O,1601741440")).collect();
    let sentinel_records: Vec<(Option<i32>, Option<&str>, &str)> =
        sentinels.iter().enumerate().map(|(p, s)| (Some(p as i32), None, s.as_str())).collect();

    let dir = scratch_dir("eddy-e2e-alerts");
    let env = [
        ("EDDY_SERVER_LOGS_TOPIC", topic.as_str()),
        ("EDDY_ALERTS_TOPIC", alerts.as_str()),
        ("EDDY_POSTGRES_URL", db.url.as_str()),
        ("EDDY_APPLICATION_ID", app.as_str()),
    ];
    let eddy = Eddy::run(&dir, &[Path::new("queries/fraud")], &env);
    produce_to(&topic, &records).await;
    produce_to(&topic, &sentinel_records).await;
    // Case 1 repeats its event_id, so server_log (keyed by event_id) holds 8 case rows.
    let rows = 8 + partitions as i64;
    wait_until("every event in PostgreSQL", Duration::from_secs(120), || async {
        db.scalar("SELECT count(*) FROM server_log").await == rows
    })
    .await;
    let got = consume(&alerts, 1, Duration::from_secs(60)).await;
    // Every case was released by the same watermark; give the other workers time.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got_again = consume(&alerts, 2, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1, "{delivery:?}: exactly one alert, got {got:?}\nlog:\n{}", eddy.log_text());
    assert_eq!(got_again.len(), 1, "{delivery:?}: still one alert, got {got_again:?}");
    let (key, value) = &got[0];
    assert_eq!(key.as_deref(), Some("9726"), "{delivery:?}: keyed by account_id");
    let alert: serde_json::Value = serde_json::from_str(value).unwrap_or_else(|e| panic!("{value}: {e}"));
    assert_eq!(
        alert,
        serde_json::json!({
            "event_id": format!("{ID}d2ffb7eb7ef2"),
            "account_id": 9726,
            "prev_country": "RU",
            "current_country": "IN",
            "alert_time": "2020-10-03 14:44:43"
        }),
        "{delivery:?}"
    );
    assert_eq!(eddy.query_counter("insert_alerts", "rows_out"), 1);
    assert_eq!(eddy.query_counter("insert_alerts", "late_rows"), 0);
    assert!(eddy.terminate().success());
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_cases_in_order_raise_exactly_one_alert() {
    run(Delivery::InOrder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_cases_out_of_order_raise_the_same_alert() {
    run(Delivery::Reversed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_cases_over_four_partitions_raise_the_same_alert() {
    run(Delivery::FourPartitions).await;
}
