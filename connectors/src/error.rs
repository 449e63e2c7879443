//! The connectors' error type.

use eddy_engine::EngineError;

/// Every error a connector returns; converted into [`EngineError::External`] at the
/// engine boundary, keeping the system's name, whether a retry can help
/// ([`ConnectorError::is_transient`]) and the client's error as the source.
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
    /// An external system refused a request for good (a permanent error): what was
    /// refused, the system's error, and what follows for the query.
    #[error("{what}: {source}; {consequence}")]
    Refused {
        /// What was refused, e.g. `PostgreSQL refused the rows for table t`.
        what: String,
        /// What happens now, e.g. that the query stops and how to resume it.
        consequence: &'static str,
        /// The system's error.
        source: Box<ConnectorError>,
    },
    /// A statement named a file or a host the server does not allow (its sandbox); the
    /// statement's fault, answered as a statement error.
    #[error("{0}")]
    NotAllowed(String),
    /// A server accepted the connection but did not complete it in time (a hung
    /// server, a proxy that never forwards): transient.
    #[error("{what} did not answer within {} ms", .after.as_millis())]
    TimedOut {
        /// `postgres`, `kafka`.
        system: &'static str,
        /// What was waited for: `connecting to 10.0.0.1:5432`.
        what: String,
        /// How long.
        after: std::time::Duration,
    },
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

/// How trying again would fare, by the kind of error: one table for every connector,
/// so the sources and sinks that retry agree on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transience {
    /// A lost connection, a broker or database starting up, a leader election: trying
    /// again can succeed.
    Transient,
    /// A refusal that would repeat: the record or the configuration is wrong, access
    /// is denied, a table is missing.
    Permanent,
    /// Neither is known (e.g. a broker's "unknown error"). A producer may send again
    /// (records are kept until acknowledged); a consumer stops rather than spin.
    Unknown,
}

/// Classifies a Kafka client error by its librdkafka code.
pub fn kafka_transience(e: &rdkafka::error::KafkaError) -> Transience {
    use rdkafka::types::RDKafkaErrorCode as C;
    match e.rdkafka_error_code() {
        Some(
            C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::OperationTimedOut
            | C::UnknownTopicOrPartition
            | C::UnknownTopic
            | C::UnknownPartition
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::RebalanceInProgress
            | C::NotCoordinator
            | C::CoordinatorNotAvailable,
        ) => Transience::Transient,
        Some(
            C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::MessageBatchTooLarge
            | C::InvalidRecord
            | C::InvalidTopic
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::InvalidRequiredAcks
            | C::PolicyViolation
            | C::InvalidArgument,
        ) => Transience::Permanent,
        _ => Transience::Unknown,
    }
}

/// Classifies a PostgreSQL error by its SQLSTATE: a connection that broke or could
/// not be made (no SQLSTATE: I/O, a closed connection, a refused connect, a timeout;
/// class 08), a server shutting down or starting up (57P), too many connections or
/// disk full (53), a serialization failure, deadlock, lock not available or I/O error
/// are transient. Everything else (table or column missing, type changed, permission
/// denied, bad data) is permanent: the same statement would fail again.
pub fn postgres_transience(e: &tokio_postgres::Error) -> Transience {
    let Some(code) = e.code() else { return Transience::Transient };
    let code = code.code();
    let transient = code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || matches!(code, "40001" | "40P01" | "55P03" | "58030");
    if transient {
        Transience::Transient
    } else {
        Transience::Permanent
    }
}

impl ConnectorError {
    /// How trying again would fare (see [`Transience`]).
    pub fn transience(&self) -> Transience {
        match self {
            ConnectorError::Kafka(e) => kafka_transience(e),
            ConnectorError::Postgres(e) => postgres_transience(e),
            ConnectorError::File { source, .. } => match source.kind() {
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Transience::Transient,
                _ => Transience::Permanent,
            },
            ConnectorError::Arrow(_) | ConnectorError::Config(_) | ConnectorError::Refused { .. } | ConnectorError::NotAllowed(_) => {
                Transience::Permanent
            }
            ConnectorError::TimedOut { .. } => Transience::Transient,
        }
    }

    /// Whether trying again can succeed.
    pub fn is_transient(&self) -> bool {
        self.transience() == Transience::Transient
    }

    fn system(&self) -> &'static str {
        match self {
            ConnectorError::Kafka(_) => "kafka",
            ConnectorError::Postgres(_) => "postgres",
            ConnectorError::Arrow(_) => "arrow",
            ConnectorError::Config(_) => "config",
            ConnectorError::File { .. } => "filesystem",
            ConnectorError::Refused { source, .. } => source.system(),
            ConnectorError::NotAllowed(_) => "sandbox",
            ConnectorError::TimedOut { system, .. } => system,
        }
    }
}

impl From<ConnectorError> for EngineError {
    fn from(e: ConnectorError) -> Self {
        match e {
            ConnectorError::Arrow(e) => EngineError::Arrow(e),
            ConnectorError::Config(message) => EngineError::Configuration(format!("config: {message}")),
            ConnectorError::NotAllowed(message) => EngineError::statement(message),
            e => EngineError::external(e.system(), e.is_transient(), e),
        }
    }
}

/// The connectors' result type.
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use eddy_engine::Blame;
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode as C;

    use super::*;

    #[test]
    fn one_table_says_what_a_retry_can_fix() {
        assert_eq!(kafka_transience(&KafkaError::MessageProduction(C::AllBrokersDown)), Transience::Transient);
        assert_eq!(kafka_transience(&KafkaError::MessageProduction(C::MessageSizeTooLarge)), Transience::Permanent);
        assert_eq!(kafka_transience(&KafkaError::MessageProduction(C::Unknown)), Transience::Unknown);
        let slow = ConnectorError::File { path: "/data/x.csv".into(), source: std::io::Error::new(std::io::ErrorKind::TimedOut, "slow") };
        assert!(slow.is_transient());
        assert!(!ConnectorError::Config("bad URL".into()).is_transient());
    }

    #[test]
    fn engine_errors_keep_the_system_the_blame_and_the_cause() {
        let lost: EngineError = ConnectorError::Kafka(KafkaError::MessageProduction(C::AllBrokersDown)).into();
        assert_eq!((lost.blame(), lost.is_transient()), (Blame::External, true));
        assert!(lost.to_string().starts_with("kafka: "), "{lost}");
        assert!(std::error::Error::source(&lost).is_some());
        let refused: EngineError = ConnectorError::Refused {
            what: "PostgreSQL refused the rows for table t".into(),
            consequence: "the query stops",
            source: Box::new(ConnectorError::Kafka(KafkaError::MessageProduction(C::TopicAuthorizationFailed))),
        }
        .into();
        assert_eq!((refused.blame(), refused.is_transient()), (Blame::External, false));
        assert_eq!(
            refused.to_string(),
            format!(
                "kafka: PostgreSQL refused the rows for table t: {}; the query stops",
                KafkaError::MessageProduction(C::TopicAuthorizationFailed)
            )
        );
        let config: EngineError = ConnectorError::Config("topic t does not exist".into()).into();
        assert_eq!((config.blame(), config.to_string().as_str()), (Blame::Configuration, "config: topic t does not exist"));
    }
}
