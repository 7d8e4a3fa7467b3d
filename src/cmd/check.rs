//! `nwf check`: read filters, run the checker, report every diagnostic.

use crate::{output, Format, SearchArgs};
use nwf_compiler::check;
use nwf_compiler::diag::{self, Diagnostics};
use nwf_compiler::library::{Library, Provider};
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
    /// Filter files to check. Without any, every file of the --filters directories is checked.
    files: Vec<PathBuf>,
}

/// Runs the command.
pub fn run(args: Args, color: bool) -> anyhow::Result<ExitCode> {
    if args.files.is_empty() && args.search.filters.is_empty() {
        anyhow::bail!("nothing to check: give filter files, or --filters DIR to check a directory");
    }
    let mut lib_diags = Diagnostics::new();
    let mut lib = Library::with_stdlib(&mut lib_diags);
    let mut diags = Diagnostics::new();
    for dir in &args.search.filters {
        // Diagnostics of directory files count only when the directory itself is being checked.
        let sink = if args.files.is_empty() { &mut diags } else { &mut lib_diags };
        lib.add_dir(dir, sink);
    }
    let mut checked = Vec::new();
    for f in &args.files {
        if let Some(id) = lib.add_file(f, Provider::File, &mut diags) {
            checked.push(id);
        }
    }
    if args.files.is_empty() {
        checked = lib
            .sources
            .iter()
            .filter(|(_, f)| matches!(f.origin, nwf_compiler::source::Origin::Path(_)))
            .map(|(id, _)| id)
            .collect();
    }
    for &id in &checked {
        let filters: Vec<_> = lib.filters_in(id).cloned().collect();
        for f in &filters {
            check::check_filter(&lib, f, &mut diags);
        }
    }
    // Directory-level errors (unreadable directory) always count.
    diags.extend(
        lib_diags
            .items()
            .iter()
            .filter(|d| d.span.is_none())
            .cloned(),
    );
    diags.sort();
    let items = diags.items();
    let failed = diags.has_errors();
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
            let files: Vec<_> = checked.iter().map(|id| lib.sources.get(*id).name.clone()).collect();
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
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
