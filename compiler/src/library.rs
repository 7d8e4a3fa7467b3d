//! The set of filter definitions a run can see: the standard library, `--filters`
//! directories and files named on the command line, with libvirt's name resolution.

use crate::diag::{Diagnostic, Diagnostics};
use crate::frontend;
use crate::ir::Filter;
use crate::source::{FileId, Origin, SourceMap};
use crate::stdlib::STDLIB;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a definition came from; later kinds override earlier ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Provider {
    /// Embedded standard filter.
    Stdlib,
    /// A file found in a `--filters` directory.
    Directory,
    /// A file named explicitly.
    File,
}

/// A loaded filter definition.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The definition.
    pub filter: Filter,
    /// Its provider.
    pub provider: Provider,
}

/// All filter definitions of a run, by name.
#[derive(Clone, Debug, Default)]
pub struct Library {
    /// Every source text read.
    pub sources: SourceMap,
    filters: BTreeMap<String, Loaded>,
    paths: Vec<PathBuf>,
}

impl Library {
    /// An empty library.
    pub fn new() -> Library {
        Library::default()
    }

    /// A library with the standard filters loaded.
    pub fn with_stdlib(diags: &mut Diagnostics) -> Library {
        let mut lib = Library::new();
        for (name, text) in STDLIB {
            lib.add_standard(name, text, diags);
        }
        lib
    }

    /// Loads one standard filter. A standard filter may be written in either syntax: text
    /// that starts with `<` is XML, anything else the DSL.
    pub fn add_standard(&mut self, name: &str, text: &str, diags: &mut Diagnostics) -> FileId {
        let ext = if text.trim_start().starts_with('<') {
            "xml"
        } else {
            "nwf"
        };
        let id = self.sources.add(
            format!("<stdlib>/{name}.{ext}"),
            Origin::Stdlib(name.to_string()),
            text.to_string(),
        );
        self.read(id, Provider::Stdlib, diags);
        id
    }

    /// Loads every `*.xml` and `*.nwf` file of a directory (sorted by name, not recursive).
    pub fn add_dir(&mut self, dir: &Path, diags: &mut Diagnostics) {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                diags.push(Diagnostic::error(
                    "E0005",
                    format!("cannot read filter directory {}: {e}", dir.display()),
                ));
                return;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_filter_file(p))
            .collect();
        files.sort();
        for f in files {
            self.add_file(&f, Provider::Directory, diags);
        }
    }

    /// Loads one file; returns its id if it could be read (whatever its content).
    pub fn add_file(
        &mut self,
        path: &Path,
        provider: Provider,
        diags: &mut Diagnostics,
    ) -> Option<FileId> {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if let Some(i) = self.paths.iter().position(|p| *p == canonical) {
            // Already read (a file named explicitly that is also in a --filters directory).
            let id = self.find_file(&canonical, i);
            if provider == Provider::File {
                if let Some(l) = self
                    .filters
                    .values_mut()
                    .find(|l| Some(l.filter.file) == id)
                {
                    l.provider = Provider::File;
                }
            }
            return id;
        }
        let (id, valid) = frontend::load_file(path, &mut self.sources, diags)?;
        self.paths.push(canonical);
        if !valid {
            return Some(id);
        }
        self.read(id, provider, diags);
        Some(id)
    }

    fn find_file(&self, canonical: &Path, _index: usize) -> Option<FileId> {
        self.sources.iter().find_map(|(id, f)| match &f.origin {
            Origin::Path(p) if p.canonicalize().ok().as_deref() == Some(canonical) => Some(id),
            _ => None,
        })
    }

    /// Adds an in-memory text (tests, the language server) and reads it.
    pub fn add_text(
        &mut self,
        name: &str,
        text: &str,
        provider: Provider,
        diags: &mut Diagnostics,
    ) -> FileId {
        let id = self
            .sources
            .add(name, Origin::Virtual(name.to_string()), text.to_string());
        self.read(id, provider, diags);
        id
    }

    fn read(&mut self, id: FileId, provider: Provider, diags: &mut Diagnostics) {
        let Some(filter) = frontend::read_filter(&self.sources, id, diags) else {
            return;
        };
        if filter.name.is_empty() {
            return;
        }
        match self.filters.get(&filter.name) {
            Some(old) if old.provider == Provider::Stdlib && provider != Provider::Stdlib => {
                // A copy that means the same as the standard filter (libvirt's own files in
                // /etc/libvirt/nwfilter, with their UUIDs) is not worth a note.
                let strip = |f: &Filter| {
                    let mut m = f.meaning();
                    m["uuid"] = serde_json::Value::Null;
                    m
                };
                let same = strip(&old.filter) == strip(&filter);
                if !same {
                    diags.push(
                        Diagnostic::note(
                            "N0001",
                            format!(
                                "`{}` overrides the standard filter of that name",
                                filter.name
                            ),
                        )
                        .at(filter.name_span, "this definition is used instead"),
                    );
                }
            }
            Some(old) if old.provider > provider => return,
            Some(old) if old.provider == provider => {
                diags.push(
                    Diagnostic::error(
                        "E0203",
                        format!("filter `{}` is defined twice", filter.name),
                    )
                    .at(filter.name_span, "second definition")
                    .related(old.filter.name_span, "first definition"),
                );
                return;
            }
            _ => {}
        }
        self.filters
            .insert(filter.name.clone(), Loaded { filter, provider });
    }

    /// The definition of a filter.
    pub fn get(&self, name: &str) -> Option<&Loaded> {
        self.filters.get(name)
    }

    /// All definitions, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Loaded> {
        self.filters.values()
    }

    /// The filters defined in one file.
    pub fn filters_in(&self, file: FileId) -> impl Iterator<Item = &Filter> {
        self.filters
            .values()
            .map(|l| &l.filter)
            .filter(move |f| f.file == file)
    }

    /// Every filter name (for suggestions).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.filters.keys().map(String::as_str)
    }
}

/// Whether a path names a filter source file: XML (`.xml`) or the DSL (`.nwf`).
pub fn is_filter_file(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("xml" | "nwf"))
}

#[cfg(test)]
mod stdlib_syntax_tests {
    use super::*;

    #[test]
    fn a_standard_filter_may_be_written_in_the_dsl() {
        let mut d = Diagnostics::new();
        let mut xml = Library::new();
        let (_, text) = STDLIB
            .iter()
            .find(|(n, _)| *n == "no-mac-spoofing")
            .expect("standard filter");
        xml.add_standard("no-mac-spoofing", text, &mut d);
        let f = &xml.get("no-mac-spoofing").expect("read").filter;
        let dsl_text = crate::dsl::write_filter(f);
        let mut dsl = Library::new();
        let id = dsl.add_standard("no-mac-spoofing", &dsl_text, &mut d);
        assert!(dsl.sources.get(id).name.ends_with(".nwf"));
        assert!(!d.has_errors(), "{:?}", d.items());
        let g = &dsl.get("no-mac-spoofing").expect("read").filter;
        assert_eq!(f.meaning(), g.meaning());
    }
}
