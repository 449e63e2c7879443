//! Row pattern recognition (MATCH_RECOGNIZE, SQL:2016): rows held until the watermark
//! passes them and released in event-time order ([`sort`]), the PATTERN compiled to an
//! NFA program ([`nfa`]), and the streaming matcher that runs it over one partition key's
//! rows in that order ([`matcher`]).

pub(crate) mod matcher;
pub(crate) mod nfa;
pub(crate) mod sort;

#[cfg(test)]
mod differential_tests;
