//! Plans parsed statements: DDL becomes catalog entries, `INSERT INTO ... SELECT` and
//! `CREATE STREAM ... AS SELECT` become [`QueryPlan`]s.
//!
//! Expressions are planned by DataFusion's SQL planner (`SqlToRel` over
//! [`CatalogContext`]) and turned into `PhysicalExpr`s that evaluate whole Arrow
//! `RecordBatch`es. The resulting pipeline is `source -> decode -> filter -> project -> sink`
//! (DESIGN.md, data flow).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::DFSchema;
use datafusion::error::DataFusionError;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{Cast, Expr, LogicalPlan};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::planner::SqlToRel;
use sqlparser::ast::{GroupByExpr, Query};

use super::ast::{CreateAs, CreateSource, InsertInto, ObjectKind, ParsedStatement, Statement, WithOption};
use super::context::CatalogContext;
use super::names::check_query;
use super::types::{arrow_type, is_supported, sql_name};
use crate::catalog::{Catalog, Relation};
use crate::error::{lowercase_first, Position, SqlError};
use crate::options::{parse_connector, ConnectorOptions};

/// An expression ready to evaluate, with the name of the column it produces and its
/// DataFusion rendering (for EXPLAIN).
#[derive(Debug, Clone)]
pub struct PlannedExpr {
    /// Output column name.
    pub name: String,
    /// The logical expression as DataFusion prints it.
    pub display: String,
    /// The physical expression, evaluated on a whole batch of the source's schema.
    pub expr: Arc<dyn PhysicalExpr>,
}

/// A persistent query: read `source`, keep rows where `filter` is true, compute
/// `projection`, write `sink`.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    /// Stable id (`insert_<sink>` or `csas_<name>`): it names the Kafka consumer group,
    /// so a restarted `eddy run` resumes from the committed offsets.
    pub id: String,
    /// The statement's text.
    pub sql: String,
    /// The relation read.
    pub source: Arc<Relation>,
    /// The WHERE predicate (Boolean), over the source's schema.
    pub filter: Option<PlannedExpr>,
    /// One expression per output column, over the source's schema; already cast to the
    /// sink's column types.
    pub projection: Vec<PlannedExpr>,
    /// The schema of the rows handed to the sink (equals the sink's schema).
    pub output_schema: SchemaRef,
    /// The relation written.
    pub sink: Arc<Relation>,
}

impl fmt::Display for QueryPlan {
    /// The operator pipeline, one operator per line (EXPLAIN, golden tests, logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "query {}", self.id)?;
        writeln!(f, "  source: {} ({})", self.source.name, self.source.connector)?;
        let cols: Vec<String> =
            self.source.schema.fields().iter().map(|c| format!("{} {}", c.name(), sql_name(c.data_type()))).collect();
        let format = match &self.source.connector {
            ConnectorOptions::Kafka(k) => k.format.to_string(),
            other => other.name().to_string(),
        };
        writeln!(f, "  decode: {format} [{}]", cols.join(", "))?;
        if let Some(filter) = &self.filter {
            writeln!(f, "  filter: {}", filter.display)?;
        }
        let exprs: Vec<String> = self.projection.iter().map(|p| format!("{} := {}", p.name, p.display)).collect();
        writeln!(f, "  project: {}", exprs.join(", "))?;
        write!(f, "  sink: {} ({}", self.sink.name, self.sink.connector)?;
        if let ConnectorOptions::Postgres(_) = self.sink.connector {
            if self.sink.primary_key.is_empty() {
                write!(f, ", copy")?;
            } else {
                write!(f, ", upsert on {}", self.sink.primary_key.join(", "))?;
            }
        }
        if let (ConnectorOptions::Kafka(_), Some(key)) = (&self.sink.connector, &self.sink.key) {
            write!(f, ", key {key}")?;
        }
        write!(f, ")")
    }
}

/// What a statement does once planned.
#[derive(Debug, Clone)]
pub enum PlannedStatement {
    /// Register a stream or table (and create its topic if it names partitions and is missing).
    CreateRelation(Arc<Relation>),
    /// Start a persistent query.
    StartQuery(Arc<QueryPlan>),
    /// Nothing to do (`IF NOT EXISTS` on an existing name); the text says why.
    Noop(String),
}

