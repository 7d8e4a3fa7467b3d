//! From document texts to what every feature reads: the library of all visible filters, the
//! IR and diagnostics of each open document.
//!
//! [`load`] and [`read_filter`] are the only places where text becomes IR; switching to the
//! compiler's front-end dispatcher (XML or DSL by file extension) changes them only.

use crate::place::Placed;
use crate::uri;
use nwf_compiler::binding::Binding;
use nwf_compiler::check;
use nwf_compiler::diag::{Diagnostic, Diagnostics};
use nwf_compiler::ir::{Entry, Filter, Operand};
use nwf_compiler::lang::{self, Layer};
use nwf_compiler::library::{Library, Provider};
use nwf_compiler::position::LineIndex;
use nwf_compiler::source::{FileId, Origin, SourceMap};
use nwf_compiler::{dsl, frontend, xml};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;
use tower_lsp_server::ls_types::Uri;

pub use nwf_compiler::frontend::Syntax;

/// The syntax of a file name or URI, by its extension (`.nwf` is the DSL, anything else XML).
pub fn syntax_of(name: &str) -> Syntax {
    Syntax::of_name(name)
}

/// Adds a document to the library and reads it (the filter becomes visible by name). The
/// library picks the front end by the name's extension.
pub fn load(
    lib: &mut Library,
    name: &str,
    text: &str,
    provider: Provider,
    diags: &mut Diagnostics,
) -> FileId {
    lib.add_text(name, text, provider, diags)
}

/// Reads one document of a source map into IR (whatever the library decided about its name).
pub fn read_filter(sources: &SourceMap, file: FileId, diags: &mut Diagnostics) -> Option<Filter> {
    frontend::read_filter(sources, file, diags)
}

/// Canonical text of a filter in a syntax (formatting, conversion).
pub fn write_filter(f: &Filter, syntax: Syntax) -> String {
    match syntax {
        Syntax::Xml => xml::write_filter(f),
        Syntax::Dsl => dsl::write_filter(f),
    }
}

/// Server settings that decide which filters are visible.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    /// `--filters` directories (not recursive, like the command line).
    pub filters: Vec<PathBuf>,
    /// A binding whose parameters give variable values (hover, completion).
    pub binding: Option<PathBuf>,
    /// Workspace folders, searched recursively for filter files.
    pub roots: Vec<PathBuf>,
}

/// A filter file on disk, read once and kept until the settings change.
#[derive(Clone, Debug)]
pub struct DiskFile {
    /// Its path.
    pub path: PathBuf,
    /// Its text (invalid UTF-8 replaced).
    pub text: String,
}

/// The filter files of the `--filters` directories and the workspace, and the binding's
/// variables.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    /// Every file, directories first, without duplicates.
    pub files: Vec<DiskFile>,
    /// Variables of the configured binding, in order (a repeated name is a list).
    pub vars: Vec<(String, String)>,
    /// Problems met while loading (unreadable directory, bad binding), for the log.
    pub problems: Vec<String>,
    /// The configured binding, if it could be read (instantiated for evaluation positions).
    pub binding: Option<Arc<Binding>>,
}

/// Most files a workspace scan reads, so opening a huge tree stays responsive.
const MAX_WORKSPACE_FILES: usize = 5000;

fn is_source(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("xml") | Some("nwf")
    )
}

/// Whether a text read from `path` is a filter: every `.nwf` file, and XML files whose root
/// element is `<filter>` (bindings, domain XML and other XML files in a workspace are not).
pub fn is_filter_text(path: &Path, text: &str) -> bool {
    if syntax_of(&path.to_string_lossy()) == Syntax::Dsl {
        return true;
    }
    match xml_root_name(text) {
        Some(name) => name == "filter",
        // No recognisable root (a broken file): read it if it looks like one.
        None => text.contains("<filter"),
    }
}

/// The name of the first element of an XML text, after the declaration, comments and a
/// doctype.
fn xml_root_name(text: &str) -> Option<&str> {
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        if let Some(r) = rest.strip_prefix("<?") {
            rest = &r[r.find("?>")? + 2..];
        } else if let Some(r) = rest.strip_prefix("<!--") {
            rest = &r[r.find("-->")? + 3..];
        } else if let Some(r) = rest.strip_prefix("<!") {
            rest = &r[r.find('>')? + 1..];
        } else if let Some(r) = rest.strip_prefix('<') {
            let end = r
                .find(|c: char| c.is_whitespace() || matches!(c, '>' | '/'))
                .unwrap_or(r.len());
            return (end > 0).then(|| &r[..end]);
        } else {
            return None;
        }
    }
}

/// Reads one filter file from disk; `None` if it cannot be read or is not a filter.
pub fn read_disk_file(path: &Path) -> Option<DiskFile> {
    let bytes = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    is_filter_text(path, &text).then(|| DiskFile {
        path: path.to_path_buf(),
        text,
    })
}

