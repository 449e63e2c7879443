//! ksqlDB's keys: `KEY` columns are read from the Kafka record key in the stream's
//! `KEY_FORMAT` (default `KAFKA`: an INT is 4 bytes, big-endian) and the other columns
//! from the value; a stream made from it writes its key the same way, and a windowed
//! table writes ksqlDB's windowed key (key bytes, then the window start as 8 bytes of
//! ms). Before, the KEY column was read from the value, so ksqlDB's own records (whose
//! values lack the key) were all malformed.

use std::time::Duration;

use eddy_e2e::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

fn value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_columns_come_from_and_go_to_the_record_key() {
    let topic = unique("keys-in");
    let state = scratch_dir("eddy-ksql-keys").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("keys"))]);
    let (status, answer) = server
        .ksql(&format!("CREATE STREAM pv (ID INT KEY, PAGE VARCHAR) WITH (kafka_topic='{topic}', value_format='json', partitions=1);"));
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM home WITH (kafka_topic='{topic}-home') AS SELECT ID, PAGE FROM pv WHERE PAGE <> 'about';
         CREATE TABLE per_page WITH (kafka_topic='{topic}-per-page') AS SELECT PAGE, COUNT(*) AS N FROM pv WINDOW TUMBLING (SIZE 1 HOUR) GROUP BY PAGE EMIT CHANGES;"
    ));
    assert_eq!(status, 200, "{answer}");
    produce_bytes(
        &topic,
        &[
            (Some(&7i32.to_be_bytes()), r#"{"PAGE": "home"}"#),
            (Some(&8i32.to_be_bytes()), r#"{"PAGE": "about"}"#),
            (Some(&[1, 2]), r#"{"PAGE": "home"}"#),
            (None, r#"{"PAGE": "home"}"#),
        ],
    )
    .await;

    // The key is 4 bytes, and not in the value; the record with a 2-byte key is malformed,
    // the one without a key has a null ID.
    let home = consume_bytes(&format!("{topic}-home"), 2, WAIT).await;
    assert_eq!(home.len(), 2, "{home:?}");
    assert_eq!(home[0].0.as_deref(), Some(&7i32.to_be_bytes()[..]));
    assert_eq!(value(&home[0].1), json!({"PAGE": "home"}));
    assert_eq!(home[1].0, None);

    // The windowed table: key "home" then the window start (ms) as 8 bytes; value N only.
    // EMIT CHANGES: home's row is updated to 2 (in one micro-batch or two).
    let deadline = std::time::Instant::now() + WAIT;
    let (key, v) = loop {
        let counts = consume_bytes(&format!("{topic}-per-page"), 2, Duration::from_secs(10)).await;
        let last_home = counts.iter().rev().find(|(k, _)| k.as_deref().is_some_and(|k| k.starts_with(b"home"))).cloned();
        if let Some((Some(key), v)) = last_home {
            if value(&v) == json!({"N": 2}) || std::time::Instant::now() > deadline {
                break (key, v);
            }
        }
        assert!(std::time::Instant::now() < deadline, "no row for home: {counts:?}");
    };
    assert_eq!(key.len(), 4 + 8, "{key:?}");
    let start = i64::from_be_bytes(key[4..].try_into().unwrap_or_default());
    assert_eq!(start % 3_600_000, 0, "the window start is on the hour: {start}");
    assert_eq!(value(&v), json!({"N": 2}));

    let queries = server.queries();
    let malformed: u64 = queries.iter().filter_map(|q| q.3["malformed"].as_u64()).max().unwrap_or_default();
    assert_eq!(malformed, 1, "{queries:?}");

    // A projection of a keyed stream keeps every key column, once, and a value column.
    let rejected = |sql: &str| {
        let (status, answer) = server.ksql(sql);
        assert_eq!(status, 400, "{answer}");
        answer["message"].as_str().unwrap_or_default().to_string()
    };
    assert!(rejected("CREATE STREAM nokey AS SELECT PAGE FROM pv;").starts_with(
        "Key missing from projection (ie, SELECT). The query used to build `nokey` must include the key column id in its projection."
    ));
    assert!(rejected("CREATE STREAM twice AS SELECT ID, ID AS ID2, PAGE FROM pv;")
        .starts_with("The projection contains a key column (`id`) more than once, aliased as: id and id2."));
    assert!(rejected("CREATE STREAM onlykey AS SELECT ID FROM pv;").starts_with("The projection contains no value columns."));

    // Several KEY columns need a key format that holds them, as in ksqlDB.
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM two (A INT KEY, B INT KEY, C INT) WITH (kafka_topic='{topic}-two', value_format='json', partitions=1);"
    ));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["message"],
        "The 'KAFKA' format only supports a single field. Got: [`a` INT, `b` INT] (line 1, column 31); use key_format='JSON' (or 'DELIMITED') for several key columns or other types"
    );
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM two (A INT KEY, B INT KEY, C INT) WITH (kafka_topic='{topic}-two', value_format='json', key_format='json', partitions=1);"
    ));
    assert_eq!(status, 200, "{answer}");
    let (status, answer) =
        server.ksql(&format!("CREATE STREAM bad (A INT KEY) WITH (kafka_topic='{topic}-bad', value_format='json', key_format='FOO');"));
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap_or_default().starts_with("Unknown format: FOO"), "{answer}");
}

/// ksqlDB's `WRAP_SINGLE_VALUE = false`: the one value column is the whole JSON value,
/// read (`5`) and written (`10`) bare; a schema with more value columns is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwrapped_single_value_is_read_and_written_bare() {
    let topic = unique("unwrapped");
    let state = scratch_dir("eddy-unwrapped").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("unwrapped"))]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM scores (ID INT KEY, SCORE INT) WITH (kafka_topic='{topic}', value_format='json', partitions=1, wrap_single_value=false);
         CREATE STREAM doubled WITH (kafka_topic='{topic}-doubled', wrap_single_value=false) AS SELECT ID, SCORE * 2 AS DOUBLED FROM scores;"
    ));
    assert_eq!(status, 200, "{answer}");
    produce_bytes(&topic, &[(Some(&1i32.to_be_bytes()), "5"), (Some(&2i32.to_be_bytes()), "7")]).await;
    let doubled = consume_bytes(&format!("{topic}-doubled"), 2, WAIT).await;
    let got: Vec<(Option<Vec<u8>>, String)> = doubled.into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned())).collect();
    assert_eq!(got, vec![(Some(1i32.to_be_bytes().to_vec()), "10".to_string()), (Some(2i32.to_be_bytes().to_vec()), "14".to_string())]);

    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM two (A INT, B INT) WITH (kafka_topic='{topic}-two', value_format='json', partitions=1, wrap_single_value=false);"
    ));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["primaryMessage"], "'WRAP_SINGLE_VALUE' is only valid for single-field value schemas", "{answer}");
}
