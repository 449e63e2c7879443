//! The SQL frontend: parsing ([`parser`]), the statement AST ([`ast`]), name binding and
//! planning ([`planner`]), types ([`types`]) and `${VAR}` substitution ([`vars`]).

pub(crate) mod ast;
pub(crate) mod clauses;
pub(crate) mod column_type;
pub mod columns_read;
pub(crate) mod comparisons;
pub(crate) mod context;
pub(crate) mod event_time;
pub(crate) mod functions;
pub(crate) mod insert_values;
pub mod interval_join;
pub(crate) mod lookup_join;
pub(crate) mod match_recognize;
pub(crate) mod ml_predict;
pub(crate) mod names;
pub(crate) mod navigation;
pub mod parser;
pub(crate) mod pattern;
pub mod planner;
pub mod pull_query;
pub(crate) mod retraction;
pub mod temporal_join;
pub(crate) mod types;
pub(crate) mod vars;
pub mod views;
pub(crate) mod window;
