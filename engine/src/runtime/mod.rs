//! The runtime: connector traits, per-query metrics, and the pipeline that runs a
//! [`crate::sql::planner::QueryPlan`] on tokio tasks joined by bounded channels.

mod connector;
pub mod exchange;
mod metrics;
mod pipeline;

pub use connector::{ConnectorFactory, PartitionOffset, QueryContext, Sink, Source, SourceBatch};
pub use metrics::{MetricsSnapshot, QueryMetrics};
pub use pipeline::{start_query, QueryHandle, QueryStatus};
