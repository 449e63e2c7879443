//! # eddy-pmml
//!
//! A PMML 4.x evaluator that scores whole Arrow batches. It covers the documents
//! sklearn2pmml writes for scikit-learn's LogisticRegression, LinearRegression,
//! DecisionTree, RandomForest and GradientBoosting, with the transformations of their
//! pipelines: `RegressionModel` (regression and classification, with logit, softmax and
//! the other normalizations), `TreeModel` (simple, compound and set predicates, missing
//! value strategies), `MiningModel` segmentation (majority vote, average, weighted
//! average, sum, median, model chain, select first), and the `DerivedField` expressions
//! `FieldRef`, `Constant`, `Apply`, `NormContinuous`, `NormDiscrete` and `MapValues`.
//!
//! Nothing of the XML is interpreted per row: a document is compiled once
//! ([`Pmml::parse`]) into model structures that [`Pmml::evaluate`] runs a column at a
//! time (a tree walks each row through its compiled nodes). Anything else is refused
//! when the document is loaded, naming the element and its line
//! ([`PmmlError::Unsupported`]), never at the first row.

mod document;
pub mod error;
mod expr;
mod flat;
#[cfg(test)]
mod flat_tests;
mod mining;
mod model;
mod predicate;
mod regression;
mod tree;
mod values;
mod xml;

pub use document::{DataField, Pmml};
pub use error::{PmmlError, Result};
pub use expr::FieldType;
pub use model::Prediction;
pub use values::Values;
