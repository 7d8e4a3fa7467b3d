//! The invalid-input corpora: every file of `testdata/invalid/` (XML) and of
//! `testdata/dsl-invalid/` (the filter language) is checked as `nwf check` does
//! (`driver::check_paths`, which picks the front end by extension). The rendered diagnostics
//! are insta snapshots (a change of wording is reviewed with `cargo insta review`), and the codes
//! each file's `expect:` line names must all appear; `E0501x3` asks for at least three (the
//! files proving error recovery: every error reported from one run). Files that cannot hold an
//! `expect:` comment (empty, invalid UTF-8, ...) name their codes in the file name
//! (`...-E0002.xml`). A file with `expect: none` and a `gap:` line documents a mistake nwf does
//! not diagnose yet; its snapshot shows what nwf says today.

use nwf_compiler::diag::{self, Severity};
use nwf_compiler::driver;
use std::path::{Path, PathBuf};

fn corpus(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn is_code(w: &str) -> bool {
    w.len() == 5
        && (w.starts_with('E') || w.starts_with('W'))
        && w[1..].chars().all(|c| c.is_ascii_digit())
}

/// The codes a file promises, each with the least number of times it must appear: from its
/// `expect:` line (`E0501x3`: three times), or from its name (`...-E0002.xml`).
fn expected(path: &Path) -> Vec<(String, usize)> {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let source = match text.find("expect:") {
        Some(i) => text[i + 7..].lines().next().unwrap_or("").to_string(),
        None => path.file_name().unwrap().to_string_lossy().to_string(),
    };
    source
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|w| {
            let (code, n) = match w.split_once('x') {
                Some((code, n)) => (code, n.parse().ok()?),
                None => (w, 1),
            };
            is_code(code).then(|| (code.to_string(), n))
        })
        .collect()
}

/// Checks every file of a corpus; snapshots are named `{prefix}__{file stem}`.
fn check_corpus(dir: &str, ext: &str, at_least: usize, prefix: &str) {
    let files = corpus(dir, ext);
    assert!(
        files.len() >= at_least,
        "{dir} has {} files; at least {at_least} expected",
        files.len()
    );
    let mut missing = Vec::new();
    for path in &files {
        let run = driver::check_paths(&[], std::slice::from_ref(path));
        let items = run.diagnostics.items();
        let rendered = diag::render(&run.library.sources, items, false);
        let json = serde_json::to_string(&diag::to_json(&run.library.sources, items)).unwrap();
        assert!(!json.is_empty());
        let expect = expected(path);
        let gap = String::from_utf8_lossy(&std::fs::read(path).unwrap()).contains("gap:");
        assert!(
            !expect.is_empty() || gap,
            "{}: no `expect:` codes",
            path.display()
        );
        for (code, n) in &expect {
            let got = items.iter().filter(|d| d.code == code).count();
            if got < *n {
                missing.push(format!(
                    "{}: expected {n} x {code}, got {got}\n{rendered}",
                    path.display()
                ));
            }
        }
        // A file that expects only warnings must not produce errors, and vice versa.
        let expects_error = expect.iter().any(|(c, _)| c.starts_with('E'));
        if expects_error != run.diagnostics.has_errors() {
            missing.push(format!(
                "{}: expected {} errors\n{rendered}",
                path.display(),
                if expects_error { "some" } else { "no" }
            ));
        }
        let errors = run.diagnostics.count(Severity::Error);
        let warnings = run.diagnostics.count(Severity::Warning);
        let name = format!("{prefix}__{}", path.file_stem().unwrap().to_string_lossy());
        insta::with_settings!({ prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(
                name,
                format!("{errors} errors, {warnings} warnings\n\n{rendered}")
            );
        });
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn every_invalid_input_gets_its_diagnostics() {
    check_corpus("testdata/invalid", "xml", 60, "invalid_corpus");
}

#[test]
fn every_invalid_dsl_input_gets_its_diagnostics() {
    check_corpus("testdata/dsl-invalid", "nwf", 40, "dsl_invalid_corpus");
}
