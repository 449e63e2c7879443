//! Plans `MATCH_RECOGNIZE` (SQL:2016 row pattern recognition, with Flink's
//! `WITHIN INTERVAL`) into a [`MatchRecognizePlan`] for the operator of the same name.
//!
//! **Navigation.** DEFINE and MEASURES read other rows than the current one: `A.col` (the
//! last row classified as `A`), `FIRST(A.col [, n])`, `LAST(A.col [, n])` and
//! `PREV(col [, n])` / `PREV(A.col [, n])` (n rows before the current row, or before the
//! last `A` row). Each such reference becomes a [`Navigation`] and, in the expression
//! DataFusion plans, a column `__nav_<i>`; the operator resolves it per partial match.
//! An unqualified column means the current row in DEFINE and, in MEASURES, the last row
//! of the match (SQL:2016's universal row pattern variable). `NEXT` cannot be answered on
//! a stream and is refused, as in Flink.
//!
//! **DEFINE** is split into its conjuncts: those that read only the current row are
//! planned over the source's columns and evaluated vectorized over every released batch;
//! the others over the navigation columns, evaluated per partial match.
//!
//! **MEASURES** are planned over the navigation columns plus `__agg_<j>` (aggregates over
//! one variable's rows, or all rows: `COUNT(A.*)`, `SUM(B.amount)`, `AVG`, `MIN`, `MAX`,
//! by DataFusion's accumulators), `__match_number` (`MATCH_NUMBER()`, from 1 per
//! partition key), `__classifier` (`CLASSIFIER()`) and `__match_rowtime`
//! (`MATCH_ROWTIME()`, Flink's: the event time of the match's last row).
//!
//! **Output.** `ONE ROW PER MATCH` (the default): the PARTITION BY columns, then the
//! measures. `ALL ROWS PER MATCH`: for every row of the match, the PARTITION BY columns,
//! the measures evaluated over the match up to that row (SQL:2016's RUNNING semantics),
//! then the source's other columns.

use std::collections::HashSet;
use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::DFSchema;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::Expr as DfExpr;
use datafusion::physical_expr::aggregate::{AggregateFunctionExpr, LoweredAggregateBuilder};
use datafusion::sql::planner::{PlannerContext, SqlToRel};
use sqlparser::ast::{
    AfterMatchSkip, BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, ObjectNamePart,
    Query, RowsPerMatch, SetExpr, Spanned, TableFactor, Value, VisitMut, VisitorMut,
};

use super::ast::{duration, StreamClauses};
use super::context::CatalogContext;
use super::parser::{normalize_ident, object_name};
use super::pattern::Pattern;
use super::planner::{df_error, PlannedExpr};
use crate::catalog::{Catalog, Relation};
use crate::error::{closest, Position, SqlError};
use crate::rpr::matcher::{History, Skip};
use crate::rpr::nfa::Program;

/// `MATCH_NUMBER()` in the measure schema.
pub const MATCH_NUMBER: &str = "__match_number";
/// `CLASSIFIER()` in the measure schema.
pub const CLASSIFIER: &str = "__classifier";
/// `MATCH_ROWTIME()` in the measure schema.
pub const MATCH_ROWTIME: &str = "__match_rowtime";
/// The name the output of a MATCH_RECOGNIZE without an alias has in the outer query.
pub const DEFAULT_ALIAS: &str = "match_recognize";

/// A reference to a row other than "the current one": which row, and which column of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Navigation {
    /// The pattern variable whose rows are counted (index into the program's
    /// variables), or `None` for every row of the (partial) match.
    pub variable: Option<usize>,
    /// Count from the first such row (`FIRST`) rather than the last (`LAST`, `A.col`).
    pub from_start: bool,
    /// How many such rows to skip (`FIRST(A.x, 1)` is the second `A` row).
    pub index: usize,
    /// Then go this many rows back in the partition (`PREV(.., n)`), whatever their class.
    pub prev: usize,
    /// The source column read (index into the source's schema).
    pub column: usize,
    /// SQL text, for EXPLAIN.
    pub display: String,
}

impl Navigation {
    /// The row this navigation reads, given the classified rows `(row, variable)` in
    /// order (in DEFINE, with the current row appended as its candidate variable);
    /// `None` (read as NULL) when there is no such row.
    pub fn resolve(&self, rows: &[(usize, usize)]) -> Option<usize> {
        let mut of_variable = rows.iter().filter(|(_, v)| self.variable.is_none_or(|x| x == *v));
        let anchor = if self.from_start { of_variable.nth(self.index) } else { of_variable.rev().nth(self.index) }?;
        anchor.0.checked_sub(self.prev)
    }

    /// Whether this reads the current row (or one at a fixed distance before it) in the
    /// DEFINE of `variable`: such references do not depend on earlier classifications.
    fn is_current_row(&self, variable: usize) -> bool {
        !self.from_start && self.index == 0 && self.variable.is_none_or(|v| v == variable)
    }
}

/// A condition over navigation columns: `expr` evaluates a batch whose column `i` holds
/// the value of `navigations[i]` (schema `schema`).
#[derive(Debug, Clone)]
pub struct NavigatedExpr {
    /// What each column of the evaluated batch reads.
    pub navigations: Vec<Navigation>,
    /// `__nav_<i>` fields, nullable, with the source columns' types.
    pub schema: SchemaRef,
    /// The planned condition.
    pub expr: PlannedExpr,
}