/// Directories below a workspace root that are not searched for filters.
fn skipped_dir(name: &str) -> bool {
    name.starts_with('.') || matches!(name, "target" | "node_modules")
}

/// Whether a path would be read as a filter file by [`load_disk`]: a `.xml` or `.nwf` file
/// directly in a `filters` directory, or below a workspace root outside hidden and build
/// directories.
pub fn in_scope(settings: &Settings, path: &Path) -> bool {
    if !is_source(path) {
        return false;
    }
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let parent = path.parent().map(canon);
    if settings
        .filters
        .iter()
        .any(|d| parent.as_deref() == Some(canon(d).as_path()))
    {
        return true;
    }
    let path = path.parent().map_or_else(
        || path.to_path_buf(),
        |p| canon(p).join(path.file_name().unwrap_or_default()),
    );
    settings.roots.iter().any(|root| {
        path.strip_prefix(canon(root)).is_ok_and(|rel| {
            let n = rel.components().count();
            rel.components()
                .take(n.saturating_sub(1))
                .all(|c| !skipped_dir(&c.as_os_str().to_string_lossy()))
        })
    })
}

/// Whether two paths name the same file (also when one of them no longer exists).
pub fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || match (a.canonicalize(), b.canonicalize()) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
}

impl Disk {
    /// Takes a changed, created or deleted file into account: its text is read again (in
    /// place, so which of two definitions of a name wins does not change), a new filter file
    /// is added at the end, and a deleted or no longer filter file is dropped. Returns
    /// whether anything changed.
    pub fn reload(&mut self, settings: &Settings, path: &Path) -> bool {
        let at = self.files.iter().position(|f| same_file(&f.path, path));
        let new = if in_scope(settings, path) {
            read_disk_file(path)
        } else {
            None
        };
        match (at, new) {
            (Some(i), Some(f)) => {
                let changed = self.files[i].text != f.text;
                self.files[i].text = f.text;
                changed
            }
            (Some(i), None) => {
                self.files.remove(i);
                true
            }
            (None, Some(f)) if self.files.len() < MAX_WORKSPACE_FILES => {
                self.files.push(f);
                true
            }
            (None, _) => false,
        }
    }
}

/// Reads the configured directories, the workspace and the binding.
pub fn load_disk(settings: &Settings) -> Disk {
    let mut disk = Disk::default();
    let mut seen = BTreeSet::new();
    let mut add = |disk: &mut Disk, path: PathBuf| {
        let key = path.canonicalize().unwrap_or_else(|_| path.clone());
        if !seen.insert(key) || disk.files.len() >= MAX_WORKSPACE_FILES {
            return;
        }
        disk.files.extend(read_disk_file(&path));
    };
    for dir in &settings.filters {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file() && is_source(p))
                    .collect();
                files.sort();
                for f in files {
                    add(&mut disk, f);
                }
            }
            Err(e) => disk.problems.push(format!(
                "cannot read filter directory {}: {e}",
                dir.display()
            )),
        }
    }
    for root in &settings.roots {
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut paths: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for p in paths.into_iter().rev() {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if p.is_dir() {
                    if !skipped_dir(name) {
                        stack.push(p);
                    }
                } else if is_source(&p) {
                    add(&mut disk, p);
                }
            }
        }
    }
    disk.load_binding(settings);
    disk
}

impl Disk {
    /// Reads the configured binding (again): its variables, and the binding itself for
    /// instantiation.
    pub fn load_binding(&mut self, settings: &Settings) {
        self.vars.clear();
        self.binding = None;
        self.problems
            .retain(|p| !p.starts_with("cannot read binding"));
        let Some(b) = &settings.binding else {
            return;
        };
        match std::fs::read(b) {
            Ok(bytes) => {
                let mut sources = SourceMap::new();
                let id = sources.add(
                    b.display().to_string(),
                    Origin::Path(b.clone()),
                    String::from_utf8_lossy(&bytes).into_owned(),
                );
                let mut d = Diagnostics::new();
                match nwf_compiler::binding::read_binding(&sources, id, &mut d) {
                    Some(binding) => {
                        self.vars.push(("MAC".into(), binding.mac.to_string()));
                        self.vars.extend(
                            binding
                                .params
                                .iter()
                                .map(|p| (p.name.clone(), p.value.clone())),
                        );
                        self.binding = Some(Arc::new(binding));
                    }
                    None => self
                        .problems
                        .push(format!("cannot read binding {}", b.display())),
                }
            }
            Err(e) => self
                .problems
                .push(format!("cannot read binding {}: {e}", b.display())),
        }
    }
}

