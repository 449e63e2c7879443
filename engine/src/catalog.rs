//! The catalog: every stream and table the user created, with its Arrow schema, key and
//! connector.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::physical_expr::PhysicalExpr;

use crate::options::ConnectorOptions;
use crate::sql::ast::ObjectKind;

/// A Flink computed column (`ts AS TO_TIMESTAMP_LTZ(event_ts, 0)`): computed from the
/// columns read from the record, right after decoding.
#[derive(Debug, Clone)]
pub struct ComputedColumn {
    /// Column name.
    pub name: String,
    /// The expression as DataFusion prints it.
    pub display: String,
    /// The expression over the relation's physical schema ([`Relation::physical_schema`]).
    pub expr: Arc<dyn PhysicalExpr>,
}

/// Where a source's event time comes from and how its watermark is derived
/// (docs/DESIGN.md, time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTime {
    /// The event-time column (Flink `WATERMARK FOR col`, ksqlDB `timestamp='col'`), or
    /// `None` for the Kafka record timestamp (ksqlDB's ROWTIME; a file line's time of
    /// reading).
    pub column: Option<String>,
    /// Watermark delay (ms): watermark = max event time seen in a partition minus this.
    pub delay_ms: i64,
    /// ksqlDB `timestamp_format` (Java `DateTimeFormatter` pattern) for a VARCHAR column;
    /// without it a VARCHAR is read as ISO-8601 (`Z` or an offset).
    pub format: Option<String>,
    /// `'scan.watermark.idle-timeout'` (ms; Flink's option, default 10 s): a partition
    /// without data for this long stops holding the watermark back.
    pub idle_timeout_ms: i64,
    /// `'late-rows.topic'`: rows beyond a window's grace period are written there with
    /// their original key and value bytes.
    pub late_rows_topic: Option<String>,
    /// `'allowed-lateness'` (ms): how long a fired EMIT FINAL window keeps accepting
    /// late rows, re-emitting its corrected row each time (Flink's allowed lateness).
    pub allowed_lateness_ms: i64,
}

impl Default for EventTime {
    fn default() -> Self {
        EventTime { column: None, delay_ms: 0, format: None, idle_timeout_ms: 10_000, late_rows_topic: None, allowed_lateness_ms: 0 }
    }
}

impl std::fmt::Display for EventTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "event time {c}")?,
            None => write!(f, "event time ROWTIME")?,
        }
        if let Some(format) = &self.format {
            write!(f, " format '{format}'")?;
        }
        write!(f, ", watermark -{}", crate::sql::ast::duration(self.delay_ms))?;
        write!(f, ", idle {}", crate::sql::ast::duration(self.idle_timeout_ms))?;
        if self.allowed_lateness_ms > 0 {
            write!(f, ", allowed lateness {}", crate::sql::ast::duration(self.allowed_lateness_ms))?;
        }
        Ok(())
    }
}

/// A stream or table: a named, typed view of a Kafka topic or a PostgreSQL table.
#[derive(Debug, Clone)]
pub struct Relation {
    /// Normalized name (unquoted names lowercased).
    pub name: String,
    /// STREAM or TABLE.
    pub kind: ObjectKind,
    /// The declared columns as an Arrow schema (types per [`crate::sql::types`]).
    pub schema: SchemaRef,
    /// The Kafka record key of a sink: the ksqlDB `KEY` column or `'key.fields'`; for
    /// a windowed aggregation's output, the group key columns and `window_start`.
    /// One column is written as its text; several as a record in the value format.
    pub key: Vec<String>,
    /// PRIMARY KEY columns: the upsert key of a PostgreSQL sink.
    pub primary_key: Vec<String>,
    /// The connector and its options.
    pub connector: ConnectorOptions,
    /// The watermark declaration (`WATERMARK FOR ts AS ...`), as written.
    pub watermark: Option<String>,
    /// Computed columns (Flink), in `schema` at their declared positions.
    pub computed: Vec<ComputedColumn>,
    /// Event time and watermark settings (sources).
    pub event_time: EventTime,
    /// `'parallelism'`: worker tasks for the keyed operators of queries reading this
    /// source; `None` means one per core.
    pub parallelism: Option<usize>,
    /// The statement that created it.
    pub sql: String,
    /// Declared in ksqlDB's form (`kafka_topic`, or `CREATE ... AS SELECT` without a
    /// Flink `'connector'`; neither with Flink's `'key.fields'`, which makes a hybrid that
    /// keeps Eddy's lower-case names): its own name and its columns' are shown and written as
    /// ksqlDB spells unquoted identifiers, upper-cased ([`ksql_name`]): JSON field names,
    /// DESCRIBE, push query headers, the default topic name.
    pub ksql_names: bool,
    /// The columns declared `TIMESTAMP_LTZ` (Flink): Arrow's `Timestamp(ms)` like
    /// TIMESTAMP, but written with a `Z` by Flink's formats ([`crate::format::TimestampStyle`]).
    pub ltz_columns: Vec<String>,
}

