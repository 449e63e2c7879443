//! Flink's event-time temporal join through the broker: orders joined with the rate that
//! was current at each order's event time, from a versioned table (a Kafka TABLE with a
//! primary key and an event time), even when the rates arrive after the orders.

use std::collections::BTreeSet;
use std::time::Duration;

use eddy_e2e::*;
use serde_json::Value;

/// 2023-11-14T22:14:00Z (ms).
const T0: i64 = 1_700_000_040_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_order_gets_the_rate_of_its_time() {
    let rates = unique("rates");
    let orders = unique("orders-tj");
    let out = unique("priced");
    let state = scratch_dir("eddy-temporal-join").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", unique("temporal-join").as_str())]);
    let (status, answer) = server.ksql(&format!(
        "CREATE TABLE rates (CURRENCY VARCHAR PRIMARY KEY, RATE DOUBLE, TS BIGINT) WITH (kafka_topic='{rates}', value_format='json', partitions=1, timestamp='TS');
         CREATE STREAM orders (ID VARCHAR, CURRENCY VARCHAR, AMOUNT DOUBLE, TS BIGINT) WITH (kafka_topic='{orders}', value_format='json', partitions=1, timestamp='TS');
         CREATE STREAM priced WITH (kafka_topic='{out}', value_format='json') AS
           SELECT o.ID AS ID, o.AMOUNT * r.RATE AS EUR FROM orders o
           LEFT JOIN rates FOR SYSTEM_TIME AS OF o.TS AS r ON o.CURRENCY = r.CURRENCY;"
    ));
    assert_eq!(status, 200, "{answer}");
    let order = |id: &str, currency: &str, at: i64| format!(r#"{{"ID": "{id}", "CURRENCY": "{currency}", "AMOUNT": 100.0, "TS": {at}}}"#);
    let rate = |r: f64, at: i64| format!(r#"{{"RATE": {r}, "TS": {at}}}"#);
    // The orders first: each waits until both inputs' watermarks pass its time.
    let os =
        [order("o0", "USD", T0 - 5_000), order("o1", "USD", T0 + 5_000), order("o2", "USD", T0 + 12_000), order("o3", "JPY", T0 + 6_000)];
    produce(&orders, &os.iter().map(|o| (None, o.as_str())).collect::<Vec<_>>()).await;
    let (r1, r2) = (rate(1.0, T0), rate(2.0, T0 + 10_000));
    produce_changelog(&rates, &[("USD", Some(r1.as_str())), ("USD", Some(r2.as_str()))]).await;
    // Later rows on both inputs move the watermark past every order above (to o9's).
    let (r9, o9) = (rate(5.0, T0 + 60_000), order("o9", "CHF", T0 + 60_000));
    produce_changelog(&rates, &[("CHF", Some(r9.as_str()))]).await;
    produce(&orders, &[(None, o9.as_str())]).await;
    let got: BTreeSet<String> = consume(&out, 5, Duration::from_secs(60))
        .await
        .into_iter()
        .map(|(_, v)| serde_json::from_str::<Value>(&v).unwrap_or_default().to_string())
        .collect();
    let want: BTreeSet<String> = [
        r#"{"ID":"o0","EUR":null}"#,
        r#"{"ID":"o1","EUR":100.0}"#,
        r#"{"ID":"o2","EUR":200.0}"#,
        r#"{"ID":"o3","EUR":null}"#,
        // The watermarks (no delay) reach o9's own time: CHF's rate of that time.
        r#"{"ID":"o9","EUR":500.0}"#,
    ]
    .iter()
    .map(|s| serde_json::from_str::<Value>(s).unwrap_or_default().to_string())
    .collect();
    assert_eq!(got, want, "{}", server.log_text());
}

/// A tombstone in the versioned table's topic deletes its key from the tombstone's
/// time on: with no value, its event time (a value column here) is the Kafka record's
/// timestamp. An order before the delete gets the rate, one after it none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_deletes_the_rate_from_its_record_time() {
    let rates = unique("rates-del");
    let orders = unique("orders-del");
    let out = unique("priced-del");
    let state = scratch_dir("eddy-temporal-delete").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", unique("temporal-delete").as_str())]);
    let (status, answer) = server.ksql(&format!(
        "CREATE TABLE rates (CURRENCY VARCHAR PRIMARY KEY, RATE DOUBLE, TS BIGINT) WITH (kafka_topic='{rates}', value_format='json', partitions=1, timestamp='TS');
         CREATE STREAM orders (ID VARCHAR, CURRENCY VARCHAR, AMOUNT DOUBLE, TS BIGINT) WITH (kafka_topic='{orders}', value_format='json', partitions=1, timestamp='TS');
         CREATE STREAM priced WITH (kafka_topic='{out}', value_format='json') AS
           SELECT o.ID AS ID, o.AMOUNT * r.RATE AS EUR FROM orders o
           LEFT JOIN rates FOR SYSTEM_TIME AS OF o.TS AS r ON o.CURRENCY = r.CURRENCY;"
    ));
    assert_eq!(status, 200, "{answer}");
    let order = |id: &str, currency: &str, at: i64| format!(r#"{{"ID": "{id}", "CURRENCY": "{currency}", "AMOUNT": 100.0, "TS": {at}}}"#);
    let rate = |r: f64, at: i64| format!(r#"{{"RATE": {r}, "TS": {at}}}"#);
    let (o1, o2) = (order("o1", "USD", T0 + 5_000), order("o2", "USD", T0 + 15_000));
    produce(&orders, &[(None, o1.as_str()), (None, o2.as_str())]).await;
    let (r1, r9) = (rate(1.0, T0), rate(5.0, T0 + 60_000));
    produce_changelog_at(
        &rates,
        &[("USD", Some(r1.as_str()), Some(T0)), ("USD", None, Some(T0 + 10_000)), ("CHF", Some(r9.as_str()), Some(T0 + 60_000))],
    )
    .await;
    let o9 = order("o9", "CHF", T0 + 60_000);
    produce(&orders, &[(None, o9.as_str())]).await;
    let got: BTreeSet<String> = consume(&out, 3, Duration::from_secs(60))
        .await
        .into_iter()
        .map(|(_, v)| serde_json::from_str::<Value>(&v).unwrap_or_default().to_string())
        .collect();
    let want: BTreeSet<String> = [r#"{"ID":"o1","EUR":100.0}"#, r#"{"ID":"o2","EUR":null}"#, r#"{"ID":"o9","EUR":500.0}"#]
        .iter()
        .map(|s| serde_json::from_str::<Value>(s).unwrap_or_default().to_string())
        .collect();
    assert_eq!(got, want, "{}", server.log_text());
}

/// SIGKILL while orders wait for the watermark, then a restart: the waiting orders and
/// the kept versions come back from the checkpoint, and each order still gets the rate
/// of its time, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_temporal_join_resumes_with_its_waiting_rows() {
    let rates = unique("rates-kill");
    let orders = unique("orders-tj-kill");
    let out = unique("priced-kill");
    let state = scratch_dir("eddy-temporal-join-kill").join("state");
    let env = [("EDDY_APPLICATION_ID", unique("temporal-join-kill")), ("EDDY_CHECKPOINT_INTERVAL", "1s".to_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(&state, &env);
    let (status, answer) = server.ksql(&format!(
        "CREATE TABLE rates (CURRENCY VARCHAR PRIMARY KEY, RATE DOUBLE, TS BIGINT) WITH (kafka_topic='{rates}', value_format='json', partitions=1, timestamp='TS');
         CREATE STREAM orders (ID VARCHAR, CURRENCY VARCHAR, AMOUNT DOUBLE, TS BIGINT) WITH (kafka_topic='{orders}', value_format='json', partitions=1, timestamp='TS');
         CREATE STREAM priced WITH (kafka_topic='{out}', value_format='json') AS
           SELECT o.ID AS ID, o.AMOUNT * r.RATE AS EUR FROM orders o
           JOIN rates FOR SYSTEM_TIME AS OF o.TS AS r ON o.CURRENCY = r.CURRENCY;"
    ));
    assert_eq!(status, 200, "{answer}");
    let order = |id: &str, at: i64| format!(r#"{{"ID": "{id}", "CURRENCY": "USD", "AMOUNT": 100.0, "TS": {at}}}"#);
    let rate = |r: f64, at: i64| format!(r#"{{"RATE": {r}, "TS": {at}}}"#);
    let (r1, r2) = (rate(1.0, T0), rate(2.0, T0 + 10_000));
    produce_changelog(&rates, &[("USD", Some(r1.as_str())), ("USD", Some(r2.as_str()))]).await;
    let (o1, o2) = (order("o1", T0 + 5_000), order("o2", T0 + 20_000));
    produce(&orders, &[(None, o1.as_str()), (None, o2.as_str())]).await;
    // o1 is released (both watermarks are past it), o2 waits for the rates' watermark.
    assert_eq!(consume(&out, 1, Duration::from_secs(60)).await.len(), 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.kill();
    let server = Server::start(&state, &env);
    let r3 = rate(3.0, T0 + 30_000);
    produce_changelog(&rates, &[("USD", Some(r3.as_str()))]).await;
    let got: Vec<Value> = consume(&out, 2, Duration::from_secs(60))
        .await
        .into_iter()
        .map(|(_, v)| serde_json::from_str::<Value>(&v).unwrap_or_default())
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = consume(&out, usize::MAX, Duration::from_secs(3)).await;
    assert_eq!(
        got,
        [serde_json::json!({"ID": "o1", "EUR": 100.0}), serde_json::json!({"ID": "o2", "EUR": 200.0})],
        "{}",
        server.log_text()
    );
    assert_eq!(all.len(), 2, "{all:?}");
}
