//! ksqlDB's cluster endpoints: `GET /clusterStatus`, `GET /is_valid_property/<name>`,
//! `GET /status/<commandId>` and `POST /ksql/terminate`.
//!
//! Eddy is one node, so the cluster is this server; a command is applied when its
//! `/ksql` request answers, so its status is known from then on.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use eddy_engine::{ObjectKind, Session};
use serde_json::{json, Value};

use super::{json_response, AppState};

/// Command statuses kept for `/status/<commandId>` (the oldest are forgotten first).
const KEPT_COMMANDS: usize = 10_000;

/// The status of every recent command, by ksqlDB command id (`stream/`S`/create`).
#[derive(Default)]
pub(crate) struct CommandStatuses {
    statuses: HashMap<String, Value>,
    order: VecDeque<String>,
}

impl CommandStatuses {
    /// Records the `commandStatus` of every `currentStatus` entity of a `/ksql` answer.
    pub(crate) fn record(&mut self, entities: &[Value]) {
        for entity in entities {
            let (Some(id), Some(status)) = (entity["commandId"].as_str(), entity.get("commandStatus")) else { continue };
            if self.statuses.insert(id.to_string(), status.clone()).is_none() {
                self.order.push_back(id.to_string());
            }
            while self.order.len() > KEPT_COMMANDS {
                if let Some(old) = self.order.pop_front() {
                    self.statuses.remove(&old);
                }
            }
        }
    }
}

/// `GET /clusterStatus`: this server, alive, with no standby or lag (one node).
pub(crate) async fn cluster_status(headers: HeaderMap) -> Response {
    let host = headers.get(axum::http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost").to_string();
    let (host_name, port) = match host.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse::<u16>().unwrap_or(80)),
        None => (host.clone(), 80),
    };
    let now = chrono::Utc::now().timestamp_millis();
    let body = json!({"clusterStatus": {
        format!("{host_name}:{port}"): {
            "hostAlive": true,
            "lastStatusUpdateMs": now,
            "activeStandbyPerQuery": {},
            "hostStoreLags": {"stateStoreLags": {}, "updateTimeMs": now},
        }
    }});
    json_response(&headers, StatusCode::OK, &body)
}

/// `GET /is_valid_property/<name>`: `true`, or ksqlDB's error 40000 with its text.
pub(crate) async fn is_valid_property(headers: HeaderMap, Path(name): Path<String>) -> Response {
    if Session::is_known_property(&name) {
        return json_response(&headers, StatusCode::OK, &Value::Bool(true));
    }
    let body = json!({"@type": "generic_error", "error_code": 40000,
        "message": format!("Not recognizable as ksql, streams, consumer, or producer property: '{name}'")});
    json_response(&headers, StatusCode::BAD_REQUEST, &body)
}

/// `GET /status/<commandId>`: the command's `commandStatus`, or ksqlDB's 404.
pub(crate) async fn command_status(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let status = state.commands.lock().ok().and_then(|c| c.statuses.get(&id).cloned());
    match status {
        Some(status) => json_response(&headers, StatusCode::OK, &status),
        None => {
            let body = json!({"@type": "generic_error", "error_code": 40400, "message": format!("Command not found: {id}")});
            json_response(&headers, StatusCode::NOT_FOUND, &body)
        }
    }
}

/// `POST /ksql/terminate` (`{"deleteTopicList": ["topic", ...]}`): terminates every
/// persistent query and drops every stream and table, deleting the topics named in
/// `deleteTopicList` (exact names; ksqlDB also takes patterns, which Eddy refuses rather
/// than delete more than meant). The catalog is then empty, as after ksqlDB's.
pub(crate) async fn terminate_cluster(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let request: Value = if body.is_empty() { json!({}) } else { serde_json::from_slice(&body).unwrap_or(Value::Null) };
    let Some(object) = request.as_object() else {
        let body = json!({"@type": "generic_error", "error_code": 40000, "message": "the body must be a JSON object: {\"deleteTopicList\": [...]}"});
        return json_response(&headers, StatusCode::BAD_REQUEST, &body);
    };
    let mut delete: Vec<String> = Vec::new();
    for topic in object.get("deleteTopicList").and_then(Value::as_array).into_iter().flatten() {
        match topic.as_str() {
            Some(t) if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) => {
                delete.push(t.to_string())
            }
            _ => {
                let body = json!({"@type": "generic_error", "error_code": 40000,
                    "message": format!("deleteTopicList holds {topic}, which is not a topic name: Eddy deletes topics named exactly, not by pattern")});
                return json_response(&headers, StatusCode::BAD_REQUEST, &body);
            }
        }
    }
    let mut sql = String::from("TERMINATE ALL;\n");
    {
        let engine = state.engine.lock().await;
        for r in engine.catalog().relations() {
            let kind = if r.kind == ObjectKind::Stream { "STREAM" } else { "TABLE" };
            let topic = match &r.connector {
                eddy_engine::options::ConnectorOptions::Kafka(k) => Some(k.topic.clone()),
                _ => None,
            };
            let delete_topic = if topic.is_some_and(|t| delete.contains(&t)) { " DELETE TOPIC" } else { "" };
            sql.push_str(&format!("DROP {kind} IF EXISTS \"{}\"{delete_topic};\n", r.name.replace('"', "\"\"")));
        }
    }
    let preflight = state.engine.lock().await.preflight(&sql);
    let prepared = preflight.run(super::ksql::PREFLIGHT_TIMEOUT).await;
    let mut engine = state.engine.lock().await;
    let outcome = engine.execute_prepared(&sql, &mut Session::default(), prepared).await;
    drop(engine);
    match outcome {
        Ok(_) => {
            let body = json!([{"@type": "currentStatus", "statementText": "TERMINATE CLUSTER", "commandId": "cluster/`CLUSTER`/terminate",
                "commandStatus": {"status": "SUCCESS", "message": "Cluster terminated", "queryId": null}, "commandSequenceNumber": -1, "warnings": []}]);
            json_response(&headers, StatusCode::OK, &body)
        }
        Err(e) => {
            let (_, body) = crate::entity::error_entity(&e.statement, &e.error);
            json_response(&headers, StatusCode::INTERNAL_SERVER_ERROR, &body)
        }
    }
}
