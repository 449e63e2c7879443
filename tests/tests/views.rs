//! Flink's views over `eddy server`, through the broker: a query reading a view reads the
//! view's stream with the view's filter and columns; a push query reads it too; the view
//! survives a restart (its statement is replayed from the command log before the queries
//! that read it), SHOW VIEWS lists it, and DROP VIEW forgets it.

use std::time::Duration;

use eddy_e2e::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_read_views_as_their_streams() {
    let topic = unique("views-pay");
    let state = scratch_dir("eddy-views").join("state");
    let env = [("EDDY_APPLICATION_ID", unique("views"))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(&state, &env);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM pay (ACCOUNT VARCHAR, AMOUNT DOUBLE) WITH (kafka_topic='{topic}', value_format='json', partitions=1);
         CREATE VIEW big AS SELECT ACCOUNT, AMOUNT * 100 AS CENTS FROM pay WHERE AMOUNT > 10;
         CREATE STREAM big_out WITH (kafka_topic='{topic}-big') AS SELECT * FROM big WHERE CENTS < 10000;"
    ));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[1]["commandStatus"]["message"], "View created", "{answer}");
    assert_eq!(answer[1]["commandId"], "view/`big`/create", "{answer}");
    produce(
        &topic,
        &[
            (None, r#"{"ACCOUNT": "a", "AMOUNT": 5}"#),
            (None, r#"{"ACCOUNT": "b", "AMOUNT": 50}"#),
            (None, r#"{"ACCOUNT": "c", "AMOUNT": 500}"#),
        ],
    )
    .await;
    let out = consume(&format!("{topic}-big"), 1, WAIT).await;
    let values: Vec<Value> = out.iter().map(|(_, v)| serde_json::from_str(v).unwrap_or(Value::Null)).collect();
    assert_eq!(values, [json!({"ACCOUNT": "b", "CENTS": 5000.0})]);

    // A push query over the view.
    let (status, body) = server.post(
        "/query-stream",
        &json!({"sql": "SELECT ACCOUNT, CENTS FROM big EMIT CHANGES LIMIT 2;", "properties": {"auto.offset.reset": "earliest"}}),
    );
    assert_eq!(status, 200, "{body}");
    let rows: Vec<&str> = body.lines().skip(1).collect();
    assert_eq!(rows, ["[\"b\",5000.0]", "[\"c\",50000.0]"], "{body}");

    // After a restart the view is back before the query that reads it.
    assert!(server.terminate().success());
    let server = Server::start(&state, &env);
    wait_until("the query over the view to run again", WAIT, || async {
        server.queries().iter().any(|(id, _, state, _)| id == "csas_big_out" && state == "RUNNING")
    })
    .await;
    produce(&topic, &[(None, r#"{"ACCOUNT": "d", "AMOUNT": 20}"#)]).await;
    let out = consume(&format!("{topic}-big"), 2, WAIT).await;
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(serde_json::from_str::<Value>(&out[1].1).unwrap_or(Value::Null), json!({"ACCOUNT": "d", "CENTS": 2000.0}));

    // SHOW VIEWS lists it, with its statement (replayed after the restart).
    let (status, answer) = server.ksql("SHOW VIEWS;");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer[0],
        json!({"@type": "views", "statementText": "SHOW VIEWS", "warnings": [],
               "views": [{"name": "big", "statementText": "CREATE VIEW big AS SELECT ACCOUNT, AMOUNT * 100 AS CENTS FROM pay WHERE AMOUNT > 10"}]})
    );

    // DROP VIEW forgets it; a statement reading it then fails.
    let (status, answer) = server.ksql("DROP VIEW big;");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["commandStatus"]["message"], "View big dropped", "{answer}");
    let (status, answer) = server.ksql("CREATE STREAM again AS SELECT * FROM big;");
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().is_some_and(|m| m.contains("big")), "{answer}");
}
