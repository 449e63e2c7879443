//! # eddy-connectors
//!
//! Sources and sinks for Eddy's engine: Kafka ([`kafka`], through rdkafka exactly as
//! with Apache Kafka), PostgreSQL ([`postgres`], through tokio-postgres), and the
//! `print` / `blackhole` sinks, local files ([`file`](mod@file), Flink's `filesystem` connector),
//! and HTTP receivers ([`webhook`]). [`Connectors`] is the factory the binary gives the engine.

pub mod error;
pub mod factory;
pub mod file;
pub mod kafka;
pub mod postgres;
pub mod print;
pub mod retry;
pub mod sandbox;
pub mod webhook;

pub use error::ConnectorError;
pub use factory::{Connectors, DEFAULT_CONNECT_TIMEOUT};
