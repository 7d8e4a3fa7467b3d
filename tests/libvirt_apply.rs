//! What libvirt refuses to define or to apply, predicted by nwf.
//!
//! A matrix generated from the language table: every attribute of every protocol element with
//! boundary values (the type's smallest and largest value and one past it), with and without
//! `match='no'`, in each direction, one `<rule>` each. `testdata/libvirt-apply/outcomes` records
//! what libvirt 9.0 did with each (`ok`: bound to a real port; `define`: `nwfilter-define`
//! refused it; `apply`: defined, but `nwfilter-binding-create` failed). Every `cargo test`
//! replays the record against nwf: `nwf check` (with the binding-time checks of instantiation)
//! must report an error exactly for what libvirt refused. An attribute of the table without a
//! recorded entry fails the test.
//!
//! As root with libvirtd, `NWF_RECORD_APPLY=1` runs the matrix in libvirt and rewrites the
//! record: rules are defined and bound in batches on a veth port of its own, and a failing
//! batch is bisected down to the rules that fail.

mod common;

use common::*;
use nwf_compiler::driver;
use nwf_compiler::lang::{self, AttrSpec, Part, ProtoSpec, ValueType};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// One generated rule.
#[derive(Clone, Debug)]
struct Entry {
    /// `proto attr value match dir`: the key in the record.
    key: String,
    /// The `<rule>` element.
    rule: String,
}

/// Values at the boundaries of a type; None for attributes the matrix leaves out.
fn samples(ty: ValueType) -> Option<Vec<String>> {
    let v = |xs: &[&str]| Some(xs.iter().map(|s| s.to_string()).collect());
    match ty {
        ValueType::Mac => v(&["00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"]),
        ValueType::MacMask => v(&["00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"]),
        ValueType::Ipv4 => v(&["0.0.0.0", "255.255.255.255"]),
        ValueType::Ipv4Mask => v(&["0", "32", "33"]),
        ValueType::Ipv6 => v(&["::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]),
        ValueType::Ipv6Mask => v(&["0", "128", "129"]),
        ValueType::Number { min, max, .. } => {
            let mut xs = vec![min.to_string(), max.to_string()];
            if let Some(past) = max.checked_add(1) {
                xs.push(past.to_string());
            }
            Some(xs)
        }
        ValueType::EtherType { min } => Some(vec![
            format!("{min:#x}"),
            "0xffff".into(),
            format!("{:#x}", min - 1),
        ]),
        ValueType::IpProtocol => v(&["0", "255", "256"]),
        ValueType::ArpOpcode => v(&["0", "65535", "65536"]),
        ValueType::Bool => v(&["true", "false"]),
        ValueType::Comment => v(&["x"]),
        ValueType::States => v(&["NEW", "NONE"]),
        ValueType::TcpFlags => v(&["SYN/SYN", "ALL/NONE"]),
        // An ipset match needs the set to exist on the host at apply time: whether it applies
        // depends on the host, not on the filter.
        ValueType::IpsetName | ValueType::IpsetFlags => None,
    }
}

/// What an attribute needs beside it to mean anything: the address of a mask, the start of
/// an end, a port protocol on `<ip>`/`<ipv6>`.
fn companions(p: &ProtoSpec, a: &AttrSpec) -> String {
    let mut out = String::new();
    if matches!(a.part, Part::Mask | Part::End) {
        if let Some(base) = p
            .attrs
            .iter()
            .find(|b| b.field == a.field && b.part == Part::Value)
        {
            let v = samples(base.ty).expect("base attributes have samples");
            out.push_str(&format!(" {}='{}'", base.name, v[0]));
        }
    }
    let port = a.name.contains("port") && a.name != "port" && !a.name.starts_with("port-");
    if matches!(p.name, "ip" | "ipv6") && port {
        out.push_str(" protocol='tcp'");
    }
    out
}

/// The whole matrix, in a stable order.
fn matrix() -> Vec<Entry> {
    let mut v = Vec::new();
    for p in lang::PROTOCOLS {
        for a in p.attrs {
            let Some(values) = samples(a.ty) else {
                continue;
            };
            for value in values {
                for negated in [false, true] {
                    for dir in ["in", "out"] {
                        let m = if negated { " match='no'" } else { "" };
                        v.push(Entry {
                            key: format!(
                                "{} {} {} {} {dir}",
                                p.name,
                                a.name,
                                value,
                                if negated { "no" } else { "yes" }
                            ),
                            rule: format!(
                                "<rule action='drop' direction='{dir}'><{}{m} {}='{value}'{}/></rule>",
                                p.name,
                                a.name,
                                companions(p, a)
                            ),
                        });
                    }
                }
            }
        }
    }
    v
}

/// What libvirt did with one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Define,
    Apply,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Define => "define",
            Outcome::Apply => "apply",
        }
    }

    fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "ok" => Outcome::Ok,
            "define" => Outcome::Define,
            "apply" => Outcome::Apply,
            _ => return None,
        })
    }
}

