//! `nwf`: check, format and inspect libvirt nwfilter network filters.

mod cmd;
mod output;
mod render;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Toolchain for libvirt nwfilter network filters.
#[derive(Parser)]
#[command(name = "nwf", version, about, propagate_version = true)]
struct Cli {
    /// When to use colours: auto (only on a terminal, and not with NO_COLOR), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

/// Colour policy.
#[derive(Clone, Copy, ValueEnum)]
pub enum ColorChoice {
    /// Colours on a terminal unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Output format.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Human,
    /// JSON for machines.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check filter files and report every problem (exit 0 clean, 1 errors or denied warnings, 2 usage).
    Check(cmd::check::Args),
    /// Rewrite filter files (XML or .nwf) in canonical form.
    Fmt(cmd::fmt::Args),
    /// Convert filter files between XML and the filter language (.nwf).
    Convert(cmd::convert::Args),
    /// Show the rule program libvirt would apply to a port.
    Show(cmd::show::Args),
    /// Replay a capture through a port's filters: every frame's verdict and deciding rule.
    Simulate(cmd::simulate::Args),
    /// Make a pcapng capture from a readable description of frames.
    Synth(cmd::synth::Args),
    /// Compile the filters of one or more ports to one deployable ruleset (nftables).
    Compile(cmd::compile::Args),
    /// Run the language server on standard input and output (for editors).
    Lsp(cmd::lsp::Args),
}

/// Options of commands that instantiate one port's filters.
#[derive(clap::Args, Clone)]
pub struct BindingArgs {
    /// The port: a libvirt <filterbinding> file, or a domain <interface> element.
    #[arg(long, value_name = "FILE")]
    pub binding: PathBuf,
    #[command(flatten)]
    pub search: SearchArgs,
    /// Set a variable (NAME=VALUE); repeat a name for a list. Overrides the binding's value.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
}

/// Parses `NAME=VALUE`.
pub fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected NAME=VALUE, got `{s}`"))
}

/// Options shared by commands that resolve filter names.
#[derive(clap::Args, Clone)]
pub struct SearchArgs {
    /// A directory of filter definitions; may be repeated. Its filters override standard ones.
    #[arg(long = "filters", value_name = "DIR")]
    pub filters: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = output::use_color(cli.color);
    let result = match cli.command {
        Command::Check(a) => cmd::check::run(a, color),
        Command::Fmt(a) => cmd::fmt::run(a, color),
        Command::Convert(a) => cmd::convert::run(a, color),
        Command::Show(a) => cmd::show::run(a, color),
        Command::Simulate(a) => cmd::simulate::run(a, color),
        Command::Synth(a) => cmd::synth::run(a),
        Command::Compile(a) => cmd::compile::run(a, color),
        Command::Lsp(a) => cmd::lsp::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nwf: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
