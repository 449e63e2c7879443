//! DataFusion's view of Eddy's catalog: a [`ContextProvider`] so that DataFusion's SQL
//! planner (`SqlToRel`) binds names against streams and tables, with DataFusion's full
//! function library (string, math, date/time, CASE, CAST) and expression planners.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::{plan_err, Result as DfResult, TableReference};
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::planner::{ContextProvider, ExprPlanner};
use datafusion::logical_expr::{AggregateUDF, HigherOrderUDF, LogicalTableSource, ScalarUDF, TableSource, WindowUDF};

use crate::catalog::Catalog;

/// A DataFusion session with the default functions, used for planning and for
/// creating physical expressions. Cheap to share; build one per engine.
pub fn new_session_state() -> SessionState {
    let mut state = SessionStateBuilder::new().with_default_features().build();
    // Registering into a fresh registry cannot collide; the previous entry (none) is dropped.
    let _ = state.register_udf(Arc::new(super::functions::ToTimestampLtz::udf()));
    let _ = state.register_udf(Arc::new(super::functions::ToTimestamp::udf()));
    let _ = state.register_udf(Arc::new(super::functions::ProcTime::udf()));
    // Java's math (NaN, infinities) in place of DataFusion's, which fails some rows.
    for udf in super::functions::JavaMath::udfs() {
        let _ = state.register_udf(Arc::new(udf));
    }
    // ksqlDB's and Flink's string indexing in place of PostgreSQL's.
    use super::functions::strings::{Instr, KsqlInitcap, Substring};
    for udf in [Substring::udf(), Instr::udf(), KsqlInitcap::udf()] {
        let _ = state.register_udf(Arc::new(udf));
    }
    for udaf in super::functions::ByOffsetN::udafs() {
        let _ = state.register_udaf(Arc::new(udaf));
    }
    state
}

/// Binds table names to the catalog's relations and functions to the session's registry.
pub struct CatalogContext<'a> {
    catalog: &'a Catalog,
    state: &'a SessionState,
}

impl<'a> CatalogContext<'a> {
    /// A context over `catalog` with the functions of `state`.
    pub fn new(catalog: &'a Catalog, state: &'a SessionState) -> Self {
        CatalogContext { catalog, state }
    }
}

impl ContextProvider for CatalogContext<'_> {
    fn get_table_source(&self, name: TableReference) -> DfResult<Arc<dyn TableSource>> {
        match self.catalog.get(name.table()) {
            Some(relation) => Ok(Arc::new(LogicalTableSource::new(relation.schema.clone()))),
            None => plan_err!("unknown stream or table \"{}\"", name.table()),
        }
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        self.state.expr_planners()
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        if name.starts_with(super::ml_predict::FUNCTION_PREFIX) {
            return super::ml_predict::ModelUdf::lookup(name, self.catalog).map(|f| Arc::new(ScalarUDF::new_from_impl(f)));
        }
        self.state.scalar_functions().get(name).cloned()
    }

    fn get_higher_order_meta(&self, name: &str) -> Option<Arc<HigherOrderUDF>> {
        self.state.higher_order_functions().get(name).cloned()
    }

    fn get_aggregate_meta(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        self.state.aggregate_functions().get(name).cloned()
    }

    fn get_window_meta(&self, name: &str) -> Option<Arc<WindowUDF>> {
        self.state.window_functions().get(name).cloned()
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        self.state.config_options()
    }

    fn udf_names(&self) -> Vec<String> {
        self.state.scalar_functions().keys().cloned().collect()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        self.state.higher_order_functions().keys().cloned().collect()
    }

    fn udaf_names(&self) -> Vec<String> {
        self.state.aggregate_functions().keys().cloned().collect()
    }

    fn udwf_names(&self) -> Vec<String> {
        self.state.window_functions().keys().cloned().collect()
    }
}
