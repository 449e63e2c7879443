//! Statement results as ksqlDB's REST entities (JSON), and Arrow rows as JSON arrays.
//!
//! The REST server answers with these; the shell renders them, whether its engine is
//! embedded or remote, so both fronts show a statement's result the same way. Shapes
//! follow ksqlDB's `/ksql` API: `currentStatus`, `streams`, `tables`, `queries`,
//! `kafka_topics`, `properties`, `sourceDescription`, `queryDescription`, and
//! `statement_error` for errors.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use eddy_engine::ksql_type_name;
use eddy_engine::MetricsSnapshot;
use eddy_engine::ObjectKind;
use eddy_engine::{EngineError, QueryInfo, RelationInfo, StatementResult};
use serde_json::{json, Map, Value};

/// ksqlDB's error code for a statement that is wrong (HTTP 400).
pub const STATEMENT_ERROR: u32 = 40001;
/// ksqlDB's error code for a push query sent to `/ksql` (`Errors.ERROR_CODE_QUERY_ENDPOINT`).
pub const QUERY_ENDPOINT_ERROR: u32 = 40002;
/// ksqlDB's error code for a failure on the server's side (HTTP 500).
pub const SERVER_ERROR: u32 = 50000;

/// The entities of one executed statement: one per result, except that a
/// `CREATE ... AS SELECT` answers one `currentStatus` naming its query, as ksqlDB does.
pub fn entities(executed: &eddy_engine::Executed, sequence: i64) -> Vec<Value> {
    match executed.results.as_slice() {
        [StatementResult::Created { kind, name }, StatementResult::QueryStarted { id, warning }] => {
            let kind = if *kind == ObjectKind::Stream { "stream" } else { "table" };
            vec![json!({
                "@type": "currentStatus",
                "statementText": executed.statement,
                "commandId": format!("{kind}/`{name}`/create"),
                "commandStatus": {"status": "SUCCESS", "message": format!("Created query with ID {id}"), "queryId": id},
                "commandSequenceNumber": sequence,
                "warnings": warning.iter().map(|w| json!({"message": w})).collect::<Vec<_>>(),
            })]
        }
        // ksqlDB answers INSERT ... VALUES with no entity.
        results => results
            .iter()
            .filter(|r| !matches!(r, StatementResult::Inserted { .. }))
            .map(|r| entity(r, &executed.statement, sequence))
            .collect(),
    }
}

