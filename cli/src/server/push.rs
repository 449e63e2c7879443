//! Push queries over HTTP: `POST /query-stream` (ksqlDB's HTTP/2-era API, also served
//! over HTTP/1.1), the older `POST /query`, and `POST /close-query`.
//!
//! Rows stream as they are produced. The query stops, and its resources are freed,
//! when its LIMIT is reached, when `/close-query` names it, or when the client goes
//! away: dropping the response body drops a guard that stops the query.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use eddy_engine::QueryStopper;
use eddy_engine::{split_statements, PushQuery, StatementKind, StatementResult};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::{bad_request, json_body, json_response, statement_request, text_field, AppState};
use crate::entity::{batch_rows, column_types, error_entity};

/// ksqlDB's line-delimited content type: one JSON document per line.
pub const DELIMITED: &str = "application/vnd.ksqlapi.delimited.v1";

/// Stops the push query when the response body is dropped (finished or disconnected).
struct PushGuard {
    id: String,
    stopper: QueryStopper,
    state: Arc<AppState>,
}

impl Drop for PushGuard {
    fn drop(&mut self) {
        self.stopper.stop();
        if let Ok(mut pushes) = self.state.pushes.lock() {
            pushes.remove(&self.id);
        }
        tracing::info!(query = %self.id, "push query ended");
    }
}

/// How rows are framed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `/query-stream`, delimited: header line, then one array per line.
    Delimited,
    /// `/query-stream` with `Accept: application/json`: one JSON array of them.
    JsonArray,
    /// `/query`: `[{"header":...},{"row":{"columns":[...]}},...]`, chunked.
    Legacy,
}

pub(crate) async fn query_stream(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let framing = if accept.contains("application/json") && !accept.contains(DELIMITED) { Framing::JsonArray } else { Framing::Delimited };
    start(state, headers, body, "sql", "properties", framing).await
}

pub(crate) async fn query(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    start(state, headers, body, "ksql", "streamsProperties", Framing::Legacy).await
}

pub(crate) async fn close_query(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let request = match json_body(&body) {
        Ok(r) => r,
        Err(bad) => return bad.response(&headers),
    };
    let id = match text_field(&request, "queryId", "the id of the push query to stop") {
        Ok(id) => id,
        Err(bad) => return bad.response(&headers),
    };
    let stopper = state.pushes.lock().ok().and_then(|mut p| p.remove(id));
    match stopper {
        Some(s) => {
            s.stop();
            StatusCode::OK.into_response()
        }
        None => bad_request(&headers, "", format!("no push query with id \"{id}\" is running")),
    }
}

async fn start(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Bytes,
    sql_field: &str,
    properties_field: &str,
    framing: Framing,
) -> Response {
    let (sql, mut session) = match statement_request(&body, sql_field, properties_field) {
        Ok(r) => r,
        Err(bad) => return bad.response(&headers),
    };
    let text = sql.as_str();
    match split_statements(&sql) {
        Ok(parsed) if parsed.len() == 1 && parsed[0].kind == StatementKind::PushQuery => {}
        Ok(_) => {
            return bad_request(
                &headers,
                text,
                "this endpoint runs one push query: SELECT ... EMIT CHANGES; send other statements to POST /ksql".into(),
            )
        }
        Err(e) => return bad_request(&headers, text, e.to_string()),
    }
    let outcome = state.engine.lock().await.execute(&sql, &mut session).await;
    let mut push = match outcome {
        Ok(mut executed) => match executed.pop().and_then(|mut e| e.results.pop()) {
            Some(StatementResult::PushQuery(p)) => p,
            _ => return bad_request(&headers, text, "the statement did not start a push query".into()),
        },
        Err(e) => {
            let (_, body) = error_entity(&e.statement, &e.error);
            return json_response(&headers, StatusCode::BAD_REQUEST, &body);
        }
    };
    // The query opens its source in its own task, without the engine's lock: an
    // unreachable broker delays this client only, which then gets the reason.
    if let Err(reason) = push.started().await {
        let error = eddy_engine::EngineError::Configuration(reason);
        let (_, body) = error_entity(text, &error);
        return json_response(&headers, StatusCode::BAD_REQUEST, &body);
    }
    if let Ok(mut pushes) = state.pushes.lock() {
        pushes.insert(push.id.clone(), push.stopper.clone());
    }
    let content_type = match framing {
        Framing::Delimited => DELIMITED,
        Framing::JsonArray | Framing::Legacy => "application/json",
    };
    let stream = row_stream(state, push, framing);
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], Body::from_stream(stream)).into_response()
}

/// The response body: the header, then the rows of each batch, framed.
fn row_stream(
    state: Arc<AppState>,
    push: PushQuery,
    framing: Framing,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    let PushQuery { id, schema, limit, rows, stopper, .. } = push;
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let types = column_types(&schema);
    let header = match framing {
        Framing::Legacy => {
            let columns: Vec<String> = names.iter().zip(&types).map(|(n, t)| format!("`{n}` {t}")).collect();
            json!({"header": {"queryId": id, "schema": columns.join(", ")}})
        }
        _ => json!({"queryId": id, "columnNames": names, "columnTypes": types}),
    };
    let first = match framing {
        Framing::Delimited => format!("{header}\n"),
        Framing::JsonArray | Framing::Legacy => format!("[{header}"),
    };
    let guard = PushGuard { id, stopper, state };
    struct Feed {
        rows: tokio::sync::mpsc::Receiver<arrow::record_batch::RecordBatch>,
        sent: usize,
        guard: Option<PushGuard>,
    }
    let feed = Feed { rows, sent: 0, guard: Some(guard) };
    let body = stream::unfold(feed, move |mut feed| async move {
        feed.guard.as_ref()?;
        match feed.rows.recv().await {
            Some(batch) => {
                let mut out = String::new();
                match batch_rows(&batch) {
                    Ok(rows) => {
                        feed.sent += rows.len();
                        for row in rows {
                            match framing {
                                Framing::Delimited => out.push_str(&format!("{}\n", Value::Array(row))),
                                Framing::JsonArray => out.push_str(&format!(",\n{}", Value::Array(row))),
                                Framing::Legacy => out.push_str(&format!(",\n{}", json!({"row": {"columns": row}}))),
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot encode push query rows"),
                }
                Some((Ok(Bytes::from(out)), feed))
            }
            None => {
                feed.guard = None;
                let tail = match framing {
                    Framing::Delimited => String::new(),
                    Framing::JsonArray => "]\n".to_string(),
                    Framing::Legacy if limit.is_some_and(|l| feed.sent >= l) => {
                        format!(",\n{}]\n", json!({"finalMessage": "Limit Reached"}))
                    }
                    Framing::Legacy => "]\n".to_string(),
                };
                Some((Ok(Bytes::from(tail)), feed))
            }
        }
    });
    stream::once(async move { Ok(Bytes::from(first)) }).chain(body)
}