impl fmt::Display for PlannedStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlannedStatement::CreateRelation(r) => {
                let cols: Vec<String> = r
                    .schema
                    .fields()
                    .iter()
                    .map(|c| {
                        let mut s = format!("{} {}", c.name(), sql_name(c.data_type()));
                        if r.key.as_deref() == Some(c.name().as_str()) {
                            s.push_str(" KEY");
                        }
                        s
                    })
                    .collect();
                write!(f, "create {} {} [{}] ({})", r.kind.to_string().to_lowercase(), r.name, cols.join(", "), r.connector)?;
                if !r.primary_key.is_empty() {
                    write!(f, " primary key ({})", r.primary_key.join(", "))?;
                }
                if let Some(w) = &r.watermark {
                    write!(f, " watermark {w}")?;
                }
                Ok(())
            }
            PlannedStatement::StartQuery(q) => write!(f, "{q}"),
            PlannedStatement::Noop(why) => write!(f, "noop: {why}"),
        }
    }
}

/// Plans statements against a catalog, applying DDL to it as it goes so later
/// statements see earlier ones.
pub struct Planner<'a> {
    catalog: &'a mut Catalog,
    state: &'a SessionState,
    query_ids: &'a mut BTreeSet<String>,
}

impl<'a> Planner<'a> {
    /// A planner over `catalog` (changed by DDL) that allocates ids not in `query_ids`.
    pub fn new(catalog: &'a mut Catalog, state: &'a SessionState, query_ids: &'a mut BTreeSet<String>) -> Self {
        Planner { catalog, state, query_ids }
    }

    /// Plans one statement. DDL updates the catalog; queries get a fresh id.
    pub fn plan(&mut self, parsed: &ParsedStatement) -> Result<Vec<PlannedStatement>, SqlError> {
        match &parsed.statement {
            Statement::CreateSource(create) => self.plan_create(create, &parsed.text),
            Statement::CreateAs(create) => self.plan_create_as(create, &parsed.text),
            Statement::InsertInto(insert) => self.plan_insert(insert, &parsed.text),
            Statement::Query(_) => Err(SqlError::new("a SELECT on its own is a transient push query, which `eddy run` does not run")
                .at(Some(parsed.position))
                .hint("write INSERT INTO sink SELECT ..., or CREATE STREAM name AS SELECT ...")),
        }
    }

    fn check_new_name(&self, kind: ObjectKind, name: &super::ast::Name, or_replace: bool, if_not_exists: bool) -> Result<bool, SqlError> {
        if self.catalog.get(&name.value).is_some() && !or_replace {
            if if_not_exists {
                return Ok(false);
            }
            return Err(SqlError::new(format!("{} \"{}\" already exists", kind.to_string().to_lowercase(), name.value))
                .at(name.position)
                .hint("use CREATE OR REPLACE, or IF NOT EXISTS"));
        }
        Ok(true)
    }

    fn plan_create(&mut self, c: &CreateSource, sql: &str) -> Result<Vec<PlannedStatement>, SqlError> {
        if !self.check_new_name(c.kind, &c.name, c.or_replace, c.if_not_exists)? {
            return Ok(vec![PlannedStatement::Noop(format!("\"{}\" already exists", c.name))]);
        }
        let mut fields = Vec::with_capacity(c.columns.len());
        let mut key = None;
        let mut primary_key: Vec<String> = Vec::new();
        for col in &c.columns {
            if fields.iter().any(|f: &Field| f.name() == &col.name.value) {
                return Err(SqlError::new(format!("column \"{}\" is declared twice", col.name)).at(col.name.position));
            }
            let data_type = arrow_type(&col.data_type, &col.name.value, col.type_position)?;
            if col.key {
                if let Some(k) = &key {
                    return Err(SqlError::new(format!("more than one KEY column: \"{k}\" and \"{}\"", col.name))
                        .at(col.name.position)
                        .hint("a stream has one KEY column, the Kafka record key"));
                }
                key = Some(col.name.value.clone());
            }
            if col.primary_key {
                primary_key.push(col.name.value.clone());
            }
            fields.push(Field::new(&col.name.value, data_type, !(col.not_null || col.primary_key)));
        }
        for pk in &c.primary_key {
            if !fields.iter().any(|f| f.name() == &pk.value) {
                return Err(unknown_column(&pk.value, pk.position, &fields));
            }
            if !primary_key.contains(&pk.value) {
                primary_key.push(pk.value.clone());
            }
        }
        let watermark = match &c.watermark {
            Some(w) => {
                if !fields.iter().any(|f| f.name() == &w.column.value) {
                    return Err(unknown_column(&w.column.value, w.column.position, &fields));
                }
                Some(format!("FOR {} AS {}", w.column, w.expr))
            }
            None => None,
        };
        let connector = parse_connector(&c.name.value, &c.options)?;
        if let Some(k) = key_fields(&c.options, &fields, key.as_deref())? {
            key = Some(k);
        }
        if let ConnectorOptions::Postgres(_) = connector {
            if primary_key.is_empty() {
                if let Some(k) = &key {
                    primary_key.push(k.clone());
                }
            }
        }
        let relation = Arc::new(Relation {
            name: c.name.value.clone(),
            kind: c.kind,
            schema: Arc::new(Schema::new(fields)),
            key,
            primary_key,
            connector,
            watermark,
            sql: sql.to_string(),
        });
        self.catalog.insert(relation.clone());
        Ok(vec![PlannedStatement::CreateRelation(relation)])
    }

