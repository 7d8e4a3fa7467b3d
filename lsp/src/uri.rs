//! URIs of documents: file paths, and the standard filters as read-only files.

use nwf_compiler::source::{FileId, Origin};
use nwf_compiler::stdlib::STDLIB;
use std::path::{Path, PathBuf};
use tower_lsp_server::ls_types::Uri;

/// The `file:` URI of a path (made absolute), if it can be expressed.
pub fn from_path(p: &Path) -> Option<Uri> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(p)
    };
    Uri::from_file_path(abs)
}

/// The local path of a `file:` URI.
pub fn to_path(u: &Uri) -> Option<PathBuf> {
    if u.scheme().as_str() != "file" {
        return None;
    }
    u.to_file_path().map(|p| p.into_owned())
}

/// The name a document gets in the source map: its path when it has one (diagnostics and the
/// front-end dispatcher read its extension), else the URI.
pub fn display_name(u: &Uri) -> String {
    to_path(u).map_or_else(|| u.as_str().to_string(), |p| p.display().to_string())
}

/// Where the standard filters are written so editors can open them. They are files of the
/// server's version, made read-only, so any editor shows them without a custom URI scheme.
fn stdlib_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("nwf")
        .join(format!("stdlib-{}", env!("CARGO_PKG_VERSION")))
}

/// The URI of a standard filter's read-only copy, writing the copy if it is missing or stale.
pub fn stdlib_uri(name: &str) -> Option<Uri> {
    let (_, text) = STDLIB.iter().find(|(n, _)| *n == name)?;
    let dir = stdlib_dir();
    let path = dir.join(format!("{name}.xml"));
    if std::fs::read_to_string(&path).ok().as_deref() != Some(*text) {
        std::fs::create_dir_all(&dir).ok()?;
        // A previous copy is read-only: make it writable to replace it.
        if let Ok(meta) = std::fs::metadata(&path) {
            let mut perm = meta.permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            let _ = std::fs::set_permissions(&path, perm);
        }
        std::fs::write(&path, text).ok()?;
        if let Ok(meta) = std::fs::metadata(&path) {
            let mut perm = meta.permissions();
            perm.set_readonly(true);
            let _ = std::fs::set_permissions(&path, perm);
        }
    }
    from_path(&path)
}

/// Whether a URI is a read-only standard filter copy.
pub fn is_stdlib(u: &Uri) -> bool {
    to_path(u).is_some_and(|p| p.starts_with(stdlib_dir()))
}

/// The URI of any file of an analysis (open, disk or standard).
pub fn of_file(a: &crate::analysis::Analysis, file: FileId) -> Option<Uri> {
    if let Some(u) = a.uris.get(&file) {
        return Some(u.clone());
    }
    match &a.lib.sources.get(file).origin {
        Origin::Stdlib(name) => stdlib_uri(name),
        Origin::Path(p) => from_path(p),
        Origin::Virtual(_) => None,
    }
}
