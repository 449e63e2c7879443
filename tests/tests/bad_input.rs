//! Bad input by policy: 1,000 malformed records of ten kinds (not JSON, cut short, an
//! array, a string, a wrong type, empty, invalid UTF-8, a null value, 1 MB of garbage,
//! 100,000 nested brackets) mixed into 10,000 good ones, read by four streams over the
//! same topic: `skip` counts 1,000 and writes the 10,000; `dead_letter` writes the 1,000
//! with their offsets, bytes and errors to a Kafka topic and to a PostgreSQL table;
//! `fail` stops at the first, naming its offset. The server survives all of it.

use std::collections::BTreeSet;
use std::time::Duration;

use eddy_e2e::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};

const GOOD: usize = 10_000;
const BAD: usize = 1_000;

/// Malformed value number `k` (ten kinds in turn); `None` is a record without a value.
fn malformed(k: usize) -> Option<Vec<u8>> {
    Some(match k % 10 {
        0 => b"not json at all".to_vec(),
        1 => br#"{"id":"cut","amount":"#.to_vec(),
        2 => b"[1,2,3]".to_vec(),
        3 => br#""just a string""#.to_vec(),
        4 => br#"{"id":"typed","amount":"abc"}"#.to_vec(),
        5 => Vec::new(),
        6 => vec![0xff, 0xfe, b'{', 0xc3, 0x28, b'}'],
        7 => return None,
        8 => (0..1_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect(),
        _ => "[".repeat(100_000).into_bytes(),
    })
}

/// Every 11th record (offsets 5, 16, 27, ...) is malformed.
fn is_bad(offset: usize) -> bool {
    offset % 11 == 5
}

/// Panics unless the broker acknowledged the record.
fn delivered<T, M, E: std::fmt::Display>(result: Result<Result<T, (rdkafka::error::KafkaError, M)>, E>) {
    match result {
        Ok(Ok(_)) => {}
        Ok(Err((e, _))) => panic!("produce: {e}"),
        Err(e) => panic!("produce: {e}"),
    }
}

async fn produce_mix(topic: &str) -> Vec<usize> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("message.max.bytes", "2000000")
        .set("message.timeout.ms", "60000")
        .create()
        .unwrap_or_else(|e| panic!("producer: {e}"));
    let (mut good, mut bad) = (0, 0);
    let mut bad_offsets = Vec::new();
    let mut pending = Vec::new();
    for offset in 0..GOOD + BAD {
        let value = if is_bad(offset) && bad < BAD {
            bad_offsets.push(offset);
            bad += 1;
            malformed(bad - 1)
        } else {
            good += 1;
            Some(format!(r#"{{"id":"g{good}","amount":{good}}}"#).into_bytes())
        };
        let key = format!("k{offset}");
        let mut record = FutureRecord::<str, [u8]>::to(topic).key(&key).partition(0);
        if let Some(v) = &value {
            record = record.payload(v.as_slice());
        }
        pending.push(producer.send_result(record).unwrap_or_else(|(e, _)| panic!("produce: {e}")));
        if pending.len() >= 500 {
            for p in pending.drain(..) {
                delivered(p.await);
            }
        }
    }
    for p in pending {
        delivered(p.await);
    }
    assert_eq!((good, bad), (GOOD, BAD));
    bad_offsets
}

/// A dead letter read back: offset header, value, error header, truncated-length header.
type Letter = (usize, Option<Vec<u8>>, String, String);

/// Dead letters read back from `topic`, by offset.
async fn read_dead_letters(topic: &str, count: usize) -> Vec<Letter> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("dead-letter-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap_or_else(|e| panic!("consumer: {e}"));
    consumer.subscribe(&[topic]).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while out.len() < count {
        let Ok(Ok(m)) = tokio::time::timeout_at(deadline, consumer.recv()).await else { break };
        let header = |name: &str| -> String {
            m.headers()
                .and_then(|h| h.iter().find(|h| h.key == name).and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).to_string()))
                .unwrap_or_default()
        };
        assert!(!header("eddy.topic").is_empty());
        assert_eq!(header("eddy.partition"), "0");
        let offset: usize = header("eddy.offset").parse().unwrap_or_else(|e| panic!("offset header: {e}"));
        out.push((offset, m.payload().map(<[u8]>::to_vec), header("eddy.error"), header("eddy.value_truncated")));
    }
    out.sort_by_key(|l| l.0);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_are_skipped_dead_lettered_or_fatal_by_policy() {
    let topic = unique("bad-input");
    let dl_topic = unique("bad-input-dlq");
    let db = TestDb::create().await;
    let state = scratch_dir("eddy-bad-input").join("state");
    let app = unique("bad-input");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", app.as_str())]);
    let stream = |name: &str, with: &str| {
        format!("CREATE STREAM {name} (id VARCHAR, amount INT) WITH (kafka_topic='{topic}', value_format='json', partitions=1, properties.fetch.max.bytes='4000000', properties.max.partition.fetch.bytes='4000000'{with});")
    };
    let table = |name: &str| {
        format!("CREATE TABLE {name}_pg (id VARCHAR, amount INT) WITH ('connector'='postgres', 'url'='{}', 'table-name'='{name}');", db.url)
    };
    let sql = [
        stream("s_skip", ""),
        stream("s_dl_topic", &format!(", 'value.error.policy'='dead_letter', 'dead-letter.topic'='{dl_topic}'")),
        stream(
            "s_dl_table",
            &format!(", 'value.error.policy'='dead_letter', 'dead-letter.table'='dead_letters', 'dead-letter.url'='{}'", db.url),
        ),
        stream("s_fail", ", 'value.error.policy'='fail'"),
        table("skip"),
        table("dl_topic"),
        table("dl_table"),
        table("fail"),
        "INSERT INTO skip_pg SELECT id, amount FROM s_skip;".to_string(),
        "INSERT INTO dl_topic_pg SELECT id, amount FROM s_dl_topic;".to_string(),
        "INSERT INTO dl_table_pg SELECT id, amount FROM s_dl_table;".to_string(),
        "INSERT INTO fail_pg SELECT id, amount FROM s_fail;".to_string(),
    ]
    .join("\n");
    let (status, answer) = server.ksql(&sql);
    assert_eq!(status, 200, "{answer}");
    let bad_offsets = produce_mix(&topic).await;
    assert_eq!(bad_offsets[0], 5);

    for name in ["skip", "dl_topic", "dl_table"] {
        wait_until(&format!("{GOOD} rows in {name}"), Duration::from_secs(120), || async {
            db.scalar(&format!("SELECT count(*) FROM {name}")).await >= GOOD as i64
        })
        .await;
        assert_eq!(db.scalar(&format!("SELECT count(*) FROM {name}")).await, GOOD as i64, "{name}");
        assert_eq!(db.scalar(&format!("SELECT count(DISTINCT id) FROM {name}")).await, GOOD as i64, "{name}");
    }
    let queries = server.queries();
    let by_source = |source: &str| {
        let (_, v) = server.ksql("SHOW QUERIES;");
        v[0]["queries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|q| q["sources"][0] == source)
            .unwrap_or_else(|| panic!("no query reads {source}: {v}"))
    };
    assert_eq!(queries.len(), 4);
    for source in ["s_skip", "s_dl_topic", "s_dl_table"] {
        let q = by_source(source);
        assert_eq!(q["state"], "RUNNING", "{q}");
        assert_eq!(q["stats"]["malformed"], BAD, "{q}");
        assert_eq!(q["stats"]["rows_in"], GOOD + BAD, "{q}");
    }

    // fail: stopped at the first malformed record, offset 5; nothing after it written.
    let q = by_source("s_fail");
    assert_eq!(q["state"], "ERROR", "{q}");
    let error = q["error"].as_str().unwrap_or_default();
    assert!(error.starts_with(&format!("malformed record at {topic}/0@5: ")), "{error}");
    assert!(db.scalar("SELECT count(*) FROM fail").await <= 5);

    // dead letters in Kafka: the 1,000, with their offsets, bytes and an error each.
    let letters = read_dead_letters(&dl_topic, BAD).await;
    assert_eq!(letters.len(), BAD);
    assert_eq!(letters.iter().map(|l| l.0).collect::<Vec<_>>(), bad_offsets);
    for (k, (offset, value, error, truncated)) in letters.iter().enumerate() {
        let want = malformed(k).unwrap_or_default();
        let value = value.clone().unwrap_or_default();
        if truncated.is_empty() {
            assert!(value == want, "dead letter at offset {offset}: value differs");
        } else {
            // Larger than the broker takes with the headers: cut, with the full length.
            assert_eq!((truncated.as_str(), value.len()), ("1000000", 65_536), "dead letter at offset {offset}");
            assert!(want.starts_with(&value), "dead letter at offset {offset}: value differs");
        }
        assert!(!error.is_empty(), "dead letter at offset {offset} has no error");
    }
    assert_eq!(letters[4].2, "whilst decoding field 'amount': failed to parse \"abc\" as Int32");

    // dead letters in PostgreSQL: the same 1,000.
    wait_until("1000 dead letters in PostgreSQL", Duration::from_secs(60), || async {
        db.scalar("SELECT count(*) FROM dead_letters").await >= BAD as i64
    })
    .await;
    let client = db.client().await;
    let rows = client
        .query(r#"SELECT "offset", value, error, "partition", topic FROM dead_letters ORDER BY "offset""#, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), BAD);
    let offsets: Vec<usize> = rows.iter().map(|r| r.get::<_, i64>(0) as usize).collect();
    assert_eq!(offsets, bad_offsets);
    let distinct: BTreeSet<String> = rows.iter().map(|r| r.get::<_, String>(2)).collect();
    assert!(distinct.len() >= 6, "{distinct:?}");
    assert_eq!(rows[8].get::<_, Option<Vec<u8>>>(1).map(|v| v.len()), Some(1_000_000));
    assert_eq!(rows[0].get::<_, String>(4), topic);

    let log = server.log.clone();
    assert_eq!(server.terminate().code(), Some(1), "the failed query is reported at exit");
    assert!(std::fs::read_to_string(&log).unwrap_or_default().contains("failed: malformed record at"));
    db.drop_db().await;
}
