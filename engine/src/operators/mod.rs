//! The operators, one per file.

mod decode;
mod filter;
mod projection;

pub use decode::{raw_batch, raw_schema, Decode, RawColumn};
pub use crate::options::ErrorPolicy;
pub use filter::Filter;
pub use projection::Projection;
