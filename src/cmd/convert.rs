//! `nwf convert`: translate filter files between the XML and the filter language (`.nwf`).
//!
//! Each input is read with the front end its extension calls for (`.nwf` DSL, anything else
//! XML) into the IR, and written back with the target syntax's canonical writer, so comments
//! survive and converting to the same syntax is a re-format. Every IR filter has a DSL and an
//! XML form (per-attribute `!=` becomes XML's `match='no'` element plus a plain one), so no
//! well-formed input is refused. An input with errors, or with input libvirt ignores
//! (W0104-W0106, which the converted text would not hold), gets its diagnostics and no output.
//!
//! Without `-o`, one input's converted text goes to standard output; several inputs need
//! `-o DIR` (or `--format json`, which carries each text in the report) so that outputs never
//! run together.

use crate::cmd::fmt;
use crate::{output, Format};
use nwf_compiler::diag::{self, Diagnostics, Severity};
use nwf_compiler::frontend::Syntax;
use nwf_compiler::source::SourceMap;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// The syntax to convert to.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// The nwf filter language (`.nwf`).
    Dsl,
    /// libvirt's nwfilter XML (`.xml`).
    Xml,
}

impl Target {
    fn syntax(self) -> Syntax {
        match self {
            Target::Dsl => Syntax::Dsl,
            Target::Xml => Syntax::Xml,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Target::Dsl => "nwf",
            Target::Xml => "xml",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Target::Dsl => "dsl",
            Target::Xml => "xml",
        }
    }
}

/// Arguments of `nwf convert`.
#[derive(clap::Args)]
pub struct Args {
    /// The syntax to write.
    #[arg(long, value_enum)]
    to: Target,
    /// Write each result to DIR/<stem>.nwf or DIR/<stem>.xml (created if missing) instead of
    /// standard output. Required with several files, except with --format json.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: Option<PathBuf>,
    /// Output format of the report (json carries the converted text when there is no -o).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Filter files (`*.nwf` in the filter language, anything else XML).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// One input's result.
struct Converted {
    input: String,
    from: Syntax,
    /// Where the text was written (with `-o`).
    output: Option<String>,
    /// The converted text (`None` when the input had errors).
    text: Option<String>,
}

/// Runs the command.
pub fn run(args: Args, color: bool) -> anyhow::Result<ExitCode> {
    if args.output.is_none() && args.files.len() > 1 && args.format == Format::Human {
        anyhow::bail!(
            "{} files given: use -o DIR to write one file each (or --format json)",
            args.files.len()
        );
    }
    // Plan the output paths first: two inputs must never write the same file.
    let mut targets = Vec::with_capacity(args.files.len());
    if let Some(dir) = &args.output {
        let mut seen: BTreeMap<PathBuf, &PathBuf> = BTreeMap::new();
        for path in &args.files {
            let Some(stem) = path.file_stem() else {
                anyhow::bail!("{} has no file name", path.display());
            };
            let mut name = stem.to_os_string();
            name.push(".");
            name.push(args.to.extension());
            let out = dir.join(name);
            if let Some(other) = seen.insert(out.clone(), path) {
                anyhow::bail!(
                    "{} and {} would both be written to {}",
                    other.display(),
                    path.display(),
                    out.display()
                );
            }
            targets.push(Some(out));
        }
    } else {
        targets.resize(args.files.len(), None);
    }

    let mut sources = SourceMap::new();
    let mut diags = Diagnostics::new();
    let mut results = Vec::new();
    let mut left = Vec::new();
    for (path, target) in args.files.iter().zip(targets) {
        let mut result = Converted {
            input: path.display().to_string(),
            from: Syntax::of_path(path),
            output: None,
            text: None,
        };
        let read = fmt::read_file(path, &mut sources, &mut diags);
        if let Err(why) = read {
            left.extend(fmt::left_alone(path, why, "not converted"));
        }
        if let Ok(file) = read {
            let text = fmt::write(&file.filter, args.to.syntax());
            match &target {
                Some(out) => {
                    if let Some(dir) = out.parent() {
                        std::fs::create_dir_all(dir)
                            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
                    }
                    std::fs::write(out, &text)
                        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
                    result.output = Some(out.display().to_string());
                }
                None if args.format == Format::Human => print!("{text}"),
                None => {}
            }
            result.text = Some(text);
        }
        results.push(result);
    }

    let failed = results.iter().filter(|r| r.text.is_none()).count();
    match args.format {
        Format::Human => {
            output::print_diagnostics(&sources, diags.items(), color);
            for r in &results {
                if let Some(out) = &r.output {
                    eprintln!("converted: {} -> {out}", r.input);
                }
            }
            for line in &left {
                eprintln!("{line}");
            }
            if failed > 0 {
                eprintln!(
                    "failed: {failed} of {} file{} not converted: {}",
                    results.len(),
                    if results.len() == 1 { "" } else { "s" },
                    output::counts(diags.items())
                );
            }
        }
        Format::Json => {
            let files: Vec<_> = results
                .iter()
                .map(|r| {
                    let from = match r.from {
                        Syntax::Dsl => "dsl",
                        Syntax::Xml => "xml",
                    };
                    let mut v = serde_json::json!({
                        "input": r.input,
                        "from": from,
                        "to": args.to.name(),
                        "ok": r.text.is_some(),
                        "output": r.output,
                    });
                    if r.output.is_none() {
                        v["text"] = serde_json::json!(r.text);
                    }
                    v
                })
                .collect();
            let out = serde_json::json!({
                "ok": failed == 0,
                "files": files,
                "errors": diags.count(Severity::Error),
                "warnings": diags.count(Severity::Warning),
                "diagnostics": diag::to_json(&sources, diags.items()),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
