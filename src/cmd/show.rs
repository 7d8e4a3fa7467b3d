//! `nwf show`: instantiate a binding and print the resulting program.

use crate::{output, render, BindingArgs, Format};
use nwf_compiler::diag;
use nwf_compiler::driver;
use std::process::ExitCode;

/// Arguments of `nwf show`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    port: BindingArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// Runs the command.
pub fn run(args: Args, color: bool) -> anyhow::Result<ExitCode> {
    let run = driver::show_binding(
        &args.port.search.filters,
        &args.port.binding,
        &args.port.params,
    );
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
