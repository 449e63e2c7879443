//! The SQL frontend: parsing ([`parser`]), the statement AST ([`ast`]), name binding and
//! planning ([`planner`]), types ([`types`]) and `${VAR}` substitution ([`vars`]).

pub mod ast;
pub mod context;
pub mod names;
pub mod parser;
pub mod planner;
pub mod types;
pub mod vars;
