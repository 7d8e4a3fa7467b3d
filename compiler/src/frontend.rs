//! Chooses the front end by file name: `*.nwf` is the DSL, everything else XML. Both give the
//! same IR and the same diagnostics for the same mistakes, so callers need not care.

use crate::diag::Diagnostics;
use crate::ir::Filter;
use crate::source::{FileId, SourceMap};
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
