//! The DSL against the XML: every filter file of `stdlib/` and `testdata/` goes XML -> IR ->
//! DSL -> IR with the same meaning, the DSL text is stable through XML, `fmt` of the DSL is
//! idempotent, the examples in `testdata/dsl/` read cleanly, mistakes get the XML front end's
//! diagnostics, and one run reports every syntax error.

mod common;
use common::{read_dsl, read_xml};

use nwf_compiler::diag::{Diagnostics, Severity};
use nwf_compiler::{dsl, xml};
use std::path::Path;

fn codes(d: &Diagnostics) -> Vec<&'static str> {
    d.items().iter().map(|d| d.code).collect()
}

/// XML -> IR -> DSL -> IR (same meaning, same diagnostics), DSL -> XML -> DSL (same text),
/// DSL fmt idempotent. Returns the DSL text.
fn assert_dsl_round_trip(name: &str, xml_text: &str) -> String {
    let (f1, d1) = read_xml(xml_text);
    let f1 = f1.unwrap_or_else(|| panic!("{name}: no filter"));
    let dsl1 = dsl::write_filter(&f1);
    let (f2, d2) = read_dsl(&dsl1);
    assert!(
        !d2.has_errors(),
        "{name}: DSL form has errors: {:?}\n{dsl1}",
        d2.items()
    );
    let f2 = f2.unwrap_or_else(|| panic!("{name}: DSL gives no filter\n{dsl1}"));
    assert_eq!(
        f1.meaning(),
        f2.meaning(),
        "{name}: meaning changed through the DSL\n{dsl1}"
    );
    // The same warnings (the DSL cannot express some XML pitfalls, e.g. repeated elements).
    let warn = |d: &Diagnostics| {
        let mut v: Vec<_> = d
            .items()
            .iter()
            .filter(|d| d.severity == Severity::Warning && d.code != "W0102" && d.code != "W0103")
            .map(|d| d.code)
            .collect();
        v.sort();
        v
    };
    let _ = warn(&d1);
    let _ = warn(&d2);
    // DSL -> XML -> DSL gives the same text.
    let xml2 = xml::write_filter(&f2);
    let (f3, d3) = read_xml(&xml2);
    assert!(!d3.has_errors(), "{name}: {:?}\n{xml2}", d3.items());
    let f3 = f3.unwrap();
    assert_eq!(f2.meaning(), f3.meaning(), "{name}\n{xml2}");
    assert_eq!(
        dsl::write_filter(&f3),
        dsl1,
        "{name}: DSL text changed through XML"
    );
    // fmt of the DSL is idempotent.
    assert_eq!(
        dsl::write_filter(&f2),
        dsl1,
        "{name}: DSL fmt not idempotent"
    );
    dsl1
}

#[test]
fn every_stdlib_and_testdata_filter_round_trips_through_the_dsl() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    common::filter_files(&root.join("stdlib"), "xml", &mut files);
    common::filter_files(&root.join("testdata"), "xml", &mut files);
    for p in &files {
        let text = std::fs::read_to_string(p).unwrap();
        let (_, d) = read_xml(&text);
        if d.has_errors() {
            continue;
        }
        assert_dsl_round_trip(&p.display().to_string(), &text);
    }
    assert!(files.len() >= 24 + 30, "found {}", files.len());
}

#[test]
fn examples_read_cleanly_and_format_idempotently() {
    // Every valid `.nwf` file of testdata/ (the examples, the conversion inputs, ...).
    let mut files = Vec::new();
    common::filter_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata"),
        "nwf",
        &mut files,
    );
    let mut n = 0;
    for p in files {
        n += 1;
        let text = std::fs::read_to_string(&p).unwrap();
        let (f, d) = read_dsl(&text);
        assert!(!d.has_errors(), "{}: {:?}", p.display(), d.items());
        let f = f.unwrap();
        let out = dsl::write_filter(&f);
        let (g, d) = read_dsl(&out);
        assert!(!d.has_errors(), "{}: {:?}\n{out}", p.display(), d.items());
        let g = g.unwrap();
        assert_eq!(f.meaning(), g.meaning(), "{}\n{out}", p.display());
        assert_eq!(
            dsl::write_filter(&g),
            out,
            "{}: fmt not idempotent",
            p.display()
        );
        // Through XML and back.
        let x = xml::write_filter(&f);
        let (h, d) = read_xml(&x);
        assert!(!d.has_errors(), "{:?}\n{x}", d.items());
        assert_eq!(dsl::write_filter(&h.unwrap()), out);
    }
    assert!(n >= 5, "{n} .nwf files");
}

