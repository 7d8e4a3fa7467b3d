//! What the compiler's integration tests share.

use nwf_compiler::diag::Diagnostics;
use nwf_compiler::ir::Filter;
use nwf_compiler::source::{Origin, SourceMap};
use nwf_compiler::{dsl, xml};
use std::path::{Path, PathBuf};

/// Reads a filter from XML text (as `t.xml`).
pub fn read_xml(text: &str) -> (Option<Filter>, Diagnostics) {
    let mut sources = SourceMap::new();
    let id = sources.add("t.xml", Origin::Virtual("t".into()), text.to_string());
    let mut d = Diagnostics::new();
    let f = xml::read_filter(&sources, id, &mut d);
    (f, d)
}

/// Reads a filter from DSL text (as `t.nwf`).
pub fn read_dsl(text: &str) -> (Option<Filter>, Diagnostics) {
    let mut sources = SourceMap::new();
    let id = sources.add("t.nwf", Origin::Virtual("t".into()), text.to_string());
    let mut d = Diagnostics::new();
    let f = dsl::read_filter(&sources, id, &mut d);
    (f, d)
}

/// Folders of `testdata/` whose files are not valid filters on purpose (error corpora, CLI
/// cases, bindings, the language server's broken test workspace).
const NOT_FILTERS: &[&str] = &["invalid", "dsl-invalid", "cases", "cli", "bindings", "lsp"];

/// Every valid filter file with extension `ext` (`xml` or `nwf`) below `dir`, recursively,
/// sorted; deliberately broken inputs (the folders above, files named `broken*`) are left out.
pub fn filter_files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if !NOT_FILTERS.contains(&name) {
                filter_files(&p, ext, out);
            }
            continue;
        }
        if name.starts_with("broken") || p.extension().is_none_or(|e| e != ext) {
            continue;
        }
        let is_filter = std::fs::read_to_string(&p).is_ok_and(|t| {
            if ext == "xml" {
                t.contains("<filter ")
            } else {
                t.contains("filter ")
            }
        });
        if is_filter {
            out.push(p);
        }
    }
}
