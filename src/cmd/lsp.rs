//! `nwf lsp`: the language server, over standard input and output.

use crate::SearchArgs;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `nwf lsp`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    search: SearchArgs,
    /// A binding (or domain <interface>) whose parameters give variable values in hovers and
    /// completion.
    #[arg(long, value_name = "FILE")]
    binding: Option<PathBuf>,
    /// Accepted for editors that pass it; stdio is the only transport.
    #[arg(long, hide = true)]
    stdio: bool,
}

/// Runs the server until the client exits.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    nwf_lsp::run_stdio_blocking(nwf_lsp::Options {
        filters: args.search.filters,
        binding: args.binding,
        debounce: None,
    })?;
    Ok(ExitCode::SUCCESS)
}
