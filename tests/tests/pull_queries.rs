//! ksqlDB pull queries over `eddy server`: `SELECT ... FROM table [WHERE ...] [LIMIT n]`
//! without EMIT CHANGES reads a table's current rows once, over /query-stream and
//! /query: by key, by a scan in key order with a filter, with LIMIT, from a windowed
//! table by key and window start range, and again after the table changed. Streams and
//! aggregations are refused with the fix.

use std::time::Duration;

use eddy_e2e::*;
use serde_json::{json, Value};

/// Event time of the first view: 2023-11-14T22:14:00Z, on a minute boundary (ms).
const T0: i64 = 1_700_000_040_000;

/// `/query-stream` with `sql`: the status, the header and the rows.
fn pull(server: &Server, sql: &str) -> (u16, Value, Vec<Value>) {
    let (status, body) = server.post("/query-stream", &json!({"sql": sql, "properties": {}}));
    if status != 200 {
        return (status, serde_json::from_str(&body).unwrap_or(Value::String(body)), Vec::new());
    }
    let mut lines = body.lines().map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")));
    let header = lines.next().unwrap_or(Value::Null);
    (status, header, lines.collect())
}

/// The rows of a pull query that must succeed.
fn rows(server: &Server, sql: &str) -> Vec<Value> {
    let (status, header, rows) = pull(server, sql);
    assert_eq!(status, 200, "{sql}: {header}");
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_queries_read_a_tables_current_rows() {
    let topic = unique("pull-pv");
    let state = scratch_dir("eddy-pull").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("pull"))]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM pv (USER_ID VARCHAR, DURATION INT, TS BIGINT) WITH (kafka_topic='{topic}', value_format='json', partitions=1, timestamp='TS');
         CREATE TABLE views WITH (kafka_topic='{topic}-views') AS SELECT USER_ID, COUNT(*) AS N, SUM(DURATION) AS TOTAL FROM pv GROUP BY USER_ID EMIT CHANGES;
         CREATE TABLE per_minute WITH (kafka_topic='{topic}-per-minute') AS SELECT USER_ID, COUNT(*) AS N FROM pv WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY USER_ID EMIT CHANGES;"
    ));
    assert_eq!(status, 200, "{answer}");
    let view = |user: &str, duration: i32, at: i64| format!(r#"{{"USER_ID": "{user}", "DURATION": {duration}, "TS": {at}}}"#);
    let views = [view("alice", 10, T0), view("bob", 5, T0 + 1_000), view("alice", 20, T0 + 61_000), view("carol", 1, T0 + 2_000)];
    produce(&topic, &views.iter().map(|v| (None, v.as_str())).collect::<Vec<_>>()).await;

    // The tables catch up with the views (the first pull query materializes the table).
    wait_until("alice's two views in the table", Duration::from_secs(60), || async {
        rows(&server, "SELECT N FROM views WHERE USER_ID = 'alice';") == [json!([2])]
    })
    .await;

    // By key: the header names the columns as ksqlDB spells them.
    let (status, header, got) = pull(&server, "SELECT * FROM views WHERE USER_ID = 'alice';");
    assert_eq!(status, 200);
    assert_eq!(header["columnNames"], json!(["USER_ID", "N", "TOTAL"]), "{header}");
    assert_eq!(header["columnTypes"], json!(["STRING", "BIGINT", "BIGINT"]), "{header}");
    assert!(header["queryId"].as_str().is_some_and(|id| id.starts_with("pull_views_")), "{header}");
    assert_eq!(got, [json!(["alice", 2, 30])]);
    // A key the table does not hold: no row.
    assert_eq!(rows(&server, "SELECT * FROM views WHERE USER_ID = 'zed';"), Vec::<Value>::new());
    // IN pins several keys; ANDed with another condition, it still reads by key.
    assert_eq!(rows(&server, "SELECT USER_ID, TOTAL FROM views WHERE USER_ID IN ('carol', 'bob', 'zed') AND N = 1;").len(), 2);
    // A scan in key order, filtered and projected; LIMIT stops it.
    assert_eq!(rows(&server, "SELECT USER_ID, N * 10 AS TENFOLD FROM views WHERE N < 2;"), [json!(["bob", 10]), json!(["carol", 10])]);
    assert_eq!(rows(&server, "SELECT USER_ID FROM views LIMIT 2;"), [json!(["alice"]), json!(["bob"])]);

    // The windowed table: one row per user and window, the bounds read from its keys.
    wait_until("alice's two windows", Duration::from_secs(60), || async {
        rows(&server, "SELECT N FROM per_minute WHERE USER_ID = 'alice';").len() == 2
    })
    .await;
    let (status, header, got) = pull(&server, "SELECT * FROM per_minute WHERE USER_ID = 'alice';");
    assert_eq!(status, 200);
    assert_eq!(header["columnNames"], json!(["USER_ID", "WINDOWSTART", "WINDOWEND", "N"]), "{header}");
    assert_eq!(
        got,
        [
            json!(["alice", "2023-11-14T22:14:00", "2023-11-14T22:15:00", 1]),
            json!(["alice", "2023-11-14T22:15:00", "2023-11-14T22:16:00", 1])
        ]
    );
    assert_eq!(
        rows(&server, "SELECT USER_ID, N FROM per_minute WHERE USER_ID = 'alice' AND WINDOWSTART >= '2023-11-14T22:15:00';"),
        [json!(["alice", 1])]
    );
    assert_eq!(rows(&server, "SELECT USER_ID FROM per_minute WHERE WINDOWEND <= '2023-11-14T22:15:00';").len(), 3);

    // The table follows its topic: a new view shows in the next pull query.
    produce(&topic, &[(None, view("bob", 7, T0 + 3_000).as_str())]).await;
    wait_until("bob's second view", Duration::from_secs(60), || async {
        rows(&server, "SELECT * FROM views WHERE USER_ID = 'bob';") == [json!(["bob", 2, 12])]
    })
    .await;

    // The older /query framing.
    let (status, body) =
        server.post("/query", &json!({"ksql": "SELECT USER_ID, N FROM views WHERE USER_ID = 'carol';", "streamsProperties": {}}));
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(answer[0]["header"]["schema"], "`USER_ID` STRING, `N` BIGINT", "{body}");
    assert_eq!(answer[1], json!({"row": {"columns": ["carol", 1]}}), "{body}");
    assert_eq!(answer.as_array().map(Vec::len), Some(2), "{body}");

    // Refusals, with the fix.
    let (status, error, _) = pull(&server, "SELECT * FROM pv;");
    assert_eq!(status, 400);
    assert_eq!(error["primaryMessage"], "a SELECT on a stream must end with EMIT CHANGES", "{error}");
    assert_eq!(
        error["hint"], "add EMIT CHANGES to stream its results as they arrive (a push query); a pull query reads a TABLE",
        "{error}"
    );
    let (status, error, _) = pull(&server, "SELECT N, COUNT(*) FROM views GROUP BY N;");
    assert_eq!(status, 400);
    assert_eq!(error["primaryMessage"], "a pull query cannot aggregate", "{error}");
}
