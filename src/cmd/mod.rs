//! One module per subcommand.

pub mod check;
pub mod compile;
pub mod convert;
pub mod fmt;
pub mod lsp;
pub mod show;
pub mod simulate;
pub mod synth;
