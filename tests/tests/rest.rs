//! `eddy server` end to end: ksqlDB's REST API over HTTP, against the real broker: one of
//! its own ([`OwnBroker`]), since the test deletes a topic, which Tansu 0.6 does not
//! survive while other tests read (basic auth is in `rest_auth.rs`).

use std::io::{BufRead, BufReader};
use std::time::Duration;

use eddy_e2e::*;
use serde_json::{json, Value};

/// Creates a stream and a persistent query over /ksql (golden JSON), streams rows over
/// /query-stream and /query, stops a push query by disconnecting, refuses to drop a
/// stream in use, terminates and drops, and refuses a 2 MiB body with 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_api_statements_push_queries_and_limits() {
    let _broker = OwnBroker::start("rest");
    let topic = unique("rest-in");
    let big = topic.replace('-', "_") + "_big";
    let state = scratch_dir("eddy-rest");
    let server = Server::start(&state.join("state"), &[("EDDY_APPLICATION_ID", &unique("rest"))]);

    let create = format!(
        "CREATE STREAM payments (account_id VARCHAR, amount DOUBLE) WITH (kafka_topic='{topic}', value_format='json', partitions=1);\n\
         CREATE STREAM {big} AS SELECT account_id, amount FROM payments WHERE amount > 10;"
    );
    let (status, answer) = server.ksql(&create);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!([
            {"@type": "currentStatus", "statementText": format!("CREATE STREAM payments (account_id VARCHAR, amount DOUBLE) WITH (kafka_topic='{topic}', value_format='json', partitions=1)"),
             "commandId": "stream/`payments`/create", "commandStatus": {"status": "SUCCESS", "message": "Stream created", "queryId": null},
             "commandSequenceNumber": 2, "warnings": []},
            {"@type": "currentStatus", "statementText": format!("CREATE STREAM {big} AS SELECT account_id, amount FROM payments WHERE amount > 10"),
             "commandId": format!("stream/`{big}`/create"), "commandStatus": {"status": "SUCCESS", "message": format!("Created query with ID csas_{big}"), "queryId": format!("csas_{big}")},
             "commandSequenceNumber": 2, "warnings": []}
        ])
    );

    produce(&topic, &[(None, r#"{"account_id":"a","amount":5}"#), (None, "not json"), (None, r#"{"account_id":"b","amount":50}"#)]).await;
    let csas = format!("csas_{big}");
    wait_until("the persistent query reads 3 records, 1 malformed", Duration::from_secs(60), || async {
        server
            .queries()
            .iter()
            .any(|(id, _, state, s)| *id == csas && state == "RUNNING" && s["rows_in"] == 3 && s["malformed"] == 1 && s["rows_out"] == 1)
    })
    .await;
    wait_until("the consumer lag, from librdkafka's statistics, to be 0", Duration::from_secs(30), || async {
        server.queries().iter().any(|(id, _, _, s)| *id == csas && s["consumer_lag"] == 0)
    })
    .await;

    // /query-stream, line-delimited: the header, then one array per row, until LIMIT.
    let (status, body) = server.post(
        "/query-stream",
        &json!({"sql": "SELECT account_id, amount * 2 AS doubled FROM payments EMIT CHANGES LIMIT 2;", "properties": {"auto.offset.reset": "earliest"}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "{\"columnNames\":[\"ACCOUNT_ID\",\"DOUBLED\"],\"columnTypes\":[\"STRING\",\"DOUBLE\"],\"queryId\":\"transient_payments\"}\n[\"a\",10.0]\n[\"b\",100.0]\n"
    );
    // The older /query: chunked JSON with a header object, row objects, a final message.
    let (status, body) = server.post(
        "/query",
        &json!({"ksql": format!("SELECT * FROM {big} EMIT CHANGES LIMIT 1;"), "streamsProperties": {"auto.offset.reset": "earliest"}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        format!("[{{\"header\":{{\"queryId\":\"transient_{big}\",\"schema\":\"`ACCOUNT_ID` STRING, `AMOUNT` DOUBLE\"}}}},\n{{\"row\":{{\"columns\":[\"b\",50.0]}}}},\n{{\"finalMessage\":\"Limit Reached\"}}]\n")
    );

    // A push query without LIMIT runs until its client goes away.
    let url = server.url.clone();
    let reader = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(60))).build().into();
        let response = agent
            .post(&format!("{url}/query-stream"))
            .send_json(json!({"sql": "SELECT * FROM payments EMIT CHANGES;", "properties": {"auto.offset.reset": "earliest"}}))
            .unwrap_or_else(|e| panic!("query-stream: {e}"));
        let mut lines = BufReader::new(response.into_body().into_reader()).lines();
        let header = lines.next().and_then(Result::ok).unwrap_or_default();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        (header, first)
        // The response is dropped here: the connection closes.
    });
    let (header, first) = reader.join().unwrap_or_else(|_| panic!("reader thread panicked"));
    assert!(header.contains("\"queryId\":\"transient_payments"), "{header}");
    assert_eq!(first, "[\"a\",5.0]");
    wait_until("the disconnected push query to be gone", Duration::from_secs(30), || async {
        !server.queries().iter().any(|(_, kind, _, _)| kind == "PUSH")
    })
    .await;

    // A stream that a query reads cannot be dropped; the error names the query.
    let (status, answer) = server.ksql("DROP STREAM payments;");
    assert_eq!(status, 400);
    assert_eq!(
        answer,
        json!({"@type": "statement_error", "error_code": 40001, "statementText": "DROP STREAM payments", "entities": [],
               "message": format!("cannot drop \"payments\": query {csas} uses it (line 1, column 13); terminate it first: TERMINATE {csas};"),
               "primaryMessage": format!("cannot drop \"payments\": query {csas} uses it"), "line": 1, "column": 13,
               "hint": format!("terminate it first: TERMINATE {csas};")})
    );
    let (status, answer) = server.ksql(&format!("TERMINATE {csas}; DROP STREAM {big} DELETE TOPIC; SHOW STREAMS;"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["commandStatus"]["message"], "Query terminated.");
    // ksqlDB names a new stream's topic after it, upper-cased.
    assert_eq!(answer[1]["commandStatus"]["message"], format!("Stream {big} dropped; topic {} deleted", big.to_uppercase()));
    let names: Vec<&str> =
        answer[2]["streams"].as_array().map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect()).unwrap_or_default();
    assert_eq!(names, ["PAYMENTS"]);
    assert!(server.queries().is_empty());

    // Errors name line, column and token, with a hint.
    let (status, answer) = server.ksql("SHOW STREAMS;\nSELEC * FROM payments;");
    assert_eq!(status, 400);
    assert_eq!(answer["message"], "syntax error: expected an SQL statement, found SELEC (line 2, column 1)");

    // 1 MiB is the limit: a 2 MiB body is refused from its Content-Length, before the
    // client sends it (it waits for `100 Continue`, as curl does for large bodies).
    let address = server.url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap_or_else(|e| panic!("connect: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap_or_else(|e| panic!("{e}"));
    let request = format!(
        "POST /ksql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        2 * 1024 * 1024
    );
    std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap_or_else(|e| panic!("write: {e}"));
    let mut status_line = String::new();
    BufReader::new(&stream).read_line(&mut status_line).unwrap_or_else(|e| panic!("read: {e}"));
    assert_eq!(status_line.trim_end(), "HTTP/1.1 413 Payload Too Large");

    // The shell over REST: the error of the second statement of a file, with the
    // position moved to where that statement starts in the file, and its hint.
    let script = state.join("typo.sql");
    std::fs::write(&script, "SHOW STREAMS;\nSELECT acount_id\n  FROM payments EMIT CHANGES;\n").unwrap_or_else(|e| panic!("{e}"));
    let out = std::process::Command::new(eddy_bin())
        .args(["shell", "--server", &server.url, "-f"])
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("eddy shell: {e}"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: unknown column \"acount_id\" (line 2, column 8)\n  |\n2 | SELECT acount_id\n  |        ^\nhint: did you mean \"account_id\"?\n"
    );

    let (status, info) = server.get("/info");
    assert_eq!(status, 200);
    let info: Value = serde_json::from_str(&info).unwrap_or_default();
    assert_eq!(info["KsqlServerInfo"]["serverStatus"], "RUNNING");
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("# TYPE eddy_query_rows_in_total counter"), "{metrics}");
    assert!(server.terminate().success());
}
