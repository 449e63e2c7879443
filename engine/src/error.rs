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

/// Every error the engine returns.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The SQL text is wrong: syntax, unknown name, bad option, unsupported construct.
    #[error("{0}")]
    Sql(#[from] SqlError),
    /// DataFusion failed while planning or evaluating an expression.
    #[error("datafusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// Arrow failed (decode, cast, concat).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A connector (Kafka, PostgreSQL, ...) failed; the text names the system and the cause.
    #[error("{connector}: {message}")]
    Connector {
        /// Which connector: `kafka`, `postgres`, ...
        connector: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A record could not be decoded and the error policy is `fail`.
    #[error("malformed record at {location}: {reason}")]
    Malformed {
        /// `topic/partition@offset`.
        location: String,
        /// Why it did not decode.
        reason: String,
    },
    /// A pipeline stage's neighbour is gone (it failed or stopped); the neighbour's own
    /// error is the one to report.
    #[error("pipeline channel closed")]
    ChannelClosed,
    /// Anything else, with a message that says what.
    #[error("{0}")]
    Other(String),
}

/// The engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    /// A connector error.
    pub fn connector(connector: &'static str, message: impl fmt::Display) -> Self {
        EngineError::Connector { connector, message: message.to_string() }
    }

    /// The SQL error inside, if this is one.
    pub fn as_sql(&self) -> Option<&SqlError> {
        match self {
            EngineError::Sql(e) => Some(e),
            _ => None,
        }
    }
}

/// `s` with its first character lowercased (Materialize-style primary messages).
pub fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
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
    fn closest_finds_typos_only() {
        let cols = ["event_id", "account_id", "event_type"];
        assert_eq!(closest("acount_id", cols), Some("account_id"));
        assert_eq!(closest("EVENT_TYPE", cols), Some("event_type"));
        assert_eq!(closest("zzz", cols), None);
    }
}
