//! `nwf fmt`: rewrite filter files in canonical form, or check that they are.

use crate::{output, Format};
use nwf_compiler::diag::Diagnostics;
use nwf_compiler::source::{Origin, SourceMap};
use nwf_compiler::xml;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `nwf fmt`.
#[derive(clap::Args)]
pub struct Args {
    /// Do not write; exit 1 if any file is not in canonical form.
    #[arg(long)]
    check: bool,
    /// Print the formatted text to standard output instead of rewriting files.
    #[arg(long, conflicts_with = "check")]
    stdout: bool,
    /// Output format of the report.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Filter files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Runs the command.
pub fn run(args: Args, color: bool) -> anyhow::Result<ExitCode> {
    let mut sources = SourceMap::new();
    let mut diags = Diagnostics::new();
    let mut unformatted = Vec::new();
    let mut rewritten = Vec::new();
    for path in &args.files {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                diags.push(nwf_compiler::diag::Diagnostic::error(
                    "E0005",
                    format!("cannot read {}: {e}", path.display()),
                ));
                continue;
            }
        };
        let text = match xml::read_text(bytes) {
            Ok(t) => t,
            Err((at, lossy)) => {
                let end = at + lossy[at..].chars().next().map_or(0, char::len_utf8);
                let id = sources.add(
                    path.display().to_string(),
                    Origin::Path(path.clone()),
                    lossy,
                );
                diags.push(
                    nwf_compiler::diag::Diagnostic::error("E0001", "the file is not valid UTF-8")
                        .at(
                            nwf_compiler::source::Span::new(id, at..end),
                            "invalid byte sequence here",
                        ),
                );
                continue;
            }
        };
        let id = sources.add(
            path.display().to_string(),
            Origin::Path(path.clone()),
            text.clone(),
        );
        let mut file_diags = Diagnostics::new();
        let filter = xml::read_filter(&sources, id, &mut file_diags);
        let has_errors = file_diags.has_errors();
        diags.extend(file_diags.into_vec());
        let Some(filter) = filter.filter(|_| !has_errors) else {
            continue;
        };
        let formatted = xml::write_filter(&filter);
        if args.stdout {
            print!("{formatted}");
        } else if formatted != text {
            if args.check {
                unformatted.push(path.display().to_string());
            } else {
                std::fs::write(path, &formatted)?;
                rewritten.push(path.display().to_string());
            }
        }
    }
    let errors = diags.has_errors();
    match args.format {
        Format::Human => {
            output::print_diagnostics(&sources, diags.items(), color);
            for f in &unformatted {
                eprintln!("not formatted: {f}");
            }
            for f in &rewritten {
                eprintln!("formatted: {f}");
            }
        }
        Format::Json => {
            let out = serde_json::json!({
                "unformatted": unformatted,
                "formatted": rewritten,
                "diagnostics": nwf_compiler::diag::to_json(&sources, diags.items()),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(if errors || !unformatted.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
