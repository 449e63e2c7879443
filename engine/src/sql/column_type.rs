//! Declared column types as Flink SQL and ksqlDB write them, parsed from sqlparser's
//! tokens (sqlparser's own type parser knows neither `MAP<K, V>`, `ROW<...>` nor
//! `TIMESTAMP_LTZ`), and their Arrow types ([`super::types::arrow_type`]).
//!
//! Accepted spellings (Flink's data types page; ksqlDB's "Data types"):
//!
//! | written | type |
//! |---|---|
//! | `TINYINT`, `SMALLINT`, `INT`/`INTEGER`, `BIGINT` | integers of 1, 2, 4, 8 bytes |
//! | `FLOAT`/`REAL`, `DOUBLE [PRECISION]` | floating point, 4 and 8 bytes |
//! | `DECIMAL(p, s)`/`DEC`/`NUMERIC` | exact decimal (Flink's default `(10, 0)`) |
//! | `BOOLEAN`/`BOOL` | |
//! | `STRING`, `VARCHAR[(n)]`, `CHAR[(n)]`, `TEXT`, `CHARACTER VARYING(n)` | text |
//! | `BYTES`, `VARBINARY[(n)]`, `BINARY[(n)]` | bytes |
//! | `DATE`, `TIME[(p)]` | a day; a time of day |
//! | `TIMESTAMP[(p)] [WITHOUT TIME ZONE]` | date and time |
//! | `TIMESTAMP_LTZ[(p)]`, `TIMESTAMP[(p)] WITH LOCAL TIME ZONE` | an instant |
//! | `ARRAY<T>`, `T ARRAY` | array |
//! | `MAP<K, V>` | map |
//! | `ROW<a T, ...>`, `ROW(a T, ...)`, `STRUCT<a T, ...>` | nested record |

use std::fmt;

use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use crate::error::{Position, SqlError};

/// A declared column type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// `TINYINT` (1 byte).
    TinyInt,
    /// `SMALLINT` (2 bytes).
    SmallInt,
    /// `INT` (4 bytes).
    Int,
    /// `BIGINT` (8 bytes).
    BigInt,
    /// `FLOAT` (4 bytes).
    Float,
    /// `DOUBLE` (8 bytes).
    Double,
    /// `DECIMAL(precision, scale)`.
    Decimal(u8, i8),
    /// `BOOLEAN`.
    Boolean,
    /// `STRING`/`VARCHAR`.
    String,
    /// `BYTES`.
    Bytes,
    /// `DATE`.
    Date,
    /// `TIME(precision)`.
    Time(Option<u64>),
    /// `TIMESTAMP(precision)`.
    Timestamp(Option<u64>),
    /// `TIMESTAMP_LTZ(precision)`.
    TimestampLtz(Option<u64>),
    /// `ARRAY<T>`.
    Array(Box<ColumnType>),
    /// `MAP<K, V>`.
    Map(Box<ColumnType>, Box<ColumnType>),
    /// `ROW<name T, ...>` (ksqlDB `STRUCT`).
    Row(Vec<(String, ColumnType)>),
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let precision = |f: &mut fmt::Formatter<'_>, name: &str, p: &Option<u64>| match p {
            Some(p) => write!(f, "{name}({p})"),
            None => write!(f, "{name}"),
        };
        match self {
            ColumnType::TinyInt => write!(f, "TINYINT"),
            ColumnType::SmallInt => write!(f, "SMALLINT"),
            ColumnType::Int => write!(f, "INT"),
            ColumnType::BigInt => write!(f, "BIGINT"),
            ColumnType::Float => write!(f, "FLOAT"),
            ColumnType::Double => write!(f, "DOUBLE"),
            ColumnType::Decimal(p, s) => write!(f, "DECIMAL({p}, {s})"),
            ColumnType::Boolean => write!(f, "BOOLEAN"),
            ColumnType::String => write!(f, "VARCHAR"),
            ColumnType::Bytes => write!(f, "BYTES"),
            ColumnType::Date => write!(f, "DATE"),
            ColumnType::Time(p) => precision(f, "TIME", p),
            ColumnType::Timestamp(p) => precision(f, "TIMESTAMP", p),
            ColumnType::TimestampLtz(p) => precision(f, "TIMESTAMP_LTZ", p),
            ColumnType::Array(t) => write!(f, "ARRAY<{t}>"),
            ColumnType::Map(k, v) => write!(f, "MAP<{k}, {v}>"),
            ColumnType::Row(fields) => {
                write!(f, "ROW<")?;
                for (i, (name, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{name} {t}")?;
                }
                write!(f, ">")
            }
        }
    }
}