/// One variable's DEFINE, split in two.
#[derive(Debug, Clone)]
pub struct Define {
    /// The variable (normalized name).
    pub variable: String,
    /// Conjuncts that read only the current row, over the source's schema; `None`: true.
    pub row: Option<PlannedExpr>,
    /// Conjuncts that read other rows; `None`: true.
    pub navigated: Option<NavigatedExpr>,
}

/// An aggregate in MEASURES over one variable's rows (or every row of the match).
#[derive(Debug, Clone)]
pub struct MeasureAggregate {
    /// The variable, or `None` for all rows.
    pub variable: Option<usize>,
    /// DataFusion's aggregate; its arguments are over the source's schema.
    pub function: Arc<AggregateFunctionExpr>,
    /// SQL text, for EXPLAIN.
    pub display: String,
}

/// A planned MATCH_RECOGNIZE.
#[derive(Debug, Clone)]
pub struct MatchRecognizePlan {
    /// PARTITION BY expressions over the source's schema (empty: one partition).
    pub partition_by: Vec<PlannedExpr>,
    /// The ORDER BY (event-time) column, for EXPLAIN.
    pub order_by: String,
    /// PATTERN.
    pub pattern: Pattern,
    /// PATTERN compiled.
    pub program: Program,
    /// AFTER MATCH SKIP.
    pub skip: Skip,
    /// What DEFINE reads of earlier rows (decides how partial matches are merged).
    pub history: History,
    /// ALL ROWS PER MATCH (else ONE ROW PER MATCH).
    pub all_rows: bool,
    /// WITHIN (ms): a row extends a match only if its event time is less than the
    /// match's first row's plus this (Flink's rule).
    pub within_ms: Option<i64>,
    /// One per program variable, in the program's order.
    pub defines: Vec<Define>,
    /// Navigations of MEASURES (`__nav_<i>` of the measure schema).
    pub measure_navigations: Vec<Navigation>,
    /// Aggregates of MEASURES (`__agg_<j>`).
    pub measure_aggregates: Vec<MeasureAggregate>,
    /// Schema MEASURES are evaluated over: navigations, aggregates, `__match_number`
    /// (Int64), `__classifier` (Utf8), `__match_rowtime` (Timestamp(ms)).
    pub measure_schema: SchemaRef,
    /// MEASURES, over the measure schema, named by their aliases.
    pub measures: Vec<PlannedExpr>,
    /// Source columns copied to every output row after the measures (ALL ROWS PER MATCH).
    pub copied_columns: Vec<usize>,
    /// The rows the operator emits (see the module docs).
    pub output_schema: SchemaRef,
    /// Most rows any navigation looks back with PREV: rows kept before a partial match.
    pub max_prev: usize,
    /// Set when partial matches are bounded by nothing (unbounded quantifier, no WITHIN).
    pub warning: Option<String>,
    /// Whether MEASURES use `MATCH_NUMBER()`: then every partition key keeps its match
    /// counter for good; otherwise a key without rows or partial matches is forgotten.
    pub uses_match_number: bool,
}

impl fmt::Display for MatchRecognizePlan {
    /// The operator for EXPLAIN, with the compiled program (states and transitions).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.partition_by.iter().map(|k| k.display.as_str()).collect();
        write!(f, "match_recognize: partition by [{}], order by {}, {}", keys.join(", "), self.order_by, if self.all_rows { "all rows per match" } else { "one row per match" })?;
        let skip = match self.skip {
            Skip::PastLastRow => "past last row".to_string(),
            Skip::ToNextRow => "to next row".to_string(),
            Skip::ToFirst(v) => format!("to first {}", self.program.variables.get(v).map(String::as_str).unwrap_or("?")),
            Skip::ToLast(v) => format!("to last {}", self.program.variables.get(v).map(String::as_str).unwrap_or("?")),
        };
        write!(f, ", after match skip {skip}")?;
        match self.within_ms {
            Some(ms) => write!(f, ", within {}", duration(ms))?,
            None => write!(f, ", no within")?,
        }
        write!(f, "\n    pattern: {}", self.pattern)?;
        if let Some(w) = &self.warning {
            write!(f, "\n    warning: {w}")?;
        }
        for d in &self.defines {
            let row = d.row.as_ref().map(|r| r.display.clone());
            let nav = d.navigated.as_ref().map(|n| {
                let refs: Vec<String> = n.navigations.iter().enumerate().map(|(i, x)| format!("__nav_{i} = {}", x.display)).collect();
                format!("{} [{}]", n.expr.display, refs.join(", "))
            });
            match (row, nav) {
                (None, None) => write!(f, "\n    define {}: any row", d.variable)?,
                (Some(r), None) => write!(f, "\n    define {}: {r} (vectorized)", d.variable)?,
                (None, Some(n)) => write!(f, "\n    define {}: {n} (per partial match)", d.variable)?,
                (Some(r), Some(n)) => write!(f, "\n    define {}: {r} (vectorized) and {n} (per partial match)", d.variable)?,
            }
        }
        let measures: Vec<String> = self.measures.iter().map(|m| format!("{} := {}", m.name, m.display)).collect();
        write!(f, "\n    measures: {}", measures.join(", "))?;
        if !self.measure_navigations.is_empty() || !self.measure_aggregates.is_empty() {
            let mut refs: Vec<String> = self.measure_navigations.iter().enumerate().map(|(i, x)| format!("__nav_{i} = {}", x.display)).collect();
            refs.extend(self.measure_aggregates.iter().enumerate().map(|(j, a)| format!("__agg_{j} = {}", a.display)));
            write!(f, "\n    measure inputs: {}", refs.join(", "))?;
        }
        write!(f, "\n    program:")?;
        for line in self.program.to_string().lines() {
            write!(f, "\n      {line}")?;
        }
        Ok(())
    }
}

