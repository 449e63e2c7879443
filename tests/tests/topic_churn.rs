//! Topic churn: the source topic of a persistent query and of a push query is deleted
//! and created again, and the broker restarted, round after round. The server must
//! survive every round and keep answering, with its persistent query (into PostgreSQL:
//! Tansu can lose other topics when one is deleted) still listed.
//!
//! With librdkafka 2.12.1 (rdkafka 0.39, the newest on crates.io) this crashed the
//! server within 2 s (SIGSEGV; found with gdb): librdkafka falls back to Fetch v12 when
//! a topic has no topic id (Tansu's, or a topic just deleted); a v12 response carrying
//! KIP-951's `CurrentLeader` tag (Tansu sends it with the error for a deleted topic)
//! becomes a metadata update with a NULL topic name and a zero topic id, which
//! `rd_kafka_metadata_update_op` looks up in the metadata cache
//! (`rd_kafka_metadata_cache_find` → `strcmp(NULL, ...)`; upstream #5280 is alike). No
//! setting turns leader discovery off, so Eddy pins librdkafka 2.3.0 (rdkafka 0.36.2,
//! rdkafka-sys 4.7.0), which predates both leader discovery and the metadata cache by
//! topic id (the source of librdkafka #4778 and #4964). This test fails on 2.12.1.
//!
//! One test per file, on a broker of its own ([`OwnBroker`]): it deletes topics and
//! restarts the broker (Tansu can stop answering after a topic it serves is deleted).

use std::time::Duration;

use eddy_e2e::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

const ROUNDS: usize = 4;

fn admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new().set("bootstrap.servers", bootstrap()).create().unwrap_or_else(|e| panic!("admin client: {e}"))
}

/// Deletes `topic` (an error is fine: the broker may be restarting) and waits until
/// its metadata says it is gone.
async fn delete(topic: &str) {
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let _ = admin().delete_topics(&[topic], &options).await;
}

/// Creates `topic`, trying again until the broker says it exists (90 s at most). A
/// broker whose storage died ([`OwnBroker::healthy`]: the server's consumers fetch the
/// topic before it exists again, and Tansu panics on that) is started again with empty
/// storage: this test is about the server surviving, not about Tansu.
async fn create(broker: &mut OwnBroker, topic: &str, partitions: i32) {
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5))).request_timeout(Some(Duration::from_secs(5)));
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while std::time::Instant::now() < deadline {
        if !broker.healthy() {
            eprintln!("the broker's storage died; starting it again with empty storage");
            broker.restart_empty();
        }
        let created = admin().create_topics([&NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &options).await;
        if let Ok(results) = created {
            if results.iter().all(|r| matches!(r, Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)))) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("cannot create {topic} within 90 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_recreating_topics_and_restarting_the_broker_never_crashes_the_server() {
    let mut broker = OwnBroker::start("churn");
    let topic = unique("churn-in");
    let db = TestDb::create().await;
    let state = scratch_dir("eddy-topic-churn").join("state");
    let mut server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("churn"))]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM s (id VARCHAR, n INT) WITH (kafka_topic='{topic}', value_format='json', partitions=2);
         CREATE TABLE copied (id VARCHAR PRIMARY KEY, n INT) WITH ('connector'='postgres', 'url'='{url}', 'table-name'='copied');
         INSERT INTO copied SELECT id, n FROM s;",
        url = db.url
    ));
    assert_eq!(status, 200, "{answer}");

    for round in 0..ROUNDS {
        // A push query reading the topic while it goes away.
        let url = server.url.clone();
        let push = std::thread::spawn(move || {
            let agent: ureq::Agent =
                ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(8))).build().into();
            let body = serde_json::json!({"sql": "SELECT id, n FROM s EMIT CHANGES;", "properties": {}});
            // The stream ends when the timeout cuts it; what it read does not matter.
            let _ = agent.post(&format!("{url}/query-stream")).send_json(&body).map(|mut r| r.body_mut().read_to_string());
        });
        let value = format!(r#"{{"id": "r{round}", "n": {round}}}"#);
        produce(&topic, &[(None, value.as_str())]).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        delete(&topic).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(server.alive());
        // Tansu's storage can stop answering for good after a topic it serves is
        // deleted: it comes back empty (to Eddy, a cluster whose topics all went away).
        broker.restart_empty();
        assert!(server.alive());
        create(&mut broker, &topic, 2).await;
        broker.restart();
        assert!(server.alive());
        let (status, body) = server.get("/healthcheck");
        assert_eq!(status, 200, "round {round}: {body}");
        let _ = push.join();
        assert!(server.alive());
    }

    // After the churn: the server answers, and the persistent query is still there,
    // running or retrying (ksqlDB's query would be in ERROR: its source topic went away).
    let queries = server.queries();
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert!(queries[0].2 == "RUNNING" || queries[0].2 == "RETRYING", "{queries:?}");
    let (status, body) = server.get("/healthcheck");
    assert_eq!(status, 200, "{body}");
    assert!(server.alive());
    assert!(server.terminate().success());
    db.drop_db().await;
}
