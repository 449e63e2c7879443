//! Pull queries as EXPLAIN shows them: which WHERE clauses read the table by key (every
//! primary-key column pinned to constants) and which scan it, and the refusals.

use eddy_engine::{Engine, Session, StatementResult};

const TABLES: &str = "CREATE TABLE users (ID VARCHAR PRIMARY KEY, REGION VARCHAR, AGE INT) WITH (kafka_topic='users', value_format='json', partitions=1);
CREATE TABLE visits (USER_ID VARCHAR PRIMARY KEY, PAGE INT PRIMARY KEY, N BIGINT) WITH (kafka_topic='visits', value_format='json', key_format='json', partitions=1);
CREATE STREAM clicks (USER_ID VARCHAR) WITH (kafka_topic='clicks', value_format='json', partitions=1);";

async fn explain(sql: &str) -> String {
    let mut engine = Engine::new(None, "pull-plan");
    let mut session = Session::default();
    engine.execute(TABLES, &mut session).await.unwrap_or_else(|e| panic!("{e}"));
    match engine.execute(&format!("EXPLAIN {sql}"), &mut session).await {
        Ok(mut executed) => match executed.pop().and_then(|mut e| e.results.pop()) {
            Some(StatementResult::Explain { plan, .. }) => plan,
            other => panic!("{other:?}"),
        },
        Err(e) => format!("error: {}", e.error),
    }
}

#[tokio::test]
async fn a_pull_query_reads_by_key_where_every_key_column_is_pinned() {
    assert_eq!(
        explain("SELECT * FROM users WHERE ID = 'a';").await,
        "pull query\n  table: users (kafka topic=users format=json partitions=1), key [id]\n  read: 1 key(s) pinned by WHERE\n  filter: users.id = Utf8(\"a\")\n  project: id := users.id, region := users.region, age := users.age"
    );
    // IN and AND: two keys; the other condition filters the rows read.
    let plan = explain("SELECT REGION FROM users WHERE ID IN ('a', 'b') AND AGE > 3 LIMIT 5;").await;
    assert!(plan.contains("read: 2 key(s) pinned by WHERE"), "{plan}");
    assert!(plan.ends_with("limit: 5"), "{plan}");
    // Contradicting pins: no key.
    assert!(explain("SELECT * FROM users WHERE ID = 'a' AND ID = 'b';").await.contains("read: 0 key(s)"));
    // OR, a range, or another column: a scan.
    for sql in [
        "SELECT * FROM users WHERE ID = 'a' OR AGE = 1;",
        "SELECT * FROM users WHERE ID > 'a';",
        "SELECT * FROM users WHERE REGION = 'eu';",
    ] {
        assert!(explain(sql).await.contains("read: scan in key order"), "{sql}");
    }
    // A compound key: both columns pinned (every combination), or a scan.
    assert!(explain("SELECT * FROM visits WHERE USER_ID = 'a' AND PAGE IN (1, 2, 3);").await.contains("read: 3 key(s)"));
    assert!(explain("SELECT * FROM visits WHERE USER_ID = 'a';").await.contains("read: scan in key order"));
}

#[tokio::test]
async fn a_pull_query_is_refused_on_a_stream_and_when_it_aggregates() {
    assert_eq!(
        explain("SELECT * FROM clicks;").await,
        "error: a SELECT on a stream must end with EMIT CHANGES (line 1, column 1); add EMIT CHANGES to stream its results as they arrive (a push query); a pull query reads a TABLE"
    );
    assert_eq!(
        explain("SELECT REGION, COUNT(*) FROM users GROUP BY REGION;").await,
        "error: a pull query cannot aggregate (line 1, column 1); aggregate in a CREATE TABLE ... AS SELECT ... GROUP BY, then query that table"
    );
}
