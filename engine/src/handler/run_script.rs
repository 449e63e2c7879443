//! `RUN SCRIPT 'path.sql'` (ksqlDB): the statements of a file, in order, in the
//! current session.

use crate::engine::Engine;
use crate::error::{EngineError, Result, SqlError};
use crate::result::StatementResult;
use crate::session::Session;
use crate::sql::parser::parse_sql;

impl Engine {
    /// Runs every statement of the file; each catalog change is logged on its own.
    ///
    /// Errors: the file cannot be read; the first statement that fails, located as
    /// `path:line:column` in the file (statements before it stay applied).
    pub(crate) async fn execute_run_script(&mut self, path: &str, session: &mut Session) -> Result<Vec<StatementResult>> {
        let sql = std::fs::read_to_string(path).map_err(|e| {
            EngineError::Sql(
                SqlError::new(format!("cannot read script {path}: {e}"))
                    .hint("give a path the engine can read; relative paths start at its working directory"),
            )
        })?;
        let in_file = |e: SqlError| {
            let at = e.position.map(|p| format!(":{}:{}", p.line, p.column)).unwrap_or_default();
            EngineError::Sql(SqlError { message: format!("{path}{at}: {}", e.message), position: None, hint: e.hint })
        };
        let parsed = parse_sql(&sql).map_err(in_file)?;
        let mut results = Vec::new();
        for statement in &parsed {
            match Box::pin(self.execute_statement(statement, session)).await {
                Ok(r) => results.extend(r),
                Err(EngineError::Sql(e)) => return Err(in_file(e)),
                Err(e) => return Err(e),
            }
        }
        Ok(results)
    }
}
