//! The SQL frontend: parsing ([`parser`]), the statement AST ([`ast`]), name binding and
//! planning ([`planner`]), types ([`types`]) and `${VAR}` substitution ([`vars`]).

pub mod ast;
pub mod clauses;
pub mod context;
pub mod event_time;
pub mod functions;
pub mod match_recognize;
pub mod names;
pub mod navigation;
pub mod parser;
pub mod pattern;
pub mod planner;
pub mod types;
pub mod vars;
pub mod window;
