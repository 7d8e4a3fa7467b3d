//! The syntax-error corpus of the filter language: every file of `testdata/dsl-invalid/` is
//! checked as `nwf check` does (`driver::check_paths`, which picks the DSL front end by the
//! `.nwf` extension). The rendered diagnostics are insta snapshots (a change of wording is
//! reviewed with `cargo insta review`), and the codes each file's `expect:` line names must all
//! appear (`E0501x3`: at least three, for the files proving error recovery). Files that cannot
//! hold an `expect:` comment (empty, invalid UTF-8, ...) name their codes in the file name
//! (`...-E0002.nwf`). A file with `expect: none` and a `gap:` line documents a mistake nwf
//! does not diagnose yet; its snapshot shows what nwf says today.

use nwf_compiler::diag::{self, Severity};
use nwf_compiler::driver;
use std::path::{Path, PathBuf};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new("testdata/dsl-invalid");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("testdata/dsl-invalid exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "nwf"))
        .collect();
    v.sort();
    v
}

/// The codes a file promises: from its `expect:` line, or from its name (`...-E0002.nwf`).
fn expected_codes(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let source = match text.find("expect:") {
        Some(i) => text[i + 7..].lines().next().unwrap_or("").to_string(),
        None => path.file_name().unwrap().to_string_lossy().to_string(),
    };
    source
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(|w| w.split_once('x').map_or(w, |(code, _)| code))
        .filter(|w| {
            w.len() == 5
                && (w.starts_with('E') || w.starts_with('W'))
                && w[1..].chars().all(|c| c.is_ascii_digit())
        })
        .map(str::to_string)
        .collect()
}

/// How many times a file expects a code: `E0501x3` in the `expect:` line asks for at least
/// three E0501 (files proving error recovery: every error reported from one run).
fn expected_counts(path: &Path) -> Vec<(String, usize)> {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let Some(i) = text.find("expect:") else {
        return Vec::new();
    };
    let line = text[i + 7..].lines().next().unwrap_or("");
    line.split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|w| {
            let (code, n) = w.split_once('x')?;
            let ok = code.len() == 5 && (code.starts_with('E') || code.starts_with('W'));
            Some((code.to_string(), n.parse().ok().filter(|_| ok)?))
        })
        .collect()
}

#[test]
fn every_invalid_dsl_input_gets_its_diagnostics() {
    let files = corpus();
    assert!(
        files.len() >= 40,
        "the corpus has {} files; at least 40 expected",
        files.len()
    );
    let mut missing = Vec::new();
    for path in &files {
        let run = driver::check_paths(&[], std::slice::from_ref(path));
        let items = run.diagnostics.items();
        let rendered = diag::render(&run.library.sources, items, false);
        let json = serde_json::to_string(&diag::to_json(&run.library.sources, items)).unwrap();
        assert!(!json.is_empty());
        let expect = expected_codes(path);
        // `expect: none` with a `gap:` line documents a mistake nwf does not diagnose yet: the
        // snapshot records what it says today.
        let gap = String::from_utf8_lossy(&std::fs::read(path).unwrap()).contains("gap:");
        assert!(
            !expect.is_empty() || gap,
            "{}: no `expect:` codes",
            path.display()
        );
        for code in &expect {
            if !items.iter().any(|d| d.code == code) {
                missing.push(format!("{}: expected {code}\n{rendered}", path.display()));
            }
        }
        for (code, n) in expected_counts(path) {
            let got = items.iter().filter(|d| d.code == code).count();
            if got < n {
                missing.push(format!(
                    "{}: expected {n} x {code}, got {got}\n{rendered}",
                    path.display()
                ));
            }
        }
        // A file that expects only warnings must not produce errors, and vice versa.
        let expects_error = expect.iter().any(|c| c.starts_with('E'));
        if expects_error != run.diagnostics.has_errors() {
            missing.push(format!(
                "{}: expected {} errors\n{rendered}",
                path.display(),
                if expects_error { "some" } else { "no" }
            ));
        }
        let errors = run.diagnostics.count(Severity::Error);
        let warnings = run.diagnostics.count(Severity::Warning);
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        insta::assert_snapshot!(
            name,
            format!("{errors} errors, {warnings} warnings\n\n{rendered}")
        );
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
