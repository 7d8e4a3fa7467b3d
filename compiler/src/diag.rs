//! Diagnostics: what went wrong, where, what was expected and how to fix it.
//!
//! Every stage reports into a [`Diagnostics`] sink and keeps going, so one run shows every
//! problem. Rendering uses codespan-reporting for people and serde for machines.

use crate::source::{SourceMap, Span};
use codespan_reporting::diagnostic as cs;
use codespan_reporting::term;
use serde::Serialize;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Extra information attached to a run (e.g. a standard filter was overridden).
    Note,
    /// The input is accepted but probably does not do what it appears to.
    Warning,
    /// The input is rejected (libvirt would reject it, or nwf cannot give it a meaning).
    Error,
}

/// A secondary location with a message ("the cycle continues here").
#[derive(Clone, Debug, Serialize)]
pub struct Related {
    /// Where.
    pub span: Span,
    /// What about it.
    pub message: String,
}

/// One finding.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnostic {
    /// Error, warning or note.
    pub severity: Severity,
    /// Stable identifier, e.g. `E0103`; documented in `docs/diagnostics.md`.
    pub code: &'static str,
    /// One-line summary.
    pub message: String,
    /// The offending text, if the problem has a place.
    pub span: Option<Span>,
    /// Label under the primary span (usually what was expected).
    pub label: String,
    /// Other places involved.
    pub related: Vec<Related>,
    /// Free-form notes.
    pub notes: Vec<String>,
    /// A suggestion for fixing it.
    pub help: Option<String>,
    /// A replacement text for the primary span that fixes the problem ("did you mean").
    pub fix: Option<String>,
}

impl Diagnostic {
    fn new(severity: Severity, code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity,
            code,
            message: message.into(),
            span: None,
            label: String::new(),
            related: Vec::new(),
            notes: Vec::new(),
            help: None,
            fix: None,
        }
    }

    /// A new error.
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Error, code, message)
    }

    /// A new warning.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Warning, code, message)
    }

    /// A new note.
    pub fn note(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Note, code, message)
    }

    /// Sets the primary span and its label.
    pub fn at(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.span = Some(span);
        self.label = label.into();
        self
    }

    /// Sets the label for a diagnostic without a place (shown as a note).
    pub fn at_none(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }

    /// Adds a related location.
    pub fn related(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.related.push(Related {
            span,
            message: message.into(),
        });
        self
    }

    /// Adds a note line.
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Sets a machine-applicable replacement for the primary span.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Diagnostic {
        self.fix = Some(fix.into());
        self
    }

    /// Whether the reader left out part of the input here: an error, or input libvirt's parser
    /// ignores ([`IGNORED_INPUT`]). The IR keeps no trace of it, so writing the file back from
    /// the IR (`nwf fmt`, `nwf convert`, formatting in the editor) would delete it.
    pub fn skips_input(&self) -> bool {
        self.severity == Severity::Error || IGNORED_INPUT.contains(&self.code)
    }

    fn to_codespan(&self) -> cs::Diagnostic<crate::source::FileId> {
        let d = match self.severity {
            Severity::Error => cs::Diagnostic::error(),
            Severity::Warning => cs::Diagnostic::warning(),
            Severity::Note => cs::Diagnostic::note(),
        };
        let mut labels = Vec::new();
        if let Some(span) = self.span {
            labels.push(cs::Label::primary(span.file, span.range()).with_message(&self.label));
        }
        for r in &self.related {
            labels.push(cs::Label::secondary(r.span.file, r.span.range()).with_message(&r.message));
        }
        let mut notes = self.notes.clone();
        if self.span.is_none() && !self.label.is_empty() {
            notes.insert(0, self.label.clone());
        }
        if let Some(h) = &self.help {
            notes.push(format!("help: {h}"));
        }
        d.with_code(self.code)
            .with_message(&self.message)
            .with_labels(labels)
            .with_notes(notes)
    }
}

/// Warnings about input libvirt's parser ignores and its schema rejects: an attribute it does
/// not read on that element (W0104), an element it skips (W0105), text (W0106). The readers
/// skip it as libvirt does, so every later stage sees libvirt's meaning.
pub const IGNORED_INPUT: &[&str] = &["W0104", "W0105", "W0106"];

/// A sink that collects diagnostics in order.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty sink.
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    /// Records one diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    /// Records many diagnostics.
    pub fn extend(&mut self, ds: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(ds);
    }

    /// True if any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// Number of diagnostics of a severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.items.iter().filter(|d| d.severity == severity).count()
    }

    /// All diagnostics, in the order they were found.
    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    /// Consumes the sink.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }

    /// Sorts by file and position, keeping the order of findings at the same place.
    pub fn sort(&mut self) {
        self.items
            .sort_by_key(|d| d.span.map(|s| (0, s.file.0, s.start)).unwrap_or((1, 0, 0)));
    }
}

/// Renders diagnostics as codespan-reporting text (with ANSI colours if `color`).
pub fn render(sources: &SourceMap, diags: &[Diagnostic], color: bool) -> String {
    use term::termcolor::{Ansi, NoColor};
    let config = term::Config::default();
    let mut out = Vec::new();
    for d in diags {
        let cd = d.to_codespan();
        if color {
            let mut w = Ansi::new(&mut out);
            let _ = term::emit_to_write_style(&mut w, &config, sources, &cd);
        } else {
            let mut w = NoColor::new(&mut out);
            let _ = term::emit_to_write_style(&mut w, &config, sources, &cd);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A diagnostic in machine-readable form: positions resolved to file, line and column.
#[derive(Clone, Debug, Serialize)]
pub struct JsonDiagnostic {
    /// "error", "warning" or "note".
    pub severity: Severity,
    /// Stable code.
    pub code: &'static str,
    /// Summary.
    pub message: String,
    /// File display name, if located.
    pub file: Option<String>,
    /// 1-based line of the start.
    pub line: Option<usize>,
    /// 1-based column of the start.
    pub column: Option<usize>,
    /// 1-based line of the end.
    pub end_line: Option<usize>,
    /// 1-based column of the end.
    pub end_column: Option<usize>,
    /// Label text.
    pub label: String,
    /// Other locations, as `file:line:col: message`.
    pub related: Vec<String>,
    /// Notes.
    pub notes: Vec<String>,
    /// Help line.
    pub help: Option<String>,
    /// Suggested replacement for the primary span.
    pub fix: Option<String>,
}

/// Converts diagnostics to their JSON form.
pub fn to_json(sources: &SourceMap, diags: &[Diagnostic]) -> Vec<JsonDiagnostic> {
    diags
        .iter()
        .map(|d| {
            let (file, line, column, end_line, end_column) = match d.span {
                Some(s) => {
                    let f = sources.get(s.file);
                    let (l, c) = f.line_col(s.start as usize);
                    let (el, ec) = f.line_col(s.end as usize);
                    (Some(f.name.clone()), Some(l), Some(c), Some(el), Some(ec))
                }
                None => (None, None, None, None, None),
            };
            JsonDiagnostic {
                severity: d.severity,
                code: d.code,
                message: d.message.clone(),
                file,
                line,
                column,
                end_line,
                end_column,
                label: d.label.clone(),
                related: d
                    .related
                    .iter()
                    .map(|r| format!("{}: {}", sources.location(r.span), r.message))
                    .collect(),
                notes: d.notes.clone(),
                help: d.help.clone(),
                fix: d.fix.clone(),
            }
        })
        .collect()
}
