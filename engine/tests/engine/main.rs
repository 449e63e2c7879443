//! The engine's tests, in one binary: they need neither a broker nor PostgreSQL
//! (`make test-engine`). Each module is one subject; [`common`] holds what they share.
//! Unit tests live beside the code; the file-driven SQL cases (`tests/windows`,
//! `tests/match_recognize`) run through the `eddy` binary in the `cases` test of
//! `eddy-e2e`; the golden planner files are `engine/tests/golden/*.sql`.

mod common;

mod checkpoint_restore;
mod decode_robustness;
mod explain_graph;
mod fuzz;
mod golden;
mod match_recognize_state;
mod pull_query_plan;
mod window_operator;
