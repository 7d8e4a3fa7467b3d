//! `nwf check`: read filters, run the checker, report every diagnostic.

use crate::{output, Format, SearchArgs};
use nwf_compiler::diag;
use nwf_compiler::driver;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `nwf check`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    search: SearchArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Also fail (exit 1) on these: `--deny warnings` makes every warning fail the check (for
    /// CI: warnings are what libvirt accepts but applies differently from how it reads).
    #[arg(long, value_enum, value_name = "WHAT")]
    deny: Vec<Deny>,
    /// Filter files to check. Without any, every file of the --filters directories is checked.
    files: Vec<PathBuf>,
}

/// What `--deny` can make fatal.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Deny {
    /// Every warning.
    Warnings,
}

/// Runs the command.
pub fn run(args: Args, color: bool) -> anyhow::Result<ExitCode> {
    if args.files.is_empty() && args.search.filters.is_empty() {
        anyhow::bail!("nothing to check: give filter files, or --filters DIR to check a directory");
    }
    let run = driver::check_paths(&args.search.filters, &args.files);
    let (lib, checked, diags) = (run.library, run.checked, run.diagnostics);
    let items = diags.items();
    let failed = diags.has_errors()
        || (args.deny.contains(&Deny::Warnings) && diags.count(diag::Severity::Warning) > 0);
    match args.format {
        Format::Human => {
            output::print_diagnostics(&lib.sources, items, color);
            eprintln!(
                "{}: checked {} file{}: {}",
                if failed { "failed" } else { "ok" },
                checked.len(),
                if checked.len() == 1 { "" } else { "s" },
                output::counts(items)
            );
        }
        Format::Json => {
            let files: Vec<_> = checked
                .iter()
                .map(|id| lib.sources.get(*id).name.clone())
                .collect();
            let out = serde_json::json!({
                "ok": !failed,
                "files": files,
                "errors": diags.count(diag::Severity::Error),
                "warnings": diags.count(diag::Severity::Warning),
                "diagnostics": diag::to_json(&lib.sources, items),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
