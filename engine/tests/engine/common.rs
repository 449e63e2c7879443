//! Helpers every engine test uses: plan SQL into the query it starts, and the schema
//! an operator reads.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use eddy_engine::operators::{MetaColumns, META_ROWTIME};
use eddy_engine::sql::planner::{PlannedStatement, QueryPlan};
use eddy_engine::{Engine, Script};

/// Plans `sql` (its CREATE statements, then one query) on an engine without connectors
/// and returns the query it starts. Panics with the SQL error, or when no statement
/// starts a query.
pub fn plan_query(sql: &str) -> Arc<QueryPlan> {
    let engine = Engine::new(None, "test");
    let plan = engine.plan(&[Script { name: "test".into(), sql: sql.into() }]).unwrap_or_else(|e| panic!("{e}"));
    plan.statements
        .into_iter()
        .find_map(|s| match s {
            PlannedStatement::StartQuery(q) => Some(q),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no statement starts a query: {sql}"))
}

/// The schema a stateful operator of `plan` reads: the source relation's columns, the
/// record meta columns of `meta`, then `__rowtime` (`Timestamp(ms)`).
pub fn operator_input(plan: &QueryPlan, meta: MetaColumns) -> SchemaRef {
    let mut fields: Vec<Field> = meta.extend(&plan.source.schema).fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(META_ROWTIME, DataType::Timestamp(TimeUnit::Millisecond, None), false));
    Arc::new(Schema::new(fields))
}