    fn plan_insert(&mut self, insert: &InsertInto, sql: &str) -> Result<Vec<PlannedStatement>, SqlError> {
        let sink = self.catalog.get(&insert.target.value).cloned().ok_or_else(|| {
            let hint = crate::error::closest(&insert.target.value, self.catalog.names())
                .map(|c| format!("did you mean \"{c}\"?"))
                .unwrap_or_else(|| "create it first with CREATE TABLE ... WITH ('connector'=...)".to_string());
            SqlError::new(format!("unknown stream or table \"{}\"", insert.target.value)).at(insert.target.position).hint(hint)
        })?;
        let (source, filter, projection) = self.plan_select(&insert.query, Some(&sink))?;
        if source.name == sink.name {
            return Err(SqlError::new(format!("\"{}\" cannot be both read and written by one query", sink.name))
                .at(insert.target.position));
        }
        let id = self.next_id(&format!("insert_{}", sink.name));
        let plan = QueryPlan { id, sql: sql.to_string(), source, filter, projection, output_schema: sink.schema.clone(), sink };
        Ok(vec![PlannedStatement::StartQuery(Arc::new(plan))])
    }

    fn plan_create_as(&mut self, c: &CreateAs, sql: &str) -> Result<Vec<PlannedStatement>, SqlError> {
        if !self.check_new_name(c.kind, &c.name, c.or_replace, c.if_not_exists)? {
            return Ok(vec![PlannedStatement::Noop(format!("\"{}\" already exists", c.name))]);
        }
        let (source, filter, projection) = self.plan_select(&c.query, None)?;
        let fields: Vec<Field> =
            projection.iter().map(|p| p.expr.return_field(&source.schema).map(|f| Field::new(&p.name, f.data_type().clone(), true))).collect::<Result<_, _>>().map_err(df_error)?;
        let schema = Arc::new(Schema::new(fields));
        // The new stream inherits the source's topic settings unless WITH says otherwise
        // (ksqlDB: the sink topic is named after the stream, in the source's format).
        let mut options: Vec<WithOption> = c.options.clone();
        let has = |k: &[&str], o: &[WithOption]| o.iter().any(|x| k.contains(&x.key.as_str()));
        if !has(&["connector", "kafka_topic", "topic"], &options) {
            options.push(synthetic("kafka_topic", &c.name.value));
        }
        if let ConnectorOptions::Kafka(k) = &source.connector {
            if !has(&["connector"], &options) || options.iter().any(|o| o.key == "connector" && o.value.eq_ignore_ascii_case("kafka")) {
                if !has(&["value_format", "format"], &options) {
                    let format = match k.format {
                        crate::options::Format::Json => "json",
                        crate::options::Format::Delimited { .. } => "delimited",
                    };
                    options.push(synthetic("value_format", format));
                }
                if !has(&["properties.bootstrap.servers"], &options) {
                    if let Some(b) = &k.bootstrap_servers {
                        options.push(synthetic("properties.bootstrap.servers", b));
                    }
                }
            }
        }
        let connector = parse_connector(&c.name.value, &options)?;
        let fields_of_query: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        let key = match key_fields(&c.options, &fields_of_query, None)? {
            Some(k) => Some(k),
            None => source.key.clone().filter(|k| schema.field_with_name(k).is_ok()),
        };
        let relation = Arc::new(Relation {
            name: c.name.value.clone(),
            kind: c.kind,
            schema: schema.clone(),
            primary_key: if matches!(connector, ConnectorOptions::Postgres(_)) { key.clone().into_iter().collect() } else { Vec::new() },
            key,
            connector,
            watermark: None,
            sql: sql.to_string(),
        });
        self.catalog.insert(relation.clone());
        let id = self.next_id(&format!("csas_{}", relation.name));
        let plan = QueryPlan { id, sql: sql.to_string(), source, filter, projection, output_schema: schema, sink: relation.clone() };
        Ok(vec![PlannedStatement::CreateRelation(relation), PlannedStatement::StartQuery(Arc::new(plan))])
    }

