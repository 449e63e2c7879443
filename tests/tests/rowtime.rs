//! Record timestamps: what Eddy writes to Kafka carries the rows' event time, as ksqlDB
//! sets ROWTIME, not the wall clock. A projection keeps each input record's timestamp; a
//! windowed aggregation's row carries the largest timestamp among the rows it counts
//! (Kafka Streams' rule, ksqlDB's tumbling-windows.json cases); a stream whose event
//! time is a column (`timestamp='T'`) writes that column's time.

use std::time::Duration;

use eddy_e2e::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);
/// 2023-11-14T22:13:30Z, on a 30-second boundary: recent enough for any broker's retention.
const BASE: i64 = 1_700_000_010_000;

fn value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_records_carry_the_rows_event_time() {
    let topic = unique("rowtime-in");
    let state = scratch_dir("eddy-rowtime").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("rowtime"))]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM src (ID INT KEY, V INT, T BIGINT) WITH (kafka_topic='{topic}', value_format='json', partitions=1);
         CREATE STREAM by_t (ID INT KEY, V INT, T BIGINT) WITH (kafka_topic='{topic}', value_format='json', timestamp='T');
         CREATE STREAM proj WITH (kafka_topic='{topic}-proj') AS SELECT ID, V FROM src;
         CREATE STREAM proj_t WITH (kafka_topic='{topic}-proj-t') AS SELECT ID, V FROM by_t;
         CREATE TABLE agg WITH (kafka_topic='{topic}-agg') AS SELECT ID, COUNT(*) AS N FROM src WINDOW TUMBLING (SIZE 30 SECONDS) GROUP BY ID EMIT CHANGES;"
    ));
    assert_eq!(status, 200, "{answer}");
    let key = 0i32.to_be_bytes();
    // Third record is out of order: the window's row keeps the largest time, BASE + 10 s.
    produce_timestamped(
        &topic,
        &[
            (Some(&key), &format!(r#"{{"V": 1, "T": {}}}"#, BASE + 1), Some(BASE)),
            (Some(&key), &format!(r#"{{"V": 2, "T": {}}}"#, BASE + 2), Some(BASE + 10_000)),
            (Some(&key), &format!(r#"{{"V": 3, "T": {}}}"#, BASE + 3), Some(BASE + 5_000)),
        ],
    )
    .await;

    let proj = consume_timestamped(&format!("{topic}-proj"), 3, WAIT).await;
    let times: Vec<Option<i64>> = proj.iter().map(|r| r.2).collect();
    assert_eq!(times, vec![Some(BASE), Some(BASE + 10_000), Some(BASE + 5_000)], "{proj:?} {:?}", server.queries());
    assert_eq!(value(&proj[0].1), json!({"V": 1}));

    let proj_t = consume_timestamped(&format!("{topic}-proj-t"), 3, WAIT).await;
    let times: Vec<Option<i64>> = proj_t.iter().map(|r| r.2).collect();
    assert_eq!(times, vec![Some(BASE + 1), Some(BASE + 2), Some(BASE + 3)], "{proj_t:?}");

    // EMIT CHANGES may coalesce updates of one micro-batch; the last one counts all three.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let rows = consume_timestamped(&format!("{topic}-agg"), 1, Duration::from_secs(10)).await;
        if let Some((_, v, t)) = rows.last() {
            if value(v) == json!({"N": 3}) {
                assert_eq!(*t, Some(BASE + 10_000), "{rows:?}");
                break;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no final count: {rows:?}");
    }
}