/// The library without the open documents: the standard filters and every disk file that is
/// not open (an open document replaces its file). Rebuilt only when that set changes.
#[derive(Clone, Debug)]
pub struct Base {
    /// Standard filters and disk files.
    pub lib: Library,
    /// URIs of the disk files.
    pub uris: HashMap<FileId, Uri>,
    /// The filter of every disk file, also those the library did not take (a second
    /// definition of a name): references and rename list every definition.
    pub disk_filters: Vec<Filter>,
    /// The open paths it was built without.
    pub without: BTreeSet<PathBuf>,
}

impl Base {
    /// Builds the base library for a set of open paths.
    pub fn build(disk: &Disk, open_paths: BTreeSet<PathBuf>) -> Base {
        let mut scratch = Diagnostics::new();
        let mut lib = Library::with_stdlib(&mut scratch);
        let mut uris = HashMap::new();
        let mut ids = Vec::new();
        for f in &disk.files {
            if open_paths.contains(&f.path) {
                continue;
            }
            let Some(u) = uri::from_path(&f.path) else {
                continue;
            };
            // Disk files count as a --filters directory: an open document (a file named
            // explicitly) overrides a disk definition of the same name without an error.
            let id = load(
                &mut lib,
                &f.path.to_string_lossy(),
                &f.text,
                Provider::Directory,
                &mut scratch,
            );
            uris.insert(id, u);
            ids.push(id);
        }
        let disk_filters = ids
            .into_iter()
            .filter_map(|id| match lib.filters_in(id).next() {
                Some(f) => Some(f.clone()),
                None => read_filter(&lib.sources, id, &mut Diagnostics::new()),
            })
            .collect();
        Base {
            lib,
            uris,
            disk_filters,
            without: open_paths,
        }
    }
}

/// An open document as the editor has it.
#[derive(Clone, Debug)]
pub struct OpenDoc {
    /// Its URI.
    pub uri: Uri,
    /// Current text.
    pub text: String,
    /// Version of the last change applied.
    pub version: i32,
}

/// The analysis of one open document.
#[derive(Clone, Debug)]
pub struct Doc {
    /// Its URI.
    pub uri: Uri,
    /// Its file in [`Analysis::lib`].
    pub file: FileId,
    /// The version analysed.
    pub version: i32,
    /// Line starts, for positions.
    pub index: LineIndex,
    /// Its filter, if one could be read.
    pub filter: Option<Filter>,
    /// Everything the reader and the checker found in it, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// Its syntax.
    pub syntax: Syntax,
}

/// A consistent picture of all visible filters and open documents at one moment.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// Standard filters, disk files and open documents.
    pub lib: Library,
    /// URIs of every non-standard file.
    pub uris: HashMap<FileId, Uri>,
    /// Open documents, by URI text.
    pub docs: BTreeMap<String, Doc>,
    /// Variables of the configured binding.
    pub vars: Vec<(String, String)>,
    /// Filters of disk files that the library does not hold (a name defined twice, or
    /// overridden by an open document): still definitions for references and rename.
    pub shadowed: Vec<Filter>,
    /// With a binding configured: the program positions of this analysis's rules, filled in
    /// by a blocking task once the binding is instantiated (see [`Analysis::placement`]).
    pub placement: Option<watch::Receiver<Option<Arc<Placed>>>>,
}

/// How long a request waits for the program positions before answering without them.
pub const PLACEMENT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Analysis {
    /// Waits (at most [`PLACEMENT_WAIT`]) until the program positions of this analysis are
    /// known; returns at once without a binding.
    pub async fn placement_ready(&self) {
        if let Some(rx) = &self.placement {
            let mut rx = rx.clone();
            let _ = tokio::time::timeout(PLACEMENT_WAIT, rx.wait_for(Option::is_some)).await;
        }
    }

    /// The program positions, if a binding is configured and they are known by now.
    pub fn placement(&self) -> Option<Arc<Placed>> {
        self.placement.as_ref().and_then(|rx| rx.borrow().clone())
    }
}

