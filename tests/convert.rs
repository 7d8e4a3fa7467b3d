//! `nwf convert -o DIR` and `nwf fmt` on `.nwf` files, run through the binary into temporary
//! directories (the golden CLI cases cannot look at written files).

use nwf_compiler::diag::Diagnostics;
use nwf_compiler::frontend;
use nwf_compiler::ir::{Entry, Filter};
use nwf_compiler::source::{Origin, SourceMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn nwf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nwf"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("nwf runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads a filter file with the library's front end; panics on any error.
fn read(path: &Path) -> Filter {
    let mut sources = SourceMap::new();
    let body = std::fs::read_to_string(path).unwrap();
    let id = sources.add(
        path.display().to_string(),
        Origin::Path(path.to_path_buf()),
        body,
    );
    let mut diags = Diagnostics::new();
    let f = frontend::read_filter(&sources, id, &mut diags);
    assert!(
        !diags.has_errors(),
        "{} has errors: {:?}",
        path.display(),
        diags.items()
    );
    f.expect("a filter")
}

/// Every comment line of a filter, in order, trimmed (the DSL joins adjacent comments).
fn comment_lines(f: &Filter) -> Vec<String> {
    let entries = f.entries.iter().flat_map(|e| match e {
        Entry::Rule(r) => r.comments.iter(),
        Entry::Ref(r) => r.comments.iter(),
    });
    f.comments
        .iter()
        .chain(entries)
        .chain(&f.trailing_comments)
        .flat_map(|c| c.lines())
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn strs(paths: &[PathBuf]) -> Vec<&str> {
    paths.iter().map(|p| p.to_str().unwrap()).collect()
}

/// XML -> DSL -> XML keeps every filter's meaning and comments, for every standard and
/// example filter; the DSL written is canonical, and DSL -> XML -> DSL gives the same text.
#[test]
fn xml_to_dsl_to_xml_keeps_meaning() {
    for src in ["stdlib", "testdata/filters"] {
        let inputs = files(&root().join(src), "xml");
        assert!(inputs.len() >= 20, "{src} has the filters");
        let tmp = tempfile::tempdir().unwrap();
        let dsl_dir = tmp.path().join("dsl");
        let xml_dir = tmp.path().join("xml");
        let dsl_again = tmp.path().join("dsl2");

        let mut args = vec!["convert", "--to", "dsl", "-o", dsl_dir.to_str().unwrap()];
        args.extend(strs(&inputs));
        let out = nwf(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "nothing on stdout with -o");

        let dsl_files = files(&dsl_dir, "nwf");
        assert_eq!(dsl_files.len(), inputs.len());
        let mut args = vec!["convert", "--to", "xml", "-o", xml_dir.to_str().unwrap()];
        args.extend(strs(&dsl_files));
        let out = nwf(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

        let mut args = vec!["fmt", "--check"];
        args.extend(strs(&dsl_files));
        let out = nwf(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

        let back = files(&xml_dir, "xml");
        let mut args = vec!["convert", "--to", "dsl", "-o", dsl_again.to_str().unwrap()];
        args.extend(strs(&back));
        let out = nwf(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

        for input in &inputs {
            let stem = input.file_stem().unwrap().to_str().unwrap();
            let dsl = dsl_dir.join(format!("{stem}.nwf"));
            let xml = xml_dir.join(format!("{stem}.xml"));
            let (a, b, c) = (read(input), read(&dsl), read(&xml));
            assert_eq!(a.meaning(), b.meaning(), "{stem}: XML -> DSL");
            assert_eq!(a.meaning(), c.meaning(), "{stem}: XML -> DSL -> XML");
            assert_eq!(
                comment_lines(&a),
                comment_lines(&b),
                "{stem}: comments in DSL"
            );
            assert_eq!(
                comment_lines(&a),
                comment_lines(&c),
                "{stem}: comments in XML"
            );
            let again = std::fs::read_to_string(dsl_again.join(format!("{stem}.nwf"))).unwrap();
            assert_eq!(
                std::fs::read_to_string(&dsl).unwrap(),
                again,
                "{stem}: DSL -> XML -> DSL"
            );
        }
    }
}

/// `-o DIR` writes what standard output would show, one file per input.
#[test]
fn output_dir_matches_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    let d = dir.to_str().unwrap();
    let out = nwf(&[
        "convert",
        "--to",
        "xml",
        "-o",
        d,
        "testdata/dsl/web-guest.nwf",
        "testdata/filters/arp-guard.xml",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!(
        "converted: testdata/dsl/web-guest.nwf -> {}",
        dir.join("web-guest.xml").display()
    )));
    for (input, name) in [
        ("testdata/dsl/web-guest.nwf", "web-guest.xml"),
        ("testdata/filters/arp-guard.xml", "arp-guard.xml"),
    ] {
        let single = nwf(&["convert", "--to", "xml", input]);
        assert_eq!(single.status.code(), Some(0));
        assert_eq!(
            std::fs::read_to_string(dir.join(name)).unwrap(),
            text(&single.stdout),
            "{input}"
        );
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
}

/// A file with errors gets its diagnostics and no output; the others are still converted.
#[test]
fn errors_write_nothing_for_that_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    let out = nwf(&[
        "convert",
        "--to",
        "xml",
        "-o",
        d,
        "testdata/convert/broken.nwf",
        "testdata/convert/negation.nwf",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error[E0501]"), "{stderr}");
    assert!(
        stderr.contains("failed: 1 of 2 files not converted"),
        "{stderr}"
    );
    assert!(!tmp.path().join("broken.xml").exists());
    assert!(tmp.path().join("negation.xml").exists());
}

/// Two inputs that would write the same file are a usage error, and nothing is written.
#[test]
fn colliding_outputs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("out");
    let out = nwf(&[
        "convert",
        "--to",
        "dsl",
        "-o",
        d.to_str().unwrap(),
        "testdata/filters/arp-guard.xml",
        "testdata/dsl/arp-guard.nwf",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("would both be written to"));
    assert!(!d.exists());
}

/// A name with dots keeps its whole stem: `a.b.xml` becomes `a.b.nwf`.
#[test]
fn dotted_stems_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("web.v2.xml");
    std::fs::copy(root().join("testdata/filters/web-vm.xml"), &input).unwrap();
    let out = nwf(&[
        "convert",
        "--to",
        "dsl",
        "-o",
        tmp.path().to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(tmp.path().join("web.v2.nwf").exists());
}

/// `nwf fmt` rewrites a `.nwf` file canonically, keeps its meaning, and is idempotent; a file
/// with errors is reported and left alone.
#[test]
fn fmt_rewrites_dsl_files() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("messy.nwf");
    let original = std::fs::read_to_string(root().join("testdata/convert/messy.nwf")).unwrap();
    std::fs::write(&file, &original).unwrap();
    let f = file.to_str().unwrap();

    let out = nwf(&["fmt", f]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("formatted:"));
    let formatted = std::fs::read_to_string(&file).unwrap();
    assert_ne!(formatted, original);
    assert_eq!(
        read(&file).meaning(),
        read(&root().join("testdata/convert/messy.nwf")).meaning()
    );

    let out = nwf(&["fmt", "--check", f]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = nwf(&["fmt", f]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), formatted);

    let broken = tmp.path().join("broken.nwf");
    let text_before = std::fs::read_to_string(root().join("testdata/convert/broken.nwf")).unwrap();
    std::fs::write(&broken, &text_before).unwrap();
    let out = nwf(&["fmt", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), text_before);
}
