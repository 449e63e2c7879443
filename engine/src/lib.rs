//! # eddy-engine
//!
//! Eddy's engine: the SQL frontend ([`sql`]), the catalog ([`catalog`]), record formats
//! ([`format`](mod@format)), operators ([`operator`], [`operators`]) and the runtime that runs
//! persistent queries ([`runtime`]), behind one API ([`Engine`]).
//!
//! The engine does no Kafka or PostgreSQL I/O itself: it defines the
//! [`runtime::Source`], [`runtime::Sink`] and [`runtime::ConnectorFactory`] traits, which
//! the `eddy-connectors` crate implements. See `docs/DESIGN.md` for the architecture.

pub mod catalog;
pub mod command_log;
pub mod connector;
mod engine;
mod error;
pub mod format;
pub(crate) mod handler;
pub mod metrics;
pub mod operator;
pub mod operators;
pub mod options;
pub mod partitioning;
pub mod record;
mod result;
pub(crate) mod rpr;
pub mod runtime;
mod session;
pub mod sql;
mod statement;

pub use engine::{Engine, Plan, Script, ScriptError};
pub use error::{Blame, EngineError, Position, Result, SqlError};
pub use handler::insert_values::open_insert_sink;
pub use handler::preflight::{Preflight, Prepared};
pub use handler::StatementError;
pub use metrics::MetricsSnapshot;
pub use result::{Description, Executed, ExplainedQuery, ModelInfo, PushQuery, QueryInfo, QueryKind, RelationInfo, StatementResult};
pub use runtime::{Checkpointing, QueryStatus, QueryStopper};
pub use session::parse_duration_ms;
pub use session::Session;
pub use sql::ast::ObjectKind;
pub use sql::types::{ksql_type_name, sql_name as sql_type_name};
pub use sql::vars::substitute;
pub use statement::{split_statements, SplitStatement, StatementKind};
