//! `nwf show`: instantiate a binding and print the resulting program.

use crate::{output, render, Format, SearchArgs};
use nwf_compiler::diag;
use nwf_compiler::driver;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `nwf show`.
#[derive(clap::Args)]
pub struct Args {
    /// The port: a libvirt <filterbinding> file, or a domain <interface> element.
    #[arg(long, value_name = "FILE")]
    binding: PathBuf,
    #[command(flatten)]
    search: SearchArgs,
    /// Set a variable (NAME=VALUE); repeat a name for a list. Overrides the binding's value.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// Parses `NAME=VALUE`.
pub fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected NAME=VALUE, got `{s}`"))
}

/// Runs the command.
pub fn run(args: Args, color: bool) -> anyhow::Result<ExitCode> {
    let run = driver::show_binding(&args.search.filters, &args.binding, &args.params);
    let (lib, program, shown) = (run.library, run.program, run.diagnostics);
    match args.format {
        Format::Human => {
            output::print_diagnostics(&lib.sources, &shown, color);
            if let Some(p) = &program {
                print!("{}", render::program(p));
            }
        }
        Format::Json => {
            let out = serde_json::json!({
                "program": program,
                "diagnostics": diag::to_json(&lib.sources, &shown),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(if program.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
