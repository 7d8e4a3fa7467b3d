//! What the compiler's integration tests share.

use std::path::{Path, PathBuf};

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
