//! ksqlDB's check of comparisons in WHERE and HAVING: the two sides of `=`, `<>`, `<`,
//! `<=`, `>`, `>=` must be of comparable types (numbers with numbers, strings with
//! strings, booleans with booleans; a string may be compared with a TIMESTAMP, DATE or
//! TIME, which ksqlDB parses). DataFusion would instead cast a VARCHAR column to the
//! number's type, and the first value that is not a number would fail the running query.
//!
//! Only sides whose type is known without planning are checked: column references,
//! literals, and `COUNT`/`SUM`/`AVG`/`MIN`/`MAX` of a column; anything else is left to
//! DataFusion. The message is ksqlDB's: `Error in WHERE expression: Cannot compare ID
//! (INTEGER) to 'not an int' (STRING) with GREATER_THAN_OR_EQUAL.`

use arrow::datatypes::{DataType, Schema};
use sqlparser::ast::{BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query, SetExpr, Value};

use super::event_time::expr_position;
use super::parser::normalize_ident;
use super::types::ksql_type_name;
use crate::catalog::ksql_name;
use crate::error::SqlError;

/// Checks the comparisons of `query`'s WHERE and HAVING against `source`'s columns.
///
/// Errors: the first comparison of incomparable types, located at it.
pub fn check_comparisons(query: &Query, source: &Schema) -> Result<(), SqlError> {
    let SetExpr::Select(select) = query.body.as_ref() else { return Ok(()) };
    if let Some(selection) = &select.selection {
        check(selection, source, "WHERE")?;
    }
    if let Some(having) = &select.having {
        check(having, source, "HAVING")?;
    }
    Ok(())
}

/// What a side of a comparison is, as far as it matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Number,
    Text,
    Boolean,
    Time,
    Other,
}

fn class_of(data_type: &DataType) -> Class {
    match data_type {
        t if t.is_numeric() => Class::Number,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Class::Text,
        DataType::Boolean => Class::Boolean,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 | DataType::Time32(_) | DataType::Time64(_) => Class::Time,
        _ => Class::Other,
    }
}

fn check(expr: &Expr, source: &Schema, clause: &str) -> Result<(), SqlError> {
    match expr {
        Expr::BinaryOp { left, op, right } => {
            if let Some(name) = comparison_name(op) {
                if let (Some((lt, ltext)), Some((rt, rtext))) = (side(left, source), side(right, source)) {
                    let (lc, rc) = (class_of(&lt), class_of(&rt));
                    let comparable = lc == rc
                        || lc == Class::Other
                        || rc == Class::Other
                        || matches!((lc, rc), (Class::Text, Class::Time) | (Class::Time, Class::Text));
                    if !comparable {
                        return Err(SqlError::new(format!(
                            "Error in {clause} expression: Cannot compare {ltext} ({}) to {rtext} ({}) with {name}.",
                            ksql_type_name(&lt),
                            ksql_type_name(&rt)
                        ))
                        .at(expr_position(expr))
                        .hint("compare values of one kind, or CAST one side (ksqlDB refuses this comparison)"));
                    }
                }
            }
            check(left, source, clause)?;
            check(right, source, clause)
        }
        Expr::Nested(inner) | Expr::UnaryOp { expr: inner, .. } => check(inner, source, clause),
        _ => Ok(()),
    }
}

/// ksqlDB's name of a comparison operator.
fn comparison_name(op: &BinaryOperator) -> Option<&'static str> {
    Some(match op {
        BinaryOperator::Eq => "EQUAL",
        BinaryOperator::NotEq => "NOT_EQUAL",
        BinaryOperator::Lt => "LESS_THAN",
        BinaryOperator::LtEq => "LESS_THAN_OR_EQUAL",
        BinaryOperator::Gt => "GREATER_THAN",
        BinaryOperator::GtEq => "GREATER_THAN_OR_EQUAL",
        _ => return None,
    })
}

