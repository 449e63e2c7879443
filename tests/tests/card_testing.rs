//! SCENARIOS.md §4 end to end: `eddy run queries/notify` against the real broker, the
//! real PostgreSQL and a real HTTP receiver. Payments of five cards go to a fresh topic:
//!
//! - (a) three payments of 1.00, then 900.00 abroad, on a 20-day-old card: blocked;
//! - (b) the same at home on a 4-year-old card whose average is 700.00: scored, not blocked;
//! - (c) two small payments, then a large one: no match;
//! - (d) the large payment 11 minutes after the first small one: no match;
//! - (f) an attempt on a card without a profile: scored with the model's missing-value
//!   replacements, not dropped;
//! - (e) the webhook is down for 30 s while (a)'s block is due, then fails once more with
//!   500: the block arrives once the receiver is back, and every request carries the same
//!   idempotency key, so a receiver deduplicating on it accepts the attempt once.
//!
//! The expected probabilities are the model's own: the logistic regression of
//! `models/card_fraud.pmml` (intercept and coefficients over the standardized features,
//! the medians for missing values), computed outside Eddy.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use eddy_e2e::*;

/// (a)'s probability: small_count 3, ratio 900 / 45 = 20, 20 days, abroad.
const P_A: f64 = 0.9930374825024141;
/// (b)'s: small_count 3, ratio 900 / 700, 1,460 days, at home.
const P_B: f64 = 0.0015504399956138295;
/// (f)'s: small_count 3, the rest the model's medians (ratio 1.6555..., 1,511.5 days, abroad).
const P_F: f64 = 0.020690108215558344;

/// One payment: `(card, payment id, merchant country, amount, paid_at)`.
fn payment(card: &str, id: &str, country: &str, amount: f64, at: &str) -> (String, String) {
    (
        card.to_string(),
        format!(
            r#"{{"payment_id": "{id}", "card_id": "{card}", "merchant_country": "{country}", "amount": {amount:.2}, "paid_at": "2026-01-01T{at}Z"}}"#
        ),
    )
}

fn payments() -> Vec<(String, String)> {
    let mut all = Vec::new();
    for (card, home_or_abroad) in [("c-a", "US"), ("c-b", "NL"), ("c-f", "US")] {
        for (i, at) in ["10:00:00", "10:00:10", "10:00:20"].iter().enumerate() {
            all.push(payment(card, &format!("{card}-s{i}"), "NL", 1.0, at));
        }
        all.push(payment(card, &format!("{card}-large"), home_or_abroad, 900.0, "10:01:00"));
    }
    // (c) two small ones only.
    all.push(payment("c-c", "c-c-s0", "NL", 1.0, "10:00:00"));
    all.push(payment("c-c", "c-c-s1", "NL", 1.5, "10:00:10"));
    all.push(payment("c-c", "c-c-large", "US", 900.0, "10:01:00"));
    // (d) the large one 11 minutes after the first small one.
    for (i, at) in ["10:00:00", "10:00:30", "10:01:00"].iter().enumerate() {
        all.push(payment("c-d", &format!("c-d-s{i}"), "NL", 1.0, at));
    }
    all.push(payment("c-d", "c-d-large", "US", 900.0, "10:11:00"));
    all
}

/// A row of card_testing_attempts: payment, card, small payments, large amount,
/// merchant country, home country, probability.
type Scored = (String, String, i64, f64, String, Option<String>, f64);

/// One request the receiver saw: the status it answered, the idempotency key, the body.
type Seen = (u16, String, String);

