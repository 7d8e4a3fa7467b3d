//! The common entry points of the command line, tests and tools: load a library and check
//! files, or instantiate a binding, collecting every diagnostic.

use crate::binding::{read_binding, Binding};
use crate::check;
use crate::diag::{Diagnostic, Diagnostics, Severity};
use crate::instantiate::instantiate;
use crate::library::{Library, Provider};
use crate::program::Program;
use crate::source::{FileId, Origin};
use std::collections::HashSet;
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
///
/// A port gets no program when a filter it uses has an error, as libvirt would refuse to define
/// or apply it: reader errors of the files of the filters it reaches, and the checker's errors
/// on those filters (E0109, ...), are the port's errors. Errors in files whose filters no port
/// uses are summed up once per file (W0301) and stop nothing; a file with errors whose filter
/// name could not be read stops every port (it may hold the port's own filter).
pub fn show_bindings(
    dirs: &[PathBuf],
    bindings: &[PathBuf],
    params: &[(String, String)],
) -> PortsRun {
    let mut lib_diags = Diagnostics::new();
    let mut library = Library::with_stdlib(&mut lib_diags);
    for d in dirs {
        library.add_dir(d, &mut lib_diags);
    }
    let mut diags = Diagnostics::new();
    let mut ports = Vec::new();
    let mut binding_files = Vec::new();
    // The checker's findings per filter, computed once however many ports use it.
    let mut checked: std::collections::HashMap<String, Vec<Diagnostic>> = Default::default();
    // Per port, the files of the filters it reaches.
    let mut port_files: Vec<HashSet<FileId>> = Vec::new();
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
                let mut port_diags = Diagnostics::new();
                let mut used_files = HashSet::new();
                if let Some(b) = &b {
                    for name in reached_filters(&library, &b.filter) {
                        let Some(l) = library.get(&name) else {
                            continue;
                        };
                        used_files.insert(l.filter.file);
                        let found = checked.entry(name).or_insert_with(|| {
                            let mut d = Diagnostics::new();
                            check::check_filter(&library, &l.filter, &mut d);
                            d.into_vec()
                        });
                        port_diags.extend(found.iter().cloned());
                    }
                }
                let p = b
                    .as_ref()
                    .and_then(|b| instantiate(&library, b, params, &mut port_diags));
                let refused = port_diags.has_errors() && p.is_some();
                diags.extend(port_diags.items().iter().cloned());
                if let (true, Some(b)) = (refused, &b) {
                    diags.push(refused_port(b, "a filter it uses has errors"));
                }
                ports.push((b, p.filter(|_| !refused)));
                port_files.push(used_files);
            }
            Err(e) => {
                diags.push(Diagnostic::error(
                    "E0005",
                    format!("cannot read {}: {e}", path.display()),
                ));
                ports.push((None, None));
                port_files.push(HashSet::new());
            }
        }
    }
    // Reader findings: a port's own files and files without a readable filter stop the ports;
    // errors in other files are summed up once.
    let mut unused: Vec<(FileId, usize, Diagnostic)> = Vec::new();
    let mut nameless_error = false;
    let mut port_error = vec![false; ports.len()];
    // A binding kept in a --filters directory was read there as a (wrong) filter file too.
    let binding_paths: Vec<PathBuf> = bindings
        .iter()
        .filter_map(|b| b.canonicalize().ok())
        .collect();
    let is_binding = |f: FileId| match &library.sources.get(f).origin {
        Origin::Path(p) => p.canonicalize().is_ok_and(|p| binding_paths.contains(&p)),
        _ => false,
    };
    for d in lib_diags.items() {
        let file = d.span.map(|s| s.file);
        if file.is_some_and(is_binding) {
            continue;
        }
        let error = d.severity == Severity::Error;
        let nameless = file.is_some_and(|f| library.filters_in(f).next().is_none());
        let users: Vec<usize> = (0..ports.len())
            .filter(|&i| file.is_some_and(|f| port_files[i].contains(&f)))
            .collect();
        match file {
            Some(f) if error && users.is_empty() && !nameless => {
                match unused.iter_mut().find(|(u, _, _)| *u == f) {
                    Some(u) => u.1 += 1,
                    None => unused.push((f, 1, d.clone())),
                }
            }
            _ => {
                if error {
                    users.iter().for_each(|&i| port_error[i] = true);
                    // A file without a readable filter, or a problem without a place (an
                    // unreadable directory), may hide any port's filter.
                    nameless_error |= users.is_empty();
                }
                diags.push(d.clone());
            }
        }
    }
    for (i, (b, p)) in ports.iter_mut().enumerate() {
        let why = if port_error[i] {
            "a filter it uses has errors"
        } else if nameless_error {
            "a filter file it may use cannot be read"
        } else {
            continue;
        };
        if let (Some(b), Some(_)) = (b.as_ref(), p.take()) {
            diags.push(refused_port(b, why));
        }
    }
    for (file, n, first) in unused {
        let names: Vec<String> = library
            .filters_in(file)
            .map(|f| format!("`{}`", f.name))
            .collect();
        let mut w = Diagnostic::warning(
            "W0301",
            format!(
                "{n} error{} in a file of filters no port here uses ({}); they do not stop this command",
                if n == 1 { "" } else { "s" },
                names.join(", ")
            ),
        )
        .with_note(format!("the first: {}", first.message))
        .with_note("`nwf check` on the file lists them all");
        if let Some(span) = first.span {
            w = w.at(span, "first error here");
        }
        diags.push(w);
    }
    // The checker and instantiation both report what libvirt refuses at binding time: once.
    let mut seen = HashSet::new();
    let diagnostics = diags
        .items()
        .iter()
        .filter(|d| {
            d.severity == Severity::Error
                || d.code == "W0301"
                || d.span.is_some_and(|s| binding_files.contains(&s.file))
        })
        .filter(|d| seen.insert(format!("{}{:?}{}", d.code, d.span, d.message)))
        .cloned()
        .collect();
    PortsRun {
        library,
        ports,
        diagnostics,
    }
}

/// Says that a port gets no program although it could be instantiated (E0307).
fn refused_port(b: &Binding, why: &str) -> Diagnostic {
    Diagnostic::error(
        "E0307",
        format!("port {} is not instantiated: {why}", b.port),
    )
    .at(b.filter_span, "the port's filter")
    .with_note("libvirt would refuse to define or to apply it, so nwf shows no program for it")
}

/// The names of the filters a port applying `root` uses: it and every filter it reaches
/// through filterrefs (names that do not exist are included; instantiation reports them).
pub fn reached_filters(lib: &Library, root: &str) -> Vec<String> {
    let mut seen = vec![root.to_string()];
    let mut i = 0;
    while i < seen.len() {
        if let Some(l) = lib.get(&seen[i]) {
            for r in l.filter.refs() {
                if !seen.contains(&r.filter) {
                    seen.push(r.filter.clone());
                }
            }
        }
        i += 1;
    }
    seen
}