/// A query whose FROM is `source MATCH_RECOGNIZE (...)`, planned.
pub struct Recognized {
    /// The operator's plan.
    pub plan: MatchRecognizePlan,
    /// The source read.
    pub source: Arc<Relation>,
    /// The operator's output as a relation named by the alias (for planning the outer query).
    pub output: Arc<Relation>,
    /// The query with its FROM replaced by that relation.
    pub query: Query,
}

/// Plans the MATCH_RECOGNIZE of `query`'s FROM, if it has one.
///
/// Errors, each with position and hint: a FROM other than a named stream, an ORDER BY
/// that is not the event-time column, an unknown variable or column, a construct Eddy
/// does not run (PERMUTE, `{- -}`, anchors, NEXT, aggregates in DEFINE, empty-match
/// modes), a DEFINE that is not a condition, a measure without an alias.
pub fn plan(query: &Query, clauses: &StreamClauses, catalog: &Catalog, state: &SessionState) -> Result<Option<Recognized>, SqlError> {
    let SetExpr::Select(select) = query.body.as_ref() else { return Ok(None) };
    let Some(from) = select.from.first() else { return Ok(None) };
    let TableFactor::MatchRecognize { table, partition_by, order_by, measures, rows_per_match, after_match_skip, pattern, symbols, alias } =
        &from.relation
    else {
        if let Some((_, position)) = clauses.within {
            return Err(SqlError::new("WITHIN INTERVAL belongs to a MATCH_RECOGNIZE PATTERN").at(position));
        }
        return Ok(None);
    };
    let TableFactor::Table { name, args: None, .. } = table.as_ref() else {
        return Err(SqlError::new(format!("MATCH_RECOGNIZE reads a stream by name, not {table}")).hint("write FROM stream MATCH_RECOGNIZE (...)"));
    };
    let name = object_name(name)?;
    let source = catalog.get(&name.value).cloned().ok_or_else(|| {
        SqlError::new(format!("unknown stream or table \"{}\"", name.value))
            .at(name.position)
            .maybe_hint(closest(&name.value, catalog.names()).map(|c| format!("did you mean \"{c}\"?")))
    })?;
    let schema = source.schema.clone();
    let df_schema = DFSchema::try_from(schema.as_ref().clone()).map_err(df_error)?;

    // PATTERN.
    let pattern = Pattern::from_sql(pattern)?;
    let program = Program::compile(&pattern)?;
    let variables = program.variables.clone();
    let variable_index = |ident: &Ident| -> Result<usize, SqlError> {
        let v = normalize_ident(ident);
        variables.iter().position(|x| *x == v).ok_or_else(|| {
            SqlError::new(format!("unknown pattern variable \"{v}\""))
                .at(Position::from_location(ident.span.start))
                .hint(format!("PATTERN uses {}", variables.join(", ")))
        })
    };

    // ORDER BY: the event-time column, ascending.
    let event_time = source.event_time.column.clone().unwrap_or_else(|| "rowtime".to_string());
    let order_hint = match &source.event_time.column {
        Some(c) => format!("write ORDER BY {c}: rows are matched in event-time order"),
        None => format!("write ORDER BY ROWTIME, or declare an event-time column on \"{}\" (WATERMARK FOR col AS ..., or timestamp='col')", source.name),
    };
    let [first] = order_by.as_slice() else {
        let position = order_by.get(1).and_then(|o| Position::from_location(o.expr.span().start));
        return Err(if order_by.is_empty() {
            SqlError::new("MATCH_RECOGNIZE needs ORDER BY the event-time column").hint(order_hint)
        } else {
            SqlError::new("MATCH_RECOGNIZE orders by the event-time column only").at(position).hint("rows with the same event time are ordered by source partition and offset; remove the other ORDER BY columns")
        });
    };
    let ordered_by = match &first.expr {
        Expr::Identifier(i) => Some(normalize_ident(i)),
        _ => None,
    };
    if ordered_by.as_deref() != Some(event_time.as_str()) || first.options.asc == Some(false) {
        return Err(SqlError::new(format!("MATCH_RECOGNIZE must be ordered by the event-time column \"{event_time}\", ascending (as in Flink)"))
            .at(Position::from_location(first.expr.span().start))
            .hint(order_hint));
    }

    // PARTITION BY: columns of the source.
    let mut partition_columns = Vec::new();
    let mut partition_exprs = Vec::new();
    for e in partition_by {
        let Expr::Identifier(ident) = e else {
            return Err(SqlError::new(format!("PARTITION BY takes columns, found {e}"))
                .at(Position::from_location(e.span().start))
                .hint("partition by a column; compute others in a stream first"));
        };
        let column = column_index(ident, &schema)?;
        let field = schema.field(column);
        partition_columns.push(column);
        let expr = datafusion::physical_expr::expressions::col(field.name(), &schema).map_err(df_error)?;
        partition_exprs.push(PlannedExpr { name: field.name().clone(), display: field.name().clone(), expr });
    }

    // ONE ROW / ALL ROWS.
    let all_rows = match rows_per_match {
        None | Some(RowsPerMatch::OneRow) => false,
        Some(RowsPerMatch::AllRows(None)) => true,
        Some(RowsPerMatch::AllRows(Some(mode))) => {
            return Err(SqlError::new(format!("ALL ROWS PER MATCH {mode} is not supported"))
                .hint("PATTERN cannot match zero rows in Eddy, so there are no empty matches to show or omit; write ALL ROWS PER MATCH"))
        }
    };

    // AFTER MATCH SKIP.
    let skip = match after_match_skip {
        None | Some(AfterMatchSkip::PastLastRow) => Skip::PastLastRow,
        Some(AfterMatchSkip::ToNextRow) => Skip::ToNextRow,
        Some(AfterMatchSkip::ToFirst(v)) => Skip::ToFirst(variable_index(v)?),
        Some(AfterMatchSkip::ToLast(v)) => Skip::ToLast(variable_index(v)?),
    };

    let ctx_catalog = Catalog::default();
    let ctx = CatalogContext::new(&ctx_catalog, state);
    let sql_to_rel = SqlToRel::new(&ctx);
    let plan_expr = |expr: Expr, schema: &DFSchema, name: &str| -> Result<PlannedExpr, SqlError> {
        let position = Position::from_location(expr.span().start);
        let logical = sql_to_rel.sql_to_expr(expr, schema, &mut PlannerContext::new()).map_err(|e| {
            let err = df_error(e);
            if err.position.is_none() { err.at(position) } else { err }
        })?;
        let logical = coerce(logical, schema)?;
        let display = logical.to_string();
        let physical = state.create_physical_expr(logical, schema).map_err(df_error)?;
        Ok(PlannedExpr { name: name.to_string(), display, expr: physical })
    };

    // DEFINE.
    let mut defines: Vec<Define> = variables.iter().map(|v| Define { variable: v.clone(), row: None, navigated: None }).collect();
    let mut history = History::CurrentRow;
    let mut max_prev = 0;
    let mut seen_defines = HashSet::new();
    for symbol in symbols {
        let position = Position::from_location(symbol.symbol.span.start);
        let v = normalize_ident(&symbol.symbol);
        let Some(index) = variables.iter().position(|x| *x == v) else {
            return Err(SqlError::new(format!("DEFINE {v} names a variable that PATTERN does not use"))
                .at(position)
                .hint(format!("PATTERN uses {}", variables.join(", "))));
        };
        if !seen_defines.insert(index) {
            return Err(SqlError::new(format!("{v} is defined twice")).at(position).hint("combine the conditions with AND"));
        }
        let mut row_conjuncts = Vec::new();
        let mut nav_conjuncts = Vec::new();
        let mut navigations = Vec::new();
        for conjunct in conjuncts(&symbol.definition) {
            let mut as_row = conjunct.clone();
            let mut probe = Rewriter::new(Scope::Define { variable: index, current_as_column: true }, &schema, &variables, &df_schema, state);
            probe.rewrite(&mut as_row)?;
            if probe.navigations.is_empty() {
                row_conjuncts.push(as_row);
                continue;
            }
            let mut rewriter = Rewriter::new(Scope::Define { variable: index, current_as_column: false }, &schema, &variables, &df_schema, state);
            rewriter.navigations = std::mem::take(&mut navigations);
            let mut nav = conjunct.clone();
            rewriter.rewrite(&mut nav)?;
            navigations = rewriter.navigations;
            nav_conjuncts.push(nav);
        }
        for n in &navigations {
            max_prev = max_prev.max(n.prev);
            if !n.is_current_row(index) {
                history = History::Classified;
            }
        }
        let name = format!("define_{v}");
        let row = match and_all(row_conjuncts) {
            Some(e) => Some(boolean(plan_expr(e, &df_schema, &name)?, &schema, &v, position)?),
            None => None,
        };
        let navigated = match and_all(nav_conjuncts) {
            Some(e) => {
                let nav_schema = navigation_schema(&navigations, &schema, "__nav_");
                let nav_df = DFSchema::try_from(nav_schema.as_ref().clone()).map_err(df_error)?;
                let expr = boolean(plan_expr(e, &nav_df, &name)?, &nav_schema, &v, position)?;
                Some(NavigatedExpr { navigations, schema: nav_schema, expr })
            }
            None => None,
        };
        defines[index] = Define { variable: v, row, navigated };
    }

    // MEASURES.
    let mut rewriter = Rewriter::new(Scope::Measure, &schema, &variables, &df_schema, state);
    let mut rewritten = Vec::with_capacity(measures.len());
    for m in measures {
        let mut e = m.expr.clone();
        rewriter.rewrite(&mut e)?;
        rewritten.push((normalize_ident(&m.alias), e, Position::from_location(m.alias.span.start)));
    }
    for n in &rewriter.navigations {
        max_prev = max_prev.max(n.prev);
    }
    let mut measure_fields: Vec<Field> = navigation_schema(&rewriter.navigations, &schema, "__nav_").fields().iter().map(|f| f.as_ref().clone()).collect();
    for (j, a) in rewriter.aggregates.iter().enumerate() {
        let field = a.function.field();
        measure_fields.push(Field::new(format!("__agg_{j}"), field.data_type().clone(), true));
    }
    measure_fields.push(Field::new(MATCH_NUMBER, DataType::Int64, false));
    measure_fields.push(Field::new(CLASSIFIER, DataType::Utf8, true));
    measure_fields.push(Field::new(MATCH_ROWTIME, DataType::Timestamp(TimeUnit::Millisecond, None), false));
    let measure_schema = Arc::new(Schema::new(measure_fields));
    let measure_df = DFSchema::try_from(measure_schema.as_ref().clone()).map_err(df_error)?;
    let mut planned_measures = Vec::with_capacity(rewritten.len());
    let mut out_fields: Vec<Field> = partition_columns.iter().map(|&c| schema.field(c).clone().with_nullable(true)).collect();
    for (name, e, position) in rewritten {
        if out_fields.iter().any(|f| f.name() == &name) {
            return Err(SqlError::new(format!("MEASURES names a column \"{name}\" that the output already has")).at(position).hint("choose another alias"));
        }
        let planned = plan_expr(e, &measure_df, &name)?;
        let data_type = planned.expr.return_field(&measure_schema).map_err(df_error)?.data_type().clone();
        out_fields.push(Field::new(&name, data_type, true));
        planned_measures.push(planned);
    }
    let copied_columns: Vec<usize> = if all_rows { (0..schema.fields().len()).filter(|c| !partition_columns.contains(c)).collect() } else { Vec::new() };
    for &c in &copied_columns {
        let field = schema.field(c);
        if out_fields.iter().any(|f| f.name() == field.name()) {
            return Err(SqlError::new(format!("with ALL ROWS PER MATCH the output has the column \"{}\" twice", field.name()))
                .hint("rename the measure"));
        }
        out_fields.push(field.clone().with_nullable(true));
    }
    let output_schema = Arc::new(Schema::new(out_fields));

    let within_ms = clauses.within.map(|(ms, _)| ms);
    let warning = (within_ms.is_none() && pattern.is_unbounded()).then(|| {
        format!("PATTERN {pattern} has an unbounded quantifier and no WITHIN: partial matches, and the rows they hold, can grow without bound; add WITHIN INTERVAL '..' after PATTERN to bound them")
    });

    let uses_match_number = rewriter.uses_match_number;
    let plan = MatchRecognizePlan {
        partition_by: partition_exprs,
        order_by: event_time,
        pattern,
        program,
        skip,
        history,
        all_rows,
        within_ms,
        defines,
        measure_navigations: rewriter.navigations,
        measure_aggregates: rewriter.aggregates,
        measure_schema,
        measures: planned_measures,
        copied_columns,
        output_schema: output_schema.clone(),
        max_prev,
        warning,
        uses_match_number,
    };

    // The outer query reads the operator's output under the alias.
    let out_name = alias.as_ref().map(|a| normalize_ident(&a.name)).unwrap_or_else(|| DEFAULT_ALIAS.to_string());
    let mut output = source.as_ref().clone();
    output.name = out_name.clone();
    output.schema = output_schema;
    output.key = Vec::new();
    output.computed = Vec::new();
    let mut rewritten_query = query.clone();
    if let SetExpr::Select(select) = rewritten_query.body.as_mut() {
        if let Some(from) = select.from.first_mut() {
            from.relation = TableFactor::Table {
                name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(out_name))]),
                alias: None,
                args: None,
                with_hints: Vec::new(),
                version: None,
                with_ordinality: false,
                partitions: Vec::new(),
                json_path: None,
                sample: None,
                index_hints: Vec::new(),
            };
        }
    }
    Ok(Some(Recognized { plan, source, output: Arc::new(output), query: rewritten_query }))
}

