//! Lookup joins against PostgreSQL (Flink's JDBC lookup join), through the broker and a
//! real database: each order is enriched with its customer's row as it is when the
//! order is processed (a row updated between two orders gives each its own version);
//! LEFT pads an order without a customer, INNER drops it; a NULL key matches nothing.
//! While the database is unreachable (a TCP proxy in front of it, closed for a while)
//! the query shows RETRYING, and once it is back every order arrives exactly once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy_e2e::*;
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy to PostgreSQL that can be cut: while down it refuses new connections
/// and closes the open ones.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                if !flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let flag = flag.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect("127.0.0.1:5432").await else { return };
                    let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
                    let watch = async {
                        while flag.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    };
                    tokio::select! {
                        _ = copy => {}
                        _ = watch => {}
                    }
                });
            }
        });
        Proxy { port, up }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

async fn rows(db: &TestDb, sql: &str) -> Vec<String> {
    let client = db.client().await;
    let rows = client.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| match r.try_get::<_, Option<String>>(i) {
                    Ok(v) => v.unwrap_or_else(|| "NULL".into()),
                    Err(_) => match r.try_get::<_, Option<f64>>(i) {
                        Ok(v) => v.map(|v| v.to_string()).unwrap_or_else(|| "NULL".into()),
                        Err(_) => r.try_get::<_, Option<i32>>(i).ok().flatten().map(|v| v.to_string()).unwrap_or_else(|| "NULL".into()),
                    },
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

fn ddl(topic: &str, url: &str, inner_table: &str) -> String {
    format!(
        "CREATE TABLE orders (order_id VARCHAR, customer_id VARCHAR, amount DOUBLE, proc_time AS PROCTIME())
           WITH ('connector'='kafka', 'topic'='{topic}', 'format'='json', 'scan.startup.mode'='earliest-offset', 'partitions'='1');
         CREATE TABLE customers (id VARCHAR, name VARCHAR, tier INT, PRIMARY KEY (id) NOT ENFORCED)
           WITH ('connector'='jdbc', 'url'='{url}', 'table-name'='customers', 'username'='postgres');
         CREATE TABLE enriched (order_id VARCHAR, amount DOUBLE, name VARCHAR, tier INT)
           WITH ('connector'='postgres', 'url'='{url}', 'table-name'='enriched');
         CREATE TABLE matched (order_id VARCHAR, name VARCHAR)
           WITH ('connector'='postgres', 'url'='{url}', 'table-name'='{inner_table}');
         INSERT INTO enriched
           SELECT o.order_id, o.amount, c.name, c.tier
           FROM orders AS o LEFT JOIN customers FOR SYSTEM_TIME AS OF o.proc_time AS c ON o.customer_id = c.id;
         INSERT INTO matched
           SELECT o.order_id, c.name FROM orders o JOIN customers c ON o.customer_id = c.id AND c.tier >= 2 WHERE o.amount > 1;"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_enriched_with_the_customer_row_current_when_processed() {
    let topic = unique("lookup-orders");
    let db = TestDb::create().await;
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE customers (id text PRIMARY KEY, name text, tier integer);
             INSERT INTO customers VALUES ('c1', 'Ada', 1), ('c2', 'Grace', 3), ('c3', 'Edsger', 2);",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let state = scratch_dir("eddy-lookup").join("state");
    let app = unique("lookup");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", app.as_str())]);
    let (status, answer) = server.ksql(&ddl(&topic, &db.url, "matched"));
    assert_eq!(status, 200, "{answer}");

    produce(
        &topic,
        &[
            (None, r#"{"order_id":"o1","customer_id":"c1","amount":5.0}"#),
            (None, r#"{"order_id":"o2","customer_id":"c2","amount":7.5}"#),
            (None, r#"{"order_id":"o3","customer_id":"c9","amount":1.0}"#),
            (None, r#"{"order_id":"o4","customer_id":null,"amount":2.0}"#),
            (None, r#"{"order_id":"o5","customer_id":"c3","amount":0.5}"#),
        ],
    )
    .await;
    wait_until("five enriched orders", Duration::from_secs(60), || async { db.scalar("SELECT count(*) FROM enriched").await == 5 }).await;
    assert_eq!(
        rows(&db, "SELECT order_id, amount, name, tier FROM enriched ORDER BY order_id").await,
        ["o1|5|Ada|1", "o2|7.5|Grace|3", "o3|1|NULL|NULL", "o4|2|NULL|NULL", "o5|0.5|Edsger|2"]
    );
    wait_until("one matched order", Duration::from_secs(30), || async { db.scalar("SELECT count(*) FROM matched").await == 1 }).await;

    // The customer changes: the next order sees the new row, the earlier ones keep theirs.
    db.client()
        .await
        .batch_execute("UPDATE customers SET name = 'Ada L.', tier = 2 WHERE id = 'c1'")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    produce(&topic, &[(None, r#"{"order_id":"o6","customer_id":"c1","amount":3.0}"#)]).await;
    wait_until("six enriched orders", Duration::from_secs(60), || async { db.scalar("SELECT count(*) FROM enriched").await == 6 }).await;
    assert_eq!(
        rows(&db, "SELECT order_id, name, tier FROM enriched WHERE name LIKE 'Ada%' ORDER BY order_id").await,
        ["o1|Ada|1", "o6|Ada L.|2"]
    );
    wait_until("two matched orders", Duration::from_secs(30), || async { db.scalar("SELECT count(*) FROM matched").await == 2 }).await;
    assert_eq!(rows(&db, "SELECT order_id, name FROM matched ORDER BY order_id").await, ["o2|Grace", "o6|Ada L."]);

    let (_, explain) = server.ksql(
        "EXPLAIN INSERT INTO enriched SELECT o.order_id, o.amount, c.name, c.tier FROM orders AS o LEFT JOIN customers FOR SYSTEM_TIME AS OF o.proc_time AS c ON o.customer_id = c.id;",
    );
    assert!(
        explain.to_string().contains("lookup join: LEFT customers (postgres table=customers) on [o.customer_id = customers.id]"),
        "{explain}"
    );
    drop(server);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_during_lookups_is_retried_and_loses_nothing() {
    let topic = unique("lookup-outage");
    let db = TestDb::create().await;
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE customers (id text PRIMARY KEY, name text, tier integer); INSERT INTO customers VALUES ('c1', 'Ada', 2);",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let proxy = Proxy::start().await;
    // The lookups go through the proxy; the sinks straight to the database.
    let proxied = db.url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    assert_ne!(proxied, db.url, "the test database is not at 127.0.0.1:5432");
    let state = scratch_dir("eddy-lookup-outage").join("state");
    let app = unique("lookup-outage");
    let server = Server::start_with(&state, &[("EDDY_APPLICATION_ID", app.as_str())], &["--allow-host", "127.0.0.1"]);
    let statements = ddl(&topic, &db.url, "matched")
        .replace(&format!("'url'='{}', 'table-name'='customers'", db.url), &format!("'url'='{proxied}', 'table-name'='customers'"));
    assert!(statements.contains(&proxied));
    let (status, answer) = server.ksql(&statements);
    assert_eq!(status, 200, "{answer}");
    let order = |i: usize| format!(r#"{{"order_id":"o{i:03}","customer_id":"c1","amount":{i}}}"#);
    let batch = |from: usize, to: usize| (from..to).map(order).collect::<Vec<_>>();
    let send = |values: Vec<String>| {
        let topic = topic.clone();
        async move {
            let list: Vec<(Option<&str>, &str)> = values.iter().map(|v| (None, v.as_str())).collect();
            produce(&topic, &list).await;
        }
    };
    send(batch(0, 10)).await;
    wait_until("ten rows", Duration::from_secs(60), || async { db.scalar("SELECT count(*) FROM enriched").await == 10 }).await;

    proxy.set_up(false);
    send(batch(10, 30)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut retrying = None;
    while retrying.is_none() && Instant::now() < deadline {
        retrying = server.queries().into_iter().find(|q| q.2 == "RETRYING");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(retrying.is_some(), "no query showed RETRYING: {:?}", server.queries());
    // Nothing was joined without its customer meanwhile.
    assert_eq!(db.scalar("SELECT count(*) FROM enriched WHERE name IS NULL").await, 0);
    proxy.set_up(true);
    wait_until("thirty rows", Duration::from_secs(90), || async { db.scalar("SELECT count(*) FROM enriched").await == 30 }).await;
    assert_eq!(db.scalar("SELECT count(DISTINCT order_id) FROM enriched WHERE name = 'Ada'").await, 30);
    wait_until("RUNNING again", Duration::from_secs(30), || async { server.queries().iter().all(|q| q.2 == "RUNNING") }).await;
    drop(server);
    db.drop_db().await;
}