fn record_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/libvirt-apply/outcomes")
}

fn read_record() -> BTreeMap<String, Outcome> {
    let text = fs::read_to_string(record_path()).expect("testdata/libvirt-apply/outcomes");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, o) = l
                .split_once(" => ")
                .unwrap_or_else(|| panic!("bad line `{l}`"));
            (
                k.to_string(),
                Outcome::parse(o.trim()).unwrap_or_else(|| panic!("bad outcome in `{l}`")),
            )
        })
        .collect()
}

fn filter_text(name: &str, rules: &[&Entry]) -> String {
    let body: String = rules.iter().map(|e| format!("  {}\n", e.rule)).collect();
    format!("<filter name='{name}'>\n{body}</filter>\n")
}

/// nwf's errors for one rule: what `nwf check` reports, and what instantiation for a port
/// reports (binding-time checks).
fn nwf_errors(e: &Entry) -> Vec<String> {
    use nwf_compiler::diag::Severity;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("m.xml"), filter_text("nwfa-m", &[e])).unwrap();
    let binding = dir.path().join("b.xml");
    fs::write(
        &binding,
        "<filterbinding><owner><name>m</name><uuid>8e8ba8c4-0e8b-4d2b-9a47-6b1f2b3c4d5e</uuid>\
         </owner><portdev name='vnet0'/><mac address='52:54:00:00:00:01'/>\
         <filterref filter='nwfa-m'/></filterbinding>",
    )
    .unwrap();
    let checked = driver::check_paths(&[], &[dir.path().join("m.xml")]);
    let shown = driver::show_binding(&[dir.path().to_path_buf()], &binding, &[]);
    let mut codes: Vec<String> = checked
        .diagnostics
        .items()
        .iter()
        .chain(shown.diagnostics.iter())
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{} {}", d.code, d.message))
        .collect();
    codes.dedup();
    codes
}

