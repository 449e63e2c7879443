//! The one error type of the evaluator.

/// Why a PMML document cannot be loaded, or a batch cannot be scored.
#[derive(Debug, thiserror::Error)]
pub enum PmmlError {
    /// The file is not well-formed XML.
    #[error("not well-formed XML at line {line}: {message}")]
    Xml {
        /// 1-based line of the fault.
        line: usize,
        /// The XML reader's message.
        message: String,
    },
    /// An element Eddy does not evaluate (a model kind, a function, a strategy).
    #[error("{what} is not supported (line {line})")]
    Unsupported {
        /// The element or attribute value, e.g. `NeuralNetwork`.
        what: String,
        /// 1-based line of the element.
        line: usize,
    },
    /// The document is PMML but breaks a rule of the standard (a missing attribute, a
    /// field that is never defined).
    #[error("{message} (line {line})")]
    Invalid {
        /// What is wrong.
        message: String,
        /// 1-based line of the element.
        line: usize,
    },
    /// Input columns that do not fit the model's fields (a type, a count).
    #[error("{0}")]
    Input(String),
    /// Arrow failed while building a result column.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// The evaluator's result type.
pub type Result<T> = std::result::Result<T, PmmlError>;
