//! Interval joins of two streams through the broker (ksqlDB's `JOIN ... WITHIN`, Flink's
//! BETWEEN bound): rows join when their keys match and their event times are within the
//! bound; a LEFT join emits a left row without a partner, padded with NULLs, once the
//! watermark of both streams has passed its interval.

use std::collections::BTreeSet;
use std::time::Duration;

use eddy_e2e::*;
use serde_json::{json, Value};

/// 2023-11-14T22:14:00Z (ms).
const T0: i64 = 1_700_000_040_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impressions_join_the_clicks_within_ten_minutes() {
    let impressions = unique("impressions");
    let clicks = unique("ad-clicks");
    let out = unique("clicked");
    let state = scratch_dir("eddy-interval-join").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", unique("interval-join").as_str())]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM impressions (AD_ID VARCHAR, TS BIGINT) WITH (kafka_topic='{impressions}', value_format='json', partitions=1, timestamp='TS');
         CREATE STREAM clicks (AD_ID VARCHAR, TS BIGINT) WITH (kafka_topic='{clicks}', value_format='json', partitions=1, timestamp='TS');
         CREATE STREAM clicked WITH (kafka_topic='{out}', value_format='json') AS
           SELECT i.AD_ID AS AD_ID, i.TS AS SHOWN, c.TS AS CLICKED FROM impressions i
           LEFT JOIN clicks c WITHIN 10 MINUTES GRACE PERIOD 0 SECONDS ON i.AD_ID = c.AD_ID;"
    ));
    assert_eq!(status, 200, "{answer}");
    let row = |ad: &str, ts: i64| format!(r#"{{"AD_ID": "{ad}", "TS": {ts}}}"#);
    let (a, b, late_click) = (row("a", T0), row("b", T0 + 1_000), row("a", T0 + 60_000));
    produce(&impressions, &[(None, a.as_str()), (None, b.as_str())]).await;
    produce(&clicks, &[(None, late_click.as_str())]).await;
    // Both streams move past b's interval (T0 + 1 s + 10 min): b is emitted unmatched.
    let (z_shown, z_clicked) = (row("z", T0 + 20 * 60_000), row("z", T0 + 20 * 60_000 + 5_000));
    produce(&impressions, &[(None, z_shown.as_str())]).await;
    produce(&clicks, &[(None, z_clicked.as_str())]).await;
    let got: BTreeSet<String> = consume(&out, 3, Duration::from_secs(60))
        .await
        .into_iter()
        .map(|(_, v)| serde_json::from_str::<Value>(&v).unwrap_or_default().to_string())
        .collect();
    let want: BTreeSet<String> = [
        json!({"AD_ID": "a", "SHOWN": T0, "CLICKED": T0 + 60_000}),
        json!({"AD_ID": "b", "SHOWN": T0 + 1_000, "CLICKED": null}),
        json!({"AD_ID": "z", "SHOWN": T0 + 20 * 60_000, "CLICKED": T0 + 20 * 60_000 + 5_000}),
    ]
    .iter()
    .map(Value::to_string)
    .collect();
    assert_eq!(got, want);
    // Nothing else: a is not padded (it joined), and no pair is repeated.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(consume(&out, usize::MAX, Duration::from_secs(3)).await.len(), 3);
}