/// DataFusion's type coercion (`SUM` of an INT, INT compared with BIGINT), which its
/// analyzer applies to plans and Eddy applies to these free-standing expressions.
fn coerce(expr: DfExpr, schema: &DFSchema) -> Result<DfExpr, SqlError> {
    use datafusion::common::tree_node::TreeNode;
    let mut rewriter = datafusion::optimizer::analyzer::type_coercion::TypeCoercionRewriter::new(schema);
    expr.rewrite(&mut rewriter).map(|t| t.data).map_err(df_error)
}

/// The top-level conjuncts of a condition.
fn conjuncts(expr: &Expr) -> Vec<Expr> {
    match expr {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            let mut out = conjuncts(left);
            out.extend(conjuncts(right));
            out
        }
        Expr::Nested(inner) if matches!(inner.as_ref(), Expr::BinaryOp { op: BinaryOperator::And, .. }) => conjuncts(inner),
        other => vec![other.clone()],
    }
}

fn and_all(parts: Vec<Expr>) -> Option<Expr> {
    parts.into_iter().reduce(|a, b| Expr::BinaryOp { left: Box::new(a), op: BinaryOperator::And, right: Box::new(b) })
}

/// Checks that a DEFINE is a condition.
fn boolean(planned: PlannedExpr, schema: &Schema, variable: &str, position: Option<Position>) -> Result<PlannedExpr, SqlError> {
    let data_type = planned.expr.return_field(schema).map_err(df_error)?.data_type().clone();
    if data_type != DataType::Boolean {
        return Err(SqlError::new(format!("DEFINE {variable} must be a condition (BOOLEAN), but it is {data_type}"))
            .at(position)
            .hint(format!("compare values, e.g. DEFINE {variable} AS {variable}.price > PREV({variable}.price)")));
    }
    Ok(planned)
}

