//! Flink's statement set through the broker: `EXECUTE STATEMENT SET BEGIN INSERT ...;
//! INSERT ...; END;` starts one query per INSERT, and the two that read the same topic
//! share one read of it: one consumer (the set's consumer group commits the offsets;
//! the queries' own groups commit none). A restart shares the read again and writes
//! nothing twice.

use std::collections::BTreeSet;
use std::time::Duration;

use eddy_e2e::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(60);

/// The offset consumer group `group` has committed on partition 0 of `topic`; `None`
/// when it has committed none.
fn committed(group: &str, topic: &str) -> Option<i64> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", bootstrap()).set("group.id", group).create().unwrap_or_else(|e| panic!("{e}"));
    let mut partitions = TopicPartitionList::new();
    partitions.add_partition(topic, 0);
    let got = consumer.committed_offsets(partitions, Timeout::After(Duration::from_secs(10))).unwrap_or_else(|e| panic!("{e}"));
    got.elements().first().and_then(|e| match e.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    })
}

fn values(records: Vec<(Option<String>, String)>) -> BTreeSet<String> {
    records.into_iter().map(|(_, v)| v).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_inserts_of_a_statement_set_share_one_read() {
    let payments = unique("set-payments");
    let big = unique("set-big");
    let small = unique("set-small");
    let state = scratch_dir("eddy-statement-set").join("state");
    let app = unique("statement-set");
    let env = [("EDDY_APPLICATION_ID", app.as_str())];
    let server = Server::start(&state, &env);
    let (status, answer) = server.ksql(&format!(
        "CREATE TABLE payments (user_id STRING, amount DOUBLE)
           WITH ('connector'='kafka', 'topic'='{payments}', 'format'='json', 'scan.startup.mode'='earliest-offset', 'partitions'='1');"
    ));
    assert_eq!(status, 200, "{answer}");
    produce(&payments, &[(None, r#"{"user_id": "u1", "amount": 250}"#), (None, r#"{"user_id": "u2", "amount": 20}"#)]).await;
    let (status, answer) = server.ksql(&format!(
        "CREATE TABLE big (user_id STRING, amount DOUBLE) WITH ('connector'='kafka', 'topic'='{big}', 'format'='json');
         CREATE TABLE small (user_id STRING, amount DOUBLE) WITH ('connector'='kafka', 'topic'='{small}', 'format'='json');
         EXECUTE STATEMENT SET BEGIN
           INSERT INTO big SELECT user_id, amount FROM payments WHERE amount >= 100;
           INSERT INTO small SELECT user_id, amount FROM payments WHERE amount < 100;
         END;"
    ));
    assert_eq!(status, 200, "{answer}");
    produce(&payments, &[(None, r#"{"user_id": "u3", "amount": 100}"#), (None, r#"{"user_id": "u4", "amount": 99.5}"#)]).await;
    let want_big: BTreeSet<String> =
        [r#"{"user_id":"u1","amount":250.0}"#, r#"{"user_id":"u3","amount":100.0}"#].iter().map(|s| s.to_string()).collect();
    let want_small: BTreeSet<String> =
        [r#"{"user_id":"u2","amount":20.0}"#, r#"{"user_id":"u4","amount":99.5}"#].iter().map(|s| s.to_string()).collect();
    assert_eq!(values(consume(&big, 2, WAIT).await), want_big, "{}", server.log_text());
    assert_eq!(values(consume(&small, 2, WAIT).await), want_small);

    // Two queries, one read: the set's group commits, the queries' own groups do not.
    let mut ids: Vec<String> = server.queries().into_iter().map(|(id, _, state, _)| format!("{id} {state}")).collect();
    ids.sort();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.iter().all(|q| q.ends_with(" RUNNING")), "{ids:?}");
    let first = server.queries().into_iter().map(|(id, ..)| id).min().unwrap_or_default();
    let set_group = format!("{app}-{first}-set");
    wait_until("the set's group commits every record", WAIT, || async { committed(&set_group, &payments) == Some(4) }).await;
    for (id, ..) in server.queries() {
        assert_eq!(committed(&format!("{app}-{id}"), &payments), None, "query {id} read the topic itself");
    }

    // Stopped and started again: the set shares its read again, from where it was.
    assert!(server.terminate().success());
    produce(&payments, &[(None, r#"{"user_id": "u5", "amount": 500}"#), (None, r#"{"user_id": "u6", "amount": 5}"#)]).await;
    let server = Server::start(&state, &env);
    assert_eq!(consume(&big, 3, WAIT).await.len(), 3, "{}", server.log_text());
    assert_eq!(consume(&small, 3, WAIT).await.len(), 3);
    wait_until("the set's group commits the new records", WAIT, || async { committed(&set_group, &payments) == Some(6) }).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(consume(&big, usize::MAX, Duration::from_secs(3)).await.len(), 3, "nothing written twice");
    assert_eq!(consume(&small, usize::MAX, Duration::from_secs(3)).await.len(), 3, "nothing written twice");
}
