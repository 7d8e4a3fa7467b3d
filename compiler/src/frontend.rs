//! Chooses the front end by file name: `*.nwf` is the DSL, everything else XML. Both give the
//! same IR and the same diagnostics for the same mistakes, so callers need not care.

use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::Filter;
use crate::source::{FileId, Origin, SourceMap, Span};
use std::path::Path;

/// The syntax of a filter file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// libvirt's nwfilter XML.
    Xml,
    /// The nwf filter language (`.nwf`).
    Dsl,
}

impl Syntax {
    /// The syntax of a file, by its extension (`.nwf` is the DSL; anything else XML).
    pub fn of_path(path: &Path) -> Syntax {
        match path.extension().and_then(|e| e.to_str()) {
            Some("nwf") => Syntax::Dsl,
            _ => Syntax::Xml,
        }
    }

    /// The syntax of a source file, by its name.
    pub fn of_name(name: &str) -> Syntax {
        Syntax::of_path(Path::new(name))
    }
}

/// Reads one filter file with the front end its name calls for.
pub fn read_filter(sources: &SourceMap, file: FileId, diags: &mut Diagnostics) -> Option<Filter> {
    match Syntax::of_name(&sources.get(file).name) {
        Syntax::Dsl => crate::dsl::read_filter(sources, file, diags),
        Syntax::Xml => crate::xml::read_filter(sources, file, diags),
    }
}

/// Reads a filter file from disk into the source map. A file that cannot be read is E0005 (and
/// `None`); a file that is not UTF-8 is E0001 at the first bad byte, kept with replacement
/// characters so the error can be shown in place. Returns the file and whether its text is
/// valid (only then is it worth reading as a filter).
pub fn load_file(
    path: &Path,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Option<(FileId, bool)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            diags.push(Diagnostic::error(
                "E0005",
                format!("cannot read {}: {e}", path.display()),
            ));
            return None;
        }
    };
    let name = path.display().to_string();
    let origin = Origin::Path(path.to_path_buf());
    Some(match crate::xml::read_text(bytes) {
        Ok(text) => (sources.add(name, origin, text), true),
        Err((at, lossy)) => {
            let end = at + lossy[at..].chars().next().map_or(0, char::len_utf8);
            let id = sources.add(name, origin, lossy);
            diags.push(
                Diagnostic::error("E0001", "the file is not valid UTF-8")
                    .at(Span::new(id, at..end), "invalid byte sequence here")
                    .with_help("filter files are UTF-8 text"),
            );
            (id, false)
        }
    })
}
