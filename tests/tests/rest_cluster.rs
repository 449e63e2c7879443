//! ksqlDB's REST endpoints beyond statements and push queries, which its clients call:
//! `/inserts-stream` (rows in, one acknowledgement per row out), `/status/<commandId>`,
//! `/clusterStatus`, `/is_valid_property/<name>` and `/ksql/terminate`. Each answered
//! 404 before.

use eddy_e2e::*;
use serde_json::{json, Value};

fn lines(text: &str) -> Vec<Value> {
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[test]
fn inserts_stream_writes_each_row_and_acknowledges_it() {
    let topic = unique("inserts");
    let state = scratch_dir("eddy-inserts").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("inserts"))]);
    let (status, answer) =
        server.ksql(&format!("CREATE STREAM ins (id VARCHAR, n INT) WITH (kafka_topic='{topic}', value_format='json', partitions=1);"));
    assert_eq!(status, 200, "{answer}");
    // ksqlDB's clients name the target and the columns in upper case.
    let body =
        "{\"target\": \"INS\", \"properties\": {}}\n{\"ID\": \"a\", \"N\": 1}\n{\"id\": \"b\", \"n\": \"x\"}\n{\"id\": \"c\", \"n\": 3}\n";
    let mut r = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .post(&format!("{}/inserts-stream", server.url))
        .header("Content-Type", "application/vnd.ksqlapi.delimited.v1")
        .send(body)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 200);
    let acks = lines(&r.body_mut().read_to_string().unwrap_or_default());
    assert_eq!(acks.len(), 3, "{acks:?}");
    assert_eq!(acks[0], json!({"status": "ok", "seq": 0}));
    assert_eq!(acks[1]["status"], "error");
    assert_eq!(acks[1]["message"], "cannot insert the row: whilst decoding field 'n': failed to parse \"x\" as Int32");
    assert_eq!(acks[2], json!({"status": "ok", "seq": 2}));
    let (status, text) = server
        .post("/query-stream", &json!({"sql": "SELECT * FROM ins EMIT CHANGES LIMIT 2;", "properties": {"auto.offset.reset": "earliest"}}));
    assert_eq!(status, 200, "{text}");
    let rows = lines(&text);
    assert_eq!(rows[1..], [json!(["a", 1]), json!(["c", 3])], "{text}");
    // An unknown target is refused before any row.
    let (status, text) = server.post("/inserts-stream", &json!({"target": "nope"}));
    assert_eq!(
        (status, text.as_str()),
        (400, r#"{"@type":"generic_error","error_code":40000,"message":"unknown stream or table \"nope\""}"#)
    );
}

#[test]
fn command_status_cluster_status_property_checks_and_terminate() {
    let topic = unique("cluster");
    let state = scratch_dir("eddy-cluster").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("cluster"))]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM cs (id VARCHAR) WITH (kafka_topic='{topic}', value_format='json', partitions=1); CREATE STREAM cs2 AS SELECT * FROM cs;"
    ));
    assert_eq!(status, 200, "{answer}");
    let (status, body) = server.get("/status/stream/%60cs%60/create");
    assert_eq!((status, body.as_str()), (200, r#"{"message":"Stream created","queryId":null,"status":"SUCCESS"}"#));
    let (status, body) = server.get("/status/stream/%60nope%60/create");
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"@type":"generic_error","error_code":40400,"message":"Command not found: stream/`nope`/create"}"#)
    );

    let (status, body) = server.get("/clusterStatus");
    assert_eq!(status, 200, "{body}");
    let cluster: Value = serde_json::from_str(&body).unwrap_or_default();
    let host = server.url.trim_start_matches("http://");
    assert_eq!(cluster["clusterStatus"][host]["hostAlive"], true, "{body}");

    assert_eq!(server.get("/is_valid_property/ksql.streams.auto.offset.reset"), (200, "true".to_string()));
    assert_eq!(
        server.get("/is_valid_property/no.such.property"),
        (
            400,
            r#"{"@type":"generic_error","error_code":40000,"message":"Not recognizable as ksql, streams, consumer, or producer property: 'no.such.property'"}"#
                .to_string()
        )
    );

    // Every query ends and every stream goes; the topics stay (none listed to delete).
    let (status, body) = server.post("/ksql/terminate", &json!({}));
    assert_eq!(status, 200, "{body}");
    let (status, answer) = server.ksql("SHOW STREAMS; SHOW QUERIES;");
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer[0]["streams"].clone(), answer[1]["queries"].clone()), (json!([]), json!([])), "{answer}");
    // Patterns are refused rather than deleting more than meant.
    let (status, body) = server.post("/ksql/terminate", &json!({"deleteTopicList": [".*"]}));
    assert_eq!(status, 400, "{body}");
}

/// `INSERT INTO s (columns) VALUES (...)` writes the rows (ksqlDB answers it with no
/// entity); a value that does not fit its column, or an unknown column, is refused.
#[test]
fn insert_values_writes_rows() {
    let topic = unique("insert-values");
    let state = scratch_dir("eddy-insert-values").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("insert-values"))]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM iv (id VARCHAR, n INT, at TIMESTAMP(3)) WITH (kafka_topic='{topic}', value_format='json', partitions=1);
         INSERT INTO iv (id, n, at) VALUES ('a', 1, '2026-01-01T10:00:00Z'), ('b', -2, NULL);
         INSERT INTO iv VALUES ('c', 3, NULL);"
    ));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer.as_array().map(Vec::len), Some(1), "only the CREATE has an entity: {answer}");
    let (status, text) = server.post(
        "/query-stream",
        &json!({"sql": "SELECT id, n, at FROM iv EMIT CHANGES LIMIT 3;", "properties": {"auto.offset.reset": "earliest"}}),
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(lines(&text)[1..], [json!(["a", 1, "2026-01-01T10:00:00"]), json!(["b", -2, null]), json!(["c", 3, null])], "{text}");
    let (status, answer) = server.ksql("INSERT INTO iv (id, n) VALUES ('d', 'x');");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["message"], "cannot insert the row: whilst decoding field 'n': failed to parse \"x\" as Int32 (line 1, column 32)");
    let (status, answer) = server.ksql("INSERT INTO iv (id, nn) VALUES ('d', 1);");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["message"], "unknown column \"nn\" (line 1, column 21); did you mean \"n\"?");
}
