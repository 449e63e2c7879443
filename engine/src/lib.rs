//! # eddy-engine
//!
//! Eddy's engine: the SQL frontend ([`sql`]), the catalog ([`catalog`]), record formats
//! ([`format`](mod@format)), operators ([`operator`], [`operators`]) and the runtime that runs
//! persistent queries ([`runtime`]), behind one API ([`Engine`]).
//!
//! The engine does no Kafka or PostgreSQL I/O itself: it defines the
//! [`runtime::Source`], [`runtime::Sink`] and [`runtime::ConnectorFactory`] traits, which
//! the `eddy-connectors` crate implements. See `DESIGN.md` for the architecture.

pub mod catalog;
pub mod command_log;
pub mod engine;
pub mod error;
pub mod format;
pub mod handler;
pub mod operator;
pub mod operators;
pub mod options;
pub mod result;
pub mod rpr;
pub mod runtime;
pub mod session;
pub mod sql;

pub use engine::{Engine, Plan, Script, ScriptError};
pub use error::{EngineError, Position, Result, SqlError};
pub use handler::StatementError;
pub use result::{Description, Executed, PushQuery, QueryInfo, QueryKind, RelationInfo, StatementResult};
pub use session::Session;