/// ksqlDB's spelling of a normalized name: an unquoted identifier (stored lower-case)
/// upper-cased (`page` is `PAGE`); a name with upper-case letters was quoted and stays
/// as written. A quoted all-lower-case name is upper-cased too (the one case this rule
/// cannot tell apart).
pub fn ksql_name(name: &str) -> String {
    if name.chars().any(char::is_uppercase) {
        name.to_string()
    } else {
        name.to_uppercase()
    }
}

/// `data_type` with the field names of its structs, at every depth, as ksqlDB spells
/// them ([`ksql_name`]): ksqlDB upper-cases unquoted `STRUCT` field names as it does
/// column names. Arrays and maps keep their own child names (`item`, `key`, `value`).
pub fn ksql_data_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| f.as_ref().clone().with_name(ksql_name(f.name())).with_data_type(ksql_data_type(f.data_type())))
                .collect(),
        ),
        DataType::List(f) => DataType::List(Arc::new(f.as_ref().clone().with_data_type(ksql_data_type(f.data_type())))),
        DataType::Map(entries, sorted) => DataType::Map(
            Arc::new(entries.as_ref().clone().with_data_type(match entries.data_type() {
                DataType::Struct(kv) => {
                    DataType::Struct(kv.iter().map(|f| f.as_ref().clone().with_data_type(ksql_data_type(f.data_type()))).collect())
                }
                other => other.clone(),
            })),
            *sorted,
        ),
        other => other.clone(),
    }
}

impl Relation {
    /// A TABLE read from its changelog topic: upserts keyed by its PRIMARY KEY (the
    /// record key), a record without a value deleting (ksqlDB's `CREATE TABLE ... WITH
    /// (kafka_topic=...)`).
    pub fn is_changelog(&self) -> bool {
        self.kind == ObjectKind::Table && matches!(&self.connector, ConnectorOptions::Kafka(k) if k.record_key) && !self.key.is_empty()
    }

    /// How `name` (the relation's or a column's) is shown and written: [`ksql_name`]
    /// for a ksqlDB relation, as stored otherwise.
    pub fn display_name(&self, name: &str) -> String {
        if self.ksql_names {
            ksql_name(name)
        } else {
            name.to_string()
        }
    }

    /// The schema with its column names as [`Relation::display_name`] gives them.
    pub fn display_schema(&self, schema: &SchemaRef) -> SchemaRef {
        if !self.ksql_names {
            return schema.clone();
        }
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_name(ksql_name(f.name())).with_data_type(ksql_data_type(f.data_type())))
            .collect();
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
    }

    /// The columns read from each record (the declared columns without the computed ones).
    pub fn physical_schema(&self) -> SchemaRef {
        if self.computed.is_empty() {
            return self.schema.clone();
        }
        let fields: Vec<_> = self.schema.fields().iter().filter(|f| !self.computed.iter().any(|c| &c.name == f.name())).cloned().collect();
        Arc::new(Schema::new(fields))
    }
}