    fn next_id(&mut self, base: &str) -> String {
        let base: String = base.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
        let mut id = base.clone();
        let mut n = 2;
        while self.query_ids.contains(&id) {
            id = format!("{base}_{n}");
            n += 1;
        }
        self.query_ids.insert(id.clone());
        id
    }

    /// Plans `SELECT ... FROM source [WHERE ...]`, casting the output to `target`'s
    /// columns when given (by position, as SQL INSERT does).
    fn plan_select(
        &self,
        query: &Query,
        target: Option<&Relation>,
    ) -> Result<SelectPlan, SqlError> {
        let (select, source) = check_query(query, self.catalog)?;
        if !source.connector.is_source() {
            return Err(SqlError::new(format!(
                "\"{}\" is a {} table: it can be written, not read",
                source.name,
                source.connector.name()
            ))
            .hint("read from a Kafka stream"));
        }
        let unsupported = |what: &str, hint: &str| Err(SqlError::new(format!("{what} is not supported in a persistent query yet")).hint(hint.to_string()));
        if select.distinct.is_some() {
            return unsupported("DISTINCT", "remove DISTINCT");
        }
        if !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty()) || select.having.is_some() {
            return unsupported("GROUP BY", "aggregations over a stream need a window (WINDOW TUMBLING), which is not available yet");
        }
        if query.order_by.is_some() || query.limit_clause.is_some() {
            return unsupported("ORDER BY / LIMIT", "a stream has no end to sort or limit; remove it");
        }
        let ctx = CatalogContext::new(self.catalog, self.state);
        let plan = SqlToRel::new(&ctx)
            .sql_statement_to_plan(sqlparser::ast::Statement::Query(Box::new(query.clone())))
            .map_err(df_error)?;
        let LogicalPlan::Projection(projection) = plan else {
            return Err(SqlError::new(format!("unsupported query plan: {}", plan.display())));
        };
        let input_schema: &DFSchema = projection.input.schema();
        let mut node = projection.input.as_ref();
        let mut predicate = None;
        loop {
            match node {
                LogicalPlan::Filter(f) => {
                    predicate = Some((f.predicate.clone(), f.input.schema().clone()));
                    node = f.input.as_ref();
                }
                LogicalPlan::SubqueryAlias(a) => node = a.input.as_ref(),
                LogicalPlan::TableScan(_) => break,
                other => {
                    return Err(SqlError::new(format!("{} is not supported in a persistent query yet", other.display()))
                        .hint("a persistent query is SELECT ... FROM one stream [WHERE ...]"))
                }
            }
        }
        let filter = match predicate {
            Some((expr, schema)) => Some(self.physical("where", expr, &schema)?),
            None => None,
        };
        let out_fields = projection.schema.fields();
        if let Some(target) = target {
            let want = target.schema.fields().len();
            if projection.expr.len() != want {
                let names: Vec<&str> = target.schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(SqlError::new(format!(
                    "\"{}\" has {want} columns but the query returns {}",
                    target.name,
                    projection.expr.len()
                ))
                .hint(format!("select exactly these, in order: {}", names.join(", "))));
            }
        }
        let mut exprs = Vec::with_capacity(projection.expr.len());
        for (i, expr) in projection.expr.iter().enumerate() {
            let expr = expr.clone().unalias();
            let have = out_fields[i].data_type().clone();
            let (name, want) = match target {
                Some(t) => {
                    let f = t.schema.field(i);
                    (f.name().clone(), f.data_type().clone())
                }
                None => {
                    let name = out_fields[i].name().clone();
                    let want = storable_type(&have).ok_or_else(|| {
                        SqlError::new(format!("column \"{name}\" has type {have}, which sinks cannot store"))
                            .hint("CAST it to INT, BIGINT, DOUBLE, BOOLEAN, VARCHAR or TIMESTAMP(3)")
                    })?;
                    (name, want)
                }
            };
            let expr = if have == want {
                expr
            } else if implicit_cast(&have, &want) {
                Expr::Cast(Cast::new(Box::new(expr), want.clone()))
            } else {
                return Err(SqlError::new(format!(
                    "column \"{name}\" is {} but the query gives {}",
                    sql_name(&want),
                    sql_name(&have)
                ))
                .hint(format!("CAST the expression to {}", sql_name(&want))));
            };
            exprs.push(self.physical(&name, expr, input_schema)?);
        }
        Ok((source, filter, exprs))
    }

    fn physical(&self, name: &str, expr: Expr, schema: &DFSchema) -> Result<PlannedExpr, SqlError> {
        let display = expr.to_string();
        let expr = self.state.create_physical_expr(expr, schema).map_err(df_error)?;
        Ok(PlannedExpr { name: name.to_string(), display, expr })
    }
}

