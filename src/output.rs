//! Terminal output helpers: colour decisions and diagnostic printing.

use crate::ColorChoice;
use nwf_compiler::diag::{self, Diagnostic, Severity};
use nwf_compiler::source::SourceMap;
use std::io::IsTerminal;

/// Whether to colour standard error.
pub fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    }
}

/// Prints diagnostics to standard error, followed by a one-line summary when there are any.
pub fn print_diagnostics(sources: &SourceMap, diags: &[Diagnostic], color: bool) {
    if diags.is_empty() {
        return;
    }
    eprint!("{}", diag::render(sources, diags, color));
}

/// `N errors, M warnings` for a summary line.
pub fn counts(diags: &[Diagnostic]) -> String {
    let e = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let w = diags
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    format!("{e} error{}, {w} warning{}", plural(e), plural(w))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
