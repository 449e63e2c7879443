//! Statements as the fronts see them before running them: split off one by one and
//! classified, so a front can route a push query to a streaming endpoint, run `SET`
//! locally, or refuse `RUN SCRIPT` on a server, without reaching into the parser.

use crate::error::{Position, SqlError};
use crate::sql::ast::Statement;
use crate::sql::parser::parse_sql;

/// What kind of statement a [`SplitStatement`] is, as far as a front needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementKind {
    /// A push query (`SELECT ... EMIT CHANGES`): its rows stream until LIMIT or cancel.
    PushQuery,
    /// ksqlDB's `RUN SCRIPT 'path'`: a file read where the user is.
    RunScript {
        /// The path as written.
        path: String,
    },
    /// `SET 'property'='value'` (a session property).
    Set {
        /// The property, as written.
        property: String,
        /// The value, as written.
        value: String,
    },
    /// `UNSET 'property'`.
    Unset {
        /// The property, as written.
        property: String,
    },
    /// Anything else (CREATE, INSERT, SHOW, DESCRIBE, ...): run by [`crate::Engine::execute`].
    Other,
}

/// One statement of a longer text.
#[derive(Debug, Clone)]
pub struct SplitStatement {
    /// The statement's own text, without the trailing `;`.
    pub text: String,
    /// Where it starts in the input (1-based line and column).
    pub position: Position,
    /// What kind of statement it is.
    pub kind: StatementKind,
}

/// Splits `sql` into statements at each `;` outside strings and comments, parses each
/// and classifies it.
///
/// Errors: the first statement that does not parse, with its line, column and token.
pub fn split_statements(sql: &str) -> Result<Vec<SplitStatement>, SqlError> {
    Ok(parse_sql(sql)?
        .into_iter()
        .map(|p| {
            let kind = match p.statement {
                Statement::Query(..) => StatementKind::PushQuery,
                Statement::RunScript { path } => StatementKind::RunScript { path },
                Statement::Set { property, value } => StatementKind::Set { property, value },
                Statement::Unset { property } => StatementKind::Unset { property },
                _ => StatementKind::Other,
            };
            SplitStatement { text: p.text, position: p.position, kind }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_classifies() -> Result<(), SqlError> {
        let s = split_statements("SET 'auto.offset.reset'='earliest';\nSELECT * FROM s EMIT CHANGES; UNSET 'x'; SHOW STREAMS;")?;
        let kinds: Vec<_> = s.iter().map(|s| s.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                StatementKind::Set { property: "auto.offset.reset".into(), value: "earliest".into() },
                StatementKind::PushQuery,
                StatementKind::Unset { property: "x".into() },
                StatementKind::Other
            ]
        );
        assert_eq!(s[1].text, "SELECT * FROM s EMIT CHANGES");
        assert_eq!(s[1].position, Position { line: 2, column: 1 });
        Ok(())
    }
}
