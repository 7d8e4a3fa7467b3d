//! Conformance with libvirt's own parser, run when libvirtd is reachable (CI starts it).
//!
//! For every filter in `testdata/filters/` and `testdata/invalid/`: define it in libvirt with
//! `virsh nwfilter-define --validate` (under a unique name), and require that nwf accepts exactly
//! what libvirt accepts; for accepted filters, read libvirt's `nwfilter-dumpxml` back with nwf
//! and require the same meaning. For the standard filters: libvirt's shipped definitions, as
//! dumped, must mean the same as nwf's.
//!
//! Without libvirt the test skips with a message; under `CI=true` a skip is a failure.

use nwf_compiler::check;
use nwf_compiler::diag::{Diagnostics, Severity};
use nwf_compiler::ir::Filter;
use nwf_compiler::library::{Library, Provider};
use std::path::{Path, PathBuf};
use std::process::Command;

const URI: &str = "qemu:///system";

fn virsh(args: &[&str]) -> Option<(bool, String)> {
    let out = Command::new("virsh")
        .arg("-c")
        .arg(URI)
        .args(args)
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

fn libvirt_available() -> bool {
    if let Some((true, _)) = virsh(&["nwfilter-list"]) {
        return true;
    }
    let why = "libvirt conformance: virsh cannot reach libvirtd (run scripts/libvirt-up as root)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; under CI=true this is a failure");
    }
    eprintln!("SKIPPED: {why}");
    false
}

/// Errors libvirt reports only when a binding is created, not when a filter is defined.
const BINDING_TIME: &[&str] = &["E0116", "E0117", "E0119", "E0120", "E0201"];

/// nwf's verdict on one file, checked like `nwf check` does.
struct Verdict {
    filter: Option<Filter>,
    /// Error codes libvirt would also report at definition time.
    errors: Vec<String>,
    /// Warning codes.
    warnings: Vec<String>,
}

fn nwf_check(path: &Path) -> Verdict {
    let mut d = Diagnostics::new();
    let mut lib = Library::with_stdlib(&mut d);
    let mut d = Diagnostics::new();
    let id = lib.add_file(path, Provider::File, &mut d);
    let filter = id.and_then(|id| lib.filters_in(id).next().cloned());
    if let Some(f) = &filter {
        check::check_filter(&lib, f, &mut d);
    }
    let codes = |sev: Severity| -> Vec<String> {
        d.items()
            .iter()
            .filter(|x| x.severity == sev)
            .map(|x| x.code.to_string())
            .filter(|c| !BINDING_TIME.contains(&c.as_str()))
            .collect()
    };
    Verdict {
        filter,
        errors: codes(Severity::Error),
        warnings: codes(Severity::Warning),
    }
}

fn nwf_read_text(text: &str) -> Verdict {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), text).unwrap();
    nwf_check(tmp.path())
}

/// A meaning comparable across libvirt's rewrite: no uuid, no name, and without the attributes
/// libvirt's parser drops while reading (nwf keeps them and warns: W0206, W0210).
fn meaning(f: &Filter) -> serde_json::Value {
    let mut m = f.meaning();
    m["uuid"] = serde_json::Value::Null;
    m["name"] = serde_json::Value::Null;
    if let Some(entries) = m["entries"].as_array_mut() {
        for e in entries {
            let Some(matches) = e.get_mut("rule").and_then(|r| r.get_mut("matches")) else {
                continue;
            };
            if matches.is_null() {
                continue;
            }
            let proto = matches["proto"].as_str().unwrap_or("").to_string();
            let attrs = matches["attrs"].as_array_mut().unwrap();
            let has =
                |attrs: &Vec<serde_json::Value>, n: &str| attrs.iter().any(|a| a["spec"] == n);
            if proto == "tcp-ipv6" {
                attrs.retain(|a| a["spec"] != "flags");
            }
            let proto_all = proto == "all" || proto == "all-ipv6";
            // libvirt drops ipset+ipsetflags here when reading, and does not write a lone
            // ipset back when saving (W0210, W0215).
            if !proto_all && has(attrs, "ipset") {
                attrs.retain(|a| a["spec"] != "ipset" && a["spec"] != "ipsetflags");
            }
        }
    }
    m
}

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "xml"));
    v.sort();
    v
}

/// The root `<filter>` element's `name` attribute: its value and the byte range of the value.
/// Found with an XML reader, so comments, processing instructions and DTDs before the root
/// (the corpus names its expected diagnostics in a leading comment) are never mistaken for it.
fn root_filter_name(text: &str) -> Option<(String, std::ops::Range<usize>)> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).ok()?;
    let root = doc.root_element();
    if root.tag_name().name() != "filter" {
        return None;
    }
    let attr = root.attribute_node("name")?;
    Some((attr.value().to_string(), attr.range_value()))
}

/// Gives the document's filter a unique name (and its self-references with it), so tests never
/// clash with filters already defined in libvirt. Returns the new name, or None when the
/// document has no root `<filter name=...>` (libvirt then refuses it).
fn rename(text: &str, n: usize) -> (String, Option<String>) {
    let Some((name, value)) = root_filter_name(text) else {
        return (text.to_string(), None);
    };
    if name.is_empty() || text[value.clone()] != *name {
        // An empty name, or one written with character references: libvirt refuses the
        // first, and the second is not in the corpus.
        return (text.to_string(), None);
    }
    let new = format!("nwfct-{n}");
    let mut out = text.to_string();
    out.replace_range(value, &new);
    // libvirt refuses a known UUID under another name: let it make a fresh one.
    while let (Some(a), Some(b)) = (out.find("<uuid>"), out.find("</uuid>")) {
        if b < a {
            break;
        }
        out.replace_range(a..b + "</uuid>".len(), "");
    }
    for q in ['\'', '"'] {
        out = out.replace(
            &format!("filter={q}{name}{q}"),
            &format!("filter={q}{new}{q}"),
        );
    }
    (out, Some(new))
}

