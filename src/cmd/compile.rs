//! `nwf compile`: the filters of one or more ports compiled to one deployable ruleset.

use crate::{output, SearchArgs};
use nwf_compiler::backend::nft::{self, NftOptions};
use nwf_compiler::diag::Diagnostics;
use nwf_compiler::driver;
use std::path::PathBuf;
use std::process::ExitCode;

/// Compilation targets.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// An `nft -f` script (bridge and inet tables).
    Nft,
}

/// Arguments of `nwf compile`.
#[derive(clap::Args)]
pub struct Args {
    /// What to compile to.
    #[arg(long, value_enum, default_value_t = Target::Nft)]
    target: Target,
    /// A port to include (a <filterbinding> or domain <interface> file); repeat for more ports.
    #[arg(long = "binding", value_name = "FILE", required = true)]
    bindings: Vec<PathBuf>,
    #[command(flatten)]
    search: SearchArgs,
    /// Set a variable for every port (NAME=VALUE); repeat a name for a list.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = crate::parse_param)]
    params: Vec<(String, String)>,
    /// Add a counter to every rule.
    #[arg(long)]
    counters: bool,
    /// Name of the tables the ruleset owns (`bridge NAME` and `inet NAME`).
    #[arg(long, default_value = "nwf", value_parser = parse_table)]
    table: String,
    /// Emit the ruleset as nft JSON (for `nft -j -f`) instead of an `nft -f` script.
    #[arg(long)]
    json: bool,
    /// Write the script here instead of standard output.
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
}

fn parse_table(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then(|| s.to_string()).ok_or_else(|| {
        "a table name is a letter followed by letters, digits or `_` (at most 32)".into()
    })
}

/// Runs the command.
pub fn run(args: Args, color: bool) -> anyhow::Result<ExitCode> {
    let run = driver::show_bindings(&args.search.filters, &args.bindings, &args.params);
    output::print_diagnostics(&run.library.sources, &run.diagnostics, color);
    let programs: Option<Vec<_>> = run.ports.into_iter().map(|(_, p)| p).collect();
    let Some(programs) = programs else {
        return Ok(ExitCode::from(1));
    };
    let opts = NftOptions {
        table: args.table.clone(),
        counters: args.counters,
    };
    let mut diags = Diagnostics::new();
    let ruleset = nft::build(&programs, &opts, &mut diags);
    output::print_diagnostics(&run.library.sources, diags.items(), color);
    let Some(ruleset) = ruleset else {
        return Ok(ExitCode::from(1));
    };
    let script = if args.json {
        ruleset.to_json_string()
    } else {
        ruleset.to_text()
    };
    match &args.output {
        Some(p) => std::fs::write(p, script)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?,
        None => print!("{script}"),
    }
    Ok(ExitCode::SUCCESS)
}
