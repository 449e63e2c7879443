//! `SET 'property'='value'` and `UNSET 'property'` (ksqlDB session properties).

use crate::error::Result;
use crate::result::StatementResult;
use crate::session::Session;
use crate::sql::ast::ParsedStatement;

/// Sets a session property.
///
/// Errors: an unknown property or a value it does not allow.
pub(crate) fn execute_set(session: &mut Session, property: &str, value: &str, p: &ParsedStatement) -> Result<StatementResult> {
    let warning = session.set(property, value).map_err(|e| e.at(Some(p.position)))?;
    Ok(StatementResult::PropertySet { property: property.to_string(), value: value.to_lowercase(), warning })
}

/// Removes a session property.
pub(crate) fn execute_unset(session: &mut Session, property: &str, _p: &ParsedStatement) -> Result<StatementResult> {
    if session.unset(property) {
        Ok(StatementResult::PropertyUnset { property: property.to_string() })
    } else {
        Ok(StatementResult::Noop(format!("property '{property}' was not set")))
    }
}
