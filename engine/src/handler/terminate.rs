//! `TERMINATE <query id>` and `TERMINATE ALL` (ksqlDB).

use crate::engine::Engine;
use crate::error::Result;
use crate::result::StatementResult;
use crate::session::Session;
use crate::sql::ast::Name;

impl Engine {
    /// Asks the query to stop (its sink flushes, its offsets are committed, in its own
    /// tasks: this returns at once) and forgets it; `None` stops every query. A DROP ...
    /// DELETE TOPIC of a relation it used waits for it (see `execute_drop`). A
    /// persistent query's termination is logged, so it stays terminated after a restart.
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
            let q = self.queries.remove(i);
            // It flushes and commits in its own tasks; the lock is not held for that (a
            // sink retrying a database that is down would hold it for as long).
            q.request_stop();
            tracing::info!(query = %q.plan.id, "query terminated; flushing and committing");
            if !self.push_ids.remove(&q.plan.id) {
                persistent = true;
            }
            stopped.push(q.plan.id.clone());
            self.stopping.push(q);
        }
        stopped.reverse();
        if persistent {
            self.log_command(text, None, &Session::default())?;
        }
        Ok(StatementResult::Terminated(stopped))
    }
}
