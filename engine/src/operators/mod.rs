//! The operators, one per file.

mod chain;
pub mod changelog;
mod decode;
mod filter;
pub mod having_deletes;
pub mod interval_join;
pub mod join_front;
mod late;
pub mod lookup_join;
mod match_recognize;
mod projection;
mod state;
pub mod temporal_join;
pub mod union_all;
pub mod watermark;
mod window_aggregate;

pub use chain::UnionInput;
pub use changelog::Changelog;
pub use decode::{Decode, MetaColumns, META_KEY, META_OFFSET, META_PARTITION, META_TIMESTAMP, META_TOPIC, META_VALUE};
pub use filter::Filter;
pub use having_deletes::HavingDeletes;
pub use interval_join::{IntervalJoin, IntervalJoinKind, JoinSide};
pub use join_front::JoinFront;
pub use late::LateRows;
pub use lookup_join::LookupJoin;
pub use match_recognize::MatchRecognize;
pub use projection::Projection;
pub use temporal_join::TemporalJoin;
pub use union_all::{UnionAll, UnionBranchChain};
pub use watermark::{Watermarks, META_ROWTIME};
pub use window_aggregate::{LocalAggregate, WindowAggregate};
