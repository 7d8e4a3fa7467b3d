//! `nwf fmt`: rewrite filter files in canonical form, or check that they are.
//!
//! The syntax follows the file name: `*.nwf` files are written back as canonical DSL
//! (`dsl::write_filter`), everything else as canonical XML (`xml::write_filter`). A file with
//! errors, or with input libvirt ignores (W0104-W0106: the canonical form would delete it), is
//! reported and never rewritten.

use crate::{output, Format};
use nwf_compiler::diag::Diagnostics;
use nwf_compiler::frontend::{self, Syntax};
use nwf_compiler::ir::Filter;
use nwf_compiler::source::SourceMap;
use nwf_compiler::{dsl, xml};
use std::path::{Path, PathBuf};
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
    /// Filter files (`*.nwf` in the filter language, anything else XML).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// A filter file read without errors: its text as read and its IR.
pub struct ReadFile {
    /// The text of the file.
    pub text: String,
    /// The filter it defines.
    pub filter: Filter,
}

/// Why a file is not written back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unwritten {
    /// It cannot be read, or has errors.
    Errors,
    /// It holds input libvirt ignores (W0104-W0106), which the canonical form would delete.
    IgnoredInput,
}

/// Reads one filter file with the front end its extension calls for (`.nwf` DSL, else XML).
/// Every diagnostic goes to `diags`; an error when the file cannot be read, has errors, or holds
/// input the reader skipped as libvirt does (writing it back would delete that input).
pub fn read_file(
    path: &Path,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Result<ReadFile, Unwritten> {
    let (id, valid) = frontend::load_file(path, sources, diags).ok_or(Unwritten::Errors)?;
    if !valid {
        return Err(Unwritten::Errors);
    }
    let text = sources.get(id).text.clone();
    let mut file_diags = Diagnostics::new();
    let filter = frontend::read_filter(sources, id, &mut file_diags);
    if let Some(f) = &filter {
        nwf_compiler::check::ineffective_negations(f, &mut file_diags);
    }
    let why = if file_diags.has_errors() {
        Some(Unwritten::Errors)
    } else if file_diags.items().iter().any(|d| d.skips_input()) {
        Some(Unwritten::IgnoredInput)
    } else {
        None
    };
    diags.extend(file_diags.into_vec());
    match (why, filter) {
        (Some(why), _) => Err(why),
        (None, Some(filter)) => Ok(ReadFile { text, filter }),
        (None, None) => Err(Unwritten::Errors),
    }
}

/// The line that says why a file was not written (`what`: "not formatted", "not converted"),
/// for input libvirt ignores; errors speak for themselves.
pub fn left_alone(path: &Path, why: Unwritten, what: &str) -> Option<String> {
    (why == Unwritten::IgnoredInput).then(|| {
        format!(
            "{what}: {}: it holds input libvirt ignores (W0104-W0106), which the canonical form would delete; fix or remove it first",
            path.display()
        )
    })
}

/// Writes a filter as canonical text of the given syntax.
pub fn write(filter: &Filter, syntax: Syntax) -> String {
    match syntax {
        Syntax::Dsl => dsl::write_filter(filter),
        Syntax::Xml => xml::write_filter(filter),
    }
}

/// Runs the command.
pub fn run(args: Args, color: bool) -> anyhow::Result<ExitCode> {
    let mut sources = SourceMap::new();
    let mut diags = Diagnostics::new();
    let mut unformatted = Vec::new();
    let mut rewritten = Vec::new();
    let mut left = Vec::new();
    for path in &args.files {
        let file = match read_file(path, &mut sources, &mut diags) {
            Ok(file) => file,
            Err(why) => {
                left.extend(
                    left_alone(path, why, "not formatted").map(|l| (path.display().to_string(), l)),
                );
                continue;
            }
        };
        let formatted = write(&file.filter, Syntax::of_path(path));
        if args.stdout {
            print!("{formatted}");
        } else if formatted != file.text {
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
            for (_, line) in &left {
                eprintln!("{line}");
            }
        }
        Format::Json => {
            let left: Vec<&String> = left.iter().map(|(f, _)| f).collect();
            let out = serde_json::json!({
                "unformatted": unformatted,
                "formatted": rewritten,
                "left_alone": left,
                "diagnostics": nwf_compiler::diag::to_json(&sources, diags.items()),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(if errors || !unformatted.is_empty() || !left.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
