//! `EXPLAIN <statement>` and `EXPLAIN <query id>` (ksqlDB): the operator pipeline, one
//! operator per line, with the parallelism of its stateful stages.

use std::fmt::Write;

use crate::engine::Engine;
use crate::error::{Result, SqlError};
use crate::result::StatementResult;
use crate::runtime::parallelism;
use crate::session::Session;
use crate::sql::ast::{ExplainTarget, ParsedStatement, Statement};
use crate::sql::planner::{PlannedStatement, Planner};

impl Engine {
    /// Plans the statement against a copy of the catalog (nothing is applied), or shows
    /// the plan of a running query with its status and counters.
    ///
    /// Errors: the statement does not plan; the query id is unknown; the statement is
    /// not a CREATE, INSERT or SELECT.
    pub(crate) fn execute_explain(&mut self, target: &ExplainTarget, p: &ParsedStatement, session: &Session) -> Result<StatementResult> {
        match target {
            ExplainTarget::Query(id) => {
                let Some(i) = self.find_query(&id.value) else { return Err(self.unknown_query(id).into()) };
                let q = &self.queries[i];
                let info = self.query_info(q);
                let mut plan = format!("{}\n  parallelism: {}\n  status: {}", q.plan, info.parallelism, info.status);
                let m = info.metrics;
                let _ =
                    write!(plan, "\n  rows in: {}, rows out: {}, malformed: {}, late: {}", m.rows_in, m.rows_out, m.malformed, m.late_rows);
                let query = Some(explained(&q.plan, false));
                Ok(StatementResult::Explain { query_id: Some(info.id), plan, query })
            }
            ExplainTarget::Dot(inner) => {
                let plan = match inner.as_ref() {
                    ExplainTarget::Query(id) => {
                        let Some(i) = self.find_query(&id.value) else { return Err(self.unknown_query(id).into()) };
                        self.queries[i].plan.clone()
                    }
                    ExplainTarget::Statement(statement) => {
                        let inner = ParsedStatement {
                            statement: statement.as_ref().clone(),
                            text: explained_text(&p.text),
                            position: p.position,
                            statement_set: None,
                        };
                        let mut catalog = self.catalog.clone();
                        let mut query_ids = self.query_ids.clone();
                        let mut planner = Planner::new(&mut catalog, &self.state, &mut query_ids).with_state_ttl(session.state_ttl_ms());
                        let planned = match &inner.statement {
                            Statement::Query(q, clauses) if clauses.emit.is_some() => {
                                vec![PlannedStatement::StartQuery(std::sync::Arc::new(planner.plan_push(q, clauses, &inner)?.0))]
                            }
                            Statement::CreateAs(_) | Statement::InsertInto(_) => planner.plan(&inner)?,
                            _ => Vec::new(),
                        };
                        let found = planned.into_iter().find_map(|s| match s {
                            PlannedStatement::StartQuery(q) => Some(super::with_session(q, session)),
                            _ => None,
                        });
                        let Some(q) = found else {
                            return Err(SqlError::new("EXPLAIN (FORMAT DOT) draws a query: a CREATE ... AS SELECT, an INSERT ... SELECT, a push query or a query id")
                                .at(Some(p.position))
                                .hint("write EXPLAIN (FORMAT DOT) INSERT INTO sink SELECT ..., or EXPLAIN (FORMAT DOT) <query id>")
                                .into());
                        };
                        q
                    }
                    ExplainTarget::Dot(_) => {
                        return Err(SqlError::new("FORMAT is given twice").at(Some(p.position)).into());
                    }
                };
                let graph = crate::runtime::PlanGraph::of(&plan);
                Ok(StatementResult::Explain { query_id: None, plan: graph.to_dot(), query: Some(explained(&plan, false)) })
            }
            ExplainTarget::Statement(inner) => {
                let text = explained_text(&p.text);
                let inner = ParsedStatement { statement: inner.as_ref().clone(), text, position: p.position, statement_set: None };
                let mut catalog = self.catalog.clone();
                let mut query_ids = self.query_ids.clone();
                let mut planner = Planner::new(&mut catalog, &self.state, &mut query_ids).with_state_ttl(session.state_ttl_ms());
                let statements = match &inner.statement {
                    Statement::Query(q, clauses) if clauses.emit.is_none() => {
                        let pull = planner.plan_pull(q, &inner)?;
                        return Ok(StatementResult::Explain { query_id: None, plan: pull.to_string(), query: None });
                    }
                    Statement::Query(q, clauses) => {
                        vec![PlannedStatement::StartQuery(std::sync::Arc::new(planner.plan_push(q, clauses, &inner)?.0))]
                    }
                    Statement::CreateSource(_) | Statement::CreateAs(_) | Statement::InsertInto(_) => planner.plan(&inner)?,
                    _ => {
                        return Err(SqlError::new("EXPLAIN takes a CREATE, INSERT or SELECT statement, or a query id")
                            .at(Some(p.position))
                            .hint("write EXPLAIN SELECT ... or EXPLAIN <query id>")
                            .into())
                    }
                };
                let mut plan = String::new();
                let push = matches!(inner.statement, Statement::Query(..));
                let mut query = None;
                for s in statements {
                    if !plan.is_empty() {
                        plan.push('\n');
                    }
                    match s {
                        PlannedStatement::StartQuery(q) => {
                            let q = super::with_session(q, session);
                            query = Some(explained(&q, push));
                            let _ = write!(plan, "{q}\n  parallelism: {}", parallelism(&q));
                            let _ =
                                write!(plan, "\n  graph:\n    {}", crate::runtime::PlanGraph::of(&q).to_string().replace('\n', "\n    "));
                        }
                        other => {
                            let _ = write!(plan, "{other}");
                        }
                    }
                }
                Ok(StatementResult::Explain { query_id: None, plan, query })
            }
        }
    }
}

/// The statement after `EXPLAIN [(FORMAT ...)]`.
fn explained_text(text: &str) -> String {
    let rest = text.trim_start().get("EXPLAIN".len()..).unwrap_or_default().trim_start();
    let rest = match rest.strip_prefix('(') {
        Some(options) => options.split_once(')').map_or("", |(_, after)| after),
        None => rest,
    };
    rest.trim().to_string()
}

/// The `queryDescription` parts of a planned query.
fn explained(q: &crate::sql::planner::QueryPlan, push: bool) -> crate::result::ExplainedQuery {
    // Names as the relations' dialects spell them (ksqlDB: upper-cased).
    crate::result::ExplainedQuery {
        statement: q.sql.clone(),
        schema: q.sink.display_schema(&q.output_schema),
        sources: vec![q.source.display_name(&q.source.name)],
        sinks: if push { Vec::new() } else { vec![q.sink.display_name(&q.sink.name)] },
    }
}
