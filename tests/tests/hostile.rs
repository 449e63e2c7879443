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

/// Any client could read and write files as the server's user (`/etc/passwd` streamed
/// back; sinks truncating files through `../` and links on every restart). The server
/// reaches files only under `--allow-path` directories, after following links, never a
/// FIFO, device or socket, and a sink appends to a file it was not told to truncate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_stay_inside_the_allowed_directories() {
    let dir = scratch_dir("eddy-hostile-files");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(data.join("in.json"), "{\"a\":1}\n{\"a\":2}\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(data.join("out.json"), "keep\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("secret"), "s3cret\n").unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(dir.join("secret"), data.join("link")).unwrap_or_else(|e| panic!("{e}"));
    let fifo = Command::new("mkfifo").arg(data.join("fifo")).status().unwrap_or_else(|e| panic!("mkfifo: {e}"));
    assert!(fifo.success());

    // Without --allow-path no file at all.
    let closed = Server::start(&dir.join("closed"), &[("EDDY_APPLICATION_ID", &unique("hostile"))]);
    let (status, answer) =
        closed.ksql("CREATE TABLE pw (line VARCHAR) WITH ('connector'='filesystem', 'path'='/etc/passwd', 'format'='csv');");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["message"],
        "this file is not allowed on this server: /etc/passwd: this server allows no files (start it with --allow-path DIR)"
    );
    healthy(&closed);
    drop(closed);

    let data_arg = data.display().to_string();
    let server = Server::start_with(&dir.join("state"), &[("EDDY_APPLICATION_ID", &unique("hostile"))], &["--allow-path", &data_arg]);
    let resolved = data.canonicalize().unwrap_or_else(|e| panic!("{e}"));
    for (path, want) in [
        (
            data.join("../secret"),
            format!(
                "resolves to {} outside the allowed directories (--allow-path)",
                dir.canonicalize().map(|d| d.join("secret").display().to_string()).unwrap_or_default()
            ),
        ),
        (
            data.join("link"),
            format!(
                "resolves to {} outside the allowed directories (--allow-path)",
                dir.canonicalize().map(|d| d.join("secret").display().to_string()).unwrap_or_default()
            ),
        ),
        (data.join("fifo"), "is not a regular file (a directory, FIFO, device or socket)".to_string()),
    ] {
        let (status, answer) = server.ksql(&format!(
            "CREATE TABLE bad (line VARCHAR) WITH ('connector'='filesystem', 'path'='{}', 'format'='csv');",
            path.display()
        ));
        assert_eq!(status, 400, "{answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("this file is not allowed on this server: ") && message.ends_with(&want), "{message}");
    }
    healthy(&server);

    // Inside: the query runs, and appends to the file it did not create.
    let (status, answer) = server.ksql(&format!(
        "CREATE TABLE src (a INT) WITH ('connector'='filesystem', 'path'='{in_}', 'format'='json');
         CREATE TABLE dst (a INT) WITH ('connector'='filesystem', 'path'='{out}', 'format'='json');
         INSERT INTO dst SELECT a FROM src;",
        in_ = resolved.join("in.json").display(),
        out = resolved.join("out.json").display()
    ));
    assert_eq!(status, 200, "{answer}");
    let out = data.join("out.json");
    wait_until("the rows after the kept line", std::time::Duration::from_secs(60), || async {
        std::fs::read_to_string(&out).unwrap_or_default().lines().count() >= 3
    })
    .await;
    assert_eq!(read_file(&out), "keep\n{\"a\":1}\n{\"a\":2}\n");
    assert_eq!(read_file(&dir.join("secret")), "s3cret\n", "the file outside is untouched");
    healthy(&server);
}

/// Any host:port in a WITH option was contacted. Statements may name the hosts the
/// server was started with and those of --allow-host.
#[test]
fn statements_reach_only_the_allowed_hosts() {
    let dir = scratch_dir("eddy-hostile-hosts");
    let server = Server::start(&dir.join("state"), &[("EDDY_APPLICATION_ID", &unique("hostile"))]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM far (a INT) WITH (kafka_topic='{}', value_format='json', partitions=1, 'properties.bootstrap.servers'='10.255.255.1:9092');",
        unique("hostile-far")
    ));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["message"],
        "the Kafka cluster is not allowed on this server: 10.255.255.1:9092 is not among the hosts the server allows (start it with --allow-host 10.255.255.1)"
    );
    let (status, answer) = server
        .ksql("CREATE TABLE far_pg (a INT) WITH ('connector'='postgres', 'url'='postgres://x@10.255.255.1:5432/db', 'table-name'='t');");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["message"],
        "the PostgreSQL server is not allowed on this server: 10.255.255.1:5432 is not among the hosts the server allows (start it with --allow-host 10.255.255.1)"
    );
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM near (a INT) WITH (kafka_topic='{}', value_format='json', partitions=1, 'properties.bootstrap.servers'='{}');",
        unique("hostile-near"),
        bootstrap()
    ));
    assert_eq!(status, 200, "{answer}");
    healthy(&server);
}