/// A model of `CREATE MODEL` (Flink 2.1): a PMML document, loaded once and checked
/// against the declared INPUT and OUTPUT columns, that `ML_PREDICT` scores.
#[derive(Debug, Clone)]
pub struct Model {
    /// Normalized name.
    pub name: String,
    /// The INPUT columns, in order: each names an input field of the document.
    pub inputs: SchemaRef,
    /// The OUTPUT columns ([`Model::output_source`] says where each comes from).
    pub outputs: SchemaRef,
    /// `'provider'` (`pmml`).
    pub provider: String,
    /// `'path'`: the document's file, as written.
    pub path: String,
    /// SHA-256 of the file as loaded, hex: the command log records it, so a restart
    /// scores with the same model or fails, naming the file.
    pub checksum: String,
    /// The compiled document.
    pub pmml: Arc<eddy_pmml::Pmml>,
    /// What the model is, e.g. `classification` (for DESCRIBE MODEL).
    pub kind: String,
    /// The statement that created it (with its checksum).
    pub sql: String,
}

/// Where an OUTPUT column's values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputSource {
    /// The document's OutputField of this name.
    Field(String),
    /// A classifier's probability of this category.
    Probability(String),
    /// The predicted value (a regression's number, a classifier's class).
    Predicted,
}

impl Model {
    /// Where OUTPUT column `name` comes from: the document's OutputField of the same name
    /// (compared without regard to case); else for a classifier, a DOUBLE column is the
    /// probability of its last (positive) category and any other the predicted class;
    /// for a regression, the prediction.
    pub fn output_source(pmml: &eddy_pmml::Pmml, name: &str, data_type: &DataType) -> OutputSource {
        if let Some(field) = pmml.output_names().into_iter().find(|o| o.eq_ignore_ascii_case(name)) {
            return OutputSource::Field(field.to_string());
        }
        match pmml.categories().last() {
            Some(last) if pmml.is_classification() && matches!(data_type, DataType::Float64 | DataType::Float32) => {
                OutputSource::Probability(last.clone())
            }
            _ => OutputSource::Predicted,
        }
    }
}

/// Every stream and table, by normalized name, and every model.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    relations: BTreeMap<String, Arc<Relation>>,
    models: BTreeMap<String, Arc<Model>>,
    views: BTreeMap<String, Arc<crate::sql::views::View>>,
}

impl Catalog {
    /// The relation called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Relation>> {
        self.relations.get(name)
    }

    /// Adds or replaces a relation.
    pub fn insert(&mut self, relation: Arc<Relation>) {
        self.relations.insert(relation.name.clone(), relation);
    }

    /// Removes a relation; returns it if it was there.
    pub fn remove(&mut self, name: &str) -> Option<Arc<Relation>> {
        self.relations.remove(name)
    }

    /// The view called `name` (`CREATE VIEW`).
    pub fn view(&self, name: &str) -> Option<&Arc<crate::sql::views::View>> {
        self.views.get(name)
    }

    /// Adds or replaces a view.
    pub fn insert_view(&mut self, view: Arc<crate::sql::views::View>) {
        self.views.insert(view.name.clone(), view);
    }

    /// Removes a view; returns it if it was there.
    pub fn remove_view(&mut self, name: &str) -> Option<Arc<crate::sql::views::View>> {
        self.views.remove(name)
    }

    /// Every view, by name.
    pub fn views(&self) -> impl Iterator<Item = &Arc<crate::sql::views::View>> {
        self.views.values()
    }

    /// Every relation's name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.relations.keys().map(String::as_str)
    }

    /// Every relation, by name.
    pub fn relations(&self) -> impl Iterator<Item = &Arc<Relation>> {
        self.relations.values()
    }

    /// The model called `name`.
    pub fn model(&self, name: &str) -> Option<&Arc<Model>> {
        self.models.get(name)
    }

    /// Adds or replaces a model.
    pub fn insert_model(&mut self, model: Arc<Model>) {
        self.models.insert(model.name.clone(), model);
    }

    /// Removes a model; returns it if it was there.
    pub fn remove_model(&mut self, name: &str) -> Option<Arc<Model>> {
        self.models.remove(name)
    }

    /// Every model, by name.
    pub fn models(&self) -> impl Iterator<Item = &Arc<Model>> {
        self.models.values()
    }
}
