//! `POST /ksql`: `{"ksql": "...", "streamsProperties": {...}}` → an array of entities.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use eddy_engine::{split_statements, StatementKind};
use serde_json::Value;

use super::{bad_request, json_response, statement_request, AppState};
use crate::entity::{entities, error_entity, SERVER_ERROR};

/// Longest time each of a request's topic creations, deletions and listings may take
/// before the lock is taken (each Kafka request is also bounded by the request timeout).
pub const PREFLIGHT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Most statements one `/ksql` request may hold.
pub const MAX_STATEMENTS_PER_REQUEST: usize = 1_000;

pub(crate) async fn ksql(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    // `${VAR}` is not substituted here: the server's environment is not its clients'
    // to read (the shell substitutes its user's variables before sending).
    let (sql, mut session) = match statement_request(&body, "ksql", "streamsProperties") {
        Ok(r) => r,
        Err(bad) => return bad.response(&headers),
    };
    if let Ok(parsed) = split_statements(&sql) {
        // One request holds the engine while it runs: a bound keeps other clients' wait short.
        if parsed.len() > MAX_STATEMENTS_PER_REQUEST {
            return bad_request(
                &headers,
                "",
                format!(
                    "too many statements: {} in one request, more than the limit of {MAX_STATEMENTS_PER_REQUEST}; send them in several requests",
                    parsed.len()
                ),
            );
        }
        // ksqlDB serves push queries on their own endpoints, which stream.
        // ksqlDB's answer, code and text (error 40002), which its clients recognise.
        if let Some(push) = parsed.iter().find(|p| p.kind == StatementKind::PushQuery) {
            let body = serde_json::json!({
                "@type": "statement_error",
                "error_code": crate::entity::QUERY_ENDPOINT_ERROR,
                "message": "The following statement types should be issued to the websocket endpoint '/query':\n\t* PRINT\n\t* SELECT",
                "statementText": push.text,
                "entities": [],
            });
            return json_response(&headers, StatusCode::BAD_REQUEST, &body);
        }
        // As in ksqlDB, RUN SCRIPT reads a file where the user is, not on the server.
        if let Some(run) = parsed.iter().find(|p| matches!(p.kind, StatementKind::RunScript { .. })) {
            return bad_request(
                &headers,
                &run.text,
                "RUN SCRIPT reads a file on the client: run it in `eddy shell --server ...`, which sends the file's statements".into(),
            );
        }
    }
    // Topics are created and deleted before the lock is taken (ksqlDB's injectors do
    // it in the request's thread too): a silent broker delays this request only.
    let preflight = state.engine.lock().await.preflight(&sql);
    let prepared = preflight.run(PREFLIGHT_TIMEOUT).await;
    let mut engine = state.engine.lock().await;
    let outcome = engine.execute_prepared(&sql, &mut session, prepared).await;
    let sequence = engine.command_sequence().map_or(-1, |s| s as i64);
    drop(engine);
    match outcome {
        Ok(results) => {
            let entities: Vec<Value> = results.iter().flat_map(|e| entities(e, sequence)).collect();
            if let Ok(mut commands) = state.commands.lock() {
                commands.record(&entities);
            }
            json_response(&headers, StatusCode::OK, &Value::Array(entities))
        }
        Err(e) => {
            let (code, mut body) = error_entity(&e.statement, &e.error);
            // As in ksqlDB, the entities of the statements applied before the failing one.
            body["entities"] = Value::Array(e.applied.iter().flat_map(|a| entities(a, sequence)).collect());
            let status = if code == SERVER_ERROR { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::BAD_REQUEST };
            json_response(&headers, status, &body)
        }
    }
}
