//! ksqlDB's stream–table join through the broker: a Kafka TABLE materialized from its
//! topic (upserts by the record key, a tombstone deletes) enriches each row of a stream
//! as the table stands when the row is processed; LEFT keeps a row whose key the table
//! lacks, with NULLs. A join that is not on the table's primary key is refused.

use std::time::Duration;

use eddy_e2e::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_are_enriched_from_the_users_table_as_it_stands() {
    let users = unique("users-table");
    let clicks = unique("clicks-stream");
    let out = unique("enriched-clicks");
    let state = scratch_dir("eddy-table-join").join("state");
    let app = unique("table-join");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", app.as_str())]);
    let (status, answer) = server.ksql(&format!(
        "CREATE TABLE users (id VARCHAR PRIMARY KEY, name VARCHAR, region VARCHAR) WITH (kafka_topic='{users}', value_format='json', partitions=1);
         CREATE STREAM clicks (user_id VARCHAR, page VARCHAR) WITH (kafka_topic='{clicks}', value_format='json', partitions=1);"
    ));
    assert_eq!(status, 200, "{answer}");
    produce_changelog(&users, &[("u1", Some(r#"{"NAME":"Ada","REGION":"eu"}"#)), ("u2", Some(r#"{"NAME":"Grace","REGION":"us"}"#))]).await;

    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM enriched WITH (kafka_topic='{out}', value_format='json') AS
           SELECT c.user_id, c.page, u.name, u.region FROM clicks c LEFT JOIN users u ON c.user_id = u.id EMIT CHANGES;"
    ));
    assert_eq!(status, 200, "{answer}");
    let (status, answer) =
        server.ksql("CREATE STREAM by_region AS SELECT c.user_id, u.name FROM clicks c JOIN users u ON c.page = u.region;");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["primaryMessage"], "a join with the table \"USERS\" must be on its primary key (ID), not on REGION", "{answer}");

    produce(
        &clicks,
        &[
            (None, r#"{"USER_ID":"u1","PAGE":"home"}"#),
            (None, r#"{"USER_ID":"u2","PAGE":"cart"}"#),
            (None, r#"{"USER_ID":"u3","PAGE":"home"}"#),
        ],
    )
    .await;
    let first = consume(&out, 3, Duration::from_secs(60)).await;
    let values: Vec<&str> = first.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        values,
        [
            r#"{"USER_ID":"u1","PAGE":"home","NAME":"Ada","REGION":"eu"}"#,
            r#"{"USER_ID":"u2","PAGE":"cart","NAME":"Grace","REGION":"us"}"#,
            r#"{"USER_ID":"u3","PAGE":"home","NAME":null,"REGION":null}"#
        ]
    );

    // u1 changes, u2 is deleted; clicks after that see the table as it then stands.
    produce_changelog(&users, &[("u1", Some(r#"{"NAME":"Ada L.","REGION":"eu"}"#)), ("u2", None)]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    produce(&clicks, &[(None, r#"{"USER_ID":"u1","PAGE":"x"}"#), (None, r#"{"USER_ID":"u2","PAGE":"y"}"#)]).await;
    let all = consume(&out, 5, Duration::from_secs(60)).await;
    let values: Vec<&str> = all.iter().skip(3).map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        values,
        [r#"{"USER_ID":"u1","PAGE":"x","NAME":"Ada L.","REGION":"eu"}"#, r#"{"USER_ID":"u2","PAGE":"y","NAME":null,"REGION":null}"#]
    );
    drop(server);
}

/// A table fed by a query (ksqlDB's `CREATE TABLE ... AS SELECT ... GROUP BY`) is joined
/// like a declared one: its topic is read into the join's state as the aggregation writes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_joins_a_table_its_own_query_aggregates() {
    let orders = unique("orders-stream");
    let payments = unique("payments-stream");
    let out = unique("orders-with-totals");
    let state = scratch_dir("eddy-table-join-ctas").join("state");
    let app = unique("table-join-ctas");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", app.as_str())]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM payments (ACCOUNT VARCHAR, AMOUNT BIGINT) WITH (kafka_topic='{payments}', value_format='json', partitions=1);
         CREATE STREAM orders (ACCOUNT VARCHAR, ITEM VARCHAR) WITH (kafka_topic='{orders}', value_format='json', partitions=1);
         CREATE TABLE paid WITH (kafka_topic='{payments}-paid') AS SELECT ACCOUNT, SUM(AMOUNT) AS TOTAL, COUNT(*) AS N FROM payments GROUP BY ACCOUNT EMIT CHANGES;"
    ));
    assert_eq!(status, 200, "{answer}");
    produce(
        &payments,
        &[(None, r#"{"ACCOUNT":"a","AMOUNT":10}"#), (None, r#"{"ACCOUNT":"a","AMOUNT":5}"#), (None, r#"{"ACCOUNT":"b","AMOUNT":7}"#)],
    )
    .await;
    // The aggregation has written both accounts' latest totals.
    wait_until("the totals in the table's topic", Duration::from_secs(60), || async {
        let records = consume(&format!("{payments}-paid"), usize::MAX, Duration::from_secs(2)).await;
        records.iter().any(|(k, v)| k.as_deref() == Some("a") && v.contains("\"TOTAL\":15"))
            && records.iter().any(|(k, _)| k.as_deref() == Some("b"))
    })
    .await;
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM with_totals WITH (kafka_topic='{out}', value_format='json') AS
           SELECT o.ACCOUNT, o.ITEM, p.TOTAL, p.N FROM orders o LEFT JOIN paid p ON o.ACCOUNT = p.ACCOUNT EMIT CHANGES;"
    ));
    assert_eq!(status, 200, "{answer}");
    produce(
        &orders,
        &[(None, r#"{"ACCOUNT":"a","ITEM":"book"}"#), (None, r#"{"ACCOUNT":"b","ITEM":"pen"}"#), (None, r#"{"ACCOUNT":"c","ITEM":"cup"}"#)],
    )
    .await;
    let got: Vec<serde_json::Value> =
        consume(&out, 3, Duration::from_secs(60)).await.iter().map(|(_, v)| serde_json::from_str(v).unwrap_or_default()).collect();
    assert_eq!(
        got,
        [
            serde_json::json!({"ACCOUNT": "a", "ITEM": "book", "TOTAL": 15, "N": 2}),
            serde_json::json!({"ACCOUNT": "b", "ITEM": "pen", "TOTAL": 7, "N": 1}),
            serde_json::json!({"ACCOUNT": "c", "ITEM": "cup", "TOTAL": null, "N": null}),
        ]
    );
}

/// SIGKILL of a stream–table join, table updates and clicks while it is down, then a
/// restart: the table is read again from its topic before the join resumes at the
/// committed offsets, so the clicks written before the kill are not written again and
/// those after it see the table as it then stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_table_join_resumes_without_losing_or_repeating_a_row() {
    let users = unique("users-kill");
    let clicks = unique("clicks-kill");
    let out = unique("enriched-kill");
    let state = scratch_dir("eddy-table-join-kill").join("state");
    let app = unique("table-join-kill");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", app.as_str())]);
    let (status, answer) = server.ksql(&format!(
        "CREATE TABLE users (id VARCHAR PRIMARY KEY, name VARCHAR) WITH (kafka_topic='{users}', value_format='json', partitions=1);
         CREATE STREAM clicks (user_id VARCHAR, page VARCHAR) WITH (kafka_topic='{clicks}', value_format='json', partitions=1);"
    ));
    assert_eq!(status, 200, "{answer}");
    produce_changelog(&users, &[("u1", Some(r#"{"NAME":"Ada"}"#)), ("u2", Some(r#"{"NAME":"Grace"}"#))]).await;
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM enriched WITH (kafka_topic='{out}', value_format='json') AS
           SELECT c.user_id, c.page, u.name FROM clicks c JOIN users u ON c.user_id = u.id EMIT CHANGES;"
    ));
    assert_eq!(status, 200, "{answer}");
    produce(&clicks, &[(None, r#"{"USER_ID":"u1","PAGE":"a"}"#), (None, r#"{"USER_ID":"u2","PAGE":"b"}"#)]).await;
    assert_eq!(consume(&out, 2, Duration::from_secs(60)).await.len(), 2);
    // The offsets of both clicks are committed with their rows (a stateless query
    // commits every micro-batch); then the kill.
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.kill();
    produce_changelog(&users, &[("u1", Some(r#"{"NAME":"Ada L."}"#)), ("u2", None)]).await;
    produce(&clicks, &[(None, r#"{"USER_ID":"u1","PAGE":"c"}"#), (None, r#"{"USER_ID":"u2","PAGE":"d"}"#)]).await;
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", app.as_str())]);
    let got = consume(&out, 3, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = consume(&out, usize::MAX, Duration::from_secs(3)).await;
    let values: Vec<&str> = all.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        values,
        [
            r#"{"USER_ID":"u1","PAGE":"a","NAME":"Ada"}"#,
            r#"{"USER_ID":"u2","PAGE":"b","NAME":"Grace"}"#,
            // u2 was deleted while the query was down: its click joins nothing (INNER).
            r#"{"USER_ID":"u1","PAGE":"c","NAME":"Ada L."}"#,
        ],
        "{got:?}\n{}",
        server.log_text()
    );
}
