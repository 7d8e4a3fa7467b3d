//! Any bytes through the DSL front end (`.nwf`): parse, lower, check against the standard
//! library, render diagnostics. Nothing may panic. A filter read without errors is written
//! back as canonical DSL, which must read again without errors, with the same meaning, and be
//! a fixed point of the writer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nwf_compiler::check::check_filter;
use nwf_compiler::diag::{self, Diagnostics};
use nwf_compiler::dsl;
use nwf_compiler::library::{Library, Provider};
use nwf_compiler::xml;
use std::sync::LazyLock;

/// The standard library, read once (reading it is most of the cost of one run).
static STDLIB: LazyLock<Library> = LazyLock::new(|| Library::with_stdlib(&mut Diagnostics::new()));

fuzz_target!(|data: &[u8]| {
    // The same decoding as `nwf check` (invalid UTF-8 is read lossily after E0001).
    let text = match xml::read_text(data.to_vec()) {
        Ok(t) => t,
        Err((_, lossy)) => lossy,
    };
    // The parser on its own (the language server's path): never fails.
    let (_tree, _errors) = dsl::parse(&text);

    let mut lib = STDLIB.clone();
    let mut d = Diagnostics::new();
    let id = lib.add_text("fuzz.nwf", &text, Provider::File, &mut d);
    let read_errors = d.has_errors();
    let filters: Vec<_> = lib.filters_in(id).cloned().collect();
    for f in &filters {
        check_filter(&lib, f, &mut d);
        // Writing never panics, whatever was read.
        let _ = dsl::write_filter(f);
    }
    let _ = diag::render(&lib.sources, d.items(), false);
    let _ = diag::to_json(&lib.sources, d.items());
    if read_errors {
        return;
    }
    for f in &filters {
        let out = dsl::write_filter(f);
        let mut d2 = Diagnostics::new();
        let mut lib2 = Library::new();
        let id2 = lib2.add_text("canonical.nwf", &out, Provider::File, &mut d2);
        assert!(
            !d2.has_errors(),
            "canonical form rejected:\n{out}\n{}",
            diag::render(&lib2.sources, d2.items(), false)
        );
        let back = lib2
            .filters_in(id2)
            .next()
            .expect("canonical form has the filter");
        assert_eq!(f.meaning(), back.meaning(), "meaning changed:\n{out}");
        let again = dsl::write_filter(back);
        assert_eq!(out, again, "canonical form is not a fixed point");
    }
});