/// Flink's `'key.fields'`: the column written as the Kafka record key (one column).
fn key_fields(options: &[WithOption], fields: &[Field], declared: Option<&str>) -> Result<Option<String>, SqlError> {
    let Some(o) = options.iter().find(|o| o.key == "key.fields") else { return Ok(None) };
    let name = o.value.trim().to_lowercase();
    if name.contains(';') || name.contains(',') {
        return Err(SqlError::new(format!("'key.fields' names one column, found '{}'", o.value))
            .at(o.value_position)
            .hint("Eddy keys records by one column"));
    }
    if !fields.iter().any(|f| f.name() == &name) {
        return Err(unknown_column(&name, o.value_position, fields));
    }
    if let Some(k) = declared {
        if k != name {
            return Err(SqlError::new(format!("'key.fields' names \"{name}\" but \"{k}\" is declared KEY"))
                .at(o.value_position)
                .hint("declare the key once"));
        }
    }
    Ok(Some(name))
}

/// A planned `SELECT ... FROM source [WHERE ...]`: the source, the WHERE predicate and
/// one expression per output column.
type SelectPlan = (Arc<Relation>, Option<PlannedExpr>, Vec<PlannedExpr>);

fn synthetic(key: &str, value: &str) -> WithOption {
    WithOption { key: key.to_string(), key_position: None, value: value.to_string(), value_position: None }
}

/// The type a sink stores for a query output type, or `None` if none fits.
fn storable_type(data_type: &DataType) -> Option<DataType> {
    if is_supported(data_type) {
        return Some(data_type.clone());
    }
    Some(match data_type {
        DataType::Int8 | DataType::Int16 | DataType::UInt8 | DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 | DataType::Float32 | DataType::Decimal128(..) | DataType::Decimal256(..) => DataType::Float64,
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => DataType::Timestamp(TimeUnit::Millisecond, None),
        DataType::Null => DataType::Utf8,
        _ => return None,
    })
}

/// Whether INSERT may convert `from` to `to` without an explicit CAST: numeric widening,
/// anything to VARCHAR, and timestamps of another unit or zone. Anything that can fail on
/// a value (VARCHAR to INT, BIGINT to INT) needs a CAST, as in Flink SQL.
fn implicit_cast(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    match (from, to) {
        (Null, _) => true,
        (_, Utf8) => arrow::compute::can_cast_types(from, to),
        (Int8 | Int16 | Int32 | UInt8 | UInt16, Int32) => true,
        (Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32, Int64) => true,
        (Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Float16 | Float32 | Float64 | Decimal128(..), Float64) => true,
        (Timestamp(..) | Date32 | Date64, Timestamp(..)) => true,
        _ => false,
    }
}

fn unknown_column(name: &str, position: Option<Position>, fields: &[Field]) -> SqlError {
    let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    let hint = crate::error::closest(name, names.iter().copied())
        .map(|c| format!("did you mean \"{c}\"?"))
        .unwrap_or_else(|| format!("declared columns: {}", names.join(", ")));
    SqlError::new(format!("unknown column \"{name}\"")).at(position).hint(hint)
}

/// Converts a DataFusion planning error, keeping its diagnostic position when it has one.
pub fn df_error(e: DataFusionError) -> SqlError {
    if let Some(d) = e.diagnostic() {
        let position = d.span.map(|s| Position { line: s.start.line, column: s.start.column }).filter(|p| p.line > 0);
        let hint = d.helps.first().map(|h| h.message.clone());
        return SqlError::new(lowercase_first(&d.message)).at(position).maybe_hint(hint);
    }
    let text = e.strip_backtrace();
    let text = ["Error during planning: ", "This feature is not implemented: ", "Schema error: "]
        .iter()
        .fold(text, |t, prefix| t.strip_prefix(prefix).map(str::to_string).unwrap_or(t));
    SqlError::new(lowercase_first(&text))
}
