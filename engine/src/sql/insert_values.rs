//! `INSERT INTO s [(columns)] VALUES (...), ...` (ksqlDB): literal rows, planned into an
//! Arrow batch of the relation's columns. Each row becomes a JSON object and goes
//! through the JSON format's decoder, so the values are converted exactly as a record
//! of the topic would be (a string for a TIMESTAMP, a number for a DECIMAL, ...), and a
//! value that does not fit its column is refused with the decoder's reason.

use std::sync::Arc;

use serde_json::{Map, Value};
use sqlparser::ast::{Expr, UnaryOperator, Value as SqlValue};

use super::ast::InsertValues;
use super::event_time::expr_position;
use super::planner::PlannedStatement;
use crate::catalog::Catalog;
use crate::error::SqlError;
use crate::format::{JsonDecoder, ValueDecoder};
use crate::options::ConnectorOptions;

/// Plans the rows.
///
/// Errors: an unknown relation or column (with the closest name); a relation that is not
/// a Kafka topic or has computed columns; a row with more or fewer values than columns;
/// a value that is not a literal; a value that does not fit its column.
pub fn plan(v: &InsertValues, catalog: &Catalog) -> Result<PlannedStatement, SqlError> {
    let relation = catalog.get(&v.target.value).cloned().ok_or_else(|| {
        let hint = crate::error::closest(&v.target.value, catalog.names()).map(|c| format!("did you mean \"{c}\"?"));
        SqlError::new(format!("unknown stream or table \"{}\"", v.target.value)).at(v.target.position).maybe_hint(hint)
    })?;
    if !matches!(relation.connector, ConnectorOptions::Kafka(_)) || !relation.computed.is_empty() {
        return Err(SqlError::new(format!("cannot insert values into \"{}\"", relation.name))
            .at(v.target.position)
            .hint("INSERT ... VALUES writes to a Kafka stream or table without computed columns"));
    }
    let names: Vec<String> = if v.columns.is_empty() {
        relation.schema.fields().iter().map(|f| f.name().clone()).collect()
    } else {
        let mut names = Vec::with_capacity(v.columns.len());
        for c in &v.columns {
            if relation.schema.field_with_name(&c.value).is_err() {
                let known = relation.schema.fields().iter().map(|f| f.name().as_str());
                let hint = crate::error::closest(&c.value, known).map(|k| format!("did you mean \"{k}\"?"));
                return Err(SqlError::new(format!("unknown column \"{}\"", c.value)).at(c.position).maybe_hint(hint));
            }
            names.push(c.value.clone());
        }
        names
    };
    let mut decoder = JsonDecoder::new(relation.schema.clone());
    let mut batches = Vec::with_capacity(v.rows.len());
    for row in &v.rows {
        if row.len() != names.len() {
            return Err(SqlError::new(format!("a row has {} values for {} columns", row.len(), names.len()))
                .at(row.first().and_then(expr_position))
                .hint(format!("give one value per column: {}", names.join(", "))));
        }
        let mut object = Map::new();
        for (name, expr) in names.iter().zip(row) {
            object.insert(name.clone(), literal(expr)?);
        }
        let text = Value::Object(object).to_string();
        let decoded = decoder.decode(&[Some(text.as_bytes())]).map_err(|e| SqlError::new(e.to_string()))?;
        if let Some(m) = decoded.malformed.first() {
            return Err(SqlError::new(format!("cannot insert the row: {}", m.reason)).at(row.first().and_then(expr_position)));
        }
        batches.push(decoded.batch);
    }
    let batch = arrow::compute::concat_batches(&relation.schema, &batches).map_err(|e| SqlError::new(e.to_string()))?;
    Ok(PlannedStatement::InsertRows { relation: Arc::clone(&relation), batch })
}

/// A literal as JSON: numbers, strings, booleans, NULL, and negative numbers.
fn literal(expr: &Expr) -> Result<Value, SqlError> {
    let not_literal = || {
        SqlError::new(format!("INSERT ... VALUES takes literals, found {expr}"))
            .at(expr_position(expr))
            .hint("write numbers, 'strings', TRUE, FALSE or NULL")
    };
    match expr {
        Expr::Value(v) => match &v.value {
            SqlValue::Number(n, _) => serde_json::from_str::<Value>(n).map_err(|_| not_literal()),
            SqlValue::SingleQuotedString(s) | SqlValue::DoubleQuotedString(s) => Ok(Value::String(s.clone())),
            SqlValue::Boolean(b) => Ok(Value::Bool(*b)),
            SqlValue::Null => Ok(Value::Null),
            _ => Err(not_literal()),
        },
        Expr::UnaryOp { op: UnaryOperator::Minus, expr: inner } => match literal(inner)? {
            Value::Number(n) => serde_json::from_str::<Value>(&format!("-{n}")).map_err(|_| not_literal()),
            _ => Err(not_literal()),
        },
        Expr::Nested(inner) => literal(inner),
        _ => Err(not_literal()),
    }
}