/// Parses a column type at the parser's position. `>>` (one token to sqlparser) closes
/// two nested types. Errors name the token and where it is.
pub fn parse_column_type(parser: &mut Parser<'_>) -> Result<ColumnType, SqlError> {
    let mut pending_close = false;
    let t = parse_type(parser, &mut pending_close, 0)?;
    if pending_close {
        return Err(SqlError::new("syntax error: one '>' too many after a type").at(position(parser)));
    }
    Ok(t)
}

/// Nesting deeper than this is refused (the parse is recursive).
const MAX_DEPTH: usize = 32;

fn position(parser: &Parser<'_>) -> Option<Position> {
    Position::from_location(parser.peek_token().span.start)
}

fn syntax(parser: &Parser<'_>, expected: &str) -> SqlError {
    let found = parser.peek_token();
    SqlError::new(format!("syntax error: expected {expected}, found {}", found.token)).at(Position::from_location(found.span.start))
}

fn word(parser: &Parser<'_>, n: usize) -> Option<String> {
    match &parser.peek_nth_token(n).token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_uppercase()),
        _ => None,
    }
}

fn eat_word(parser: &mut Parser<'_>, expected: &str) -> bool {
    if word(parser, 0).as_deref() == Some(expected) {
        parser.next_token();
        true
    } else {
        false
    }
}

fn expect_word(parser: &mut Parser<'_>, expected: &str) -> Result<(), SqlError> {
    if eat_word(parser, expected) {
        Ok(())
    } else {
        Err(syntax(parser, expected))
    }
}

/// `(n)` or `(n, m)` after a type name: the numbers, or none when there are no parentheses.
fn parse_numbers(parser: &mut Parser<'_>) -> Result<Vec<u64>, SqlError> {
    if !parser.consume_token(&Token::LParen) {
        return Ok(Vec::new());
    }
    let mut numbers = Vec::new();
    loop {
        let token = parser.next_token();
        match &token.token {
            Token::Number(n, _) => {
                numbers.push(n.parse::<u64>().map_err(|_| {
                    SqlError::new(format!("expected a whole number, found {n}")).at(Position::from_location(token.span.start))
                })?)
            }
            other => {
                return Err(
                    SqlError::new(format!("syntax error: expected a number, found {other}")).at(Position::from_location(token.span.start))
                )
            }
        }
        if parser.consume_token(&Token::RParen) {
            return Ok(numbers);
        }
        if !parser.consume_token(&Token::Comma) {
            return Err(syntax(parser, "',' or ')'"));
        }
    }
}

fn open_angle(parser: &mut Parser<'_>) -> Result<(), SqlError> {
    if parser.consume_token(&Token::Lt) {
        Ok(())
    } else {
        Err(syntax(parser, "'<'"))
    }
}

/// Consumes one `>`; half of a `>>` leaves `pending_close` set for the enclosing type.
fn close_angle(parser: &mut Parser<'_>, pending_close: &mut bool) -> Result<(), SqlError> {
    if *pending_close {
        *pending_close = false;
        return Ok(());
    }
    if parser.consume_token(&Token::Gt) {
        return Ok(());
    }
    if parser.consume_token(&Token::ShiftRight) {
        *pending_close = true;
        return Ok(());
    }
    Err(syntax(parser, "'>'"))
}

fn single_precision(parser: &mut Parser<'_>, name: &str, numbers: Vec<u64>) -> Result<Option<u64>, SqlError> {
    match numbers.as_slice() {
        [] => Ok(None),
        [p] => Ok(Some(*p)),
        _ => Err(SqlError::new(format!("{name} takes one precision")).at(position(parser))),
    }
}

