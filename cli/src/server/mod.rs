//! `eddy server`: ksqlDB's REST API over one embedded engine (docs/DESIGN.md, control plane).
//!
//! - `POST /ksql`: statements; answers an array of entities ([`crate::entity`]);
//! - `POST /query-stream`: a push query; a header, then one JSON array per row;
//! - `POST /query`: the older chunked form of a push query;
//! - `POST /close-query`: stops a push query;
//! - `GET /info`, `GET /healthcheck`, `GET /metrics` (Prometheus text).
//!
//! Every request has its own session (its `streamsProperties`); the engine is shared
//! behind one lock, held while a statement runs, never while rows stream. Bodies are
//! limited to 1 MiB (413 beyond). With `--basic-auth-file`, every route but
//! `/healthcheck` needs HTTP Basic credentials from that file.

mod cluster;
mod guard;
mod info;
mod inserts;
mod ksql;
pub(crate) mod push;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use eddy_engine::Engine;
use eddy_engine::QueryStopper;
use serde_json::Value;
use tokio::signal::unix::{signal, SignalKind};

use crate::settings::Settings;

/// Largest request body (bytes); larger ones get 413.
pub const BODY_LIMIT: usize = 1 << 20;

/// ksqlDB's versioned JSON content type.
pub const KSQL_V1_JSON: &str = "application/vnd.ksql.v1+json";

/// Arguments of `eddy server`.
#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8088")]
    listen: SocketAddr,
    /// Directory of the durable catalog (the command log).
    #[arg(long, env = "EDDY_STATE_DIR", default_value = ".eddy")]
    state_dir: PathBuf,
    /// Prefix of the Kafka consumer groups of the queries, like ksqlDB's service id.
    #[arg(long, env = "EDDY_APPLICATION_ID", default_value = "eddy")]
    application_id: String,
    /// A file of `user:password` lines; when given, requests need HTTP Basic credentials.
    #[arg(long)]
    basic_auth_file: Option<PathBuf>,
    /// A name clients reach this server by (repeatable): requests must name the server
    /// in their `Host` header by an IP address, `localhost` or one of these, so that a
    /// web page cannot drive it through a name of its own (DNS rebinding).
    #[arg(long = "server-name")]
    server_names: Vec<String>,
    /// A directory whose files statements may read and write with the filesystem
    /// connector (repeatable; links are followed before the check). None by default:
    /// clients reach no file.
    #[arg(long = "allow-path")]
    allow_paths: Vec<PathBuf>,
    /// A host statements may name for Kafka or PostgreSQL: `host`, `host:port` or
    /// `*.domain` (repeatable). The hosts of --bootstrap-servers and --postgres-url
    /// are always allowed.
    #[arg(long = "allow-host")]
    allow_hosts: Vec<String>,
}

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) engine: Arc<tokio::sync::Mutex<Engine>>,
    /// Running push queries by id, to stop them on `/close-query` or shutdown.
    pub(crate) pushes: Mutex<HashMap<String, QueryStopper>>,
    pub(crate) settings: Settings,
    pub(crate) service_id: String,
    /// The Kafka cluster's id for `/info`, once the broker has told it.
    pub(crate) cluster_id: std::sync::OnceLock<String>,
    /// Failed queries at the last health check that got the engine.
    pub(crate) failed_queries: std::sync::atomic::AtomicUsize,
    /// Accepted credentials; `None`: no auth.
    credentials: Option<guard::Credentials>,
    /// How long a client that keeps failing authentication waits.
    failures: guard::FailureDelay,
    /// Names accepted in the `Host` header besides IP addresses and `localhost`.
    server_names: Vec<String>,
    /// Recent commands' statuses for `/status/<commandId>`.
    pub(crate) commands: Mutex<cluster::CommandStatuses>,
}

