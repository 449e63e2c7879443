//! Plans `MATCH_RECOGNIZE` (SQL:2016 row pattern recognition, with Flink's
//! `WITHIN INTERVAL`) into a [`MatchRecognizePlan`] for the operator of the same name.
//!
//! **Navigation.** DEFINE and MEASURES read other rows than the current one: `A.col` (the
//! last row classified as `A`), `FIRST(A.col [, n])`, `LAST(A.col [, n])` and
//! `PREV(col [, n])` / `PREV(A.col [, n])` (n rows before the current row, or before the
//! last `A` row). Each such reference becomes a [`Navigation`] and, in the expression
//! DataFusion plans, a column `__nav_<i>` ([`super::navigation`] does the rewriting); the
//! operator resolves it per partial match.
//! An unqualified column means the current row in DEFINE and, in MEASURES, the last row
//! of the match (SQL:2016's universal row pattern variable). `NEXT` cannot be answered on
//! a stream and is refused, as in Flink.
//!
//! **DEFINE** is split into its conjuncts: those that read only the current row are
//! planned over the source's columns and evaluated vectorized over every released batch;
//! the others over the navigation columns and running aggregates (`AVG(B.price) < 15`:
//! over the rows classified so far, the current one included), evaluated per partial
//! match.
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
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::DFSchema;
use datafusion::execution::session_state::SessionState;
use datafusion::sql::planner::{PlannerContext, SqlToRel};
use sqlparser::ast::{
    AfterMatchSkip, BinaryOperator, Expr, Ident, ObjectName, ObjectNamePart, Query, RowsPerMatch, SetExpr, Spanned, TableFactor,
};

use super::ast::{duration, StreamClauses};
use super::context::CatalogContext;
use super::navigation::{coerce, column_index, navigation_schema, Rewriter, Scope};
pub use super::navigation::{MeasureAggregate, Navigation, CLASSIFIER, MATCH_NUMBER, MATCH_ROWTIME};
use super::parser::{normalize_ident, object_name};
use super::pattern::Pattern;
use super::planner::{df_error, PlannedExpr};
use crate::catalog::{Catalog, Relation};
use crate::error::{closest, Position, SqlError};
use crate::rpr::matcher::{History, Skip};
use crate::rpr::nfa::Program;

/// The name the output of a MATCH_RECOGNIZE without an alias has in the outer query.
pub const DEFAULT_ALIAS: &str = "match_recognize";

