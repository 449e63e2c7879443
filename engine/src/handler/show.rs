//! `SHOW STREAMS | TABLES | QUERIES | TOPICS | PROPERTIES` (ksqlDB; `LIST` is a synonym) and
//! `SHOW MODELS` (Flink).

use crate::engine::Engine;
use crate::error::Result;
use crate::result::{RelationInfo, StatementResult};
use crate::session::Session;
use crate::sql::ast::{ObjectKind, ShowKind};

impl Engine {
    /// Lists what was asked for; `EXTENDED` changes nothing the structured result
    /// holds (the fronts show more columns).
    pub(crate) async fn execute_show(&mut self, what: ShowKind, _extended: bool, session: &Session) -> Result<StatementResult> {
        Ok(match what {
            ShowKind::Streams => self.relations_of(ObjectKind::Stream),
            ShowKind::Tables => self.relations_of(ObjectKind::Table),
            ShowKind::Queries => StatementResult::Queries(self.query_infos()),
            // Listed before the lock was taken when a front ran the request's preflight.
            ShowKind::Topics => match self.take_prepared(&super::preflight::Step::ListTopics) {
                Some(Some(e)) => return Err(e),
                Some(None) => StatementResult::Topics(self.prepared_topics().map(<[_]>::to_vec).unwrap_or_default()),
                None => StatementResult::Topics(self.factory()?.list_topics().await?),
            },
            ShowKind::Properties => {
                StatementResult::Properties { server: self.server_properties.clone(), session: session.properties.clone() }
            }
            ShowKind::Models => self.show_models(),
            ShowKind::Views => StatementResult::Views(self.catalog.views().map(|v| (v.name.clone(), v.sql.clone())).collect()),
        })
    }

    fn relations_of(&self, kind: ObjectKind) -> StatementResult {
        let relations = self.catalog.relations().filter(|r| r.kind == kind).map(|r| RelationInfo::of(r)).collect();
        StatementResult::Relations { kind, relations }
    }
}
