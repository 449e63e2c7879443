//! The engine's error type.
//!
//! Messages follow Materialize's style: a lowercase primary message, then the
//! position (`line L, column C`, both 1-based) when the error comes from SQL text,
//! then an optional hint that says how to fix it.

use std::fmt;

/// A position in SQL text: 1-based line and column, as sqlparser reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// 1-based line number.
    pub line: u64,
    /// 1-based column number (characters, not bytes).
    pub column: u64,
}

impl Position {
    /// A position from sqlparser's [`sqlparser::tokenizer::Location`]; `None` when the
    /// location is unknown (line 0).
    pub fn from_location(loc: sqlparser::tokenizer::Location) -> Option<Position> {
        (loc.line > 0).then_some(Position { line: loc.line, column: loc.column })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// An error in a SQL statement: what is wrong, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// Lowercase primary message, e.g. `unknown column "acount_id"`.
    pub message: String,
    /// Where in the statement text the offending token starts, if known.
    pub position: Option<Position>,
    /// A suggestion, e.g. `did you mean "account_id"?`.
    pub hint: Option<String>,
}

impl SqlError {
    /// An error with a message only.
    pub fn new(message: impl Into<String>) -> Self {
        SqlError { message: message.into(), position: None, hint: None }
    }

    /// Sets the position.
    pub fn at(mut self, position: Option<Position>) -> Self {
        self.position = position;
        self
    }

