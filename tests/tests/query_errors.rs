//! A query whose expression fails on a row stops visibly: SHOW QUERIES says ERROR with
//! the reason within seconds, though its source has nothing more to read (it used to
//! say RUNNING until shutdown, the error only in the log). A statement whose planning
//! panics inside a library is a statement error, and the server goes on.

use std::time::Duration;

use eddy_e2e::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_fails_an_expression_fails_the_query_at_once() {
    let topic = unique("row-errors");
    let state = scratch_dir("eddy-row-errors").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("row-errors"))]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM s (id VARCHAR, n VARCHAR) WITH (kafka_topic='{topic}', value_format='json', partitions=1);
         CREATE STREAM numbers WITH (kafka_topic='{topic}-numbers') AS SELECT id, CAST(n AS INT) AS n FROM s;"
    ));
    assert_eq!(status, 200, "{answer}");
    wait_until("the query RUNNING", Duration::from_secs(30), || async { server.queries().iter().all(|q| q.2 == "RUNNING") }).await;
    produce(&topic, &[(None, r#"{"id": "a", "n": "1"}"#), (None, r#"{"id": "b", "n": "not a number"}"#)]).await;
    wait_until("the query in ERROR", Duration::from_secs(20), || async { server.queries().iter().all(|q| q.2 == "ERROR") }).await;
    let (_, answer) = server.ksql("SHOW QUERIES;");
    let error = answer[0]["queries"][0]["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("Cannot cast string 'not a number' to value of Int32 type"), "{error}");
    let (status, body) = server.get("/healthcheck");
    assert_eq!(status, 200, "{body}");
}

/// `GROUP BY id, WINDOWSTART, WINDOWEND` over a ksqlDB window panicked in DataFusion
/// (the server answered nothing). The window is always part of the key, so naming its
/// bounds in GROUP BY is the same windowed table; a panic while planning is an error on
/// the statement (unit test `a_panic_while_planning_is_an_error_on_the_statement`).
#[test]
fn group_by_window_bounds_is_the_windowed_key() {
    let topic = unique("plan-panic");
    let state = scratch_dir("eddy-plan-panic").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("plan-panic"))]);
    let (status, answer) =
        server.ksql(&format!("CREATE STREAM s (id VARCHAR, amount INT) WITH (kafka_topic='{topic}', value_format='json', partitions=1);"));
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = server.ksql(&format!(
        "CREATE TABLE t WITH (kafka_topic='{topic}-t') AS SELECT id, COUNT(*) AS c FROM s WINDOW TUMBLING (SIZE 30 SECONDS) GROUP BY id, WINDOWSTART, WINDOWEND EMIT CHANGES;"
    ));
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = server.ksql("DESCRIBE t;");
    assert_eq!(status, 200, "{answer}");
    let fields: Vec<String> = answer[0]["sourceDescription"]["fields"]
        .as_array()
        .map(|f| f.iter().map(|f| format!("{} {}", f["name"].as_str().unwrap_or(""), f["type"].as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["ID KEY", "WINDOWSTART KEY", "WINDOWEND ", "C "], "{answer}");
    // Its record keys end with the window bounds: reading it as a plain source would give
    // wrong keys, so it is refused.
    let (status, answer) = server.ksql("CREATE STREAM again AS SELECT * FROM t;");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["primaryMessage"], "\"t\" is a windowed table: reading it as a source is not supported", "{answer}");
}

/// ksqlDB answers a push query sent to `/ksql` with error 40002 and this text; its
/// clients go by the code.
#[test]
fn a_push_query_on_the_statement_endpoint_is_error_40002() {
    let state = scratch_dir("eddy-push-on-ksql").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("push-on-ksql"))]);
    let (status, answer) = server.ksql("SELECT * FROM s EMIT CHANGES;");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer,
        serde_json::json!({
            "@type": "statement_error",
            "error_code": 40002,
            "message": "The following statement types should be issued to the websocket endpoint '/query':\n\t* PRINT\n\t* SELECT",
            "statementText": "SELECT * FROM s EMIT CHANGES",
            "entities": [],
        })
    );
}
