//! The catalog: every stream and table the user created, with its Arrow schema, key and
//! connector.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use crate::options::ConnectorOptions;
use crate::sql::ast::ObjectKind;

/// A stream or table: a named, typed view of a Kafka topic or a PostgreSQL table.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    /// Normalized name (unquoted names lowercased).
    pub name: String,
    /// STREAM or TABLE.
    pub kind: ObjectKind,
    /// The declared columns as an Arrow schema (types per [`crate::sql::types`]).
    pub schema: SchemaRef,
    /// The ksqlDB `KEY` column: the Kafka record key of a sink, if declared.
    pub key: Option<String>,
    /// PRIMARY KEY columns: the upsert key of a PostgreSQL sink.
    pub primary_key: Vec<String>,
    /// The connector and its options.
    pub connector: ConnectorOptions,
    /// The watermark declaration (`WATERMARK FOR ts AS ...`), as written.
    pub watermark: Option<String>,
    /// The statement that created it.
    pub sql: String,
}

/// Every stream and table, by normalized name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    relations: BTreeMap<String, Arc<Relation>>,
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

    /// Every name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.relations.keys().map(String::as_str)
    }

    /// Every relation, by name.
    pub fn relations(&self) -> impl Iterator<Item = &Arc<Relation>> {
        self.relations.values()
    }
}
