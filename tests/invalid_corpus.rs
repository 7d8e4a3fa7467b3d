//! The invalid-input corpus: every file of `testdata/invalid/` is checked as `nwf check` does.
//! The rendered diagnostics are insta snapshots (a change of wording is reviewed with
//! `cargo insta review`), and the codes each file's `expect:` line names must all appear.

use nwf_compiler::diag::{self, Severity};
use nwf_compiler::driver;
use std::path::{Path, PathBuf};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new("testdata/invalid");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("testdata/invalid exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    v.sort();
    v
}

/// The codes a file promises: from its `expect:` line, or from its name (`...-E0002.xml`).
fn expected_codes(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let source = match text.find("expect:") {
        Some(i) => text[i + 7..].lines().next().unwrap_or("").to_string(),
        None => path.file_name().unwrap().to_string_lossy().to_string(),
    };
    source
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| {
            w.len() == 5
                && (w.starts_with('E') || w.starts_with('W'))
                && w[1..].chars().all(|c| c.is_ascii_digit())
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn every_invalid_input_gets_its_diagnostics() {
    let files = corpus();
    assert!(
        files.len() >= 60,
        "the corpus has {} files; at least 60 expected",
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
        assert!(!expect.is_empty(), "{}: no `expect:` codes", path.display());
        for code in &expect {
            if !items.iter().any(|d| d.code == code) {
                missing.push(format!("{}: expected {code}\n{rendered}", path.display()));
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