/// The entity of one result of `statement`; `sequence` is the command log's last
/// sequence number (ksqlDB's `commandSequenceNumber`; -1 when not logged).
pub fn entity(result: &StatementResult, statement: &str, sequence: i64) -> Value {
    let status = |command_id: String, message: String, query_id: Option<&str>, warnings: Vec<String>| {
        json!({
            "@type": "currentStatus",
            "statementText": statement,
            "commandId": command_id,
            "commandStatus": {"status": "SUCCESS", "message": message, "queryId": query_id},
            "commandSequenceNumber": sequence,
            "warnings": warnings.into_iter().map(|w| json!({"message": w})).collect::<Vec<_>>(),
        })
    };
    let kind_word = |k: &ObjectKind| if *k == ObjectKind::Stream { "stream" } else { "table" };
    match result {
        StatementResult::Created { kind, name } => {
            let word = if *kind == ObjectKind::Stream { "Stream" } else { "Table" };
            status(format!("{}/`{name}`/create", kind_word(kind)), format!("{word} created"), None, vec![])
        }
        StatementResult::QueryStarted { id, warning } => {
            status(format!("query/`{id}`/create"), format!("Created query with ID {id}"), Some(id), warning.iter().cloned().collect())
        }
        StatementResult::Noop(why) => status("noop".into(), why.clone(), None, vec![]),
        StatementResult::Dropped { kind, name, .. } => {
            status(format!("{}/`{name}`/drop", kind_word(kind)), result.to_string(), None, vec![])
        }
        StatementResult::ModelCreated { name } => status(format!("model/`{name}`/create"), "Model created".into(), None, vec![]),
        StatementResult::ModelDropped { name } => status(format!("model/`{name}`/drop"), result.to_string(), None, vec![]),
        StatementResult::ViewCreated { name } => status(format!("view/`{name}`/create"), "View created".into(), None, vec![]),
        StatementResult::ViewDropped { name } => status(format!("view/`{name}`/drop"), result.to_string(), None, vec![]),
        StatementResult::Views(views) => {
            let list: Vec<Value> = views.iter().map(|(name, sql)| json!({"name": name, "statementText": sql})).collect();
            json!({"@type": "views", "statementText": statement, "views": list, "warnings": []})
        }
        StatementResult::Models(models) => {
            json!({"@type": "models", "statementText": statement, "models": models.iter().map(model_entry).collect::<Vec<_>>(), "warnings": []})
        }
        StatementResult::ModelDescription(m) => {
            json!({"@type": "modelDescription", "statementText": statement, "model": model_entry(m), "warnings": []})
        }
        StatementResult::Terminated(ids) => {
            let id = if ids.len() == 1 { ids[0].clone() } else { "ALL".into() };
            status(
                format!("terminate/{id}/execute"),
                if ids.is_empty() { result.to_string() } else { "Query terminated.".into() },
                None,
                vec![],
            )
        }
        StatementResult::Relations { kind, relations } => {
            let key = if *kind == ObjectKind::Stream { "streams" } else { "tables" };
            let list: Vec<Value> = relations.iter().map(relation_entry).collect();
            json!({"@type": key, "statementText": statement, key: list, "warnings": []})
        }
        StatementResult::Queries(queries) => {
            json!({"@type": "queries", "statementText": statement, "queries": queries.iter().map(query_entry).collect::<Vec<_>>(), "warnings": []})
        }
        StatementResult::Topics(topics) => {
            let list: Vec<Value> = topics.iter().map(|t| json!({"name": t.name, "replicaInfo": vec![t.replicas; t.partitions]})).collect();
            json!({"@type": "kafka_topics", "statementText": statement, "topics": list, "warnings": []})
        }
        StatementResult::Properties { server, session } => {
            // ksqlDB's shape: every property with its scope; the session's overrides are
            // also named in overwrittenProperties.
            let mut list: Vec<Value> = server
                .iter()
                .filter(|(k, _)| !session.contains_key(*k))
                .map(|(k, v)| json!({"name": k, "scope": "KSQL", "value": v}))
                .collect();
            list.extend(session.iter().map(|(k, v)| json!({"name": k, "scope": "SESSION", "value": v})));
            let overwritten: Vec<&String> = session.keys().filter(|k| server.contains_key(*k)).collect();
            json!({"@type": "properties", "statementText": statement, "properties": list, "overwrittenProperties": overwritten,
                   "defaultProperties": [], "warnings": []})
        }
        StatementResult::Description(d) => {
            let r = &d.relation;
            let fields: Vec<Value> = r
                .schema
                .fields()
                .iter()
                .map(|f| {
                    let data_type = if r.ksql_names { eddy_engine::catalog::ksql_data_type(f.data_type()) } else { f.data_type().clone() };
                    let mut field = json!({"name": r.display_name(f.name()), "schema": ksql_schema(&data_type)});
                    if r.key.iter().any(|k| k == f.name()) || r.primary_key.iter().any(|k| k == f.name()) {
                        field["type"] = json!(if r.primary_key.is_empty() { "KEY" } else { "PRIMARY_KEY" });
                    }
                    field
                })
                .collect();
            let options: Map<String, Value> = d.options.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            let mut totals = MetricsSnapshot::default();
            for q in &d.read_by {
                totals.rows_in += q.metrics.rows_in;
                totals.malformed += q.metrics.malformed;
                totals.late_rows += q.metrics.late_rows;
            }
            for q in &d.written_by {
                totals.rows_out += q.metrics.rows_out;
            }
            json!({
                "@type": "sourceDescription",
                "statementText": statement,
                "sourceDescription": {
                    "name": d.info.name,
                    "windowType": if d.info.windowed { json!("TUMBLING") } else { Value::Null },
                    "readQueries": d.read_by.iter().map(query_entry).collect::<Vec<_>>(),
                    "writeQueries": d.written_by.iter().map(query_entry).collect::<Vec<_>>(),
                    "fields": fields,
                    "type": r.kind.to_string(),
                    "timestamp": r.event_time.to_string(),
                    "statistics": if d.extended { format!("rows-in: {}, rows-out: {}", totals.rows_in, totals.rows_out) } else { String::new() },
                    "errorStats": if d.extended { format!("malformed: {}, late: {}", totals.malformed, totals.late_rows) } else { String::new() },
                    "extended": d.extended,
                    "connector": d.info.connector,
                    "keyFormat": if d.info.connector == "kafka" { "KAFKA" } else { "NONE" },
                    "valueFormat": d.info.format.clone().unwrap_or_else(|| "NONE".into()),
                    "topic": d.info.target,
                    "withOptions": options,
                    // The cluster's figures; the declared ones when it was not asked.
                    "partitions": match (&d.topic, &r.connector) {
                        (Some(t), _) => t.partitions as i64,
                        (None, eddy_engine::options::ConnectorOptions::Kafka(k)) => i64::from(k.partitions.unwrap_or(0)),
                        _ => 0,
                    },
                    "replication": match (&d.topic, &r.connector) {
                        (Some(t), _) => t.replicas as i64,
                        (None, eddy_engine::options::ConnectorOptions::Kafka(k)) => i64::from(k.replicas.unwrap_or(0)),
                        _ => 0,
                    },
                    "statement": r.sql,
                    "counters": serde_json::to_value(totals).unwrap_or(Value::Null),
                },
                "warnings": [],
            })
        }
        StatementResult::Explain { query_id, plan, query } => {
            // ksqlDB's queryDescription: the query's own statement, its output fields, and
            // the sources and sinks by name.
            let fields: Vec<Value> = query
                .as_ref()
                .map(|q| q.schema.fields().iter().map(|f| json!({"name": f.name(), "schema": ksql_schema(f.data_type())})).collect())
                .unwrap_or_default();
            let query_text = query.as_ref().map_or(statement, |q| q.statement.as_str());
            json!({
                "@type": "queryDescription",
                "statementText": statement,
                "queryDescription": {
                    "id": query_id, "statementText": query_text, "windowType": null, "fields": fields,
                    "sources": query.as_ref().map(|q| q.sources.clone()).unwrap_or_default(),
                    "sinks": query.as_ref().map(|q| q.sinks.clone()).unwrap_or_default(),
                    "executionPlan": plan, "topology": plan, "overriddenProperties": {},
                    "queryType": if query.as_ref().is_some_and(|q| q.sinks.is_empty()) { "PUSH" } else { "PERSISTENT" },
                },
                "warnings": [],
            })
        }
        StatementResult::PropertySet { property, value, warning } => {
            status("property/set".into(), format!("Property '{property}' set to '{value}'"), None, warning.iter().cloned().collect())
        }
        StatementResult::PropertyUnset { property } => {
            status("property/unset".into(), format!("Property '{property}' unset"), None, vec![])
        }
        StatementResult::PushQuery(p) => status(format!("query/`{}`/push", p.id), result.to_string(), Some(&p.id), vec![]),
        StatementResult::Inserted { relation, .. } => status(format!("stream/`{relation}`/insert"), result.to_string(), None, vec![]),
    }
}

