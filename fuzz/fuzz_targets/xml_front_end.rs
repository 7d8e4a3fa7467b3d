//! Any bytes through the XML front end: decode, read, check against the standard library,
//! write canonical XML and read that back. Nothing may panic, and the canonical form of an
//! accepted filter must be accepted again with the same meaning.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nwf_compiler::check::check_filter;
use nwf_compiler::diag::{self, Diagnostics};
use nwf_compiler::library::{Library, Provider};
use nwf_compiler::xml;
use std::sync::LazyLock;

/// The standard library, read once (reading it is most of the cost of one run).
static STDLIB: LazyLock<Library> = LazyLock::new(|| Library::with_stdlib(&mut Diagnostics::new()));

fuzz_target!(|data: &[u8]| {
    let text = match xml::read_text(data.to_vec()) {
        Ok(t) => t,
        Err((_, lossy)) => lossy,
    };
    let mut lib = STDLIB.clone();
    let mut d = Diagnostics::new();
    let id = lib.add_text("fuzz.xml", &text, Provider::File, &mut d);
    let filters: Vec<_> = lib.filters_in(id).cloned().collect();
    for f in &filters {
        check_filter(&lib, f, &mut d);
    }
    let _ = diag::render(&lib.sources, d.items(), false);
    let _ = diag::to_json(&lib.sources, d.items());
    if d.has_errors() {
        return;
    }
    for f in &filters {
        let out = xml::write_filter(f);
        let mut d2 = Diagnostics::new();
        let mut lib2 = Library::new();
        let id2 = lib2.add_text("canonical.xml", &out, Provider::File, &mut d2);
        assert!(!d2.has_errors(), "canonical form rejected:\n{out}");
        let back = lib2.filters_in(id2).next().expect("canonical form has the filter");
        assert_eq!(f.meaning(), back.meaning(), "meaning changed:\n{out}");
    }
});