/// SIGKILL after the first rows were joined and kept, then a restart: the kept rows come
/// back from the checkpoint, so b is still padded once its interval closes, a's pair is
/// not written twice, and z joins: the same three rows as without the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_join_resumes_with_its_kept_rows() {
    let impressions = unique("impressions-kill");
    let clicks = unique("ad-clicks-kill");
    let out = unique("clicked-kill");
    let state = scratch_dir("eddy-interval-join-kill").join("state");
    let env = [("EDDY_APPLICATION_ID", unique("interval-join-kill")), ("EDDY_CHECKPOINT_INTERVAL", "1s".to_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(&state, &env);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM impressions (AD_ID VARCHAR, TS BIGINT) WITH (kafka_topic='{impressions}', value_format='json', partitions=1, timestamp='TS');
         CREATE STREAM clicks (AD_ID VARCHAR, TS BIGINT) WITH (kafka_topic='{clicks}', value_format='json', partitions=1, timestamp='TS');
         CREATE STREAM clicked WITH (kafka_topic='{out}', value_format='json') AS
           SELECT i.AD_ID AS AD_ID, i.TS AS SHOWN, c.TS AS CLICKED FROM impressions i
           LEFT JOIN clicks c WITHIN 10 MINUTES GRACE PERIOD 0 SECONDS ON i.AD_ID = c.AD_ID;"
    ));
    assert_eq!(status, 200, "{answer}");
    let row = |ad: &str, ts: i64| format!(r#"{{"AD_ID": "{ad}", "TS": {ts}}}"#);
    let (a, b, click) = (row("a", T0), row("b", T0 + 1_000), row("a", T0 + 60_000));
    produce(&impressions, &[(None, a.as_str()), (None, b.as_str())]).await;
    produce(&clicks, &[(None, click.as_str())]).await;
    assert_eq!(consume(&out, 1, Duration::from_secs(60)).await.len(), 1);
    // A checkpoint after the pair (its interval is 1 s), then the kill.
    let dir = state.join("checkpoints");
    wait_until("a checkpoint with the join's kept rows", Duration::from_secs(30), || async {
        walk(&dir).iter().any(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains("interval-join")))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.kill();
    let server = Server::start(&state, &env);
    let (z_shown, z_clicked) = (row("z", T0 + 20 * 60_000), row("z", T0 + 20 * 60_000 + 5_000));
    produce(&impressions, &[(None, z_shown.as_str())]).await;
    produce(&clicks, &[(None, z_clicked.as_str())]).await;
    let got: Vec<Value> = consume(&out, 3, Duration::from_secs(60))
        .await
        .into_iter()
        .map(|(_, v)| serde_json::from_str::<Value>(&v).unwrap_or_default())
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all: Vec<Value> = consume(&out, usize::MAX, Duration::from_secs(3))
        .await
        .into_iter()
        .map(|(_, v)| serde_json::from_str::<Value>(&v).unwrap_or_default())
        .collect();
    let got: BTreeSet<String> = got.iter().map(Value::to_string).collect();
    let want: BTreeSet<String> = [
        json!({"AD_ID": "a", "SHOWN": T0, "CLICKED": T0 + 60_000}),
        json!({"AD_ID": "b", "SHOWN": T0 + 1_000, "CLICKED": null}),
        json!({"AD_ID": "z", "SHOWN": T0 + 20 * 60_000, "CLICKED": T0 + 20 * 60_000 + 5_000}),
    ]
    .iter()
    .map(Value::to_string)
    .collect();
    assert_eq!(got, want, "{}", server.log_text());
    assert_eq!(all.len(), 3, "{all:?}");
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Flink's form: a FULL join with the bound in ON (`BETWEEN`), rows out of order within
/// the watermark delay, a condition beyond the keys, and the unmatched rows of both
/// sides padded once both streams' watermarks pass their intervals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flink_full_join_pads_both_sides() {
    let shown = unique("shown");
    let clicked = unique("clicked-flink");
    let out = unique("full-join");
    let state = scratch_dir("eddy-interval-join-flink").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", unique("interval-join-flink").as_str())]);
    let (status, answer) = server.ksql(&format!(
        "CREATE TABLE shown (ad VARCHAR, slot INT, shown_at TIMESTAMP(3), WATERMARK FOR shown_at AS shown_at - INTERVAL '5' SECOND)
           WITH ('connector'='kafka', 'topic'='{shown}', 'format'='json', 'partitions'='1');
         CREATE TABLE clicked (ad VARCHAR, slot INT, clicked_at TIMESTAMP(3), WATERMARK FOR clicked_at AS clicked_at - INTERVAL '5' SECOND)
           WITH ('connector'='kafka', 'topic'='{clicked}', 'format'='json', 'partitions'='1');
         CREATE TABLE joined (ad VARCHAR, shown_at TIMESTAMP(3), clicked_at TIMESTAMP(3)) WITH ('connector'='kafka', 'topic'='{out}', 'format'='json');
         INSERT INTO joined
           SELECT COALESCE(s.ad, c.ad), s.shown_at, c.clicked_at FROM shown s FULL JOIN clicked c
           ON s.ad = c.ad AND s.slot = c.slot AND c.clicked_at BETWEEN s.shown_at AND s.shown_at + INTERVAL '1' MINUTE;"
    ));
    assert_eq!(status, 200, "{answer}");
    let s = |ad: &str, slot: i32, at: &str| format!(r#"{{"ad": "{ad}", "slot": {slot}, "shown_at": "2023-11-14T22:{at}Z"}}"#);
    let c = |ad: &str, slot: i32, at: &str| format!(r#"{{"ad": "{ad}", "slot": {slot}, "clicked_at": "2023-11-14T22:{at}Z"}}"#);
    // a: shown at :00, clicked at :30 (in bound, same slot): joined. The shown row of b
    // arrives after a later one (out of order, within the 5 s delay) and its click is 2
    // minutes late: both padded. c's click has another slot: both padded.
    let shown_rows = [s("a", 1, "14:00"), s("d", 1, "14:03"), s("b", 1, "14:01"), s("c", 1, "14:02")];
    let clicked_rows = [c("a", 1, "14:30"), c("b", 1, "16:01"), c("c", 2, "14:20")];
    produce(&shown, &shown_rows.iter().map(|r| (None, r.as_str())).collect::<Vec<_>>()).await;
    produce(&clicked, &clicked_rows.iter().map(|r| (None, r.as_str())).collect::<Vec<_>>()).await;
    // Both watermarks past every interval: later rows on both streams (z's own rows
    // stay kept: nothing moves the watermarks past them).
    let (s_late, c_late) = (s("z", 1, "30:00"), c("z", 9, "30:00"));
    produce(&shown, &[(None, s_late.as_str())]).await;
    produce(&clicked, &[(None, c_late.as_str())]).await;
    let got: BTreeSet<String> = consume(&out, 6, Duration::from_secs(60)).await.into_iter().map(|(_, v)| v).collect();
    let want: BTreeSet<String> = [
        r#"{"ad":"a","shown_at":"2023-11-14 22:14:00","clicked_at":"2023-11-14 22:14:30"}"#,
        r#"{"ad":"b","shown_at":"2023-11-14 22:14:01","clicked_at":null}"#,
        r#"{"ad":"b","shown_at":null,"clicked_at":"2023-11-14 22:16:01"}"#,
        r#"{"ad":"c","shown_at":"2023-11-14 22:14:02","clicked_at":null}"#,
        r#"{"ad":"c","shown_at":null,"clicked_at":"2023-11-14 22:14:20"}"#,
        r#"{"ad":"d","shown_at":"2023-11-14 22:14:03","clicked_at":null}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(got, want);
}
