//! The operators, one per file.

mod decode;
mod filter;
mod projection;

pub use decode::{raw_schema, Decode, ErrorPolicy, RawColumn};
pub use filter::Filter;
pub use projection::Projection;
