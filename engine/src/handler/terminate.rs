//! `TERMINATE <query id>` and `TERMINATE ALL` (ksqlDB).

use crate::engine::Engine;
use crate::error::Result;
use crate::result::StatementResult;
use crate::session::Session;
use crate::sql::ast::Name;

impl Engine {
    /// Stops the query (its sink flushed, its offsets committed) and forgets it;
    /// `None` stops every query. A persistent query's termination is logged, so it
    /// stays terminated after a restart.
    ///
    /// Errors: the id is unknown (the closest id is the hint).
    pub(crate) async fn execute_terminate(&mut self, id: Option<&Name>, text: &str) -> Result<StatementResult> {
        let indexes: Vec<usize> = match id {
            Some(id) => match self.find_query(&id.value) {
                Some(i) => vec![i],
                None => return Err(self.unknown_query(id).into()),
            },
            None => (0..self.queries.len()).collect(),
        };
        let mut stopped = Vec::new();
        let mut persistent = false;
        for i in indexes.into_iter().rev() {
            let mut q = self.queries.remove(i);
            let status = q.stop().await;
            tracing::info!(query = %q.plan.id, %status, "query terminated");
            if !self.push_ids.remove(&q.plan.id) {
                persistent = true;
            }
            stopped.push(q.plan.id.clone());
        }
        stopped.reverse();
        if persistent {
            self.log_command(text, None, &Session::default())?;
        }
        Ok(StatementResult::Terminated(stopped))
    }
}
