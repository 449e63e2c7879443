//! `DROP STREAM|TABLE [IF EXISTS] name [DELETE TOPIC]` (ksqlDB).

use crate::catalog::{Catalog, Relation};
use crate::engine::Engine;
use crate::error::{Result, SqlError};
use crate::options::ConnectorOptions;
use crate::result::StatementResult;
use crate::session::Session;
use crate::sql::ast::{Name, ObjectKind};

impl Engine {
    /// Removes the relation from the catalog (and its topic with `DELETE TOPIC`). Push
    /// queries reading it are stopped.
    ///
    /// Errors: the name is unknown (without `IF EXISTS`); it is a TABLE and STREAM was
    /// written (or the reverse); a persistent query reads or writes it (ksqlDB refuses
    /// too: the message names the queries, the hint says to terminate them);
    /// `DELETE TOPIC` on a relation without a Kafka topic; the broker refuses.
    pub(crate) async fn execute_drop(
        &mut self,
        kind: ObjectKind,
        name: &Name,
        if_exists: bool,
        delete_topic: bool,
        text: &str,
        session: &Session,
    ) -> Result<StatementResult> {
        let Some(relation) = self.droppable(&self.catalog, &[], kind, name, if_exists, delete_topic)? else {
            return Ok(StatementResult::Noop(format!("{} {} does not exist", kind.to_string().to_lowercase(), name.value)));
        };
        let topic_deleted = match &relation.connector {
            ConnectorOptions::Kafka(k) if delete_topic => {
                // Push queries reading the topic, and terminated queries still using it,
                // end before it goes: a consumer that fetches a deleted topic is where
                // librdkafka's bugs live (tests/topic_churn.rs).
                self.end_queries_using(&relation.name).await;
                // Deleted before the lock was taken when a front ran the request's
                // preflight (as ksqlDB's TopicDeleteInjector does), else here.
                match self.take_prepared(&super::preflight::Step::DeleteTopic(relation.clone())) {
                    Some(Some(e)) => return Err(e),
                    Some(None) => {}
                    None => self.factory()?.delete_topic(&relation).await?,
                }
                Some(k.topic.clone())
            }
            _ => None,
        };
        for q in self.queries.iter().filter(|q| self.push_ids.contains(&q.plan.id) && q.plan.source.name == relation.name) {
            q.request_stop();
        }
        self.catalog.remove(&relation.name);
        self.forget_materialized(&relation.name);
        self.log_command(text, None, session)?;
        Ok(StatementResult::Dropped { kind, name: relation.name.clone(), topic_deleted })
    }

    /// Whether a push query reads `relation`, or a terminated query still flushing
    /// reads or writes it: its topic is deleted by the DROP itself, after they ended.
    pub(crate) fn ending_queries_use(&self, relation: &str) -> bool {
        let push = self.queries.iter().any(|q| self.push_ids.contains(&q.plan.id) && q.plan.source.name == relation);
        push || self.stopping.iter().any(|q| !q.is_finished() && (q.plan.source.name == relation || q.plan.sink.name == relation))
    }

    /// Stops the push queries reading `relation` and waits, 10 s at most in all, for
    /// them and for the terminated queries using it to end (their consumers closed).
    async fn end_queries_using(&mut self, relation: &str) {
        let mut i = 0;
        while i < self.queries.len() {
            if self.push_ids.contains(&self.queries[i].plan.id) && self.queries[i].plan.source.name == relation {
                let q = self.queries.remove(i);
                self.push_ids.remove(&q.plan.id);
                q.request_stop();
                self.stopping.push(q);
            } else {
                i += 1;
            }
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        for q in self.stopping.iter_mut().filter(|q| q.plan.source.name == relation || q.plan.sink.name == relation) {
            if tokio::time::timeout_at(deadline, q.wait()).await.is_err() {
                tracing::warn!(query = %q.plan.id, "query still ending after 10 s; deleting the topic of {relation} anyway");
            }
        }
        self.stopping.retain(|q| !q.is_finished());
    }

    /// The relation `DROP` would remove from `catalog`, checked as ksqlDB checks it, or
    /// `None` when it does not exist and `if_exists` was given. `planned` are queries of
    /// the same request not started yet (by their source and sink names), which use
    /// relations as running queries do.
    ///
    /// Errors: as [`Engine::execute_drop`], except the broker's.
    pub(crate) fn droppable(
        &self,
        catalog: &Catalog,
        planned: &[(String, String, String)],
        kind: ObjectKind,
        name: &Name,
        if_exists: bool,
        delete_topic: bool,
    ) -> Result<Option<Relation>> {
        let Some(relation) = catalog.get(&name.value).cloned() else {
            if if_exists {
                return Ok(None);
            }
            return Err(self.unknown_relation(name).into());
        };
        if relation.kind != kind {
            let is = relation.kind.to_string();
            return Err(SqlError::new(format!("\"{}\" is a {is}, not a {kind}", relation.name))
                .at(name.position)
                .hint(format!("write DROP {is} {}", relation.name))
                .into());
        }
        let users: Vec<String> = self
            .queries
            .iter()
            .filter(|q| !self.push_ids.contains(&q.plan.id))
            .map(|q| (q.plan.id.clone(), q.plan.source.name.clone(), q.plan.sink.name.clone()))
            .chain(planned.iter().cloned())
            .filter(|(_, source, sink)| *source == relation.name || *sink == relation.name)
            .map(|(id, _, _)| id)
            .collect();
        if !users.is_empty() {
            let verb = if users.len() == 1 { "uses" } else { "use" };
            return Err(SqlError::new(format!("cannot drop \"{}\": query {} {verb} it", relation.name, users.join(", ")))
                .at(name.position)
                .hint(format!("terminate it first: {}", users.iter().map(|u| format!("TERMINATE {u};")).collect::<Vec<_>>().join(" ")))
                .into());
        }
        if delete_topic && !matches!(relation.connector, ConnectorOptions::Kafka(_)) {
            return Err(SqlError::new(format!(
                "\"{}\" is a {} {kind}: it has no topic to delete",
                relation.name,
                relation.connector.name()
            ))
            .at(name.position)
            .hint("drop it without DELETE TOPIC")
            .into());
        }
        Ok(Some(relation.as_ref().clone()))
    }
}