/// Analyses the open documents on top of a base library.
pub fn analyze(base: &Base, open: &[&OpenDoc], vars: &[(String, String)]) -> Analysis {
    let mut lib = base.lib.clone();
    let mut uris = base.uris.clone();
    let mut read_diags = Diagnostics::new();
    let mut ids = Vec::new();
    for doc in open {
        let name = uri::display_name(&doc.uri);
        let id = load(&mut lib, &name, &doc.text, Provider::File, &mut read_diags);
        uris.insert(id, doc.uri.clone());
        ids.push(id);
    }
    let mut per_file: HashMap<FileId, Vec<Diagnostic>> = HashMap::new();
    for d in read_diags.into_vec() {
        if let Some(s) = d.span {
            per_file.entry(s.file).or_default().push(d);
        }
    }
    let mut docs = BTreeMap::new();
    for (doc, id) in open.iter().zip(ids) {
        let filter = match lib.filters_in(id).next() {
            Some(f) => Some(f.clone()),
            // Not in the library (a second definition of a name): read it again for itself.
            None => read_filter(&lib.sources, id, &mut Diagnostics::new()),
        };
        let mut diags = Diagnostics::new();
        diags.extend(per_file.remove(&id).unwrap_or_default());
        if let Some(f) = &filter {
            let mut checked = Diagnostics::new();
            check::check_filter(&lib, f, &mut checked);
            diags.extend(
                checked
                    .into_vec()
                    .into_iter()
                    .filter(|d| d.span.is_none_or(|s| s.file == id)),
            );
        }
        diags.sort();
        docs.insert(
            doc.uri.as_str().to_string(),
            Doc {
                uri: doc.uri.clone(),
                file: id,
                version: doc.version,
                index: LineIndex::new(&doc.text),
                filter,
                diagnostics: diags.into_vec(),
                syntax: syntax_of(doc.uri.as_str()),
            },
        );
    }
    let shadowed = base
        .disk_filters
        .iter()
        .filter(|f| lib.get(&f.name).map(|l| l.filter.file) != Some(f.file))
        .cloned()
        .collect();
    Analysis {
        lib,
        uris,
        docs,
        vars: vars.to_vec(),
        shadowed,
        placement: None,
    }
}

/// A rule's place in libvirt's evaluation order within its filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RulePlace {
    /// The layer (ebtables or iptables) it is evaluated in.
    pub layer: Layer,
    /// 1-based position among the filter's rules of that layer, after sorting by priority.
    pub position: usize,
    /// Number of the filter's rules in that layer.
    pub of: usize,
    /// Its effective priority.
    pub priority: i32,
}

/// The evaluation place of every rule of a filter, by index in `f.entries` (filterrefs get
/// `None`). libvirt sorts a chain's rules by priority, stably, separately per layer.
pub fn rule_places(f: &Filter) -> Vec<Option<RulePlace>> {
    let layer_of = |e: &Entry| match e {
        Entry::Rule(r) => Some(
            r.matches
                .as_ref()
                .map_or(Layer::Ethernet, |m| m.proto.layer),
        ),
        Entry::Ref(_) => None,
    };
    let mut out = vec![None; f.entries.len()];
    for layer in [Layer::Ethernet, Layer::Ip] {
        let mut idx: Vec<(usize, i32)> = f
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Entry::Rule(r) if layer_of(e) == Some(layer) => Some((i, r.priority)),
                _ => None,
            })
            .collect();
        idx.sort_by_key(|&(_, p)| p);
        let of = idx.len();
        for (pos, (i, priority)) in idx.into_iter().enumerate() {
            out[i] = Some(RulePlace {
                layer,
                position: pos + 1,
                of,
                priority,
            });
        }
    }
    out
}

/// Every variable name in use: reserved ones, the binding's, and those referenced or passed
/// by any visible filter.
pub fn variables(a: &Analysis) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (n, doc) in lang::RESERVED_VARIABLES {
        out.insert(n.to_string(), doc.to_string());
    }
    for l in a.lib.iter() {
        collect_vars(&l.filter, &mut out);
    }
    for d in a.docs.values() {
        if let Some(f) = &d.filter {
            collect_vars(f, &mut out);
        }
    }
    for (n, v) in &a.vars {
        out.insert(n.clone(), format!("Set by the binding: {v}"));
    }
    out
}

fn collect_vars(f: &Filter, out: &mut BTreeMap<String, String>) {
    for e in &f.entries {
        match e {
            Entry::Rule(r) => {
                for a in r.matches.iter().flat_map(|m| &m.attrs) {
                    if let Operand::Var(v) = &a.value {
                        out.entry(v.name.clone())
                            .or_insert_with(|| format!("Used by filter `{}`.", f.name));
                    }
                }
            }
            Entry::Ref(r) => {
                for p in &r.params {
                    out.entry(p.name.clone())
                        .or_insert_with(|| format!("Passed to `{}` by `{}`.", r.filter, f.name));
                }
            }
        }
    }
}

/// Variables a filter uses, itself and through its filterrefs (for parameter completion).
pub fn variables_of(lib: &Library, name: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(n) = todo.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        let Some(l) = lib.get(&n) else { continue };
        for e in &l.filter.entries {
            match e {
                Entry::Rule(r) => {
                    for a in r.matches.iter().flat_map(|m| &m.attrs) {
                        if let Operand::Var(v) = &a.value {
                            out.insert(v.name.clone());
                        }
                    }
                }
                Entry::Ref(r) => todo.push(r.filter.clone()),
            }
        }
    }
    out
}
