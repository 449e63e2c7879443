//! Hostile and careless requests to `eddy server`, as anyone who can reach its port
//! might send them: each is refused with a clear error, the server stays up (its
//! `/healthcheck` answers) and the persistent queries keep running.

use std::process::Command;

use eddy_e2e::*;
use serde_json::{json, Value};

/// `SELECT a+a+...+a` with `terms` terms (`terms - 1` operators).
fn chain(terms: usize) -> String {
    vec!["a"; terms].join("+")
}

fn healthy(server: &Server) {
    let (status, body) = server.get("/healthcheck");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"isHealthy\":true"), "{body}");
}

/// A left-deep chain of operators used to overflow the stack and abort the process
/// (exit 134, every query gone). Past the limit it is a statement error in every
/// front; up to it, the statement plans and runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_expressions_are_refused_not_fatal() {
    let topic = unique("hostile-deep");
    let dir = scratch_dir("eddy-hostile-deep");
    let server = Server::start(&dir.join("state"), &[("EDDY_APPLICATION_ID", &unique("hostile"))]);
    let (status, answer) =
        server.ksql(&format!("CREATE STREAM s (a INT) WITH (kafka_topic='{topic}', value_format='json', partitions=1);"));
    assert_eq!(status, 200, "{answer}");

    let (status, body) =
        server.post("/query-stream", &json!({"sql": format!("SELECT {} AS x FROM s EMIT CHANGES;", chain(5_000)), "properties": {}}));
    assert_eq!(status, 400, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(
        answer["message"],
        "statement too complex: 4999 operators, more than the limit of 1000 (stack depth limit) (line 1, column 1); \
         split the expression, e.g. write a IN (1, 2, 3) instead of a = 1 OR a = 2 OR a = 3"
    );

    let (status, answer) = server.ksql(&format!("EXPLAIN SELECT {} AS x FROM s EMIT CHANGES;", chain(20_000)));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["primaryMessage"], "statement too complex: 19999 operators, more than the limit of 1000 (stack depth limit)");
    assert_eq!((answer["line"].as_u64(), answer["column"].as_u64()), (Some(1), Some(1)), "{answer}");
    healthy(&server);

    // At the limit, the statement runs: a push query evaluates all 1,000 operators per row.
    produce(&topic, &[(None, r#"{"a": 1}"#)]).await;
    let (status, body) = server.post(
        "/query-stream",
        &json!({"sql": format!("SELECT {} AS x FROM s EMIT CHANGES LIMIT 1;", chain(1_001)), "properties": {"auto.offset.reset": "earliest"}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.lines().nth(1), Some("[1001]"), "{body}");
    healthy(&server);
    assert!(server.terminate().success());

    // eddy run refuses the file before starting anything, with the file's position.
    let file = dir.join("deep.sql");
    std::fs::write(
        &file,
        format!("CREATE STREAM s (a INT) WITH (kafka_topic='t', value_format='json');\nSELECT {} FROM s;\n", chain(20_000)),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(eddy_bin()).arg("run").arg(&file).output().unwrap_or_else(|e| panic!("eddy run: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first_line = stderr.lines().next().unwrap_or_default().to_string();
    assert_eq!(out.status.code(), Some(2), "{first_line}");
    assert!(
        first_line.ends_with("deep.sql:2:1: statement too complex: 19999 operators, more than the limit of 1000 (stack depth limit)"),
        "{first_line}"
    );
}

/// Every `properties.*` option used to go to librdkafka, so a statement could make the
/// server load a shared library (`plugin.library.paths`) or run a command. Statements
/// may set tuning, timeout and credential properties only.
#[test]
fn client_properties_that_load_code_or_read_files_are_refused() {
    let dir = scratch_dir("eddy-hostile-properties");
    let server = Server::start(&dir.join("state"), &[("EDDY_APPLICATION_ID", &unique("hostile"))]);
    for (property, value) in
        [("plugin.library.paths", "/tmp/evil.so"), ("sasl.kerberos.kinit.cmd", "touch /tmp/pwned"), ("ssl.ca.location", "/etc/shadow")]
    {
        let sql = format!(
            "CREATE STREAM p (a INT) WITH (kafka_topic='{}', value_format='json', 'properties.{property}'='{value}');",
            unique("hostile-props")
        );
        let column = sql.find("'properties.").map(|c| c as u64 + 1);
        let (status, answer) = server.ksql(&sql);
        assert_eq!(status, 400, "{answer}");
        assert_eq!(
            answer["primaryMessage"],
            format!("the Kafka client property '{property}' cannot be set by a statement: only tuning, timeout and credential properties can, none that could load code, run a command or read a file where Eddy runs"),
        );
        assert_eq!((answer["line"].as_u64(), answer["column"].as_u64()), (Some(1), column), "{answer}");
        assert_eq!(
            answer["hint"],
            format!("set it where Eddy runs instead: --kafka-property {property}=<value> (or EDDY_KAFKA_PROPERTIES)")
        );
    }
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM p (a INT) WITH (kafka_topic='{}', value_format='json', 'properties.linger.ms'='5');",
        unique("hostile-props")
    ));
    assert_eq!(status, 200, "{answer}");
    healthy(&server);
}

/// Splitting a request into statements was quadratic (8,000 statements took 22 s while
/// holding the engine). It is linear now, and a request holds at most 1,000 statements.
#[test]
fn a_request_holds_at_most_a_thousand_statements() {
    let dir = scratch_dir("eddy-hostile-statements");
    let server = Server::start(&dir.join("state"), &[("EDDY_APPLICATION_ID", &unique("hostile"))]);
    let (status, answer) = server.ksql(&"SHOW STREAMS;\n".repeat(1_001));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["message"], "too many statements: 1001 in one request, more than the limit of 1000; send them in several requests");
    let (status, answer) = server.ksql(&"SHOW STREAMS;\n".repeat(1_000));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer.as_array().map(Vec::len), Some(1_000));
    healthy(&server);

    // A request whose second statement fails: the error lists what the first applied.
    let (status, answer) = server.ksql("SET 'auto.offset.reset'='earliest'; DESCRIBE nothing_here;");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["statementText"], "DESCRIBE nothing_here");
    assert_eq!(answer["entities"].as_array().map(Vec::len), Some(1), "{answer}");
    assert_eq!(answer["entities"][0]["commandStatus"]["message"], "Property 'auto.offset.reset' set to 'earliest'");
}

/// A web page must not be able to drive a server on the user's machine: a `Host` that
/// is not the server's (DNS rebinding) is refused with 403, a body a browser sends
/// across sites without asking (`text/plain`, forms) with 415, and no CORS is granted.
#[test]
fn browsers_on_other_sites_cannot_drive_the_server() {
    let dir = scratch_dir("eddy-hostile-browser");
    let server = Server::start(&dir.join("state"), &[("EDDY_APPLICATION_ID", &unique("hostile"))]);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url = format!("{}/ksql", server.url);
    let mut r = agent
        .post(&url)
        .header("Host", "attacker.example:8088")
        .send_json(json!({"ksql": "SHOW STREAMS;"}))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 403);
    let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default()).unwrap_or_default();
    assert_eq!(
        body["message"],
        "forbidden: the Host header \"attacker.example:8088\" does not name this server; reach it by an IP address or localhost, or start it with --server-name"
    );
    let mut r = agent
        .post(&url)
        .header("Content-Type", "text/plain;charset=UTF-8")
        .send(r#"{"ksql": "SHOW STREAMS;"}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 415);
    let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default()).unwrap_or_default();
    assert_eq!(
        body["message"],
        "unsupported content type \"text/plain;charset=UTF-8\": send JSON (application/json or application/vnd.ksql.v1+json)"
    );
    let r = agent
        .options(&url)
        .header("Origin", "https://attacker.example")
        .header("Access-Control-Request-Method", "POST")
        .call()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.headers().get("access-control-allow-origin").is_none(), "no CORS: {:?}", r.headers());
    let (status, _) = server.ksql("SHOW STREAMS;");
    assert_eq!(status, 200);
    healthy(&server);
}