/// Runs the server until SIGINT or SIGTERM; returns the exit code.
pub async fn server(settings: &Settings, args: ServerArgs) -> anyhow::Result<u8> {
    let credentials = args.basic_auth_file.as_deref().map(guard::Credentials::read).transpose()?;
    // Every statement is untrusted here: files and hosts stay within what the operator allowed.
    let mut hosts = settings.own_hosts();
    hosts.extend(args.allow_hosts.iter().cloned());
    let sandbox = eddy_connectors::sandbox::Sandbox::new(&args.allow_paths, hosts)?;
    let opened = crate::state::open(settings, &args.state_dir, &args.application_id, Some(sandbox))?;
    let (engine, lock, warnings, (log, log_path, commands)) = opened.take_log();
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let engine = Arc::new(tokio::sync::Mutex::new(engine));
    // The replay holds the engine from before the first request: statements wait for
    // it, while /healthcheck and /info answer from the start.
    let mut replaying = engine.clone().lock_owned().await;
    let state = Arc::new(AppState {
        engine,
        pushes: Mutex::new(HashMap::new()),
        settings: settings.clone(),
        service_id: args.application_id.clone(),
        cluster_id: std::sync::OnceLock::new(),
        failed_queries: Default::default(),
        credentials,
        failures: Default::default(),
        server_names: args.server_names.clone(),
        commands: Mutex::default(),
    });
    let app = router(state.clone());
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("eddy server listening on http://{}", args.listen);
    tokio::spawn(async move {
        for w in crate::state::Opened::replay_into(&mut replaying, log, &log_path, &commands).await {
            eprintln!("warning: {w}");
        }
    });
    // /info's kafkaClusterId, asked of the broker in the background until it answers.
    let info_state = state.clone();
    tokio::spawn(async move {
        let config = eddy_connectors::kafka::KafkaConfig {
            bootstrap_servers: info_state.settings.bootstrap_servers.clone(),
            properties: info_state.settings.kafka_properties.iter().cloned().collect(),
        };
        loop {
            match eddy_connectors::kafka::cluster_id(&config).await {
                Ok(id) => {
                    let _ = info_state.cluster_id.set(id);
                    return;
                }
                Err(e) => tracing::debug!(error = %e, "cannot read the Kafka cluster id yet"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        }
    });
    let shutdown_state = state.clone();
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                return std::future::pending().await;
            };
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            eprintln!("stopping: ending push queries");
            for (_, stopper) in shutdown_state.pushes.lock().map(|mut p| p.drain().collect::<Vec<_>>()).unwrap_or_default() {
                stopper.stop();
            }
        })
        .await
        .context("server failed")?;
    eprintln!("stopping: flushing sinks and committing offsets");
    let mut failed = false;
    let stopping = async { state.engine.lock().await.stop_all().await };
    match tokio::time::timeout(crate::run::SHUTDOWN_TIMEOUT, stopping).await {
        Ok(statuses) => {
            for (id, status) in statuses {
                if let eddy_engine::QueryStatus::Failed(e) = status {
                    eprintln!("query {id} failed: {e}");
                    failed = true;
                }
            }
        }
        Err(_) => {
            eprintln!("{}", crate::run::SHUTDOWN_TIMEOUT_MESSAGE);
            failed = true;
        }
    }
    drop(lock);
    Ok(if failed { 1 } else { 0 })
}

/// The routes.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ksql", post(ksql::ksql))
        .route("/query-stream", post(push::query_stream))
        .route("/query", post(push::query))
        .route("/close-query", post(push::close_query))
        .route("/inserts-stream", post(inserts::inserts_stream))
        .route("/info", get(info::info))
        .route("/clusterStatus", get(cluster::cluster_status))
        .route("/is_valid_property/{name}", get(cluster::is_valid_property))
        .route("/status/{*command}", get(cluster::command_status))
        .route("/ksql/terminate", post(cluster::terminate_cluster))
        .route("/metrics", get(info::metrics))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authenticate))
        .route("/healthcheck", get(info::healthcheck))
        .layer(axum::middleware::from_fn(refuse_non_json_bodies))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(refuse_large_bodies))
        .layer(axum::middleware::from_fn_with_state(state.clone(), refuse_foreign_hosts))
        .with_state(state)
}

/// Refuses a body whose `Content-Length` exceeds [`BODY_LIMIT`] before reading it, so
/// a client waiting for `100 Continue` gets the 413 without sending the body (a chunked
/// body is cut at the limit by `DefaultBodyLimit`, also with 413).
async fn refuse_large_bodies(request: Request, next: Next) -> Response {
    let length = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if length.is_some_and(|l| l > BODY_LIMIT) {
        let body = serde_json::json!({"@type": "generic_error", "error_code": 41300, "message": format!("the request body is larger than {BODY_LIMIT} bytes")});
        return (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response();
    }
    next.run(request).await
}

async fn authenticate(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(credentials) = &state.credentials {
        let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let client = guard::client_ip(&request);
        if !credentials.accepts(given) {
            if let Some(ip) = client {
                tokio::time::sleep(state.failures.failed(ip)).await;
            }
            let body = serde_json::json!({"@type": "generic_error", "error_code": 40100, "message": "unauthorized: give HTTP Basic credentials from the server's --basic-auth-file"});
            let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"eddy\""));
            return response;
        }
        if let Some(ip) = client {
            state.failures.succeeded(ip);
        }
    }
    next.run(request).await
}

/// Refuses a request whose `Host` does not name this server (see [`guard::host_allowed`]).
async fn refuse_foreign_hosts(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if !guard::host_allowed(host, &state.server_names) {
        let body = serde_json::json!({"@type": "generic_error", "error_code": 40300, "message": format!(
            "forbidden: the Host header {:?} does not name this server; reach it by an IP address or localhost, or start it with --server-name", host.unwrap_or_default()
        )});
        drain(request).await;
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    next.run(request).await
}

/// Reads and drops a refused request's body (at most [`BODY_LIMIT`] bytes, 5 s), so the
/// connection stays usable for the client's next request: a body left unread can make
/// the server close a keep-alive connection the client then reuses ("peer disconnected").
async fn drain(request: Request) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), axum::body::to_bytes(request.into_body(), BODY_LIMIT)).await;
}