fn relation_entry(r: &RelationInfo) -> Value {
    json!({
        "type": r.kind.to_string(),
        "name": r.name,
        "topic": r.target,
        "connector": r.connector,
        "keyFormat": if r.connector == "kafka" { "KAFKA" } else { "NONE" },
        "valueFormat": r.format.clone().unwrap_or_else(|| "NONE".into()),
        "isWindowed": r.windowed,
    })
}

/// A `SHOW QUERIES` entry: ksqlDB's fields plus Eddy's counters under `stats`.
pub fn query_entry(q: &QueryInfo) -> Value {
    let (state, error) = match &q.status {
        eddy_engine::QueryStatus::Starting => ("STARTING", None),
        eddy_engine::QueryStatus::Running => ("RUNNING", None),
        eddy_engine::QueryStatus::Retrying(e) => ("RETRYING", Some(e.clone())),
        eddy_engine::QueryStatus::Stopped => ("STOPPED", None),
        eddy_engine::QueryStatus::Failed(e) => ("ERROR", Some(e.clone())),
    };
    json!({
        "queryString": q.statement,
        "sinks": q.sink.iter().collect::<Vec<_>>(),
        "sinkKafkaTopics": q.sink_target.iter().collect::<Vec<_>>(),
        "sources": [q.source],
        "id": q.id,
        "statusCount": {state: 1},
        "queryType": q.kind.to_string(),
        "state": state,
        "error": error,
        "parallelism": q.parallelism,
        "stats": serde_json::to_value(q.metrics).unwrap_or(Value::Null),
    })
}