/// The bank's receiver on `port`: answers 500 to its first request, 200 after.
async fn receiver(port: u16) -> Arc<Mutex<Vec<Seen>>> {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/block-card",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                let status = if log.is_empty() { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
                log.push((status.as_u16(), key, String::from_utf8_lossy(&body).to_string()));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap_or_else(|e| panic!("bind: {e}"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_detected_enriched_scored_and_acted_on() {
    let payments_topic = unique("card-payments");
    let db = TestDb::create().await;
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE card_profiles (card_id text PRIMARY KEY, home_country text, account_age_days integer, avg_amount double precision);
             INSERT INTO card_profiles VALUES ('c-a', 'NL', 20, 45.0), ('c-b', 'NL', 1460, 700.0), ('c-c', 'NL', 20, 45.0), ('c-d', 'NL', 20, 45.0);",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let created = Command::new(eddy_bin())
        .args(["topics", "create", &payments_topic, "--partitions", "2"])
        .env("EDDY_BOOTSTRAP_SERVERS", bootstrap())
        .status();
    assert!(created.is_ok_and(|s| s.success()), "cannot create {payments_topic}");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/block-card");
    let (attempts, features, blocked) =
        (format!("{payments_topic}-attempts"), format!("{payments_topic}-features"), format!("{payments_topic}-blocked"));
    let app = unique("card-testing");
    let env = [
        ("EDDY_CARD_PAYMENTS_TOPIC", payments_topic.as_str()),
        ("EDDY_CARD_ATTEMPTS_TOPIC", attempts.as_str()),
        ("EDDY_CARD_FEATURES_TOPIC", features.as_str()),
        ("EDDY_BLOCKED_CARDS_TOPIC", blocked.as_str()),
        ("EDDY_BLOCK_CARD_URL", url.as_str()),
        ("EDDY_POSTGRES_URL", db.url.as_str()),
        ("EDDY_APPLICATION_ID", app.as_str()),
        ("EDDY_CHECKPOINT_INTERVAL", "2s"),
    ];
    let dir = scratch_dir("eddy-card-testing");
    let mut eddy = Eddy::run(&dir, &[Path::new("queries/notify")], &env);

    let all = payments();
    let records: Vec<(Option<i32>, Option<&str>, &str)> = all.iter().map(|(k, v)| (Some(0), Some(k.as_str()), v.as_str())).collect();
    produce_to(&payments_topic, &records).await;
    // An hour later on both partitions: the watermark passes every case.
    let sentinel = |p: i32| payment("c-z", &format!("z{p}"), "NL", 10.0, "11:00:00").1;
    let (s0, s1) = (sentinel(0), sentinel(1));
    produce_to(&payments_topic, &[(Some(0), Some("c-z"), s0.as_str()), (Some(1), Some("c-z"), s1.as_str())]).await;

    // Every scored attempt in PostgreSQL, (f) without a profile included.
    let deadline = Instant::now() + Duration::from_secs(120);
    while db.scalar("SELECT count(*) FROM card_testing_attempts").await != 3 {
        assert!(eddy.is_running(), "eddy run stopped:\n{}", eddy.log_text());
        assert!(Instant::now() < deadline, "no three scored attempts: {:?}\n{}", eddy.status_queries(), eddy.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT payment_id, card_id, small_count, large_amount, merchant_country, home_country, probability FROM card_testing_attempts ORDER BY payment_id",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<Scored> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6))).collect();
    let want =
        [("c-a-large", "c-a", "US", Some("NL"), P_A), ("c-b-large", "c-b", "NL", Some("NL"), P_B), ("c-f-large", "c-f", "US", None, P_F)];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0.as_str(), g.1.as_str(), g.2, g.3, g.4.as_str(), g.5.as_deref()), (w.0, w.1, 3, 900.0, w.2, w.3), "{got:?}");
        assert!((g.6 - w.4).abs() < 1e-9, "{} scored {} where the model gives {}", g.0, g.6, w.4);
    }

    // (a) alone is blocked on Kafka.
    let blocked_records = consume(&blocked, 1, Duration::from_secs(60)).await;
    assert_eq!(blocked_records.len(), 1, "{blocked_records:?}");
    assert_eq!(blocked_records[0].0.as_deref(), Some("c-a"));
    let value: serde_json::Value = serde_json::from_str(&blocked_records[0].1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value["payment_id"], "c-a-large");
    assert!((value["probability"].as_f64().unwrap_or_default() - P_A).abs() < 1e-9, "{value}");

    // (e) The receiver is down: the webhook query retries for 30 s, then the receiver
    // comes up and fails once more before it accepts.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let retrying = eddy.status_queries().iter().any(|q| q["status"].to_string().contains("RETRYING"));
        if retrying {
            break;
        }
        assert!(Instant::now() < deadline, "the webhook query never showed RETRYING: {:?}", eddy.status_queries());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    let seen = receiver(port).await;
    wait_until("the block to be accepted", Duration::from_secs(90), || {
        let accepted = seen.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|s| s.0 == 200);
        async move { accepted }
    })
    .await;
    // Later checkpoints send nothing more.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let statuses: Vec<u16> = seen.iter().map(|s| s.0).collect();
    assert_eq!(statuses, [500, 200], "{seen:?}");
    assert_eq!(seen[0].1, seen[1].1, "a retry carries the same idempotency key: {seen:?}");
    assert_eq!(seen[0].1.len(), 32, "{seen:?}");
    let body: serde_json::Value = serde_json::from_str(&seen[1].2).unwrap_or_else(|e| panic!("{e}: {}", seen[1].2));
    assert_eq!(body["card_id"], "c-a", "{body}");
    assert_eq!(body["payment_id"], "c-a-large", "{body}");
    assert!((body["probability"].as_f64().unwrap_or_default() - P_A).abs() < 1e-9, "{body}");

    let status = eddy.terminate();
    assert!(status.success(), "eddy run exited with {status}");
    db.drop_db().await;
}
