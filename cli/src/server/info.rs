//! `GET /info`, `GET /healthcheck` and `GET /metrics`.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{json_response, AppState};

pub(crate) async fn info(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let body = json!({"KsqlServerInfo": {
        "version": env!("CARGO_PKG_VERSION"),
        // Empty until the broker has answered (it is asked in the background).
        "kafkaClusterId": state.cluster_id.get().cloned().unwrap_or_default(),
        "ksqlServiceId": state.service_id,
        "serverStatus": "RUNNING",
    }});
    json_response(&headers, StatusCode::OK, &body)
}

/// How long `/healthcheck` waits for the engine before answering from its last count.
const HEALTH_LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

pub(crate) async fn healthcheck(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    // The health check answers even while a long request holds the engine: after a
    // short wait it reports the failed queries it counted last time.
    let failed = match tokio::time::timeout(HEALTH_LOCK_WAIT, state.engine.lock()).await {
        Ok(engine) => {
            let failed = engine.query_infos().iter().filter(|q| matches!(q.status, eddy_engine::QueryStatus::Failed(_))).count();
            state.failed_queries.store(failed, std::sync::atomic::Ordering::Relaxed);
            failed
        }
        Err(_) => state.failed_queries.load(std::sync::atomic::Ordering::Relaxed),
    };
    let body = json!({
        "isHealthy": true,
        "details": {"metastore": {"isHealthy": true}, "queries": {"isHealthy": failed == 0, "failed": failed}},
        "ksqlServiceId": state.service_id,
    });
    json_response(&headers, StatusCode::OK, &body)
}

/// Per-query counters in Prometheus' text format (version 0.0.4).
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let infos = state.engine.lock().await.query_infos();
    let now = chrono::Utc::now().timestamp_millis();
    let mut out = String::new();
    type Get = fn(&eddy_engine::QueryInfo, i64) -> Option<f64>;
    let series: [(&str, &str, &str, Get); 9] = [
        ("eddy_query_rows_in_total", "counter", "Records read by the query's source.", |q, _| Some(q.metrics.rows_in as f64)),
        ("eddy_query_rows_out_total", "counter", "Rows written by the query's sink.", |q, _| Some(q.metrics.rows_out as f64)),
        ("eddy_query_malformed_total", "counter", "Records that did not decode.", |q, _| Some(q.metrics.malformed as f64)),
        ("eddy_query_late_rows_total", "counter", "Rows that arrived after their window closed.", |q, _| Some(q.metrics.late_rows as f64)),
        ("eddy_query_consumer_lag", "gauge", "Records in the source topic not read yet.", |q, _| q.metrics.consumer_lag.map(|l| l as f64)),
        ("eddy_query_state_bytes", "gauge", "Approximate bytes of operator state.", |q, _| Some(q.metrics.state_bytes as f64)),
        ("eddy_query_checkpoint_age_seconds", "gauge", "Seconds since the query last committed its offsets.", |q, now| {
            q.metrics.last_commit_ms.map(|c| (now - c).max(0) as f64 / 1000.0)
        }),
        ("eddy_query_running", "gauge", "1 while the query runs, 0 once it stopped or failed.", |q, _| {
            Some(if matches!(q.status, eddy_engine::QueryStatus::Running | eddy_engine::QueryStatus::Retrying(_)) { 1.0 } else { 0.0 })
        }),
        ("eddy_query_watermark_ms", "gauge", "The query's event-time watermark (ms since the epoch).", |q, _| {
            q.metrics.watermark.map(|w| w as f64)
        }),
    ];
    for (name, kind, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for q in &infos {
            if let Some(v) = get(q, now) {
                let _ = writeln!(out, "{name}{{query=\"{}\",type=\"{}\"}} {v}", q.id, q.kind);
            }
        }
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
