//! Where the shell's statements run: an embedded engine (the default) or an
//! `eddy server` reached over its REST API. Both answer with ksqlDB's JSON entities
//! ([`crate::entity`]) so the shell renders them the same way.

use std::collections::BTreeMap;
use std::time::Duration;

use eddy_engine::{split_statements, Engine, EngineError, Position, Session, StatementKind, StatementResult};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::entity::{batch_rows, entities};

/// A statement error as the shell shows it: message, position in the input, hint.
#[derive(Debug, Clone)]
pub struct ShellError {
    /// Lowercase primary message.
    pub message: String,
    /// Line and column in the input, if known.
    pub position: Option<Position>,
    /// How to fix it.
    pub hint: Option<String>,
}

impl ShellError {
    fn of(error: &EngineError) -> ShellError {
        match error {
            EngineError::Sql(e) => ShellError { message: e.message.clone(), position: e.position, hint: e.hint.clone() },
            other => ShellError { message: other.to_string(), position: None, hint: None },
        }
    }

    /// The error in a server's `statement_error` entity, its position moved by
    /// `offset` (where the statement starts in the shell's input: each statement is
    /// sent on its own).
    fn of_entity(entity: &Value, offset: Position) -> ShellError {
        let position = match (entity["line"].as_u64(), entity["column"].as_u64()) {
            (Some(line), Some(column)) => {
                let column = if line == 1 { column + offset.column - 1 } else { column };
                Some(Position { line: line + offset.line - 1, column })
            }
            _ => None,
        };
        let message = entity["primaryMessage"].as_str().or(entity["message"].as_str()).unwrap_or("the server answered without a message");
        ShellError { message: message.to_string(), position, hint: entity["hint"].as_str().map(str::to_string) }
    }
}

/// Rows of a push query as they arrive, and how to cancel it.
pub struct PushStream {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each a JSON array in column order; ends with the query.
    pub rows: mpsc::Receiver<Vec<Value>>,
    /// The LIMIT, if any.
    pub limit: Option<usize>,
    /// Stops the query (Ctrl-C).
    pub cancel: Box<dyn FnOnce() + Send>,
}

/// What a statement produced, in order.
pub enum Output {
    /// A ksqlDB entity to render.
    Entity(Value),
    /// A push query to stream.
    Push(PushStream),
}

/// The engine the shell talks to.
pub enum Backend {
    /// In this process, with its own state directory.
    Embedded {
        /// The engine.
        engine: Box<Engine>,
        /// The shell's session.
        session: Session,
    },
    /// An `eddy server`.
    Remote {
        /// Its base URL, e.g. `http://127.0.0.1:8088`.
        url: String,
        /// The session's properties, sent with each request (ksqlDB's CLI does the same).
        properties: BTreeMap<String, String>,
    },
}

