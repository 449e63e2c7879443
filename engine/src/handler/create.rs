//! `CREATE STREAM|TABLE`, `CREATE ... AS SELECT`, `INSERT INTO ... SELECT` and
//! `INSERT INTO ... VALUES`.

use crate::engine::{Engine, Plan};
use crate::error::Result;
use crate::result::StatementResult;
use crate::session::Session;
use crate::sql::ast::ParsedStatement;
use crate::sql::planner::{PlannedStatement, Planner};

use super::with_session;

impl Engine {
    /// Plans the statement against a copy of the catalog, applies it (creating topics,
    /// starting its query), then logs it. A statement that fails leaves the catalog as
    /// it was.
    pub(crate) async fn execute_create(&mut self, p: &ParsedStatement, session: &Session) -> Result<Vec<StatementResult>> {
        let mut catalog = self.catalog.clone();
        let mut query_ids = self.query_ids.clone();
        let planned = Planner::new(&mut catalog, &self.state, &mut query_ids).with_state_ttl(session.state_ttl_ms()).plan(p)?;
        let statements: Vec<PlannedStatement> = planned
            .into_iter()
            .map(|s| match s {
                PlannedStatement::StartQuery(plan) => PlannedStatement::StartQuery(with_session(plan, session)),
                other => other,
            })
            .collect();
        let query_id = statements.iter().find_map(|s| match s {
            PlannedStatement::StartQuery(q) => Some(q.id.clone()),
            _ => None,
        });
        // Inserted rows are data, not a catalog change: not logged, not replayed (ksqlDB's
        // command topic does not hold INSERT ... VALUES either).
        let changes = statements.iter().any(|s| !matches!(s, PlannedStatement::Noop(_) | PlannedStatement::InsertRows { .. }));
        let results = self.apply_or_restore(Plan::new(catalog, query_ids, statements)).await?;
        if changes {
            self.log_command(&p.text, query_id.as_deref(), session)?;
        }
        Ok(results)
    }

    /// Runs the INSERTs of one Flink statement set together: each is planned (a
    /// statement that does not plan runs none of them), then all start in one step, so
    /// those reading the same source share one read of it
    /// ([`crate::runtime::shared_read`]); each is logged as its own command, tagged with the
    /// set (its first query id), so that a restart shares the reads again.
    pub(crate) async fn execute_statement_set(&mut self, set: &[ParsedStatement], session: &Session) -> Result<Vec<StatementResult>> {
        let mut catalog = self.catalog.clone();
        let mut query_ids = self.query_ids.clone();
        let mut statements = Vec::new();
        let mut logged: Vec<(String, Option<String>)> = Vec::new();
        for p in set {
            let planned = Planner::new(&mut catalog, &self.state, &mut query_ids).with_state_ttl(session.state_ttl_ms()).plan(p)?;
            let mut id = None;
            for s in planned {
                statements.push(match s {
                    PlannedStatement::StartQuery(plan) => {
                        id = Some(plan.id.clone());
                        PlannedStatement::StartQuery(with_session(plan, session))
                    }
                    other => other,
                });
            }
            logged.push((p.text.clone(), id));
        }
        let tag = logged.iter().find_map(|(_, id)| id.clone());
        let results = self.apply_or_restore(Plan::new(catalog, query_ids, statements)).await?;
        for (text, id) in &logged {
            self.log_command_in_set(text, id.as_deref(), session, tag.as_deref())?;
        }
        Ok(results)
    }

    /// Applies `plan`; when that fails, the catalog and query ids are as they were.
    async fn apply_or_restore(&mut self, plan: Plan) -> Result<Vec<StatementResult>> {
        let before = (self.catalog.clone(), self.query_ids.clone());
        match self.apply(plan).await {
            Ok(r) => Ok(r),
            Err(e) => {
                (self.catalog, self.query_ids) = before;
                Err(e)
            }
        }
    }
}
