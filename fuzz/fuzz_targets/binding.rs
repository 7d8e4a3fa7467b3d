//! Any bytes as a binding, instantiated against the standard library: no panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nwf_compiler::binding::read_binding;
use nwf_compiler::diag::Diagnostics;
use nwf_compiler::instantiate::instantiate;
use nwf_compiler::library::Library;
use nwf_compiler::source::Origin;
use std::sync::LazyLock;

static STDLIB: LazyLock<Library> = LazyLock::new(|| Library::with_stdlib(&mut Diagnostics::new()));

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let mut d = Diagnostics::new();
    let mut lib = STDLIB.clone();
    let id = lib.sources.add("b.xml", Origin::Virtual("b".into()), text);
    if let Some(b) = read_binding(&lib.sources, id, &mut d) {
        let _ = instantiate(&lib, &b, &[("IP".into(), "10.0.0.1".into())], &mut d);
    }
});
