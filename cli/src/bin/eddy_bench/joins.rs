//! The join benchmarks of `make bench` (`--joins`; broker and PostgreSQL needed): `eddy
//! run` over the transactions file (`--window-events` rows, default 10M, 100,000 users,
//! one row per ms of event time), start to exit, into a blackhole sink, with the peak RSS:
//!
//! 1. stream–table join (ksqlDB): a TABLE of the 100,000 users materialized from its
//!    Kafka topic (produced first), `FROM tx JOIN users ON tx.user_id = users.id`;
//! 2. PostgreSQL lookup join (Flink's JDBC options, `FOR SYSTEM_TIME AS OF
//!    tx.proc_time`) against a table of the same 100,000 users, with a partial cache of
//!    95,000 rows: with users drawn uniformly, about 95% of the lookups hit the cache;
//! 3. interval join of the file with itself: each payment with the same user's
//!    payments of the 10 seconds before it (both inputs read; events = 2 × rows).
//!
//! Each figure is input events per second of wall time.

use std::path::Path;

use super::{generate, pg_admin, produce, report, run_pipeline};

/// Users in the benchmark table and file (user i is `{i mod 10}{i:07}-user`).
const USERS: u32 = 100_000;

/// Runs the three join benchmarks over files in `dir`; the table is produced to a fresh
/// topic of `bootstrap`, and a scratch database is created (and dropped) on `postgres`.
///
/// Errors: a file cannot be generated, a service is unreachable, or `eddy run` fails.
pub async fn joins(dir: &Path, rows: u64, bootstrap: &str, postgres: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let tx = dir.join(format!("transactions-{rows}-100000-users.json"));
    generate(&tx, "transactions", rows, USERS)?;
    let suffix = format!("{:08x}", rand::random::<u32>());
    let ids: Vec<String> = (0..USERS).map(|i| format!("{}{i:07}-user", i % 10)).collect();

    // 1. The users table on Kafka, keyed by id.
    let topic = format!("bench-users-{suffix}");
    let records: Vec<(String, String)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), format!(r#"{{"TIER":"t{}","CREDIT_LIMIT":{}}}"#, i % 4, 1000 + i % 500)))
        .collect();
    produce(bootstrap, &topic, &records).await?;
    let sql = format!(
        "CREATE TABLE users (id VARCHAR PRIMARY KEY, tier VARCHAR, credit_limit DOUBLE) \
         WITH (kafka_topic='{topic}', value_format='json');\n\
         CREATE STREAM tx (user_id VARCHAR, amount DOUBLE, paid_at VARCHAR) \
         WITH ('connector'='filesystem', 'path'='{}', 'format'='json');\n\
         CREATE TABLE out (user_id VARCHAR, amount DOUBLE, tier VARCHAR, credit_limit DOUBLE) WITH ('connector'='blackhole');\n\
         INSERT INTO out SELECT tx.user_id, tx.amount, users.tier, users.credit_limit FROM tx JOIN users ON tx.user_id = users.id;\n",
        tx.display()
    );
    // `eddy run` reads the table from the broker of EDDY_BOOTSTRAP_SERVERS (inherited).
    let (elapsed, peak) = run_pipeline(&sql, &dir)?;
    report("stream-table join, 100,000-row Kafka table", rows as usize, elapsed);
    println!("  peak RSS {:.0} MB", peak as f64 / 1_048_576.0);

    // 2. The same users in PostgreSQL, through the JDBC lookup join with a partial cache.
    let db = format!("eddy_bench_joins_{suffix}");
    let admin = pg_admin(postgres).await?;
    admin.batch_execute(&format!("CREATE DATABASE {db}")).await?;
    let result = lookup(&dir, &tx, rows, postgres, &db, &ids).await;
    admin.batch_execute(&format!("DROP DATABASE {db}")).await?;
    result?;

    // 3. The interval join of the file with itself.
    let table = |name: &str| {
        format!(
            "CREATE TABLE {name} (user_id VARCHAR, amount DOUBLE, paid_at VARCHAR, ts AS TO_TIMESTAMP_LTZ(paid_at), \
             WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector'='filesystem', 'path'='{}', 'format'='json');\n",
            tx.display()
        )
    };
    let sql = table("a")
        + &table("b")
        + "CREATE TABLE out (user_id VARCHAR, amount DOUBLE, earlier DOUBLE) WITH ('connector'='blackhole');\n\
           INSERT INTO out SELECT a.user_id, a.amount, b.amount FROM a JOIN b \
           ON a.user_id = b.user_id AND b.ts BETWEEN a.ts - INTERVAL '10' SECOND AND a.ts;\n";
    let (elapsed, peak) = run_pipeline(&sql, &dir)?;
    report("interval join, self, 10 s bound (2 inputs)", 2 * rows as usize, elapsed);
    println!("  peak RSS {:.0} MB", peak as f64 / 1_048_576.0);
    Ok(())
}

/// The PostgreSQL lookup join benchmark against database `db` (filled here with `ids`).
async fn lookup(dir: &Path, tx: &Path, rows: u64, postgres: &str, db: &str, ids: &[String]) -> anyhow::Result<()> {
    let client = pg_admin_db(postgres, db).await?;
    client.batch_execute("CREATE TABLE customers (id VARCHAR PRIMARY KEY, tier VARCHAR, credit_limit DOUBLE PRECISION)").await?;
    for chunk in ids.chunks(5_000) {
        let values: Vec<String> = chunk.iter().enumerate().map(|(i, id)| format!("('{id}', 't{}', {})", i % 4, 1000 + i % 500)).collect();
        client.batch_execute(&format!("INSERT INTO customers VALUES {}", values.join(","))).await?;
    }
    let host = postgres.trim_start_matches("postgres://").rsplit('@').next().unwrap_or("127.0.0.1:5432");
    let sql = format!(
        "CREATE TABLE customers (id STRING, tier STRING, credit_limit DOUBLE, PRIMARY KEY (id) NOT ENFORCED) WITH (\
         'connector'='jdbc', 'url'='jdbc:postgresql://{host}/{db}', 'table-name'='customers', 'username'='postgres', \
         'lookup.cache'='PARTIAL', 'lookup.partial-cache.max-rows'='95000');\n\
         CREATE TABLE tx (user_id STRING, amount DOUBLE, paid_at STRING, proc_time AS PROCTIME()) \
         WITH ('connector'='filesystem', 'path'='{}', 'format'='json');\n\
         CREATE TABLE out (user_id STRING, amount DOUBLE, tier STRING, credit_limit DOUBLE) WITH ('connector'='blackhole');\n\
         INSERT INTO out SELECT tx.user_id, tx.amount, c.tier, c.credit_limit FROM tx \
         JOIN customers FOR SYSTEM_TIME AS OF tx.proc_time AS c ON tx.user_id = c.id;\n",
        tx.display()
    );
    let (elapsed, peak) = run_pipeline(&sql, dir)?;
    report("PostgreSQL lookup join, cache of 95% of 100,000 keys", rows as usize, elapsed);
    println!("  peak RSS {:.0} MB", peak as f64 / 1_048_576.0);
    Ok(())
}

/// A client of database `db` on `postgres`.
async fn pg_admin_db(postgres: &str, db: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(&format!("{postgres}/{db}"), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}
