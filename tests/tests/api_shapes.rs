//! Answers shaped as ksqlDB shapes them, which its clients parse: `GET /info`'s
//! `kafkaClusterId` is the Kafka cluster's id, asked of the broker (it used to be the
//! bootstrap servers); DESCRIBE names types as ksqlDB does (`STRING`, `INTEGER`,
//! `TIMESTAMP`; it used to say `VARCHAR`, `INT`, `TIMESTAMP(3)`); SHOW PROPERTIES lists
//! the server's properties with the session's (it listed only the session's).

use std::time::Duration;

use eddy_e2e::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_names_the_kafka_cluster_by_its_id() {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", bootstrap()).create().unwrap_or_else(|e| panic!("consumer: {e}"));
    let id = consumer.client().fetch_cluster_id(Duration::from_secs(10)).unwrap_or_else(|| panic!("the broker has no cluster id"));
    assert!(!id.is_empty());
    let state = scratch_dir("eddy-info").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", "info-test")]);
    let info = || {
        let (status, body) = server.get("/info");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    };
    wait_until("the cluster id in /info", Duration::from_secs(30), || async { info()["KsqlServerInfo"]["kafkaClusterId"] != "" }).await;
    let answer = info();
    assert_eq!(answer["KsqlServerInfo"]["kafkaClusterId"], id.as_str());
    assert_eq!(answer["KsqlServerInfo"]["ksqlServiceId"], "info-test");
    assert_eq!(answer["KsqlServerInfo"]["serverStatus"], "RUNNING");
}

#[test]
fn describe_names_types_as_ksqldb_does() {
    let topic = unique("describe-types");
    let state = scratch_dir("eddy-describe-types").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("describe-types"))]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM s (id VARCHAR KEY, n INT, total BIGINT, amount DOUBLE, ok BOOLEAN, at TIMESTAMP(3), addr STRUCT<city VARCHAR>) \
         WITH (kafka_topic='{topic}', value_format='json', partitions=1); DESCRIBE s;"
    ));
    assert_eq!(status, 200, "{answer}");
    let fields = answer[1]["sourceDescription"]["fields"].as_array().cloned().unwrap_or_default();
    let types: Vec<(String, String)> = fields
        .iter()
        .map(|f| (f["name"].as_str().unwrap_or_default().to_string(), f["schema"]["type"].as_str().unwrap_or_default().to_string()))
        .collect();
    // ksqlDB spells unquoted names upper-case.
    let want = [
        ("ID", "STRING"),
        ("N", "INTEGER"),
        ("TOTAL", "BIGINT"),
        ("AMOUNT", "DOUBLE"),
        ("OK", "BOOLEAN"),
        ("AT", "TIMESTAMP"),
        ("ADDR", "STRUCT"),
    ];
    assert_eq!(types, want.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect::<Vec<_>>(), "{answer}");
    assert_eq!(fields[0]["type"], "KEY");
    // So are a STRUCT's field names.
    assert_eq!(
        fields[6]["schema"]["fields"],
        serde_json::json!([{"name": "CITY", "schema": {"type": "STRING", "fields": null, "memberSchema": null}}])
    );
}

/// DESCRIBE reports the topic's partitions and replication as the cluster has them, not
/// what the statement declared (a stream over an existing topic declares neither).
#[test]
fn describe_reports_the_topics_real_partitions() {
    let topic = unique("describe-partitions");
    let state = scratch_dir("eddy-describe-partitions").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("describe-partitions"))]);
    let (status, answer) =
        server.ksql(&format!("CREATE STREAM a (n INT) WITH (kafka_topic='{topic}', value_format='json', partitions=3);"));
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = server.ksql(&format!("CREATE STREAM b (n INT) WITH (kafka_topic='{topic}', value_format='json'); DESCRIBE b;"));
    assert_eq!(status, 200, "{answer}");
    let description = &answer[1]["sourceDescription"];
    assert_eq!((description["partitions"].as_i64(), description["replication"].as_i64()), (Some(3), Some(1)), "{answer}");
}

#[test]
fn show_properties_lists_the_servers_and_the_sessions() {
    let state = scratch_dir("eddy-show-properties").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", "properties-test")]);
    let (status, answer) = server.ksql("SET 'auto.offset.reset'='earliest'; SHOW PROPERTIES;");
    assert_eq!(status, 200, "{answer}");
    let list = answer[1]["properties"].as_array().cloned().unwrap_or_default();
    let find = |name: &str| list.iter().find(|p| p["name"] == name).cloned().unwrap_or_default();
    assert_eq!(find("ksql.service.id"), serde_json::json!({"name": "ksql.service.id", "scope": "KSQL", "value": "properties-test"}));
    assert_eq!(find("ksql.streams.bootstrap.servers")["value"], bootstrap().as_str());
    assert_eq!(find("execution.checkpointing.interval")["value"], "10000 ms");
    assert_eq!(find("auto.offset.reset"), serde_json::json!({"name": "auto.offset.reset", "scope": "SESSION", "value": "earliest"}));
    assert_eq!(answer[1]["@type"], "properties");
}

/// EXPLAIN's `queryDescription` has the query's own statement, its output fields (with
/// ksqlDB's types) and its sources and sinks by name, as ksqlDB's clients read them.
#[test]
fn explain_describes_fields_sources_and_sinks() {
    let topic = unique("explain-shape");
    let state = scratch_dir("eddy-explain-shape").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("explain-shape"))]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM s (id VARCHAR, amount DECIMAL(10, 2), tags ARRAY<STRING>) WITH (kafka_topic='{topic}', value_format='json', partitions=1);
         CREATE STREAM big WITH (kafka_topic='{topic}-big') AS SELECT id, amount, tags FROM s WHERE amount > 10;"
    ));
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = server.ksql("EXPLAIN csas_big;");
    assert_eq!(status, 200, "{answer}");
    let d = &answer[0]["queryDescription"];
    assert_eq!(d["id"], "csas_big", "{answer}");
    assert_eq!(
        d["statementText"],
        format!("CREATE STREAM big WITH (kafka_topic='{topic}-big') AS SELECT id, amount, tags FROM s WHERE amount > 10")
    );
    // ksqlDB spells the unquoted names upper-case.
    assert_eq!(d["sources"], serde_json::json!(["S"]));
    assert_eq!(d["sinks"], serde_json::json!(["BIG"]));
    assert_eq!(
        d["fields"],
        serde_json::json!([
            {"name": "ID", "schema": {"type": "STRING", "fields": null, "memberSchema": null}},
            {"name": "AMOUNT", "schema": {"type": "DECIMAL", "fields": null, "memberSchema": null, "parameters": {"precision": 10, "scale": 2}}},
            {"name": "TAGS", "schema": {"type": "ARRAY", "fields": null, "memberSchema": {"type": "STRING", "fields": null, "memberSchema": null}}},
        ])
    );
}