#[test]
fn nwf_predicts_what_libvirt_refuses() {
    if std::env::var_os("NWF_RECORD_APPLY").is_some() {
        record();
    }
    let record = read_record();
    let matrix = matrix();
    let mut problems = Vec::new();
    // Every attribute of the language table has entries (or is left out on purpose).
    for p in lang::PROTOCOLS {
        for a in p.attrs {
            let covered = matrix.iter().any(|e| {
                let mut w = e.key.split(' ');
                w.next() == Some(p.name) && w.next() == Some(a.name)
            });
            if !covered && samples(a.ty).is_some() {
                problems.push(format!("<{} {}> has no matrix entry", p.name, a.name));
            }
        }
    }
    for e in &matrix {
        let Some(&want) = record.get(&e.key) else {
            problems.push(format!(
                "`{}`: no recorded outcome (record with NWF_RECORD_APPLY=1 as root)",
                e.key
            ));
            continue;
        };
        let errors = nwf_errors(e);
        let refused = want != Outcome::Ok;
        let reported = !errors.is_empty();
        if refused != reported {
            problems.push(format!(
                "`{}` ({}): libvirt {}, nwf {}",
                e.key,
                e.rule,
                match want {
                    Outcome::Ok => "applies it".to_string(),
                    Outcome::Define => "refuses to define it".to_string(),
                    Outcome::Apply => "defines it but cannot apply it".to_string(),
                },
                if errors.is_empty() {
                    "reports no error".to_string()
                } else {
                    format!("reports {}", errors.join("; "))
                }
            ));
        }
    }
    for k in record.keys() {
        if !matrix.iter().any(|e| &e.key == k) {
            problems.push(format!("`{k}` is recorded but no longer generated"));
        }
    }
    eprintln!(
        "libvirt apply matrix: {} entries, {} problems",
        matrix.len(),
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Under root with libvirt: libvirt still does what was recorded. The rules recorded `ok` are
/// bound in large batches (a failing batch is bisected to name the rule), every refused rule on
/// its own.
#[test]
fn libvirt_still_does_what_was_recorded() {
    let missing = missing_prerequisites(&["ip", "virsh"], |m| {
        if virsh(&["nwfilter-list"]).is_err() {
            m.push("libvirtd reachable at qemu:///system (run scripts/libvirt-up)".into());
        }
    });
    if !may_run("libvirt apply matrix", &missing) || std::env::var_os("NWF_RECORD_APPLY").is_some()
    {
        return;
    }
    let record = read_record();
    let matrix = matrix();
    let dir = tempfile::tempdir().unwrap();
    let port = Port::new();
    let mut problems = Vec::new();
    let with = |o: Outcome| -> Vec<&Entry> {
        matrix
            .iter()
            .filter(|e| record.get(&e.key) == Some(&o))
            .collect()
    };
    for batch in with(Outcome::Ok).chunks(250) {
        for e in failing(batch, &mut |b| applies(b, &port, dir.path())) {
            problems.push(format!(
                "`{}` was recorded ok; libvirt refuses it now",
                e.key
            ));
        }
    }
    for e in with(Outcome::Define) {
        if define(&[e], dir.path()).is_ok() {
            let _ = virsh(&["nwfilter-undefine", "nwfa-batch"]);
            problems.push(format!("`{}`: libvirt defines it now", e.key));
        }
    }
    for e in with(Outcome::Apply) {
        if define(&[e], dir.path()).is_err() {
            problems.push(format!("`{}`: libvirt refuses to define it now", e.key));
        } else {
            let _ = virsh(&["nwfilter-undefine", "nwfa-batch"]);
            if applies(&[e], &port, dir.path()) {
                problems.push(format!("`{}`: libvirt applies it now", e.key));
            }
        }
    }
    drop(port);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Recording from libvirt (root)

/// A veth port of the recorder's own, and whatever was defined and bound on it; all undone on
/// drop.
struct Port {
    name: String,
    undo: Undo,
}

impl Port {
    fn new() -> Port {
        let name = format!("nwfa{}", std::process::id() % 100_000);
        let mut undo = Undo::default();
        let peer = format!("{name}p");
        undo.step(
            "ip",
            &["link", "add", &name, "type", "veth", "peer", "name", &peer],
            Some(&["link", "del", &name]),
        );
        undo.step("ip", &["link", "set", &name, "up"], None);
        Port { name, undo }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        let _ = virsh(&["nwfilter-binding-delete", &self.name]);
        let _ = virsh(&["nwfilter-undefine", "nwfa-batch"]);
        self.undo
            .run_all(|_, e| eprintln!("libvirt apply: cleanup: {e}"));
    }
}

/// Defines `rules` as filter `nwfa-batch`; Err with libvirt's message if it refuses.
fn define(rules: &[&Entry], dir: &Path) -> Result<(), String> {
    let f = dir.join("batch.xml");
    fs::write(&f, filter_text("nwfa-batch", rules)).unwrap();
    virsh(&["nwfilter-define", f.to_str().unwrap()]).map(|_| ())
}

/// Defines and binds `rules` on the port; Ok if libvirt applied them. Leaves nothing behind.
fn applies(rules: &[&Entry], port: &Port, dir: &Path) -> bool {
    if define(rules, dir).is_err() {
        return false;
    }
    let b = dir.join("binding.xml");
    fs::write(
        &b,
        format!(
            "<filterbinding><owner><name>nwfa</name><uuid>6e776b00-0000-4000-8000-00000000a001</uuid>\
             </owner><portdev name='{}'/><mac address='52:54:00:00:00:01'/>\
             <filterref filter='nwfa-batch'/></filterbinding>",
            port.name
        ),
    )
    .unwrap();
    let ok = virsh(&["nwfilter-binding-create", b.to_str().unwrap()]).is_ok();
    if ok {
        let _ = virsh(&["nwfilter-binding-delete", &port.name]);
    }
    let _ = virsh(&["nwfilter-undefine", "nwfa-batch"]);
    ok
}

/// The entries of `batch` that fail `test`, by bisection; a single failing entry is tried twice
/// (ebtables-nft fails now and then on long lists).
fn failing<'e>(batch: &[&'e Entry], test: &mut dyn FnMut(&[&Entry]) -> bool) -> Vec<&'e Entry> {
    if test(batch) {
        return Vec::new();
    }
    if batch.len() == 1 {
        return if test(batch) {
            Vec::new()
        } else {
            batch.to_vec()
        };
    }
    let (a, b) = batch.split_at(batch.len() / 2);
    let mut v = failing(a, test);
    v.extend(failing(b, test));
    v
}

