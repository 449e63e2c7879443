//! The runtime: the pipeline that runs a
//! [`crate::sql::planner::QueryPlan`] on tokio tasks joined by bounded channels.

mod checkpoint;
pub(crate) mod exchange;
mod pipeline;
mod progress;
mod push;
pub mod snapshot;

pub use checkpoint::{newest, Checkpoint, CheckpointStore, Checkpointing, DEFAULT_CHECKPOINT_INTERVAL_MS, RETAINED_CHECKPOINTS};
pub use pipeline::{parallelism, start_query, start_query_with, QueryHandle, QueryStatus, QueryStopper};
pub use push::PushSink;
