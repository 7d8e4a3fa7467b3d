//! Backends: programs compiled to rulesets a kernel runs.

pub mod nft;
