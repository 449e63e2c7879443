//! Row pattern recognition (MATCH_RECOGNIZE, SQL:2016): the PATTERN compiled to an NFA
//! program ([`nfa`]) and the streaming matcher that runs it over one partition's rows in
//! event-time order ([`matcher`]).

pub mod matcher;
pub mod nfa;
