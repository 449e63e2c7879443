//! Broker outage: the broker (Tansu, SQLite storage kept) stopped for 10 s mid-stream and
//! started again. The source and the sinks reconnect by themselves: PostgreSQL (no
//! primary key) and the Kafka output topic end with every record exactly once, and the
//! queries never fail.
//!
//! One test per file, on a broker of its own ([`OwnBroker`]): stopping it disturbs no other test.

use std::time::Duration;

use eddy_e2e::*;

async fn produce_range(topic: &str, from: usize, to: usize) {
    let values: Vec<String> = (from..to).map(|i| format!(r#"{{"id":"e{i}","amount":{i}}}"#)).collect();
    let list: Vec<(Option<&str>, &str)> = values.iter().map(|v| (None, v.as_str())).collect();
    produce(topic, &list).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_loses_and_repeats_nothing() {
    // A broker of its own: this test stops it.
    let mut broker = OwnBroker::start("outage");
    let topic = unique("outage-in");
    let out_topic = unique("outage-out");
    let db = TestDb::create().await;
    let state = scratch_dir("eddy-broker-outage").join("state");
    let app = unique("broker-outage");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", app.as_str())]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM payments (id VARCHAR, amount INT) WITH (kafka_topic='{topic}', value_format='json', partitions=2);
         CREATE TABLE payments_pg (id VARCHAR, amount INT) WITH ('connector'='postgres', 'url'='{url}', 'table-name'='payments');
         INSERT INTO payments_pg SELECT id, amount FROM payments;
         CREATE STREAM copied WITH (kafka_topic='{out_topic}', value_format='json', partitions=1) AS SELECT id, amount FROM payments;",
        url = db.url
    ));
    assert_eq!(status, 200, "{answer}");

    produce_range(&topic, 0, 3_000).await;
    wait_until("rows before the outage", Duration::from_secs(60), || async { db.scalar("SELECT count(*) FROM payments").await > 0 }).await;
    broker.stop();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let states: Vec<String> = server.queries().into_iter().map(|q| q.2).collect();
    assert!(states.iter().all(|s| s == "RUNNING" || s == "RETRYING"), "{states:?}");
    broker.restart();
    produce_range(&topic, 3_000, 6_000).await;

    wait_until("6000 rows in PostgreSQL", Duration::from_secs(120), || async { db.scalar("SELECT count(*) FROM payments").await >= 6_000 })
        .await;
    let copied = consume(&out_topic, 6_000, Duration::from_secs(120)).await;
    assert_eq!(copied.len(), 6_000, "records lost or repeated in {out_topic}");
    let distinct: std::collections::BTreeSet<&String> = copied.iter().map(|(_, v)| v).collect();
    assert_eq!(distinct.len(), 6_000);
    assert_eq!(db.scalar("SELECT count(*) FROM payments").await, 6_000, "rows repeated");
    assert_eq!(db.scalar("SELECT count(DISTINCT id) FROM payments").await, 6_000);
    let states: Vec<String> = server.queries().into_iter().map(|q| q.2).collect();
    assert_eq!(states, ["RUNNING", "RUNNING"]);
    assert!(server.terminate().success());
    db.drop_db().await;
}
