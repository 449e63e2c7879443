//! Rebuilding an engine from its command log (docs/DESIGN.md, control plane; ksqlDB replays
//! its command topic the same way): the catalog as the statements left it, and the
//! persistent queries that were not terminated, resumed under their old ids, so their
//! consumer groups continue from the committed offsets.

use std::sync::Arc;

use crate::command_log::{Command, CommandLog};
use crate::engine::Engine;
use crate::runtime::start_query;
use crate::session::Session;
use crate::sql::ast::Statement;
use crate::sql::parser::parse_sql;
use crate::sql::planner::{PlannedStatement, Planner, QueryPlan};

use super::with_session;

impl Engine {
    /// Replays `commands` (from [`CommandLog::open`]), then starts the persistent
    /// queries that are still live, in the order they were created. Returns warnings,
    /// one per command that no longer applies or query that did not start; the rest
    /// is restored regardless.
    pub async fn restore(&mut self, commands: &[Command]) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut live: Vec<Arc<QueryPlan>> = Vec::new();
        // Each statement set's tag, as the id its replayed queries share.
        let mut sets: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        for command in commands {
            let set =
                command.statement_set.as_ref().map(|tag| *sets.entry(tag.clone()).or_insert_with(crate::sql::parser::new_statement_set));
            let session = Session { properties: command.properties.clone() };
            let parsed = match parse_sql(&command.statement) {
                Ok(p) => p,
                Err(e) => {
                    warnings.push(format!("command {} does not parse and is skipped: {e}", command.sequence));
                    continue;
                }
            };
            for p in parsed {
                match &p.statement {
                    Statement::CreateSource(_)
                    | Statement::CreateAs(_)
                    | Statement::InsertInto(_)
                    | Statement::CreateView(_)
                    | Statement::DropView { .. } => {
                        let planned = Planner::new(&mut self.catalog, &self.state, &mut self.query_ids)
                            .with_state_ttl(session.state_ttl_ms())
                            .plan(&p);
                        match planned {
                            Ok(statements) => {
                                for s in statements {
                                    if let PlannedStatement::StartQuery(plan) = s {
                                        let plan = with_recorded_id(with_session(plan, &session), command.query_id.as_deref());
                                        let plan = match set {
                                            Some(set) => {
                                                let mut p = Arc::unwrap_or_clone(plan);
                                                p.statement_set = Some(set);
                                                Arc::new(p)
                                            }
                                            None => plan,
                                        };
                                        self.query_ids.insert(plan.id.clone());
                                        live.push(plan);
                                    }
                                }
                            }
                            Err(e) => warnings.push(format!("command {} no longer plans and is skipped: {e}", command.sequence)),
                        }
                    }
                    Statement::Terminate(Some(id)) => live.retain(|q| !q.id.eq_ignore_ascii_case(&id.value)),
                    Statement::Terminate(None) => live.clear(),
                    Statement::Drop { name, .. } => {
                        self.catalog.remove(&name.value);
                    }
                    // The file must still be the one the model was created from.
                    Statement::CreateModel(create) => match self.load_model(create).await {
                        Ok(model) => self.catalog.insert_model(Arc::new(model)),
                        Err(e) => warnings.push(format!("command {}: model {} is not restored: {e}", command.sequence, create.name.value)),
                    },
                    Statement::DropModel { name, .. } => {
                        self.catalog.remove_model(&name.value);
                    }
                    _ => {}
                }
            }
        }
        let Some(factory) = self.factory.clone() else { return warnings };
        // Each query opens its connectors in its own task: they wait on their broker and
        // database round trips side by side, and a query that cannot open yet retries
        // there (RETRYING) rather than holding up the others.
        let plans: Vec<&Arc<QueryPlan>> = live.iter().collect();
        let shared = crate::runtime::shared_read::shared_factories(&plans, &factory, &format!("{}-", self.application_id));
        for plan in live {
            tracing::info!(query = %plan.id, "query resumed from the command log");
            let factory = shared.get(&plan.id).unwrap_or(&factory).clone();
            self.queries.push(start_query(plan, factory, &self.application_id, &self.checkpointing));
        }
        warnings
    }

    /// The sequence number of the last logged command (ksqlDB's
    /// `commandSequenceNumber`), `None` without a command log.
    pub fn command_sequence(&self) -> Option<u64> {
        self.command_log.as_ref().map(CommandLog::last_sequence)
    }

    /// Records later catalog changes in `log` (after [`Engine::restore`] has replayed it).
    pub fn set_command_log(&mut self, log: CommandLog) {
        self.command_log = Some(log);
    }
}

/// `plan` under the id the log recorded, so it keeps its consumer group.
fn with_recorded_id(plan: Arc<QueryPlan>, recorded: Option<&str>) -> Arc<QueryPlan> {
    match recorded {
        Some(id) if id != plan.id => {
            let mut p = plan.as_ref().clone();
            p.id = id.to_string();
            Arc::new(p)
        }
        _ => plan,
    }
}