/// A condition over navigation columns: `expr` evaluates a one-row batch whose column `i`
/// holds the value of `navigations[i]`, followed by one column per aggregate (schema
/// `schema`).
#[derive(Debug, Clone)]
pub struct NavigatedExpr {
    /// What each `__nav_<i>` column of the evaluated batch reads.
    pub navigations: Vec<Navigation>,
    /// What each `__agg_<j>` column holds: a running aggregate over the partial match.
    pub aggregates: Vec<MeasureAggregate>,
    /// `__nav_<i>` fields with the source columns' types, then `__agg_<j>` fields with the
    /// aggregates' types; all nullable.
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
        write!(
            f,
            "match_recognize: partition by [{}], order by {}, {}",
            keys.join(", "),
            self.order_by,
            if self.all_rows { "all rows per match" } else { "one row per match" }
        )?;
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
                let mut refs: Vec<String> = n.navigations.iter().enumerate().map(|(i, x)| format!("__nav_{i} = {}", x.display)).collect();
                refs.extend(n.aggregates.iter().enumerate().map(|(j, a)| format!("__agg_{j} = {}", a.display)));
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
            let mut refs: Vec<String> =
                self.measure_navigations.iter().enumerate().map(|(i, x)| format!("__nav_{i} = {}", x.display)).collect();
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
/// does not run (PERMUTE, `{- -}`, anchors, NEXT, empty-match
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
        return Err(
            SqlError::new(format!("MATCH_RECOGNIZE reads a stream by name, not {table}")).hint("write FROM stream MATCH_RECOGNIZE (...)")
        );
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
        None => format!(
            "write ORDER BY ROWTIME, or declare an event-time column on \"{}\" (WATERMARK FOR col AS ..., or timestamp='col')",
            source.name
        ),
    };
    let [first] = order_by.as_slice() else {
        let position = order_by.get(1).and_then(|o| Position::from_location(o.expr.span().start));
        return Err(if order_by.is_empty() {
            SqlError::new("MATCH_RECOGNIZE needs ORDER BY the event-time column").hint(order_hint)
        } else {
            SqlError::new("MATCH_RECOGNIZE orders by the event-time column only")
                .at(position)
                .hint("rows with the same event time are ordered by source partition and offset; remove the other ORDER BY columns")
        });
    };
    let ordered_by = match &first.expr {
        Expr::Identifier(i) => Some(normalize_ident(i)),
        _ => None,
    };
    if ordered_by.as_deref() != Some(event_time.as_str()) || first.options.asc == Some(false) {
        return Err(SqlError::new(format!(
            "MATCH_RECOGNIZE must be ordered by the event-time column \"{event_time}\", ascending (as in Flink)"
        ))
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
            if err.position.is_none() {
                err.at(position)
            } else {
                err
            }
        })?;
        let logical = coerce(logical, schema)?;
        let display = logical.to_string();
        let logical = super::planner::simplified(logical, schema)?;
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
        let mut aggregates: Vec<MeasureAggregate> = Vec::new();
        for conjunct in conjuncts(&symbol.definition) {
            let mut as_row = conjunct.clone();
            let mut probe =
                Rewriter::new(Scope::Define { variable: index, current_as_column: true }, &schema, &variables, &df_schema, state);
            probe.rewrite(&mut as_row)?;
            if probe.navigations.is_empty() && probe.aggregates.is_empty() {
                row_conjuncts.push(as_row);
                continue;
            }
            let mut rewriter =
                Rewriter::new(Scope::Define { variable: index, current_as_column: false }, &schema, &variables, &df_schema, state);
            rewriter.navigations = std::mem::take(&mut navigations);
            rewriter.aggregates = std::mem::take(&mut aggregates);
            let mut nav = conjunct.clone();
            rewriter.rewrite(&mut nav)?;
            navigations = rewriter.navigations;
            aggregates = rewriter.aggregates;
            nav_conjuncts.push(nav);
        }
        if !aggregates.is_empty() {
            history = History::Classified;
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
                let mut fields: Vec<Field> =
                    navigation_schema(&navigations, &schema, "__nav_").fields().iter().map(|f| f.as_ref().clone()).collect();
                fields.extend(
                    aggregates
                        .iter()
                        .enumerate()
                        .map(|(j, a)| Field::new(format!("__agg_{j}"), a.function.field().data_type().clone(), true)),
                );
                let nav_schema = Arc::new(Schema::new(fields));
                let nav_df = DFSchema::try_from(nav_schema.as_ref().clone()).map_err(df_error)?;
                let expr = boolean(plan_expr(e, &nav_df, &name)?, &nav_schema, &v, position)?;
                Some(NavigatedExpr { navigations, aggregates, schema: nav_schema, expr })
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
    let mut measure_fields: Vec<Field> =
        navigation_schema(&rewriter.navigations, &schema, "__nav_").fields().iter().map(|f| f.as_ref().clone()).collect();
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
            return Err(SqlError::new(format!("MEASURES names a column \"{name}\" that the output already has"))
                .at(position)
                .hint("choose another alias"));
        }
        let planned = plan_expr(e, &measure_df, &name)?;
        let data_type = planned.expr.return_field(&measure_schema).map_err(df_error)?.data_type().clone();
        out_fields.push(Field::new(&name, data_type, true));
        planned_measures.push(planned);
    }
    let copied_columns: Vec<usize> =
        if all_rows { (0..schema.fields().len()).filter(|c| !partition_columns.contains(c)).collect() } else { Vec::new() };
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
