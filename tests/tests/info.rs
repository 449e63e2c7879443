//! `GET /info` as ksqlDB answers it: `kafkaClusterId` is the Kafka cluster's id, asked
//! of the broker (it used to be the bootstrap servers).

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
