//! Instantiation counts checked against libvirt: list variables written with blanks inside
//! their references (`$A[ 0]`, `$B[  @0 ] `) expand exactly as libvirt expands them.

use nwf_compiler::binding::read_binding;
use nwf_compiler::diag::{self, Diagnostics};
use nwf_compiler::instantiate::instantiate;
use nwf_compiler::library::{Library, Provider};
use nwf_compiler::program::{Program, Way};
use nwf_compiler::source::Origin;
use std::collections::BTreeMap;

/// Instantiates `binding` over the standard library plus `filters` (name, text); panics on any
/// error.
fn program(filters: &[(&str, &str)], binding: &str) -> Program {
    let mut d = Diagnostics::new();
    let mut lib = Library::with_stdlib(&mut d);
    for (name, text) in filters {
        lib.add_text(name, text, Provider::File, &mut d);
    }
    let id = lib.sources.add(
        "binding.xml",
        Origin::Virtual("binding".into()),
        binding.to_string(),
    );
    let b = read_binding(&lib.sources, id, &mut d).expect("binding");
    let p = instantiate(&lib, &b, &[], &mut d);
    assert!(
        !d.has_errors(),
        "{}",
        diag::render(&lib.sources, d.items(), false)
    );
    p.expect("program")
}

/// IP-layer rules per way, and per source line of their `<rule>`.
fn ip_counts(p: &Program) -> [(usize, BTreeMap<usize, usize>); 2] {
    Way::BOTH.map(|w| {
        let mut per_rule = BTreeMap::new();
        for r in p.ip(w) {
            *per_rule.entry(r.origin.location.line).or_insert(0) += 1;
        }
        (p.ip(w).len(), per_rule)
    })
}

fn binding(filter: &str, params: &[(&str, &str)]) -> String {
    let params: String = params
        .iter()
        .map(|(n, v)| format!("<parameter name='{n}' value='{v}'/>"))
        .collect();
    format!(
        "<filterbinding><owner><name>vm</name><uuid>2f6d8a4c-1b3e-4c5d-9e7f-0a1b2c3d4e5f</uuid></owner>\
         <portdev name='vnet0'/><mac address='52:54:00:10:20:30'/>\
         <filterref filter='{filter}'>{params}</filterref></filterbinding>"
    )
}

/// The shape of libvirt's iterator test (`iter3`, with the variable values its test harness
/// sets: A = 1.1.1.1, 2.2.2.2, 3.3.3.3, 3.3.3.3; B = 80, 90, 80, 80; C = 1080, 1090, 1100, 1110),
/// written here with blanks in other places: libvirt's expected output has 5 rules in each of
/// its IP chains (2 + 2 + 1): an element access is one value, an iterator skips a value that
/// repeats an earlier one. This filter with these values gave 5 rules in each of FI, FO and HI
/// in libvirt 9.0 too (checked with `virsh nwfilter-binding-create` and `iptables -S`).
#[test]
fn blanks_in_references_expand_like_libvirt() {
    let filter = "<filter name='blanks'>
  <rule action='accept' direction='out'>
    <tcp srcipaddr='$A[0 ]' srcportstart='$B[ @0]  '/>
  </rule>
  <rule action='accept' direction='out'>
    <udp srcipaddr='$A[ 1]' srcportstart='$B[@2 ]'/>
  </rule>
  <rule action='accept' direction='out'>
    <sctp srcipaddr='$A[  1  ]' srcportstart='$B[ 2] ' dstportstart='$C[2  ]'/>
  </rule>
</filter>";
    let params = [
        ("A", "1.1.1.1"),
        ("A", "2.2.2.2"),
        ("A", "3.3.3.3"),
        ("A", "3.3.3.3"),
        ("B", "80"),
        ("B", "90"),
        ("B", "80"),
        ("B", "80"),
        ("C", "1080"),
        ("C", "1090"),
        ("C", "1100"),
        ("C", "1110"),
    ];
    let p = program(&[("blanks.xml", filter)], &binding("blanks", &params));
    for (total, per_rule) in ip_counts(&p) {
        assert_eq!(total, 5);
        assert_eq!(per_rule.into_values().collect::<Vec<_>>(), [2, 2, 1]);
    }
}

/// `testdata/filters/var-blanks.xml` with its binding: libvirt 9.0 installed 8 rules in each of
/// FI, FO and HI (2 + 2 + 1 + 3) for this port (checked with `virsh nwfilter-binding-create`
/// and `iptables -S`).
#[test]
fn var_blanks_example_expands_like_libvirt() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let read = |p: &str| std::fs::read_to_string(format!("{root}/{p}")).unwrap();
    let filter = read("testdata/filters/var-blanks.xml");
    let binding = read("testdata/cases/var-blanks-binding.xml");
    let p = program(&[("var-blanks.xml", &filter)], &binding);
    for (total, per_rule) in ip_counts(&p) {
        assert_eq!(total, 8);
        assert_eq!(per_rule.into_values().collect::<Vec<_>>(), [2, 2, 1, 3]);
    }
}