fn navigation_schema(navigations: &[Navigation], schema: &Schema, prefix: &str) -> SchemaRef {
    Arc::new(Schema::new(
        navigations.iter().enumerate().map(|(i, n)| Field::new(format!("{prefix}{i}"), schema.field(n.column).data_type().clone(), true)).collect::<Vec<_>>(),
    ))
}

fn column_index(ident: &Ident, schema: &Schema) -> Result<usize, SqlError> {
    let name = normalize_ident(ident);
    schema.index_of(&name).map_err(|_| {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        SqlError::new(format!("unknown column \"{name}\""))
            .at(Position::from_location(ident.span.start))
            .hint(closest(&name, names.iter().copied()).map(|c| format!("did you mean \"{c}\"?")).unwrap_or_else(|| format!("columns: {}", names.join(", "))))
    })
}

#[derive(Debug, Clone, Copy)]
enum Scope {
    /// The DEFINE of `variable`; the current row's columns stay columns (vectorized
    /// conjuncts) or become navigations.
    Define { variable: usize, current_as_column: bool },
    Measure,
}

/// Replaces navigation, aggregates and MATCH_NUMBER / CLASSIFIER / MATCH_ROWTIME by
/// columns of the schema the expression is then planned over.
struct Rewriter<'a> {
    scope: Scope,
    schema: &'a Schema,
    variables: &'a [String],
    df_schema: &'a DFSchema,
    state: &'a SessionState,
    navigations: Vec<Navigation>,
    aggregates: Vec<MeasureAggregate>,
    uses_match_number: bool,
}