impl Backend {
    /// Runs `sql`; returns what each statement produced, stopping at the first error.
    pub async fn execute(&mut self, sql: &str) -> (Vec<Output>, Option<ShellError>) {
        match self {
            Backend::Embedded { engine, session } => {
                let (executed, error) = match engine.execute(sql, session).await {
                    Ok(e) => (e, None),
                    Err(e) => {
                        let error = ShellError::of(&e.error);
                        (e.applied, Some(error))
                    }
                };
                let sequence = engine.command_sequence().map_or(-1, |s| s as i64);
                let mut out = Vec::new();
                for mut e in executed {
                    if let Some(StatementResult::PushQuery(_)) = e.results.last() {
                        if let Some(StatementResult::PushQuery(mut p)) = e.results.pop() {
                            // The query opens its source in the background: say so when it cannot.
                            if let Err(reason) = p.started().await {
                                return (out, Some(ShellError { message: reason, position: None, hint: None }));
                            }
                            out.push(Output::Push(embedded_push(p)));
                        }
                        continue;
                    }
                    out.extend(entities(&e, sequence).into_iter().map(Output::Entity));
                }
                (out, error)
            }
            Backend::Remote { url, properties } => {
                let parsed = match split_statements(sql) {
                    Ok(p) => p,
                    Err(e) => return (Vec::new(), Some(ShellError::of(&EngineError::Sql(e)))),
                };
                let mut out = Vec::new();
                for p in parsed {
                    let result = match &p.kind {
                        StatementKind::Set { property, value } => {
                            let mut s = Session { properties: properties.clone() };
                            match s.set(property, value) {
                                Ok(_) => {
                                    *properties = s.properties;
                                    Ok(vec![Output::Entity(status(
                                        &p.text,
                                        &format!("Property '{property}' set to '{}'", value.to_lowercase()),
                                    ))])
                                }
                                Err(e) => Err(ShellError { message: e.message, position: Some(p.position), hint: e.hint }),
                            }
                        }
                        StatementKind::Unset { property } => {
                            properties.remove(&property.to_lowercase());
                            Ok(vec![Output::Entity(status(&p.text, &format!("Property '{property}' unset")))])
                        }
                        StatementKind::PushQuery => remote_push(url, &p.text, properties, p.position).await.map(|s| vec![Output::Push(s)]),
                        StatementKind::RunScript { path } => match std::fs::read_to_string(path) {
                            Ok(text) => {
                                let mut inner = Backend::Remote { url: url.clone(), properties: properties.clone() };
                                let (outputs, error) = Box::pin(inner.execute(&text)).await;
                                if let Backend::Remote { properties: p, .. } = inner {
                                    *properties = p;
                                }
                                match error {
                                    None => Ok(outputs),
                                    Some(e) => {
                                        out.extend(outputs);
                                        let at = e.position.map(|p| format!(":{}:{}", p.line, p.column)).unwrap_or_default();
                                        Err(ShellError { message: format!("{path}{at}: {}", e.message), position: None, hint: e.hint })
                                    }
                                }
                            }
                            Err(e) => Err(ShellError {
                                message: format!("cannot read script {path}: {e}"),
                                position: Some(p.position),
                                hint: None,
                            }),
                        },
                        _ => remote_ksql(url, &p.text, properties, p.position).await,
                    };
                    match result {
                        Ok(o) => out.extend(o),
                        Err(e) => return (out, Some(e)),
                    }
                }
                (out, None)
            }
        }
    }

    /// Stream, table, column and query names, for tab completion.
    pub async fn names(&mut self) -> Vec<String> {
        match self {
            Backend::Embedded { engine, .. } => {
                let mut names: Vec<String> = Vec::new();
                for r in engine.catalog().relations() {
                    names.push(r.name.clone());
                    names.extend(r.schema.fields().iter().map(|f| f.name().clone()));
                }
                names.extend(engine.query_infos().into_iter().map(|q| q.id));
                names.sort();
                names.dedup();
                names
            }
            Backend::Remote { .. } => {
                let mut names = Vec::new();
                let (out, _) = self.execute("SHOW STREAMS; SHOW TABLES; SHOW QUERIES;").await;
                let mut relations = Vec::new();
                for o in out {
                    if let Output::Entity(e) = o {
                        for key in ["streams", "tables"] {
                            for r in e[key].as_array().into_iter().flatten() {
                                if let Some(n) = r["name"].as_str() {
                                    relations.push(n.to_string());
                                }
                            }
                        }
                        for q in e["queries"].as_array().into_iter().flatten() {
                            if let Some(id) = q["id"].as_str() {
                                names.push(id.to_string());
                            }
                        }
                    }
                }
                for r in relations {
                    let (out, _) = self.execute(&format!("DESCRIBE {r};")).await;
                    for o in out {
                        if let Output::Entity(e) = o {
                            for f in e["sourceDescription"]["fields"].as_array().into_iter().flatten() {
                                if let Some(n) = f["name"].as_str() {
                                    names.push(n.to_string());
                                }
                            }
                        }
                    }
                    names.push(r);
                }
                names.sort();
                names.dedup();
                names
            }
        }
    }
}

