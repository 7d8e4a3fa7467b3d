//! Input libvirt's parser ignores (W0104, W0105, W0106) is read as libvirt reads it: the filter
//! means what it means without that input (what `virsh nwfilter-dumpxml` shows after
//! `nwfilter-define`), in XML and in the DSL, and the warning says what dropping it does.

#[allow(dead_code)]
mod common;
use common::{read_dsl, read_xml};

use nwf_compiler::diag::Diagnostics;

fn codes(d: &Diagnostics) -> Vec<&'static str> {
    d.items().iter().map(|d| d.code).collect()
}

/// Reads `with` (holding ignored input) and `without` (libvirt's dump of it); they must mean the
/// same, `with` must give exactly `expect` and `without` nothing.
fn same_as_libvirt(
    read: fn(&str) -> (Option<nwf_compiler::ir::Filter>, Diagnostics),
    with: &str,
    without: &str,
    expect: &[&str],
) -> Diagnostics {
    let (a, da) = read(with);
    let (b, db) = read(without);
    assert_eq!(codes(&da), expect, "{with}");
    assert!(db.items().is_empty(), "{without}: {:?}", db.items());
    assert_eq!(a.unwrap().meaning(), b.unwrap().meaning(), "{with}");
    da
}

fn xml(body: &str) -> String {
    format!("<filter name='f'>{body}</filter>")
}

#[test]
fn xml_reads_what_libvirt_defines() {
    let rule = |inner: &str| {
        xml(&format!(
            "<rule action='accept' direction='in'>{inner}</rule>"
        ))
    };
    for (with, without, expect) in [
        // Misspelt range end: a single port.
        (
            rule("<tcp dstportstart='22' dstporttend='24'/>"),
            rule("<tcp dstportstart='22'/>"),
            &["W0104"][..],
        ),
        // Valid on other elements only.
        (
            rule("<udp dstportstart='53' flags='SYN/SYN'/>"),
            rule("<udp dstportstart='53'/>"),
            &["W0104"],
        ),
        // An unknown protocol element: no protocol, every frame.
        (rule("<tpc dstportstart='22'/>"), rule(""), &["W0105"]),
        // An unknown element before or after the protocol element: the protocol counts.
        (
            rule("<foo/><tcp dstportstart='22'/>"),
            rule("<tcp dstportstart='22'/>"),
            &["W0105"],
        ),
        (
            rule("<tcp dstportstart='22'/><foo/>"),
            rule("<tcp dstportstart='22'/>"),
            &["W0105"],
        ),
        // An element inside a protocol element.
        (
            rule("<tcp><dstportstart>22</dstportstart></tcp>"),
            rule("<tcp/>"),
            &["W0105"],
        ),
        // Text.
        (rule("tcp 22"), rule(""), &["W0106"]),
        // Unknown attributes and elements of the structure.
        (
            xml("<rule action='drop' direction='in' protocol='tcp'/>"),
            xml("<rule action='drop' direction='in'/>"),
            &["W0104"],
        ),
        (
            xml("<rul action='drop' direction='in'/>"),
            xml(""),
            &["W0105"],
        ),
    ] {
        same_as_libvirt(read_xml, &with, &without, expect);
    }
    // The 2010 proposal's names on <arp>: the fix is today's name.
    let d = same_as_libvirt(
        read_xml,
        &xml("<rule action='drop' direction='out'><arp match='no' srcipaddr='$IP'/></rule>"),
        &xml("<rule action='drop' direction='out'><arp match='no'/></rule>"),
        &["W0104"],
    );
    assert_eq!(d.items()[0].fix.as_deref(), Some("arpsrcipaddr"));
}

#[test]
fn dsl_reads_the_same() {
    let f = |rule: &str| format!("filter f {{\n    {rule}\n}}\n");
    same_as_libvirt(
        read_dsl,
        &f("in accept tcp dstportstart 22 dstporttend 24"),
        &f("in accept tcp dstportstart 22"),
        &["W0104"],
    );
    same_as_libvirt(
        read_dsl,
        &f("in accept tpc dstportstart 22"),
        &f("in accept"),
        &["W0105"],
    );
    let d = same_as_libvirt(
        read_dsl,
        &f("out drop arp srcipaddr != $IP"),
        &f("out drop arp"),
        &["W0104"],
    );
    assert_eq!(d.items()[0].fix.as_deref(), Some("arpsrcipaddr"));
}

/// The warning says what dropping the attribute does: a test makes the rule match more; a
/// misspelt `match` or comment does not.
#[test]
fn the_note_says_what_dropping_it_does() {
    let first_note = |attr: &str| {
        let (_, d) = read_xml(&xml(&format!(
            "<rule action='drop' direction='in'><tcp dstportstart='22' {attr}='x'/></rule>"
        )));
        d.items()[0].notes[0].clone()
    };
    assert!(first_note("dstprot").contains("matches more than written"));
    assert!(first_note("srcipadr").contains("matches more than written"));
    assert!(first_note("flag").contains("matches more than written"));
    assert_eq!(first_note("mach"), "libvirt applies the rule without it");
    assert_eq!(first_note("coment"), "libvirt applies the rule without it");
    assert_eq!(first_note("zzzzzz"), "libvirt applies the rule without it");
}
