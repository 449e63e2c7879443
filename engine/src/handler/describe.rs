//! `DESCRIBE [EXTENDED] name` (ksqlDB).

use crate::engine::Engine;
use crate::error::{Result, SqlError};
use crate::options::ConnectorOptions;
use crate::result::{Description, QueryKind, RelationInfo, StatementResult};
use crate::sql::ast::{Name, Statement};
use crate::sql::parser::parse_sql;

impl Engine {
    /// The relation's schema, WITH options, and the queries reading and writing it.
    ///
    /// Errors: no stream or table has that name (the closest one is the hint).
    pub(crate) fn execute_describe(&self, name: &Name, extended: bool) -> Result<StatementResult> {
        let relation = self.catalog.get(&name.value).cloned().ok_or_else(|| self.unknown_relation(name))?;
        let options = match parse_sql(&relation.sql).ok().and_then(|p| p.into_iter().next()).map(|p| p.statement) {
            Some(Statement::CreateSource(c)) => c.options.into_iter().map(|o| (o.key, o.value)).collect(),
            Some(Statement::CreateAs(c)) => c.options.into_iter().map(|o| (o.key, o.value)).collect(),
            _ => Vec::new(),
        };
        let infos = self.query_infos();
        let read_by = infos.iter().filter(|q| q.source == relation.name).cloned().collect();
        let written_by = infos
            .iter()
            .filter(|q| q.kind == QueryKind::Persistent && q.sink.as_deref() == Some(relation.name.as_str()))
            .cloned()
            .collect();
        let info = RelationInfo::of(&relation);
        // Listed by the request's preflight (no I/O under the engine's lock).
        let topic = match &relation.connector {
            ConnectorOptions::Kafka(k) => self.prepared_topics().and_then(|topics| topics.iter().find(|t| t.name == k.topic).cloned()),
            _ => None,
        };
        Ok(StatementResult::Description(Box::new(Description { relation, info, extended, options, read_by, written_by, topic })))
    }

    /// An "unknown stream or table" error for `name`, with the closest name as a hint.
    pub(crate) fn unknown_relation(&self, name: &Name) -> SqlError {
        let hint = match crate::error::closest(&name.value, self.catalog.names()) {
            Some(c) => format!("did you mean \"{c}\"?"),
            None => "SHOW STREAMS and SHOW TABLES list them".to_string(),
        };
        SqlError::new(format!("unknown stream or table \"{}\"", name.value)).at(name.position).hint(hint)
    }
}
