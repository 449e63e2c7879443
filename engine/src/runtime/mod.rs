//! The runtime: the pipeline that runs a
//! [`crate::sql::planner::QueryPlan`] on tokio tasks joined by bounded channels.

mod checkpoint;
pub(crate) mod exchange;
pub mod graph;
mod handle;
mod lookup;
mod pipeline;
mod progress;
mod push;
pub mod shared_read;
pub mod snapshot;
mod start;
pub mod table_state;
pub mod union_source;

pub use checkpoint::{newest, Checkpoint, CheckpointStore, Checkpointing, DEFAULT_CHECKPOINT_INTERVAL_MS, RETAINED_CHECKPOINTS};
pub use graph::PlanGraph;
pub use handle::{started, QueryHandle, QueryStatus, QueryStopper};
pub use pipeline::parallelism;
pub use push::PushSink;
pub use start::{start_query, start_query_with, START_RETRY_MAX, START_RETRY_MIN};
