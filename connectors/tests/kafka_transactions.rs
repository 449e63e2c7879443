//! `'sink.delivery-guarantee'='exactly-once'` against rdkafka's `MockCluster` (the broker
//! used elsewhere, Tansu, has no transactions). librdkafka's mock broker runs the
//! transaction protocol (InitProducerId, AddPartitionsToTxn, EndTxn, producer epochs)
//! but keeps no last stable offset, so its consumers see open and aborted transactions
//! whatever their isolation level, and it does not fence an older producer epoch by
//! itself: what it can check is the protocol and Eddy's side of it. Each checkpoint
//! commits one transaction; a commit the broker refuses (here: the producer was fenced,
//! injected) stops the query with the error instead of being retried, and a restarted
//! query initialises the same transactional id and replays from its checkpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Int32Array, StringArray};
use arrow::record_batch::RecordBatch;
use eddy_connectors::kafka::{KafkaConfig, KafkaSink};
use eddy_engine::catalog::Relation;
use eddy_engine::connector::{Progress, Sink};
use eddy_engine::options::ConnectorOptions;
use eddy_engine::sql::planner::PlannedStatement;
use eddy_engine::{Engine, Script};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Message, TopicPartitionList};

fn relation() -> Arc<Relation> {
    let sql = "CREATE STREAM out (id INT KEY, v VARCHAR) WITH (kafka_topic='out', value_format='json', \
               'sink.delivery-guarantee'='exactly-once');";
    let plan = Engine::new(None, "test").plan(&[Script { name: "t".into(), sql: sql.into() }]).unwrap_or_else(|e| panic!("{e}"));
    plan.statements
        .into_iter()
        .find_map(|s| match s {
            PlannedStatement::CreateRelation(r) => Some(r),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no relation"))
}

fn rows(relation: &Relation, ids: std::ops::RangeInclusive<i32>) -> RecordBatch {
    let ids: Vec<i32> = ids.collect();
    let values: Vec<String> = ids.iter().map(|i| format!("v{i}")).collect();
    RecordBatch::try_new(relation.schema.clone(), vec![Arc::new(Int32Array::from(ids)), Arc::new(StringArray::from(values))])
        .unwrap_or_else(|e| panic!("{e}"))
}

fn sink(bootstrap: &str, relation: &Relation) -> KafkaSink {
    let ConnectorOptions::Kafka(options) = &relation.connector else { panic!("not a Kafka relation") };
    let config = KafkaConfig { bootstrap_servers: bootstrap.to_string(), properties: Default::default() };
    KafkaSink::new(&config, options, relation, Some("app-q1".into()), None).unwrap_or_else(|e| panic!("{e}"))
}

fn progress(id: u64) -> Progress {
    Progress { checkpoint_id: id, positions: Vec::new(), watermark: None }
}

/// The ids in the values of partition 0 of `out`, read with `isolation`.
fn read(bootstrap: &str, isolation: &str) -> Vec<i32> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{isolation}"))
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .create()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("out", 0, rdkafka::Offset::Beginning).unwrap_or_else(|e| panic!("{e}"));
    consumer.assign(&tpl).unwrap_or_else(|e| panic!("{e}"));
    let mut ids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
                // A ksqlDB relation: its names are written upper-cased.
                ids.push(v["V"].as_str().and_then(|s| s.trim_start_matches('v').parse().ok()).unwrap_or(-1));
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) => panic!("{e}"),
            None => {}
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_checkpoint_is_one_transaction_and_a_refused_commit_stops_the_query() {
    let mock = MockCluster::new(1).unwrap_or_else(|e| panic!("{e}"));
    mock.create_topic("out", 1, 1).unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = mock.bootstrap_servers();
    let relation = relation();

    // Run 1: checkpoint 1 commits rows 1..=3; rows 4 and 5 are sent (acknowledged, in
    // the open transaction of checkpoint 2), then the broker refuses to commit it.
    let mut first = sink(&bootstrap, &relation);
    first.resume(None).await.unwrap_or_else(|e| panic!("{e}"));
    first.write(rows(&relation, 1..=3)).await.unwrap_or_else(|e| panic!("{e}"));
    first.pre_commit().await.unwrap_or_else(|e| panic!("{e}"));
    first.commit(&progress(1)).await.unwrap_or_else(|e| panic!("{e}"));
    first.write(rows(&relation, 4..=5)).await.unwrap_or_else(|e| panic!("{e}"));
    first.pre_commit().await.unwrap_or_else(|e| panic!("{e}"));
    mock.request_errors(RDKafkaApiKey::EndTxn, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED]);
    let refused = first.commit(&progress(2)).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refused.to_lowercase().contains("fenced"), "the commit of checkpoint 2 fails: {refused}");
    mock.clear_request_errors(RDKafkaApiKey::EndTxn);
    drop(first);

    // Run 2 restores checkpoint 1: the same transactional id is initialised again
    // (on a real broker this aborts run 1's open transaction); the replay writes rows
    // 4..=6 in checkpoint 2's transaction, and 7 in checkpoint 3's.
    let mut second = sink(&bootstrap, &relation);
    second.resume(Some(&progress(1))).await.unwrap_or_else(|e| panic!("{e}"));
    second.write(rows(&relation, 4..=6)).await.unwrap_or_else(|e| panic!("{e}"));
    second.pre_commit().await.unwrap_or_else(|e| panic!("{e}"));
    second.commit(&progress(2)).await.unwrap_or_else(|e| panic!("{e}"));
    second.write(rows(&relation, 7..=7)).await.unwrap_or_else(|e| panic!("{e}"));
    second.commit(&progress(3)).await.unwrap_or_else(|e| panic!("{e}"));

    // Each row once. The mock shows run 1's uncommitted rows 4 and 5 to every reader,
    // the sink's read_committed read-back too, which then suppresses them in the replay;
    // a real broker aborts them (hidden from read_committed readers and the read-back),
    // and the replay writes them in checkpoint 2's transaction. Either way a
    // read_committed consumer reads every row once.
    assert_eq!(read(&bootstrap, "read_committed"), [1, 2, 3, 4, 5, 6, 7]);
}