/// Refuses a body that is not JSON (see [`guard::json_content_type`]) with 415.
async fn refuse_non_json_bodies(request: Request, next: Next) -> Response {
    let content_type = request.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if request.method() == axum::http::Method::POST && !guard::json_content_type(content_type) {
        let body = serde_json::json!({"@type": "generic_error", "error_code": 41500, "message": format!(
            "unsupported content type {:?}: send JSON (application/json or application/vnd.ksql.v1+json)", content_type.unwrap_or_default()
        )});
        drain(request).await;
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, axum::Json(body)).into_response();
    }
    next.run(request).await
}

/// A JSON response in the content type the client accepts: ksqlDB's
/// `application/vnd.ksql.v1+json` when asked for, else `application/json`.
pub(crate) fn json_response(headers: &HeaderMap, status: StatusCode, body: &Value) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let content_type = if accept.contains(KSQL_V1_JSON) { KSQL_V1_JSON } else { "application/json" };
    (status, [(header::CONTENT_TYPE, content_type)], body.to_string()).into_response()
}

/// A 400 with a `statement_error` entity (a malformed request or statement).
pub(crate) fn bad_request(headers: &HeaderMap, statement: &str, message: String) -> Response {
    let body = serde_json::json!({"@type": "statement_error", "error_code": crate::entity::STATEMENT_ERROR, "message": message, "statementText": statement, "entities": []});
    json_response(headers, StatusCode::BAD_REQUEST, &body)
}

/// A request that cannot be run: the statement (if any) and why; answered with 400.
pub(crate) struct BadRequest {
    statement: String,
    message: String,
}

impl BadRequest {
    fn new(statement: &str, message: String) -> BadRequest {
        BadRequest { statement: statement.to_string(), message }
    }

    /// The 400 `statement_error` response.
    pub(crate) fn response(self, headers: &HeaderMap) -> Response {
        bad_request(headers, &self.statement, self.message)
    }
}

/// The JSON of a request body.
///
/// Errors: the body is not JSON.
pub(crate) fn json_body(body: &[u8]) -> Result<Value, BadRequest> {
    serde_json::from_slice(body).map_err(|e| BadRequest::new("", format!("the request body is not JSON: {e}")))
}

/// The text field `field` of a request (`what` says what it holds, for the error).
///
/// Errors: the field is missing or not text.
pub(crate) fn text_field<'a>(request: &'a Value, field: &str, what: &str) -> Result<&'a str, BadRequest> {
    request.get(field).and_then(Value::as_str).ok_or_else(|| BadRequest::new("", format!("the request has no \"{field}\" field ({what})")))
}

/// A statement request (`/ksql`, `/query`, `/query-stream`): the statements' text from
/// `sql_field` and a session from the properties object in `properties_field`.
///
/// Errors: the body is not JSON, the text is missing, a property is unknown or invalid.
pub(crate) fn statement_request(
    body: &[u8],
    sql_field: &str,
    properties_field: &str,
) -> Result<(String, eddy_engine::Session), BadRequest> {
    let request = json_body(body)?;
    let text = text_field(&request, sql_field, "the statements, as text")?;
    let session = session_of(request.get(properties_field)).map_err(|e| BadRequest::new(text, e))?;
    Ok((text.to_string(), session))
}

/// The session of a request from its properties object (values as text).
pub(crate) fn session_of(properties: Option<&Value>) -> Result<eddy_engine::Session, String> {
    let pairs: Vec<(String, String)> = match properties {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    eddy_engine::Session::with_properties(pairs).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(500),
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// Any body up to 16 KiB: a request or a 400, never a panic.
        #[test]
        fn request_parser_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..16_384)) {
            let _ = statement_request(&body, "ksql", "streamsProperties");
        }

        /// Near-valid bodies: the fields present or not, of any JSON type, properties
        /// known and unknown; the text comes back unchanged when it is accepted.
        #[test]
        fn request_parser_on_near_valid_bodies(
            sql in prop_oneof![Just(Value::Null), Just(json!(1)), "\\PC{0,200}".prop_map(Value::String)],
            key in prop::sample::select(vec!["auto.offset.reset", "execution.checkpointing.interval", "nope", ""]),
            value in prop_oneof![Just(json!("earliest")), Just(json!("1s")), Just(json!(5)), Just(json!(null)), Just(json!([1]))],
        ) {
            let body = json!({"ksql": sql, "streamsProperties": {key: value}}).to_string();
            if let Ok((text, _)) = statement_request(body.as_bytes(), "ksql", "streamsProperties") {
                prop_assert_eq!(Some(text.as_str()), sql.as_str());
            }
        }
    }
}