fn status(statement: &str, message: &str) -> Value {
    json!({"@type": "currentStatus", "statementText": statement, "commandStatus": {"status": "SUCCESS", "message": message}, "warnings": []})
}

fn embedded_push(p: eddy_engine::PushQuery) -> PushStream {
    let eddy_engine::PushQuery { schema, limit, mut rows, stopper, .. } = p;
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        while let Some(batch) = rows.recv().await {
            match batch_rows(&batch) {
                Ok(list) => {
                    for row in list {
                        if tx.send(row).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot show push query rows"),
            }
        }
    });
    PushStream {
        columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
        rows: rx,
        limit,
        cancel: Box::new(move || stopper.stop()),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(None).http_status_as_error(false).build().into()
}

async fn remote_ksql(url: &str, statement: &str, properties: &BTreeMap<String, String>, at: Position) -> Result<Vec<Output>, ShellError> {
    let url = format!("{url}/ksql");
    let body = json!({"ksql": format!("{statement};"), "streamsProperties": properties});
    let response = tokio::task::spawn_blocking(move || -> Result<(u16, Value), String> {
        let mut r = agent().post(&url).header("Accept", crate::server::KSQL_V1_JSON).send_json(&body).map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let value: Value = r.body_mut().read_json().map_err(|e| e.to_string())?;
        Ok((status, value))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    match response {
        Ok((200, Value::Array(list))) => Ok(list.into_iter().map(Output::Entity).collect()),
        Ok((_, v)) => Err(ShellError::of_entity(&v, at)),
        Err(e) => Err(ShellError {
            message: format!("cannot reach the server: {e}"),
            position: None,
            hint: Some("is `eddy server` running at --server?".into()),
        }),
    }
}

async fn remote_push(url: &str, statement: &str, properties: &BTreeMap<String, String>, at: Position) -> Result<PushStream, ShellError> {
    let base = url.to_string();
    let endpoint = format!("{url}/query-stream");
    let body = json!({"sql": format!("{statement};"), "properties": properties});
    // Lines of the response; `Err` carries the server's error entity (or a message).
    let (tx, rx) = mpsc::channel::<Result<Value, Value>>(1024);
    std::thread::spawn(move || {
        let response = agent().post(&endpoint).header("Accept", crate::server::push::DELIMITED).send_json(&body);
        let mut response = match response {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(json!({"message": format!("cannot reach the server: {e}")})));
                return;
            }
        };
        if response.status().as_u16() != 200 {
            let v: Value = response.body_mut().read_json().unwrap_or_else(|_| json!({"message": "the server refused the query"}));
            let _ = tx.blocking_send(Err(v));
            return;
        }
        let reader = std::io::BufReader::new(response.into_body().into_reader());
        for line in std::io::BufRead::lines(reader) {
            let Ok(line) = line else { return };
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(&line) {
                Ok(v) => {
                    if tx.blocking_send(Ok(v)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(json!({"message": format!("bad line from the server: {e}")})));
                    return;
                }
            }
        }
    });
    let mut rx = rx;
    let header = match tokio::time::timeout(Duration::from_secs(120), rx.recv()).await {
        Ok(Some(Ok(h))) => h,
        Ok(Some(Err(e))) => return Err(ShellError::of_entity(&e, at)),
        _ => return Err(ShellError { message: "the server sent no header".into(), position: None, hint: None }),
    };
    let strings =
        |v: &Value| v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect::<Vec<_>>()).unwrap_or_default();
    let columns = strings(&header["columnNames"]);
    let query_id = header["queryId"].as_str().unwrap_or_default().to_string();
    let (row_tx, row_rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        while let Some(Ok(Value::Array(row))) = rx.recv().await {
            if row_tx.send(row).await.is_err() {
                return;
            }
        }
    });
    let cancel = move || {
        let _ = agent().post(&format!("{base}/close-query")).send_json(json!({"queryId": query_id}));
    };
    Ok(PushStream { columns, rows: row_rx, limit: None, cancel: Box::new(cancel) })
}