    /// Sets the hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the hint if `hint` is `Some`.
    pub fn maybe_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

impl fmt::Display for SqlError {
    /// `unknown column "acount_id" (line 3, column 8); did you mean "account_id"?`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(p) = self.position {
            write!(f, " ({p})")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SqlError {}

/// Whose fault an error is: what a user must change for the error to go away. Follows
/// DataFusion's split of `plan_err!` (the statement), `exec_err!` (the data) and
/// `internal_err!` (a bug), plus the two parties DataFusion does not have: the
/// configuration Eddy was started with, and the external systems it talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The statement: syntax, an unknown name, a bad option, an unsupported construct.
    Statement,
    /// The data: a record that does not decode, a value an expression cannot take.
    Data,
    /// How Eddy was started: a missing broker or database setting.
    Configuration,
    /// Something outside Eddy: Kafka, PostgreSQL, the file system, a damaged state file.
    External,
    /// Eddy itself: an invariant broke. Such an error is a bug to report.
    Internal,
}

/// Every error the engine returns. [`EngineError::blame`] says whose fault it is and
/// [`EngineError::is_transient`] whether trying again can help; the error that caused
/// it is kept as the [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The SQL text is wrong: syntax, unknown name, bad option, unsupported construct.
    #[error("{0}")]
    Sql(#[from] SqlError),
    /// DataFusion failed while planning or evaluating an expression; blamed by its kind
    /// (plan and schema errors on the statement, execution errors on the data).
    #[error("datafusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// Arrow failed (decode, cast, concat, IPC); cast and parse errors are the data's.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// An external system (Kafka, PostgreSQL, a file) failed, as a connector saw it.
    #[error("{system}: {source}")]
    External {
        /// Which system: `kafka`, `postgres`, `filesystem`, ...
        system: &'static str,
        /// Whether trying again can succeed (a lost connection, a leader election),
        /// as opposed to a refusal that would repeat (a missing table, a denied ACL).
        transient: bool,
        /// The connector's own error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file of Eddy's own state (command log, checkpoint, state file) could not be
    /// read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What the file is: `command log`, `checkpoint`, `checkpoint state`.
        what: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Saved state (a checkpoint, a state file) cannot be restored: damaged, or taken
    /// of another query. The message names the file when it is known and the way out.
    #[error("{0}")]
    State(String),
    /// A record could not be decoded and the error policy is `fail`.
    #[error("malformed record at {location}: {reason}")]
    Malformed {
        /// `topic/partition@offset`.
        location: String,
        /// Why it did not decode.
        reason: String,
    },
    /// Eddy was started without something a statement needs (a Kafka cluster, connectors).
    #[error("{0}")]
    Configuration(String),
    /// An operator failed (Arroyo's `WithOperator`): its error, then the operator's name,
    /// so the message still starts with what went wrong.
    #[error("{source} (in operator {operator})")]
    Operator {
        /// The operator's [`crate::operator::Operator::name`], e.g. `window_aggregate`.
        operator: &'static str,
        /// Its error.
        source: Box<EngineError>,
    },
    /// A pipeline stage's neighbour is gone (it failed or stopped); the neighbour's own
    /// error is the one to report.
    #[error("pipeline channel closed")]
    ChannelClosed,
    /// An invariant of Eddy's own broke (a bug): the message says which.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    /// An error in a statement that has no position (an option value, a whole statement).
    pub fn statement(message: impl Into<String>) -> Self {
        EngineError::Sql(SqlError::new(message))
    }

    /// An error reading or writing one of Eddy's own files, with its path.
    pub fn io(what: &'static str, path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io { what, path: path.into(), source }
    }

    /// An external system's error.
    pub fn external(system: &'static str, transient: bool, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        EngineError::External { system, transient, source: source.into() }
    }

    /// This error, as raised by the operator `operator` (no double wrapping).
    pub fn in_operator(self, operator: &'static str) -> Self {
        match self {
            e @ (EngineError::Operator { .. } | EngineError::ChannelClosed) => e,
            e => EngineError::Operator { operator, source: Box::new(e) },
        }
    }

    /// The SQL error inside, if this is one.
    pub fn as_sql(&self) -> Option<&SqlError> {
        match self {
            EngineError::Sql(e) => Some(e),
            EngineError::Operator { source, .. } => source.as_sql(),
            _ => None,
        }
    }

    /// Whose fault the error is (see [`Blame`]).
    pub fn blame(&self) -> Blame {
        use datafusion::error::DataFusionError as D;
        match self {
            EngineError::Sql(_) => Blame::Statement,
            EngineError::DataFusion(e) => match e.find_root() {
                D::Plan(_) | D::SQL(..) | D::SchemaError(..) | D::NotImplemented(_) => Blame::Statement,
                D::Execution(_) | D::ArrowError(..) => Blame::Data,
                D::Configuration(_) => Blame::Configuration,
                D::IoError(_) | D::External(_) | D::ResourcesExhausted(_) => Blame::External,
                _ => Blame::Internal,
            },
            EngineError::Arrow(e) => arrow_blame(e),
            EngineError::External { .. } | EngineError::Io { .. } | EngineError::State(_) => Blame::External,
            EngineError::Malformed { .. } => Blame::Data,
            EngineError::Configuration(_) => Blame::Configuration,
            EngineError::Operator { source, .. } => source.blame(),
            EngineError::ChannelClosed | EngineError::Internal(_) => Blame::Internal,
        }
    }

    /// Whether trying the same thing again can succeed: a lost connection or a system
    /// starting up, not a refusal that would repeat. Only external systems' errors can be.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::External { transient, .. } => *transient,
            EngineError::Io { source, .. } => {
                matches!(source.kind(), std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)
            }
            EngineError::Operator { source, .. } => source.is_transient(),
            _ => false,
        }
    }
}

fn arrow_blame(e: &arrow::error::ArrowError) -> Blame {
    use arrow::error::ArrowError as A;
    match e {
        A::CastError(_)
        | A::ParseError(_)
        | A::ComputeError(_)
        | A::DivideByZero
        | A::ArithmeticOverflow(_)
        | A::InvalidArgumentError(_)
        | A::CsvError(_)
        | A::JsonError(_) => Blame::Data,
        A::IoError(..) | A::IpcError(_) | A::ExternalError(_) => Blame::External,
        _ => Blame::Internal,
    }
}

/// `s` with its first character lowercased (Materialize-style primary messages).
pub fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        // A name in capitals (`TO_TIMESTAMP reads ...`, `SQL ...`) stays as written.
        Some(c) if s.chars().nth(1).is_some_and(|n| n.is_uppercase() || n == '_') => c.to_string() + chars.as_str(),
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The closest of `candidates` to `name` by edit distance, for "did you mean" hints.
/// Returns `None` when nothing is close (distance above a third of the length, at least 2).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let limit = (lower.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_materialize() {
        let e =
            SqlError::new("unknown column \"acount_id\"").at(Some(Position { line: 3, column: 8 })).hint("did you mean \"account_id\"?");
        assert_eq!(e.to_string(), "unknown column \"acount_id\" (line 3, column 8); did you mean \"account_id\"?");
    }

    #[test]
    fn errors_say_whose_fault_they_are() {
        use datafusion::error::DataFusionError;
        assert_eq!(EngineError::statement("x").blame(), Blame::Statement);
        assert_eq!(EngineError::DataFusion(DataFusionError::Plan("no".into())).blame(), Blame::Statement);
        assert_eq!(EngineError::DataFusion(DataFusionError::Execution("sqrt".into())).blame(), Blame::Data);
        assert_eq!(EngineError::DataFusion(DataFusionError::Internal("bug".into())).blame(), Blame::Internal);
        let lost = EngineError::external("postgres", true, "connection reset");
        assert_eq!((lost.blame(), lost.is_transient()), (Blame::External, true));
        let wrapped = EngineError::external("kafka", false, "topic authorization failed").in_operator("decode");
        assert_eq!(wrapped.to_string(), "kafka: topic authorization failed (in operator decode)");
        assert_eq!((wrapped.blame(), wrapped.is_transient()), (Blame::External, false));
        assert!(std::error::Error::source(&wrapped).is_some());
        assert_eq!(wrapped.in_operator("sink").to_string(), "kafka: topic authorization failed (in operator decode)");
        let io = EngineError::io("checkpoint", "/s/chk-1", std::io::Error::new(std::io::ErrorKind::TimedOut, "slow disk"));
        assert_eq!(io.to_string(), "checkpoint /s/chk-1: slow disk");
        assert!(io.is_transient());
        assert_eq!(EngineError::Internal("no __rowtime column".into()).blame(), Blame::Internal);
    }

    #[test]
    fn closest_finds_typos_only() {
        let cols = ["event_id", "account_id", "event_type"];
        assert_eq!(closest("acount_id", cols), Some("account_id"));
        assert_eq!(closest("EVENT_TYPE", cols), Some("event_type"));
        assert_eq!(closest("zzz", cols), None);
    }
}
