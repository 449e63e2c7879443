//! Bounded memory under load: the PostgreSQL sink stalled by a lock held on its table
//! while 200,000 server-log events (about 12 MB) arrive. Eddy's bounded channels hold
//! the source back (backpressure) instead of buffering: the server's RSS stays under
//! 512 MB the whole time, and when the lock is released every row arrives, once.

use std::time::{Duration, Instant};

use eddy_e2e::*;

const EVENTS: u64 = 200_000;
const RSS_LIMIT: u64 = 512 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sink_holds_the_source_back_within_a_fixed_memory_bound() {
    // A broker of its own: the records of this test would slow the shared one down.
    let _broker = OwnBroker::start("memory-bound");
    let topic = unique("memory-bound-in");
    let db = TestDb::create().await;
    let state = scratch_dir("eddy-memory-bound").join("state");
    let app = unique("memory-bound");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", app.as_str())]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM logs (event_id VARCHAR, account_id INT, event_type VARCHAR, location_country VARCHAR, event_ts BIGINT)
           WITH (kafka_topic='{topic}', value_format='delimited', partitions=4);
         CREATE TABLE logs_pg (event_id VARCHAR, account_id INT, event_type VARCHAR, location_country VARCHAR, event_ts BIGINT)
           WITH ('connector'='postgres', 'url'='{url}', 'table-name'='logs');
         INSERT INTO logs_pg SELECT * FROM logs;",
        url = db.url
    ));
    assert_eq!(status, 200, "{answer}");
    wait_until("the sink's table", Duration::from_secs(60), || async {
        db.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'logs'").await == 1
    })
    .await;

    // Stall the sink: a transaction holding an exclusive lock on its table.
    let blocker = db.client().await;
    blocker.batch_execute("BEGIN; LOCK TABLE logs IN ACCESS EXCLUSIVE MODE;").await.unwrap_or_else(|e| panic!("{e}"));
    let base_rss = server.rss_bytes();

    let gen_topic = topic.clone();
    let generator = std::thread::spawn(move || gen_server_logs(&gen_topic, EVENTS, 7));
    let mut peak = 0;
    while !generator.is_finished() {
        peak = peak.max(server.rss_bytes());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    generator.join().unwrap_or_else(|_| panic!("the generator panicked"));
    // The source keeps reading while it can: watch a little longer.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        peak = peak.max(server.rss_bytes());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        db.scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").await >= 1,
        "the sink is not waiting on the lock"
    );
    let rows_in = server.queries()[0].3["rows_in"].as_u64().unwrap_or(0);
    assert!(rows_in < EVENTS, "the source read everything ({rows_in} rows) while the sink was stalled: no backpressure");
    assert!(peak < RSS_LIMIT, "RSS peaked at {} MB (started at {} MB)", peak >> 20, base_rss >> 20);
    eprintln!(
        "RSS: {} MB at the start, {} MB at the peak; {rows_in} of {EVENTS} events read while the sink was stalled",
        base_rss >> 20,
        peak >> 20
    );

    blocker.batch_execute("COMMIT").await.unwrap_or_else(|e| panic!("{e}"));
    wait_until("every event in PostgreSQL", Duration::from_secs(300), || async {
        db.scalar("SELECT count(*) FROM logs").await >= EVENTS as i64
    })
    .await;
    assert_eq!(db.scalar("SELECT count(*) FROM logs").await, EVENTS as i64);
    assert_eq!(db.scalar("SELECT count(DISTINCT event_id) FROM logs").await, EVENTS as i64);
    assert!(server.terminate().success());
    db.drop_db().await;
}
