//! The connectors' error type.

use eddy_engine::EngineError;

/// Every error a connector returns; converted into [`EngineError::Connector`] at the
/// engine boundary, keeping the system's name.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The Kafka client (librdkafka) failed.
    #[error("{0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The PostgreSQL client failed.
    #[error("{}", pg_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// Arrow failed while converting rows.
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A configuration value is wrong (bad URL, missing topic option).
    #[error("{0}")]
    Config(String),
    /// A file could not be read or written (the path and the reason).
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// PostgreSQL errors with the server's message and detail, not just "db error".
fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" ({d})"));
            }
            s
        }
        None => e.to_string(),
    }
}

impl ConnectorError {
    fn system(&self) -> &'static str {
        match self {
            ConnectorError::Kafka(_) => "kafka",
            ConnectorError::Postgres(_) => "postgres",
            ConnectorError::Arrow(_) => "arrow",
            ConnectorError::Config(_) => "config",
            ConnectorError::File { .. } => "filesystem",
        }
    }
}

impl From<ConnectorError> for EngineError {
    fn from(e: ConnectorError) -> Self {
        EngineError::connector(e.system(), e)
    }
}

/// The connectors' result type.
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;