/// A TCP port that accepts connections and never answers (a host behind a firewall
/// that drops, or a hung server): every client of it waits for its own timeout.
fn silent_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// `/healthcheck` and a catalog read answer within 1 s while another request waits.
fn answers_at_once(server: &Server) {
    let started = std::time::Instant::now();
    healthy(server);
    let (status, answer) = server.ksql("SHOW STREAMS;");
    assert_eq!(status, 200, "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "the server took {:?} to answer", started.elapsed());
}

/// The state and error of query `id` in SHOW QUERIES.
fn query_state(server: &Server, id: &str) -> (String, String) {
    let (_, answer) = server.ksql("SHOW QUERIES;");
    let q = answer[0]["queries"].as_array().into_iter().flatten().find(|q| q["id"] == id).cloned().unwrap_or(Value::Null);
    (q["state"].as_str().unwrap_or("").to_string(), q["error"].as_str().unwrap_or("").to_string())
}

/// A statement naming a PostgreSQL server or a Kafka cluster that never answers used
/// to hold the engine's lock while connecting (58 s and 30 s with every client frozen).
/// Now the statement is answered at once, its query shows STARTING and then RETRYING
/// with the reason, other clients are answered meanwhile, and a running query keeps
/// running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_hosts_delay_only_their_own_statements() {
    let silent = silent_port();
    let silent_host = format!("127.0.0.1:{silent}");
    let topic = unique("hostile-silent");
    let dir = scratch_dir("eddy-hostile-silent");
    let server = Server::start_with(
        &dir.join("state"),
        &[("EDDY_APPLICATION_ID", &unique("hostile"))],
        &["--allow-host", &silent_host, "--connect-timeout", "1s", "--kafka-property", "socket.timeout.ms=3000"],
    );
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM s (id VARCHAR, a INT) WITH (kafka_topic='{topic}', value_format='json', partitions=1);
         CREATE STREAM copied WITH (kafka_topic='{topic}-copied') AS SELECT id, a FROM s;"
    ));
    assert_eq!(status, 200, "{answer}");
    let running = answer[1]["commandStatus"]["queryId"].as_str().unwrap_or_default().to_string();
    wait_until("the copy RUNNING", std::time::Duration::from_secs(30), || async { query_state(&server, &running).0 == "RUNNING" }).await;

    // PostgreSQL on the silent port: the INSERT is answered at once.
    let started = std::time::Instant::now();
    let (status, answer) = server.ksql(&format!(
        "CREATE TABLE silent_pg (id VARCHAR PRIMARY KEY, a INT) WITH ('connector'='postgres', 'url'='postgres://postgres@{silent_host}/test', 'table-name'='t');
         INSERT INTO silent_pg SELECT id, a FROM s;"
    ));
    assert_eq!(status, 200, "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "INSERT took {:?}", started.elapsed());
    let insert = answer[1]["commandStatus"]["queryId"].as_str().unwrap_or_default().to_string();
    let (state, _) = query_state(&server, &insert);
    assert!(state == "STARTING" || state == "RETRYING", "{state}");
    answers_at_once(&server);
    wait_until("the INSERT RETRYING", std::time::Duration::from_secs(30), || async { query_state(&server, &insert).0 == "RETRYING" }).await;
    let (_, error) = query_state(&server, &insert);
    assert!(error.starts_with("cannot start: "), "{error}");
    assert!(error.ends_with("postgres: connecting to 127.0.0.1 did not answer within 1000 ms"), "{error}");

    // Kafka on the silent port: a stream over it and a query reading it.
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM far (a INT) WITH (kafka_topic='far', value_format='json', 'properties.bootstrap.servers'='{silent_host}');
         CREATE STREAM far_copy WITH ('connector'='blackhole') AS SELECT a FROM far;"
    ));
    assert_eq!(status, 200, "{answer}");
    let far = answer[1]["commandStatus"]["queryId"].as_str().unwrap_or_default().to_string();
    answers_at_once(&server);
    wait_until("the far query RETRYING", std::time::Duration::from_secs(60), || async { query_state(&server, &far).0 == "RETRYING" }).await;

    // A topic to create on the silent cluster: that request waits (for its own
    // timeout), the others do not.
    let url = server.url.clone();
    let body = json!({"ksql": format!(
        "CREATE STREAM far2 (a INT) WITH (kafka_topic='far2', value_format='json', partitions=1, 'properties.bootstrap.servers'='{silent_host}');"
    ), "streamsProperties": {}});
    let creating = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut r = agent.post(&format!("{url}/ksql")).send_json(&body).unwrap_or_else(|e| panic!("POST /ksql: {e}"));
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default())
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    answers_at_once(&server);
    let (status, body) = creating.join().unwrap_or_else(|_| panic!("the request thread panicked"));
    assert_eq!(status, 500, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    // The topic's metadata is asked first: librdkafka gives up on the silent broker with a
    // timeout or, when the connection attempt itself times out first, a transport failure.
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        [
            "kafka: Meta data fetch error: OperationTimedOut (Local: Timed out)",
            "kafka: Meta data fetch error: BrokerTransportFailure (Local: Broker transport failure)"
        ]
        .contains(&message),
        "{answer}"
    );

    // Stopping a query that never started is immediate; the running one still runs.
    let (status, answer) = server.ksql(&format!("TERMINATE {insert}; TERMINATE {far};"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(query_state(&server, &running).0, "RUNNING");
    produce(&topic, &[(None, r#"{"id": "x", "a": 1}"#)]).await;
    let copied = format!("{topic}-copied");
    wait_until("the running query copies", std::time::Duration::from_secs(30), || async { records_in(&copied) >= 1 }).await;
    healthy(&server);
}