fn record() {
    let missing = missing_prerequisites(&["ip", "virsh"], |m| {
        if virsh(&["nwfilter-list"]).is_err() {
            m.push("libvirtd reachable at qemu:///system".into());
        }
    });
    assert!(missing.is_empty(), "recording needs {}", missing.join(", "));
    let dir = tempfile::tempdir().unwrap();
    let port = Port::new();
    let matrix = matrix();
    let mut outcome: BTreeMap<String, Outcome> = BTreeMap::new();
    // Define-time: per attribute, then bisected.
    let mut groups: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    for e in &matrix {
        let g: Vec<&str> = e.key.split(' ').take(2).collect();
        groups.entry(g.join(" ")).or_default().push(e);
    }
    let mut definable = Vec::new();
    for (g, es) in &groups {
        let bad = failing(es, &mut |b| {
            let ok = define(b, dir.path()).is_ok();
            let _ = virsh(&["nwfilter-undefine", "nwfa-batch"]);
            ok
        });
        for e in es {
            if bad.iter().any(|b| b.key == e.key) {
                outcome.insert(e.key.clone(), Outcome::Define);
            } else {
                definable.push(*e);
            }
        }
        eprintln!("  define {g}: {} of {} refused", bad.len(), es.len());
    }
    // Apply-time: batches of one attribute's definable rules, bisected.
    let mut by_attr: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    for e in definable {
        let g: Vec<&str> = e.key.split(' ').take(2).collect();
        by_attr.entry(g.join(" ")).or_default().push(e);
    }
    for (g, es) in &by_attr {
        let bad = failing(es, &mut |b| applies(b, &port, dir.path()));
        for e in es {
            let o = if bad.iter().any(|b| b.key == e.key) {
                Outcome::Apply
            } else {
                Outcome::Ok
            };
            outcome.insert(e.key.clone(), o);
        }
        eprintln!("  apply {g}: {} of {} refused", bad.len(), es.len());
    }
    let mut text = String::from(
        "# What libvirt 9.0 did with each rule of tests/libvirt_apply.rs's matrix (recorded with\n\
         # NWF_RECORD_APPLY=1): ok = bound to a real port, define = nwfilter-define refused it,\n\
         # apply = defined, but nwfilter-binding-create failed.\n",
    );
    for e in &matrix {
        text.push_str(&format!("{} => {}\n", e.key, outcome[&e.key].name()));
    }
    fs::create_dir_all(record_path().parent().unwrap()).unwrap();
    fs::write(record_path(), text).unwrap();
}