/// The `statement_error` entity for `error` in `statement`: ksqlDB's fields (the
/// message carries the position and hint, as Eddy prints errors), plus `line`,
/// `column` and `hint` on their own, so a client (the shell) can point at the token
/// without parsing the message.
pub fn error_entity(statement: &str, error: &EngineError) -> (u32, Value) {
    let (code, kind) = match error {
        EngineError::Sql(_) => (STATEMENT_ERROR, "statement_error"),
        _ => (SERVER_ERROR, "generic_error"),
    };
    let mut body = json!({"@type": kind, "error_code": code, "message": error.to_string(), "statementText": statement, "entities": []});
    if let EngineError::Sql(e) = error {
        body["primaryMessage"] = json!(e.message);
        if let Some(p) = e.position {
            body["line"] = json!(p.line);
            body["column"] = json!(p.column);
        }
        if let Some(h) = &e.hint {
            body["hint"] = json!(h);
        }
    }
    (code, body)
}

/// ksqlDB's type names of a schema's columns (`STRING`, `INTEGER`, `BIGINT`, `DOUBLE`,
/// `BOOLEAN`, `TIMESTAMP`), as its push query headers and DESCRIBE give them.
pub fn column_types(schema: &SchemaRef) -> Vec<String> {
    schema.fields().iter().map(|f| ksql_type_name(f.data_type())).collect()
}

/// A model as `SHOW MODELS` and `DESCRIBE MODEL` answer it.
fn model_entry(m: &eddy_engine::ModelInfo) -> Value {
    let columns = |cs: &[(String, String)]| cs.iter().map(|(n, t)| json!({"name": n, "type": t})).collect::<Vec<_>>();
    json!({
        "name": m.name, "provider": m.provider, "path": m.path, "type": m.kind,
        "inputs": columns(&m.inputs), "outputs": columns(&m.outputs), "checksum": m.checksum,
    })
}

/// ksqlDB's `SchemaInfo` of a column type: `type` is the base type (`STRING`, `ARRAY`,
/// `STRUCT`, `DECIMAL`, ...), `memberSchema` the element of an ARRAY or the value of a
/// MAP, `fields` a STRUCT's fields, `parameters` a DECIMAL's precision and scale.
pub fn ksql_schema(data_type: &arrow::datatypes::DataType) -> Value {
    use arrow::datatypes::DataType;
    let name = ksql_type_name(data_type);
    let base = name.split(['<', '(']).next().unwrap_or_default().to_string();
    let mut schema = json!({"type": base, "fields": null, "memberSchema": null});
    match data_type {
        DataType::List(item) => schema["memberSchema"] = ksql_schema(item.data_type()),
        DataType::Map(entries, _) => {
            if let DataType::Struct(f) = entries.data_type() {
                if let Some(value) = f.get(1) {
                    schema["memberSchema"] = ksql_schema(value.data_type());
                }
            }
        }
        DataType::Struct(fields) => {
            schema["fields"] =
                Value::Array(fields.iter().map(|f| json!({"name": f.name(), "schema": ksql_schema(f.data_type())})).collect())
        }
        DataType::Decimal128(p, s) => schema["parameters"] = json!({"precision": p, "scale": s}),
        _ => {}
    }
    schema
}

/// The rows of `batch` as JSON arrays, in column order (nulls as `null`; timestamps as
/// ISO-8601 text, as arrow-json writes them).
///
/// Errors: a column type arrow-json cannot write.
pub fn batch_rows(batch: &RecordBatch) -> Result<Vec<Vec<Value>>, arrow::error::ArrowError> {
    let mut buf = Vec::new();
    {
        let mut writer = arrow::json::WriterBuilder::new().with_explicit_nulls(true).build::<_, arrow::json::writer::JsonArray>(&mut buf);
        // BYTES as base64, as ksqlDB returns them.
        writer.write(&eddy_engine::format::bytes_as_base64(batch)?)?;
        writer.finish()?;
    }
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    let objects: Vec<Map<String, Value>> = serde_json::from_slice(&buf).map_err(|e| arrow::error::ArrowError::JsonError(e.to_string()))?;
    let names: Vec<&String> = batch.schema_ref().fields().iter().map(|f| f.name()).collect();
    Ok(objects.into_iter().map(|mut o| names.iter().map(|n| o.remove(n.as_str()).unwrap_or(Value::Null)).collect()).collect())
}
