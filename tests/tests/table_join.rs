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