fn parse_type(parser: &mut Parser<'_>, pending_close: &mut bool, depth: usize) -> Result<ColumnType, SqlError> {
    if depth > MAX_DEPTH {
        return Err(SqlError::new(format!("a type nested more than {MAX_DEPTH} levels deep")).at(position(parser)));
    }
    let start = position(parser);
    let Some(name) = word(parser, 0) else {
        return Err(syntax(parser, "a type"));
    };
    parser.next_token();
    let mut t = match name.as_str() {
        "TINYINT" => ColumnType::TinyInt,
        "SMALLINT" => ColumnType::SmallInt,
        "INT" | "INTEGER" => ColumnType::Int,
        "BIGINT" => ColumnType::BigInt,
        "FLOAT" | "REAL" => {
            parse_numbers(parser)?;
            ColumnType::Float
        }
        "DOUBLE" => {
            eat_word(parser, "PRECISION");
            ColumnType::Double
        }
        "DECIMAL" | "DEC" | "NUMERIC" => {
            let numbers = parse_numbers(parser)?;
            let (p, s) = match numbers.as_slice() {
                [] => (10, 0),
                [p] => (*p, 0),
                [p, s] => (*p, *s),
                _ => return Err(SqlError::new(format!("{name} takes a precision and a scale")).at(start)),
            };
            if !(1..=38).contains(&p) || s > p {
                return Err(SqlError::new(format!("{name}({p}, {s}) is out of range"))
                    .at(start)
                    .hint("the precision is 1 to 38 digits and the scale at most the precision"));
            }
            ColumnType::Decimal(p as u8, s as i8)
        }
        "BOOLEAN" | "BOOL" => ColumnType::Boolean,
        "STRING" | "TEXT" => ColumnType::String,
        "VARCHAR" | "CHAR" => {
            parse_numbers(parser)?;
            ColumnType::String
        }
        "CHARACTER" => {
            eat_word(parser, "VARYING");
            parse_numbers(parser)?;
            ColumnType::String
        }
        "BYTES" => ColumnType::Bytes,
        "VARBINARY" | "BINARY" => {
            parse_numbers(parser)?;
            ColumnType::Bytes
        }
        "DATE" => ColumnType::Date,
        "TIME" => {
            let numbers = parse_numbers(parser)?;
            let p = single_precision(parser, "TIME", numbers)?;
            if eat_word(parser, "WITHOUT") {
                expect_word(parser, "TIME")?;
                expect_word(parser, "ZONE")?;
            }
            ColumnType::Time(p)
        }
        "TIMESTAMP" => {
            let numbers = parse_numbers(parser)?;
            let p = single_precision(parser, "TIMESTAMP", numbers)?;
            if eat_word(parser, "WITH") {
                expect_word(parser, "LOCAL")?;
                expect_word(parser, "TIME")?;
                expect_word(parser, "ZONE")?;
                ColumnType::TimestampLtz(p)
            } else {
                if eat_word(parser, "WITHOUT") {
                    expect_word(parser, "TIME")?;
                    expect_word(parser, "ZONE")?;
                }
                ColumnType::Timestamp(p)
            }
        }
        "TIMESTAMP_LTZ" => {
            let numbers = parse_numbers(parser)?;
            ColumnType::TimestampLtz(single_precision(parser, "TIMESTAMP_LTZ", numbers)?)
        }
        "ARRAY" => {
            open_angle(parser)?;
            let element = parse_type(parser, pending_close, depth + 1)?;
            close_angle(parser, pending_close)?;
            ColumnType::Array(Box::new(element))
        }
        "MAP" => {
            open_angle(parser)?;
            let key = parse_type(parser, pending_close, depth + 1)?;
            if *pending_close || !parser.consume_token(&Token::Comma) {
                return Err(syntax(parser, "',' between the key and value types of MAP"));
            }
            let value = parse_type(parser, pending_close, depth + 1)?;
            close_angle(parser, pending_close)?;
            ColumnType::Map(Box::new(key), Box::new(value))
        }
        "ROW" | "STRUCT" => {
            let parens = name == "ROW" && parser.consume_token(&Token::LParen);
            if !parens {
                open_angle(parser)?;
            }
            let mut fields: Vec<(String, ColumnType)> = Vec::new();
            let empty = if parens { parser.consume_token(&Token::RParen) } else { parser.consume_token(&Token::Gt) };
            if !empty {
                loop {
                    let token = parser.next_token();
                    let field = match &token.token {
                        Token::Word(w) if w.quote_style.is_some() => w.value.clone(),
                        Token::Word(w) => w.value.to_lowercase(),
                        other => {
                            return Err(SqlError::new(format!("syntax error: expected a field name, found {other}"))
                                .at(Position::from_location(token.span.start)))
                        }
                    };
                    if fields.iter().any(|(f, _)| f == &field) {
                        return Err(SqlError::new(format!("field \"{field}\" is declared twice in {name}"))
                            .at(Position::from_location(token.span.start)));
                    }
                    let t = parse_type(parser, pending_close, depth + 1)?;
                    // Flink allows a description: `ROW<a INT 'the a'>`.
                    if let Token::SingleQuotedString(_) = parser.peek_token().token {
                        parser.next_token();
                    }
                    fields.push((field, t));
                    if *pending_close {
                        break;
                    }
                    if parser.consume_token(&Token::Comma) {
                        continue;
                    }
                    break;
                }
                if parens {
                    if !parser.consume_token(&Token::RParen) {
                        return Err(syntax(parser, "',' or ')'"));
                    }
                } else {
                    close_angle(parser, pending_close)?;
                }
            }
            ColumnType::Row(fields)
        }
        other => {
            return Err(SqlError::new(format!("unknown type {other}")).at(start).hint(
                "use a Flink or ksqlDB type: INT, BIGINT, DOUBLE, DECIMAL(p, s), BOOLEAN, VARCHAR, BYTES, DATE, TIME, TIMESTAMP(3), TIMESTAMP_LTZ(3), ARRAY<T>, MAP<K, V>, ROW<name T, ...>",
            ))
        }
    };
    // Flink's postfix array: `INT ARRAY`.
    while !*pending_close && eat_word(parser, "ARRAY") {
        t = ColumnType::Array(Box::new(t));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use sqlparser::dialect::GenericDialect;

    use super::*;

    fn parse(text: &str) -> Result<ColumnType, SqlError> {
        let mut parser = Parser::new(&GenericDialect {}).try_with_sql(text).map_err(|e| SqlError::new(e.to_string()))?;
        parse_column_type(&mut parser)
    }

    fn shown(text: &str) -> String {
        match parse(text) {
            Ok(t) => t.to_string(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn flink_and_ksql_spellings() {
        let cases = [
            ("TIMESTAMP_LTZ(3)", "TIMESTAMP_LTZ(3)"),
            ("timestamp(3) with local time zone", "TIMESTAMP_LTZ(3)"),
            ("TIMESTAMP(3) WITHOUT TIME ZONE", "TIMESTAMP(3)"),
            ("DECIMAL(10,2)", "DECIMAL(10, 2)"),
            ("DECIMAL", "DECIMAL(10, 0)"),
            ("NUMERIC(5)", "DECIMAL(5, 0)"),
            ("DOUBLE PRECISION", "DOUBLE"),
            ("CHARACTER VARYING(20)", "VARCHAR"),
            ("VARBINARY(16)", "BYTES"),
            ("TIME(3)", "TIME(3)"),
            ("ARRAY<INT>", "ARRAY<INT>"),
            ("INT ARRAY", "ARRAY<INT>"),
            ("MAP<STRING, ARRAY<BIGINT>>", "MAP<VARCHAR, ARRAY<BIGINT>>"),
            ("ROW<a INT, b STRING>", "ROW<a INT, b VARCHAR>"),
            ("ROW(a INT, `B` STRING)", "ROW<a INT, B VARCHAR>"),
            ("STRUCT<Street VARCHAR, Zip INT>", "ROW<street VARCHAR, zip INT>"),
            ("ARRAY<ROW<a INT>>", "ARRAY<ROW<a INT>>"),
            ("ARRAY<MAP<STRING, ARRAY<INT>>>", "ARRAY<MAP<VARCHAR, ARRAY<INT>>>"),
            ("ROW<a INT 'the a', b BOOLEAN>", "ROW<a INT, b BOOLEAN>"),
        ];
        for (text, want) in cases {
            assert_eq!(shown(text), want, "{text}");
        }
    }

    #[test]
    fn errors_name_the_token() {
        assert_eq!(
            shown("MAP<INT>"),
            "error: syntax error: expected ',' between the key and value types of MAP, found > (line 1, column 8)"
        );
        assert_eq!(shown("ARRAY<INT"), "error: syntax error: expected '>', found EOF");
        assert_eq!(
            shown("DECIMAL(40, 2)"),
            "error: DECIMAL(40, 2) is out of range (line 1, column 1); the precision is 1 to 38 digits and the scale at most the precision"
        );
        assert_eq!(shown("GEOMETRY"), "error: unknown type GEOMETRY (line 1, column 1); use a Flink or ksqlDB type: INT, BIGINT, DOUBLE, DECIMAL(p, s), BOOLEAN, VARCHAR, BYTES, DATE, TIME, TIMESTAMP(3), TIMESTAMP_LTZ(3), ARRAY<T>, MAP<K, V>, ROW<name T, ...>");
        let deep = format!("{}INT{}", "ARRAY<".repeat(40), ">".repeat(40));
        assert!(shown(&deep).starts_with("error: a type nested more than 32 levels deep"), "{}", shown(&deep));
    }
}