/// The type of a side and how ksqlDB prints it, when known without planning.
fn side(expr: &Expr, source: &Schema) -> Option<(DataType, String)> {
    match expr {
        Expr::Identifier(i) => column(&normalize_ident(i), source),
        Expr::CompoundIdentifier(parts) => parts.last().and_then(|i| column(&normalize_ident(i), source)),
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some((DataType::Utf8, format!("'{s}'"))),
            Value::Number(n, _) if n.contains(['.', 'e', 'E']) => Some((DataType::Float64, n.clone())),
            Value::Number(n, _) => Some((if n.parse::<i32>().is_ok() { DataType::Int32 } else { DataType::Int64 }, n.clone())),
            Value::Boolean(b) => Some((DataType::Boolean, b.to_string().to_uppercase())),
            _ => None,
        },
        Expr::Nested(inner) => side(inner, source),
        Expr::Function(f) => {
            let name = f.name.to_string().to_uppercase();
            let FunctionArguments::List(list) = &f.args else { return None };
            let arg = match list.args.as_slice() {
                [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => Some(e),
                _ => None,
            };
            let (arg_type, arg_text) = match arg {
                Some(e) => side(e, source)?,
                None => (DataType::Null, "*".to_string()),
            };
            let data_type = match name.as_str() {
                "COUNT" => DataType::Int64,
                "SUM" | "MIN" | "MAX" if arg_type.is_numeric() => arg_type,
                "AVG" if arg_type.is_numeric() => DataType::Float64,
                _ => return None,
            };
            Some((data_type, format!("{name}({arg_text})")))
        }
        _ => None,
    }
}

fn column(name: &str, source: &Schema) -> Option<(DataType, String)> {
    let field = source.fields().iter().find(|f| f.name().eq_ignore_ascii_case(name))?;
    Some((field.data_type().clone(), ksql_name(field.name())))
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::Field;
    use sqlparser::dialect::GenericDialect;
    use sqlparser::parser::Parser;

    use super::*;

    fn checked(sql: &str) -> Result<(), String> {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("k", DataType::Utf8, true),
            Field::new("value", DataType::Int64, true),
            Field::new("ts", DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None), true),
        ]);
        let statement = Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| e.to_string())?.remove(0);
        let sqlparser::ast::Statement::Query(query) = statement else { return Err("not a query".into()) };
        check_comparisons(&query, &schema).map_err(|e| e.message)
    }

    /// ksqlDB's comparison-expression.json cases.
    #[test]
    fn incomparable_types_are_refused_as_ksqldb_refuses_them() {
        assert_eq!(
            checked("SELECT * FROM input WHERE id >= 'not an int'"),
            Err("Error in WHERE expression: Cannot compare ID (INTEGER) to 'not an int' (STRING) with GREATER_THAN_OR_EQUAL.".into())
        );
        assert_eq!(
            checked("SELECT * FROM input WHERE k = 'abc' AND id >= 'not an int'"),
            Err("Error in WHERE expression: Cannot compare ID (INTEGER) to 'not an int' (STRING) with GREATER_THAN_OR_EQUAL.".into())
        );
        assert_eq!(
            checked("SELECT id, SUM(value) FROM test GROUP BY id HAVING count(*) > 1 AND sum(value) > '100'"),
            Err("Error in HAVING expression: Cannot compare SUM(VALUE) (BIGINT) to '100' (STRING) with GREATER_THAN.".into())
        );
        assert_eq!(
            checked("SELECT * FROM input WHERE k = 5").map_err(|e| e.contains("Cannot compare K (STRING) to 5 (INTEGER)")),
            Err(true)
        );
    }

    #[test]
    fn comparable_types_pass() {
        assert_eq!(checked("SELECT * FROM input WHERE id > 2.5 AND k <> 'x' AND ts > '2026-01-01T00:00:00' AND (value = id)"), Ok(()));
        assert_eq!(checked("SELECT * FROM input WHERE UPPER(k) = 5"), Ok(()));
    }
}
