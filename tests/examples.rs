//! Every standard filter and every example in `testdata/` passes `nwf check`, and every
//! example binding instantiates.

use nwf_compiler::diag::{self, Severity};
use nwf_compiler::driver;
use std::path::PathBuf;

fn files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    v.sort();
    v
}

#[test]
fn standard_filters_and_examples_check_clean() {
    let mut all = files("stdlib");
    all.extend(files("testdata/filters"));
    assert!(all.len() >= 24 + 30);
    let run = driver::check_paths(&[PathBuf::from("testdata/filters")], &all);
    let errors: Vec<_> = run
        .diagnostics
        .items()
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .cloned()
        .collect();
    assert!(
        errors.is_empty(),
        "{}",
        diag::render(&run.library.sources, &errors, false)
    );
    // The standard library itself is warning-free.
    let run = driver::check_paths(&[], &files("stdlib"));
    assert!(
        run.diagnostics.items().is_empty(),
        "{}",
        diag::render(&run.library.sources, run.diagnostics.items(), false)
    );
}

#[test]
fn example_bindings_instantiate() {
    let bindings = files("testdata/bindings");
    assert!(bindings.len() >= 10);
    for b in bindings {
        let run = driver::show_binding(&[PathBuf::from("testdata/filters")], &b, &[]);
        assert!(
            run.program.is_some(),
            "{}: {}",
            b.display(),
            diag::render(&run.library.sources, &run.diagnostics, false)
        );
    }
}
