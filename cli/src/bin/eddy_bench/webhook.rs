//! The webhook sink's throughput (`--webhook`, no services needed): `eddy run` sends a
//! file of JSON rows to a receiver in this process (axum on 127.0.0.1, answering 200 at
//! once and counting rows), with `'sink.batch.max-rows'` 1 (one request per row), one
//! request at a time and 16 at once (`'sink.requests.max-inflight'`), and 500 (a JSON
//! array per request), timed from the start of `eddy run` to its exit after the
//! last row was acknowledged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;

/// Runs both sizes over `rows` rows in `dir`.
pub async fn webhook(dir: &std::path::Path, rows: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let data = dir.join("webhook_rows.json");
    let mut text = String::with_capacity(rows * 60);
    for i in 0..rows {
        text.push_str(&format!("{{\"card_id\": \"c-{}\", \"payment_id\": \"p-{i}\", \"probability\": 0.{:04}}}\n", i % 1000, i % 10_000));
    }
    std::fs::write(&data, text)?;
    let received = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let (r, q) = (received.clone(), requests.clone());
    let app = axum::Router::new().route(
        "/block-card",
        axum::routing::post(move |body: Bytes| {
            let (r, q) = (r.clone(), q.clone());
            async move {
                // A batch is a JSON array of objects: count its rows by their opening braces.
                let n = if body.first() == Some(&b'[') { body.iter().filter(|b| **b == b'{').count() as u64 } else { 1 };
                r.fetch_add(n, Ordering::Relaxed);
                q.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    for (batch, inflight) in [(1usize, 1usize), (1, 16), (500, 1)] {
        received.store(0, Ordering::Relaxed);
        requests.store(0, Ordering::Relaxed);
        let sql = format!(
            "CREATE STREAM scored (card_id VARCHAR, payment_id VARCHAR, probability DOUBLE) \
             WITH ('connector'='filesystem', 'path'='{}', 'format'='json');\n\
             CREATE TABLE block_card (card_id VARCHAR, payment_id VARCHAR, probability DOUBLE) \
             WITH ('connector'='webhook', 'url'='http://127.0.0.1:{port}/block-card', 'sink.batch.max-rows'='{batch}', 'sink.requests.max-inflight'='{inflight}');\n\
             INSERT INTO block_card SELECT card_id, payment_id, probability FROM scored;\n",
            data.display()
        );
        let dir = dir.to_path_buf();
        let (elapsed, _) = tokio::task::spawn_blocking(move || super::run_pipeline(&sql, &dir)).await??;
        let got = received.load(Ordering::Relaxed);
        anyhow::ensure!(got == rows as u64, "the receiver got {got} of {rows} rows");
        println!(
            "webhook sink, {batch:>3} rows per request, {inflight:>2} in flight: {rows} rows in {:>6} requests, {:>5.2} s, {:>9.0} rows/s (eddy run start to exit)",
            requests.load(Ordering::Relaxed),
            elapsed.as_secs_f64(),
            rows as f64 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}