impl<'a> Rewriter<'a> {
    fn new(scope: Scope, schema: &'a Schema, variables: &'a [String], df_schema: &'a DFSchema, state: &'a SessionState) -> Self {
        Rewriter { scope, schema, variables, df_schema, state, navigations: Vec::new(), aggregates: Vec::new(), uses_match_number: false }
    }

    fn rewrite(&mut self, expr: &mut Expr) -> Result<(), SqlError> {
        match expr.visit(self) {
            ControlFlow::Break(e) => Err(e),
            ControlFlow::Continue(()) => Ok(()),
        }
    }

    fn variable(&self, ident: &Ident) -> Option<usize> {
        let v = normalize_ident(ident);
        self.variables.iter().position(|x| *x == v)
    }

    /// A column reference `col` or `v.col`: `(variable or None, column index)`.
    fn reference(&self, expr: &Expr) -> Result<Option<(Option<usize>, usize, String)>, SqlError> {
        match expr {
            Expr::Identifier(ident) => Ok(Some((None, column_index(ident, self.schema)?, normalize_ident(ident)))),
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let variable = self.variable(&parts[0]).ok_or_else(|| {
                    SqlError::new(format!("unknown pattern variable \"{}\"", normalize_ident(&parts[0])))
                        .at(Position::from_location(parts[0].span.start))
                        .hint(format!("qualify columns by a PATTERN variable: {}", self.variables.join(", ")))
                })?;
                let column = column_index(&parts[1], self.schema)?;
                Ok(Some((Some(variable), column, format!("{}.{}", self.variables[variable], normalize_ident(&parts[1])))))
            }
            _ => Ok(None),
        }
    }

    /// The column that stands for `navigation` in the rewritten expression.
    fn navigation(&mut self, navigation: Navigation) -> Expr {
        let i = match self.navigations.iter().position(|n| n.variable == navigation.variable && n.from_start == navigation.from_start && n.index == navigation.index && n.prev == navigation.prev && n.column == navigation.column) {
            Some(i) => i,
            None => {
                self.navigations.push(navigation);
                self.navigations.len() - 1
            }
        };
        Expr::Identifier(Ident::new(format!("__nav_{i}")))
    }

    /// A plain reference: in DEFINE of `x`, `col` and `x.col` are the current row.
    fn plain(&mut self, variable: Option<usize>, column: usize, display: String) -> Option<Expr> {
        let current = match self.scope {
            Scope::Define { variable: x, current_as_column } => {
                let is_current = variable.is_none_or(|v| v == x);
                if is_current && current_as_column {
                    return Some(Expr::Identifier(Ident::with_quote('"', self.schema.field(column).name())));
                }
                is_current.then_some(x)
            }
            Scope::Measure => None,
        };
        Some(self.navigation(Navigation { variable: current.or(variable), from_start: false, index: 0, prev: 0, column, display }))
    }

    fn function(&mut self, f: &sqlparser::ast::Function, position: Option<Position>) -> Result<Option<Expr>, SqlError> {
        let name = f.name.to_string().to_uppercase();
        let args: Vec<&FunctionArg> = match &f.args {
            FunctionArguments::List(list) => list.args.iter().collect(),
            FunctionArguments::None => Vec::new(),
            FunctionArguments::Subquery(_) => return Ok(None),
        };
        let measure = matches!(self.scope, Scope::Measure);
        let only_measures = |what: &str| SqlError::new(format!("{what} can only be used in MEASURES")).at(position);
        match name.as_str() {
            "FIRST" | "LAST" | "PREV" => {
                // PREV(x) is one row back; FIRST(x) and LAST(x) the first and last row.
                let default = usize::from(name == "PREV");
                let (target, offset) = match args.as_slice() {
                    [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => (e, default),
                    [FunctionArg::Unnamed(FunctionArgExpr::Expr(e)), FunctionArg::Unnamed(FunctionArgExpr::Expr(n))] => (e, offset_of(n, &name)?),
                    _ => return Err(navigation_error(&name, position)),
                };
                let Some((variable, column, display)) = self.reference(target)? else { return Err(navigation_error(&name, position)) };
                let text = if offset == default { format!("{name}({display})") } else { format!("{name}({display}, {offset})") };
                let navigation = match name.as_str() {
                    "FIRST" => Navigation { variable, from_start: true, index: offset, prev: 0, column, display: text },
                    "LAST" => Navigation { variable, from_start: false, index: offset, prev: 0, column, display: text },
                    _ => {
                        // PREV counts rows of the partition back from the current row
                        // (DEFINE) or from the last row of the variable.
                        let anchor = match (self.scope, variable) {
                            (Scope::Define { variable: x, .. }, None) => Some(x),
                            (_, v) => v,
                        };
                        Navigation { variable: anchor, from_start: false, index: 0, prev: offset, column, display: text }
                    }
                };
                Ok(Some(self.navigation(navigation)))
            }
            "NEXT" => Err(SqlError::new("NEXT is not supported: a stream cannot look at rows that have not arrived")
                .at(position)
                .hint("rewrite the condition on the later row with PREV, as Flink requires")),
            "MATCH_NUMBER" if measure => {
                self.uses_match_number = true;
                Ok(Some(Expr::Identifier(Ident::new(MATCH_NUMBER))))
            }
            "CLASSIFIER" if measure => Ok(Some(Expr::Identifier(Ident::new(CLASSIFIER)))),
            "MATCH_ROWTIME" if measure => Ok(Some(Expr::Identifier(Ident::new(MATCH_ROWTIME)))),
            "MATCH_NUMBER" | "CLASSIFIER" | "MATCH_ROWTIME" => Err(only_measures(&format!("{name}()"))),
            "COUNT" | "SUM" | "AVG" | "MIN" | "MAX" => {
                if !measure {
                    return Err(SqlError::new(format!("aggregates such as {name} are not supported in DEFINE"))
                        .at(position)
                        .hint("compare with FIRST/LAST/PREV in DEFINE, and aggregate in MEASURES"));
                }
                self.aggregate(f, &name, position).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// An aggregate over one variable's rows (or all rows), planned by DataFusion over the
    /// source's schema with the variable's qualifier removed.
    fn aggregate(&mut self, f: &sqlparser::ast::Function, name: &str, position: Option<Position>) -> Result<Expr, SqlError> {
        let mut variable: Option<Option<usize>> = None;
        let mut set_variable = |v: Option<usize>| -> Result<(), SqlError> {
            match variable {
                Some(existing) if existing != v => Err(SqlError::new(format!("{name} mixes rows of different pattern variables"))
                    .at(position)
                    .hint("aggregate one variable's rows, e.g. SUM(B.amount)")),
                _ => {
                    variable = Some(v);
                    Ok(())
                }
            }
        };
        let mut plain = f.clone();
        if let FunctionArguments::List(list) = &mut plain.args {
            for arg in &mut list.args {
                let FunctionArg::Unnamed(arg) = arg else { return Err(SqlError::new(format!("named arguments are not supported in {name}")).at(position)) };
                match arg {
                    FunctionArgExpr::Wildcard => set_variable(None)?,
                    FunctionArgExpr::WildcardWithOptions(_) => {
                        return Err(SqlError::new(format!("{name}(* ...) with wildcard options is not supported")).at(position))
                    }
                    FunctionArgExpr::QualifiedWildcard(q) => {
                        let ident = match q.0.as_slice() {
                            [ObjectNamePart::Identifier(i)] => i.clone(),
                            _ => return Err(SqlError::new(format!("{name}({q}.*) needs a pattern variable")).at(position)),
                        };
                        let v = self.variable(&ident).ok_or_else(|| {
                            SqlError::new(format!("unknown pattern variable \"{}\"", normalize_ident(&ident)))
                                .at(Position::from_location(ident.span.start))
                                .hint(format!("PATTERN uses {}", self.variables.join(", ")))
                        })?;
                        set_variable(Some(v))?;
                        *arg = FunctionArgExpr::Wildcard;
                    }
                    FunctionArgExpr::Expr(e) => {
                        let mut failure = None;
                        let _ = sqlparser::ast::visit_expressions_mut(e, |inner| {
                            if let Expr::CompoundIdentifier(parts) = inner {
                                if parts.len() == 2 {
                                    match self.variable(&parts[0]) {
                                        Some(v) => {
                                            if let Err(err) = set_variable(Some(v)) {
                                                failure = Some(err);
                                            }
                                            *inner = Expr::Identifier(parts[1].clone());
                                        }
                                        None => {
                                            failure = Some(
                                                SqlError::new(format!("unknown pattern variable \"{}\"", normalize_ident(&parts[0])))
                                                    .at(Position::from_location(parts[0].span.start))
                                                    .hint(format!("PATTERN uses {}", self.variables.join(", "))),
                                            )
                                        }
                                    }
                                }
                            }
                            ControlFlow::<()>::Continue(())
                        });
                        if let Some(err) = failure {
                            return Err(err);
                        }
                    }
                }
            }
        }
        let display = Expr::Function(f.clone()).to_string();
        let ctx_catalog = Catalog::default();
        let ctx = CatalogContext::new(&ctx_catalog, self.state);
        let logical = SqlToRel::new(&ctx)
            .sql_to_expr(Expr::Function(plain), self.df_schema, &mut PlannerContext::new())
            .map_err(|e| df_error(e).at(position))?
            .unalias_nested()
            .data;
        let logical = coerce(logical, self.df_schema)?;
        if !matches!(logical, DfExpr::AggregateFunction(_)) {
            return Err(SqlError::new(format!("{display} is not an aggregate Eddy can compute")).at(position));
        }
        let physical: SchemaRef = Arc::new(self.schema.clone());
        let lowered = LoweredAggregateBuilder::new(&logical, self.df_schema, &physical, self.state.execution_props(), &PhysicalPlanningContext::default())
            .with_name(display.clone())
            .build()
            .map_err(df_error)?;
        self.aggregates.push(MeasureAggregate { variable: variable.flatten(), function: lowered.aggregate, display });
        Ok(Expr::Identifier(Ident::new(format!("__agg_{}", self.aggregates.len() - 1))))
    }
}

impl VisitorMut for Rewriter<'_> {
    type Break = SqlError;

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<SqlError> {
        let position = Position::from_location(expr.span().start);
        let replaced = match &*expr {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => match self.reference(expr) {
                Ok(Some((variable, column, display))) => self.plain(variable, column, display),
                Ok(None) => None,
                Err(e) => return ControlFlow::Break(e),
            },
            Expr::Function(f) => match self.function(&f.clone(), position) {
                Ok(r) => r,
                Err(e) => return ControlFlow::Break(e),
            },
            _ => None,
        };
        if let Some(r) = replaced {
            *expr = r;
        }
        ControlFlow::Continue(())
    }
}

fn offset_of(expr: &Expr, function: &str) -> Result<usize, SqlError> {
    if let Expr::Value(v) = expr {
        if let Value::Number(n, _) = &v.value {
            if let Ok(n) = n.parse::<usize>() {
                return Ok(n);
            }
        }
    }
    Err(SqlError::new(format!("the offset of {function} must be a non-negative integer, found {expr}"))
        .at(Position::from_location(expr.span().start))
        .hint(format!("e.g. {function}(A.price, 1)")))
}

fn navigation_error(function: &str, position: Option<Position>) -> SqlError {
    SqlError::new(format!("{function} takes a column, optionally of a pattern variable, and an optional offset"))
        .at(position)
        .hint(format!("e.g. {function}(A.price) or {function}(A.price, 1)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nav(variable: Option<usize>, from_start: bool, index: usize, prev: usize) -> Navigation {
        Navigation { variable, from_start, index, prev, column: 0, display: String::new() }
    }

    #[test]
    fn navigation_resolves_first_last_and_prev() {
        // Rows 10..=14 classified a, b, b, a, b (variables 0 and 1).
        let rows = [(10, 0), (11, 1), (12, 1), (13, 0), (14, 1)];
        assert_eq!(nav(Some(0), false, 0, 0).resolve(&rows), Some(13), "A.x: the last A row");
        assert_eq!(nav(Some(0), true, 0, 0).resolve(&rows), Some(10), "FIRST(A.x)");
        assert_eq!(nav(Some(1), true, 1, 0).resolve(&rows), Some(12), "FIRST(B.x, 1)");
        assert_eq!(nav(Some(1), false, 2, 0).resolve(&rows), Some(11), "LAST(B.x, 2)");
        assert_eq!(nav(Some(1), false, 3, 0).resolve(&rows), None, "no fourth B from the end");
        assert_eq!(nav(None, false, 0, 0).resolve(&rows), Some(14), "x: the last row of the match");
        assert_eq!(nav(Some(0), false, 0, 2).resolve(&rows), Some(11), "PREV(A.x, 2): two rows before the last A");
        assert_eq!(nav(None, true, 0, 11).resolve(&rows), None, "PREV before the partition's first row");
        assert_eq!(nav(Some(2), false, 0, 0).resolve(&rows), None, "a variable without rows");
    }
}
