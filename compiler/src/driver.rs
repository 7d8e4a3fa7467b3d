//! The common entry points of the command line, tests and tools: load a library and check
//! files, or instantiate a binding, collecting every diagnostic.

use crate::binding::{read_binding, Binding};
use crate::check;
use crate::diag::{Diagnostic, Diagnostics, Severity};
use crate::instantiate::instantiate;
use crate::library::{Library, Provider};
use crate::program::Program;
use crate::source::{FileId, Origin};
use std::path::{Path, PathBuf};

/// The result of checking files.
pub struct CheckRun {
    /// Everything that was read.
    pub library: Library,
    /// The files that were checked.
    pub checked: Vec<FileId>,
    /// What was found, sorted by position.
    pub diagnostics: Diagnostics,
}

/// Loads the standard library and `dirs`, then checks `files` (or, without files, every file
/// of the directories). Diagnostics of directory files not being checked are left out.
pub fn check_paths(dirs: &[PathBuf], files: &[PathBuf]) -> CheckRun {
    let mut lib_diags = Diagnostics::new();
    let mut library = Library::with_stdlib(&mut lib_diags);
    let mut diags = Diagnostics::new();
    for dir in dirs {
        let sink = if files.is_empty() {
            &mut diags
        } else {
            &mut lib_diags
        };
        library.add_dir(dir, sink);
    }
    let mut checked = Vec::new();
    for f in files {
        if let Some(id) = library.add_file(f, Provider::File, &mut diags) {
            checked.push(id);
        }
    }
    if files.is_empty() {
        checked = library
            .sources
            .iter()
            .filter(|(_, f)| matches!(f.origin, Origin::Path(_)))
            .map(|(id, _)| id)
            .collect();
    }
    for &id in &checked {
        let filters: Vec<_> = library.filters_in(id).cloned().collect();
        for f in &filters {
            check::check_filter(&library, f, &mut diags);
        }
    }
    // Problems without a place (an unreadable directory) always count, and so do the reader's
    // findings in a checked file that was first read through a directory.
    diags.extend(
        lib_diags
            .items()
            .iter()
            .filter(|d| d.span.is_none_or(|s| checked.contains(&s.file)))
            .cloned(),
    );
    diags.sort();
    CheckRun {
        library,
        checked,
        diagnostics: diags,
    }
}

/// The result of instantiating a binding.
pub struct ShowRun {
    /// Everything that was read.
    pub library: Library,
    /// The binding, if it could be read.
    pub binding: Option<Binding>,
    /// The program, if instantiation succeeded.
    pub program: Option<Program>,
    /// Errors, and warnings about the binding file itself.
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads the standard library and `dirs`, reads the binding and instantiates it.
pub fn show_binding(dirs: &[PathBuf], binding: &Path, params: &[(String, String)]) -> ShowRun {
    let mut run = show_bindings(dirs, &[binding.to_path_buf()], params);
    let (binding, program) = run.ports.pop().expect("one binding in, one port out");
    ShowRun {
        library: run.library,
        binding,
        program,
        diagnostics: run.diagnostics,
    }
}

/// The result of instantiating several bindings against one library.
pub struct PortsRun {
    /// Everything that was read (one library for all ports, so spans of every port's rules
    /// point into the same sources).
    pub library: Library,
    /// Per binding, in order: the binding and its program, where they could be made.
    pub ports: Vec<(Option<Binding>, Option<Program>)>,
    /// Errors, and warnings about the binding files themselves.
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads the standard library and `dirs` once, then reads and instantiates every binding.
pub fn show_bindings(
    dirs: &[PathBuf],
    bindings: &[PathBuf],
    params: &[(String, String)],
) -> PortsRun {
    let mut diags = Diagnostics::new();
    let mut library = Library::with_stdlib(&mut diags);
    for d in dirs {
        library.add_dir(d, &mut diags);
    }
    let mut ports = Vec::new();
    let mut binding_files = Vec::new();
    for path in bindings {
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let id = library.sources.add(
                    path.display().to_string(),
                    Origin::Path(path.clone()),
                    text,
                );
                binding_files.push(id);
                let b = read_binding(&library.sources, id, &mut diags);
                let p = b
                    .as_ref()
                    .and_then(|b| instantiate(&library, b, params, &mut diags));
                ports.push((b, p));
            }
            Err(e) => {
                diags.push(Diagnostic::error(
                    "E0005",
                    format!("cannot read {}: {e}", path.display()),
                ));
                ports.push((None, None));
            }
        }
    }
    let diagnostics = diags
        .items()
        .iter()
        .filter(|d| {
            d.severity == Severity::Error || d.span.is_some_and(|s| binding_files.contains(&s.file))
        })
        .cloned()
        .collect();
    PortsRun {
        library,
        ports,
        diagnostics,
    }
}
