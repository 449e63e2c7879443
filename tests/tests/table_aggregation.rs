//! Aggregating a TABLE (ksqlDB's count.json cases): the table is read from its changelog
//! topic (upserts by PRIMARY KEY, a record without a value deletes), and an update or a
//! delete takes the old row back out of its group: "count back to zero" gives 1, 2, 1, 0,
//! and moving a row from one group to another lowers the first ("count table").

use std::time::Duration;

use eddy_e2e::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

/// The output records so far, once there are `count` of them: (key bytes, value).
async fn outputs(topic: &str, count: usize) -> Vec<(Vec<u8>, Value)> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let got = consume_bytes(topic, count, Duration::from_secs(5)).await;
        if got.len() >= count || std::time::Instant::now() > deadline {
            return got
                .into_iter()
                // A tombstone (no value) is null.
                .map(|(k, v)| {
                    let value =
                        if v.is_empty() { Value::Null } else { serde_json::from_slice(&v).unwrap_or_else(|e| panic!("{e}: {v:?}")) };
                    (k.unwrap_or_default(), value)
                })
                .collect();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_aggregation_counts_back_to_zero() {
    let topic = unique("table-agg");
    let state = scratch_dir("eddy-table-agg").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("table-agg"))]);
    let (status, answer) = server.ksql(&format!(
        "CREATE TABLE input (K STRING PRIMARY KEY, ID BIGINT, NAME STRING) WITH (kafka_topic='{topic}', value_format='json', partitions=1);
         CREATE TABLE by_id WITH (kafka_topic='{topic}-by-id') AS SELECT ID, COUNT(*) AS N FROM input GROUP BY ID EMIT CHANGES;
         CREATE TABLE by_name WITH (kafka_topic='{topic}-by-name') AS SELECT NAME, COUNT(*) AS N, SUM(ID) AS TOTAL FROM input GROUP BY NAME EMIT CHANGES;
         CREATE TABLE nonzero WITH (kafka_topic='{topic}-nonzero') AS SELECT ID, COUNT(*) AS N FROM input GROUP BY ID HAVING COUNT(*) > 0 EMIT CHANGES;"
    ));
    assert_eq!(status, 200, "{answer}");
    let by_id = format!("{topic}-by-id");
    let by_name = format!("{topic}-by-name");
    let nonzero = format!("{topic}-nonzero");
    // One record at a time, each awaited, so that every update is its own micro-batch.
    let steps: [(&str, Option<&str>, usize, usize); 4] = [
        ("1", Some(r#"{"ID": 3, "NAME": "bob"}"#), 1, 1),
        ("2", Some(r#"{"ID": 3, "NAME": "john"}"#), 2, 2),
        ("1", Some(r#"{"ID": 4, "NAME": "john"}"#), 4, 4),
        ("2", None, 5, 5),
    ];
    for (key, value, ids, names) in steps {
        produce_changelog(&topic, &[(key, value)]).await;
        assert_eq!(outputs(&by_id, ids).await.len(), ids, "after {key} -> {value:?}");
        assert_eq!(outputs(&by_name, names).await.len(), names, "after {key} -> {value:?}");
        assert_eq!(outputs(&nonzero, ids).await.len(), ids, "after {key} -> {value:?}");
    }
    let id_key = |id: i64| id.to_be_bytes().to_vec();
    let got = outputs(&by_id, 5).await;
    let want = vec![
        (id_key(3), json!({"N": 1})),
        (id_key(3), json!({"N": 2})),
        (id_key(3), json!({"N": 1})),
        (id_key(4), json!({"N": 1})),
        (id_key(3), json!({"N": 0})),
    ];
    assert_eq!(got, want);
    // Groups are split over the workers, so only each key's own sequence has an order.
    let got = outputs(&by_name, 5).await;
    let of = |name: &str| -> Vec<Value> { got.iter().filter(|(k, _)| k.as_slice() == name.as_bytes()).map(|(_, v)| v.clone()).collect() };
    assert_eq!(of("bob"), vec![json!({"N": 1, "TOTAL": 3}), json!({"N": 0, "TOTAL": 0})], "{got:?}");
    assert_eq!(of("john"), vec![json!({"N": 1, "TOTAL": 3}), json!({"N": 2, "TOTAL": 7}), json!({"N": 1, "TOTAL": 4})], "{got:?}");

    // HAVING: a group that stops qualifying is deleted with a tombstone (ksqlDB's
    // "should support removing zero counts from table").
    let got = outputs(&nonzero, 5).await;
    let of = |id: i64| -> Vec<Value> { got.iter().filter(|(k, _)| *k == id_key(id)).map(|(_, v)| v.clone()).collect() };
    assert_eq!(of(3), vec![json!({"N": 1}), json!({"N": 2}), json!({"N": 1}), Value::Null], "{got:?}");
    assert_eq!(of(4), vec![json!({"N": 1})], "{got:?}");

    // What cannot take a row back is refused, naming it; so is a window over a table.
    // ksqlDB's own text, every such function named.
    let (status, answer) = server.ksql("CREATE TABLE lowest AS SELECT NAME, MIN(ID) AS M FROM input GROUP BY NAME EMIT CHANGES;");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["primaryMessage"], "The aggregation function MIN cannot be applied to a table source, only to a stream source.",
        "{answer}"
    );
    let (status, answer) = server.ksql(
        "CREATE TABLE spread AS SELECT NAME, MIN(ID) AS A, COUNT(*) AS N, MAX(ID) AS B, MIN(ID) + 1 AS C FROM input GROUP BY NAME EMIT CHANGES;",
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["primaryMessage"], "The aggregation functions MIN and MAX cannot be applied to a table source, only to a stream source.",
        "{answer}"
    );
    let (status, answer) =
        server.ksql("CREATE TABLE w AS SELECT NAME, COUNT(*) AS N FROM input WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY NAME EMIT CHANGES;");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["primaryMessage"], "Windowing not supported for table aggregations.", "{answer}");
}

/// Session windows with EMIT CHANGES (ksqlDB's session-windows.json "max session"): each
/// update is written at once under the session-windowed key (key bytes, end, start), and a
/// session that a merge replaces is deleted with a tombstone. Rows exactly a gap apart
/// are one session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_windows_emit_changes_and_retract_merged_sessions() {
    const BASE: i64 = 1_700_000_010_000;
    let topic = unique("sessions");
    let state = scratch_dir("eddy-sessions").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("sessions"))]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM test (K BIGINT KEY, ID BIGINT, NAME VARCHAR, VALUE BIGINT) WITH (kafka_topic='{topic}', value_format='DELIMITED', partitions=1);
         CREATE TABLE s2 WITH (kafka_topic='{topic}-s2') AS SELECT ID, MAX(VALUE) FROM test WINDOW SESSION (30 SECONDS) GROUP BY ID;"
    ));
    assert_eq!(status, 200, "{answer}");
    let out = format!("{topic}-s2");
    let steps: [(i64, &str, i64, usize); 4] =
        [(0, "0,zero,0", 0, 1), (0, "0,100,5", 10_000, 3), (1, "1,100,100", 10_000, 4), (1, "1,100,200", 40_000, 6)];
    for (key, value, at, total) in steps {
        let k = key.to_be_bytes();
        produce_timestamped(&topic, &[(Some(&k), value, Some(BASE + at))]).await;
        let got = consume_bytes(&out, total, WAIT).await;
        assert_eq!(got.len(), total, "after {value} at {at}: {got:?}");
    }
    let window_key = |id: i64, start: i64, end: i64| {
        let mut k = id.to_be_bytes().to_vec();
        k.extend_from_slice(&(BASE + end).to_be_bytes());
        k.extend_from_slice(&(BASE + start).to_be_bytes());
        Some(k)
    };
    let got = consume_bytes(&out, 6, WAIT).await;
    let want: Vec<(Option<Vec<u8>>, Vec<u8>)> = vec![
        (window_key(0, 0, 0), b"0".to_vec()),
        (window_key(0, 0, 0), Vec::new()),
        (window_key(0, 0, 10_000), b"5".to_vec()),
        (window_key(1, 10_000, 10_000), b"100".to_vec()),
        (window_key(1, 10_000, 10_000), Vec::new()),
        (window_key(1, 10_000, 40_000), b"200".to_vec()),
    ];
    assert_eq!(got, want);
}