/// Filters this test defined in libvirt; undefined on drop, also when the test panics, so the
/// host keeps only what it had.
#[derive(Default)]
struct Defined(Vec<String>);

impl Drop for Defined {
    fn drop(&mut self) {
        for name in self.0.drain(..) {
            if let Some((false, msg)) = virsh(&["nwfilter-undefine", &name]) {
                eprintln!("libvirt conformance: cleanup: cannot undefine {name}: {msg}");
            }
        }
    }
}

/// The names of the filters libvirt holds now.
fn defined_filters() -> Vec<String> {
    let (ok, out) = virsh(&["-q", "nwfilter-list"]).expect("virsh runs");
    assert!(ok, "virsh nwfilter-list: {out}");
    out.lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

#[test]
fn nwf_accepts_what_libvirt_accepts() {
    if !libvirt_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let before = defined_filters();
    let mut defined = Defined::default();
    let mut mismatches = Vec::new();
    let mut compared = 0;
    let all: Vec<PathBuf> = files("testdata/filters")
        .into_iter()
        .chain(files("testdata/invalid"))
        .collect();
    for (n, path) in all.iter().enumerate() {
        let raw = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let (bytes, new_name) = match std::str::from_utf8(&raw) {
            Ok(text) => {
                let (t, nn) = rename(text, n);
                (t.into_bytes(), nn)
            }
            Err(_) => (raw.clone(), None),
        };
        let file = tmp.path().join(format!("f{n}.xml"));
        std::fs::write(&file, &bytes).unwrap();
        let f = file.to_str().unwrap();
        // libvirt's schema, then its C parser alone (which silently drops what it ignores).
        let (schema_ok, schema_msg) =
            virsh(&["nwfilter-define", "--validate", f]).expect("virsh runs");
        let (c_ok, c_msg) = if schema_ok {
            (true, schema_msg.clone())
        } else {
            virsh(&["nwfilter-define", f]).expect("virsh runs")
        };
        let ours = nwf_check(&file);
        compared += 1;
        let last = |m: &str| m.trim().lines().last().unwrap_or("").to_string();
        let problem = if !c_ok && ours.errors.is_empty() {
            Some(format!(
                "libvirt rejects it ({}), nwf reports no error",
                last(&c_msg)
            ))
        } else if c_ok && !schema_ok && ours.errors.is_empty() && ours.warnings.is_empty() {
            Some(format!(
                "libvirt's schema rejects it ({}) and its parser silently accepts it, nwf says nothing",
                last(&schema_msg)
            ))
        } else if schema_ok && !ours.errors.is_empty() {
            Some(format!(
                "libvirt accepts it, nwf reports errors {:?}",
                ours.errors
            ))
        } else {
            None
        };
        if let Some(p) = problem {
            mismatches.push(format!("{name}: {p}"));
        }
        if c_ok {
            let Some(new_name) = new_name else {
                // Whatever libvirt defined is undefined again by the guard.
                let new: Vec<String> = defined_filters()
                    .into_iter()
                    .filter(|f| !before.contains(f) && !defined.0.contains(f))
                    .collect();
                defined.0.extend(new);
                mismatches.push(format!(
                    "{name}: libvirt accepted a document without a root <filter name=...>"
                ));
                continue;
            };
            defined.0.push(new_name.clone());
            let (ok, dumped) = virsh(&["nwfilter-dumpxml", &new_name]).unwrap();
            assert!(ok, "dumpxml {new_name}: {dumped}");
            drop(std::mem::take(&mut defined));
            let back = nwf_read_text(&dumped);
            if !ours.errors.is_empty() {
                // nwf rejected the original; the comparison above already covered it.
            } else if !back.errors.is_empty() {
                mismatches.push(format!(
                    "{name}: nwf rejects libvirt's own dump ({:?})\n{dumped}",
                    back.errors
                ));
            } else if let (Some(a), Some(b), true) =
                (&ours.filter, &back.filter, ours.errors.is_empty())
            {
                if meaning(a) != meaning(b) {
                    mismatches.push(format!(
                        "{name}: libvirt read a different meaning\n  nwf:     {}\n  libvirt: {}",
                        meaning(a),
                        meaning(b)
                    ));
                }
            }
        }
    }
    drop(defined);
    let left: Vec<String> = defined_filters()
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    assert!(left.is_empty(), "filters left defined in libvirt: {left:?}");
    eprintln!(
        "libvirt conformance: compared {compared} files, {} mismatches",
        mismatches.len()
    );
    assert!(
        compared >= 90,
        "expected the test corpus, compared only {compared}"
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn standard_filters_mean_what_libvirt_ships() {
    if !libvirt_available() {
        return;
    }
    let mut problems = Vec::new();
    for (name, text) in nwf_compiler::stdlib::STDLIB {
        let ours = nwf_read_text(text);
        assert!(ours.errors.is_empty(), "{name}: {:?}", ours.errors);
        let (ok, dumped) = virsh(&["nwfilter-dumpxml", name]).unwrap();
        if !ok {
            problems.push(format!("{name}: libvirt has no such filter: {dumped}"));
            continue;
        }
        let theirs = nwf_read_text(&dumped);
        let (a, b) = (
            meaning(&ours.filter.unwrap()),
            meaning(&theirs.filter.unwrap()),
        );
        if a != b {
            problems.push(format!("{name} differs\n  nwf:     {a}\n  libvirt: {b}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