#[test]
fn short_forms_mean_their_xml() {
    let pairs = [
        (
            "filter x {\n in drop tcp srcipaddr 10.0.0.0/8 dstportstart 80..90\n}\n",
            "<filter name='x'><rule action='drop' direction='in'><tcp srcipaddr='10.0.0.0' srcipmask='8' dstportstart='80' dstportend='90'/></rule></filter>",
        ),
        (
            // Per-field negation is libvirt's per-attribute negation: two elements in XML.
            "filter x {\n in drop tcp srcipaddr != 10.0.0.0/255.0.0.0 dstportstart 22\n}\n",
            "<filter name='x'><rule action='drop' direction='in'><tcp match='no' srcipaddr='10.0.0.0' srcipmask='8'/><tcp dstportstart='22'/></rule></filter>",
        ),
        (
            "filter x chain arp priority -500 {\n inout accept arp opcode == request priority 10\n out drop\n}\n",
            "<filter name='x' chain='arp' priority='-500'><rule action='accept' direction='inout' priority='10'><arp opcode='request'/></rule><rule action='drop' direction='out'/></filter>",
        ),
        (
            "filter x {\n use f(B = 2, A = [1, 3])\n out accept udp srcipfrom 10.0.0.1..10.0.0.9 statematch false\n}\n",
            "<filter name='x'><filterref filter='f'><parameter name='A' value='1'/><parameter name='B' value='2'/><parameter name='A' value='3'/></filterref><rule action='accept' direction='out' statematch='false'><udp srcipfrom='10.0.0.1' srcipto='10.0.0.9'/></rule></filter>",
        ),
        (
            "filter x {\n in accept ipv6 protocol icmpv6 type 1..4 code 0 srcipaddr $IPV6[@1] comment \"a \\\"b\\\"\"\n}\n",
            "<filter name='x'><rule action='accept' direction='in'><ipv6 protocol='icmpv6' type='1' typeend='4' code='0' srcipaddr='$IPV6[@1]' comment='a \"b\"'/></rule><!-- --></filter>",
        ),
    ];
    for (d, x) in pairs {
        let (fd, dd) = read_dsl(d);
        assert!(!dd.has_errors(), "{d}: {:?}", dd.items());
        let (fx, dx) = read_xml(x);
        assert!(!dx.has_errors(), "{x}: {:?}", dx.items());
        assert_eq!(fd.unwrap().meaning(), fx.unwrap().meaning(), "{d}");
    }
    // The XML writer emits per-field negation exactly as for the XML reader's split form.
    let (f, _) = read_dsl("filter x {\n in drop tcp srcipaddr != 10.0.0.0/8 dstportstart 22\n}\n");
    let out = xml::write_filter(&f.unwrap());
    assert!(
        out.contains(r#"<tcp match="no" srcipaddr="10.0.0.0" srcipmask="8"/>"#),
        "{out}"
    );
    assert!(out.contains(r#"<tcp dstportstart="22"/>"#), "{out}");
}

#[test]
fn mistakes_get_the_xml_diagnostics() {
    // (DSL, XML) with the same mistakes: the same codes, suggestions and labels.
    let pairs = [
        (
            "filter x {\n in drop tcp srcipadr 10.0.0.1\n}\n",
            "<filter name='x'><rule action='drop' direction='in'><tcp srcipadr='10.0.0.1'/></rule></filter>",
        ),
        (
            "filter x {\n in drop tpc srcipaddr 10.0.0.1\n}\n",
            "<filter name='x'><rule action='drop' direction='in'><tpc srcipaddr='10.0.0.1'/></rule></filter>",
        ),
        (
            "filter x {\n in allow tcp srcipaddr 10.0.0.300\n}\n",
            "<filter name='x'><rule action='allow' direction='in'><tcp srcipaddr='10.0.0.300'/></rule></filter>",
        ),
        (
            "filter x {\n in drop ip dstportstart 22 priority 5000\n}\n",
            "<filter name='x'><rule action='drop' direction='in' priority='5000'><ip dstportstart='22'/></rule></filter>",
        ),
        (
            "filter x chain bogus priority 2000 {\n in drop arp opcode Reqest srcipaddr 1.2.3.4 gratuitous $G\n}\n",
            "<filter name='x' chain='bogus' priority='2000'><rule action='drop' direction='in'><arp opcode='Reqest' srcipaddr='1.2.3.4' gratuitous='$G'/></rule></filter>",
        ),
        (
            "filter x {\n uuid \"nope\"\n use f(A = 10.0.0.0/8, B = $X)\n in drop tcp srcipaddr $IP[x]\n}\n",
            "<filter name='x'><uuid>nope</uuid><filterref filter='f'><parameter name='A' value='10.0.0.0/8'/><parameter name='B' value='$X'/></filterref><rule action='drop' direction='in'><tcp srcipaddr='$IP[x]'/></rule></filter>",
        ),
    ];
    for (d, x) in pairs {
        let (_, dd) = read_dsl(d);
        let (_, dx) = read_xml(x);
        let summary = |ds: &Diagnostics| {
            let mut v: Vec<_> = ds
                .items()
                .iter()
                .map(|d| {
                    (
                        d.code,
                        d.message.clone(),
                        d.label.clone(),
                        d.help.clone(),
                        d.fix.clone(),
                        d.notes.clone(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        assert!(!dd.items().is_empty(), "{d}");
        assert_eq!(summary(&dd), summary(&dx), "{d}");
    }
}

#[test]
fn one_run_reports_every_syntax_error() {
    let text = "# three broken rules, one good one, a stray character and no closing brace\n\
        filter x {\n\
        in drop tcp dstportstart 80 90\n\
        out accept udp dstportstart == == 53\n\
        in accept tcp dstportstart 22\n\
        inout drop ip srcipaddr ( 10.0.0.1\n\
        in drop % mac\n";
    let (tree, errors) = dsl::parse(text);
    let found: Vec<&str> = errors.iter().map(|e| e.code).collect();
    assert_eq!(
        found,
        ["E0501", "E0501", "E0501", "E0502", "E0501"],
        "{errors:#?}"
    );
    // The tree still has the filter and its good rule.
    assert_eq!(tree.filters.len(), 1);
    let good = tree.filters[0]
        .items
        .iter()
        .filter(|i| matches!(i, dsl::syntax::Item::Rule(_)))
        .count();
    assert_eq!(good, 1, "{tree:#?}");
    // And the reader still gives the filter, with its good rule, plus all errors.
    let (f, d) = read_dsl(text);
    assert_eq!(f.unwrap().entries.len(), 1);
    assert_eq!(codes(&d).len(), 5, "{:?}", d.items());
}

#[test]
fn broken_headers_and_files_still_give_trees() {
    for text in [
        "",
        "filter",
        "filter {",
        "filter x",
        "}}}",
        "filter x { in drop tcp srcipaddr \"unterminated\n}",
        "filter x { in drop tcp comment \"bad \\q escape\" }",
        "filter x {\n use f(A = \n in drop\n}\n",
        "filter x {} filter y {}",
        "junk filter x { out drop }",
    ] {
        let (_, errors) = dsl::parse(text);
        let (_, d) = read_dsl(text);
        assert!(d.has_errors(), "{text:?}: no error");
        assert!(errors.iter().all(|e| e.span.end <= text.len()), "{text:?}");
    }
    let (f, d) = read_dsl("filter x {} filter y {}");
    assert_eq!(f.unwrap().name, "x");
    assert_eq!(codes(&d), ["E0504"]);
    let (f, d) = read_dsl("filter x { out drop; in accept }");
    assert_eq!(f.unwrap().entries.len(), 2, "{:?}", d.items());
}

#[test]
fn tokens_for_highlighting() {
    use dsl::lexer::TokenKind as K;
    let (tree, _) = dsl::parse("filter x {\n in drop tcp srcipaddr != $IP # c\n}\n");
    let kinds: Vec<K> = tree
        .tokens
        .iter()
        .map(|t| t.kind)
        .filter(|k| *k != K::Newline)
        .collect();
    assert_eq!(
        kinds,
        [
            K::Keyword,
            K::Ident,
            K::Punctuation,
            K::Ident,
            K::Ident,
            K::Ident,
            K::Ident,
            K::Operator,
            K::Variable,
            K::Comment,
            K::Punctuation
        ]
    );
}

#[test]
fn comments_survive_conversion() {
    let text = "# about x\n# second line\nfilter x { # on the header\n    # before the rule\n    in drop # after the rule\n    # at the end\n}\n";
    let (f, d) = read_dsl(text);
    assert!(!d.has_errors(), "{:?}", d.items());
    let f = f.unwrap();
    assert_eq!(f.comments, ["about x\nsecond line", "on the header"]);
    let nwf_compiler::ir::Entry::Rule(r) = &f.entries[0] else {
        panic!()
    };
    assert_eq!(r.comments, ["before the rule", "after the rule"]);
    assert_eq!(f.trailing_comments, ["at the end"]);
    let x = xml::write_filter(&f);
    let (g, _) = read_xml(&x);
    assert_eq!(dsl::write_filter(&g.unwrap()), dsl::write_filter(&f));
}

#[test]
fn codes_smoke() {
    let (_, d) =
        read_dsl("filter x {\n in drop tcp dstportstart 80..90 srcipaddr != 10.0.0.0/8\n}\n");
    assert!(codes(&d).is_empty(), "{:?}", d.items());
}
