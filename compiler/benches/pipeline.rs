//! Parse + check + instantiate a generated tree of 10,000 rules (100 filters of 100 rules,
//! referenced from one root filter), the front end's whole job for one port.

use criterion::{criterion_group, criterion_main, Criterion};
use nwf_compiler::binding::read_binding;
use nwf_compiler::check::check_filter;
use nwf_compiler::diag::Diagnostics;
use nwf_compiler::instantiate::instantiate;
use nwf_compiler::library::{Library, Provider};
use nwf_compiler::source::Origin;
use std::fmt::Write;

const FILTERS: usize = 100;
const RULES: usize = 100;

/// One leaf filter: a mix of ethernet- and IP-layer rules with variables and priorities.
fn leaf(i: usize) -> String {
    let chain = ["root", "ipv4-a", "arp-b", "mac-c"][i % 4];
    let mut s = format!("<filter name='leaf-{i}' chain='{chain}'>\n");
    for r in 0..RULES {
        let prio = (r * 7 + i) % 1000;
        let dir = ["in", "out", "inout"][r % 3];
        let action = ["accept", "drop", "return"][r % 3];
        let body = match (chain, r % 5) {
            ("arp-b", _) => {
                format!("<arp opcode='Request' arpsrcipaddr='10.{i}.{r}.0' arpsrcipmask='24'/>")
            }
            ("mac-c", _) => format!(
                "<mac srcmacaddr='52:54:00:00:{:02x}:{:02x}' protocolid='ipv4'/>",
                i % 256,
                r % 256
            ),
            ("ipv4-a", _) => format!(
                "<ip srcipaddr='$IP' protocol='udp' dstportstart='{}'/>",
                1000 + r
            ),
            (_, 0) => format!(
                "<tcp dstipaddr='10.{i}.{r}.1' dstportstart='{}' dstportend='{}'/>",
                r + 1,
                r + 10
            ),
            (_, 1) => format!("<udp srcipaddr='$IP' dstportstart='{}'/>", 2000 + r),
            (_, 2) => "<icmp type='8'/>".to_string(),
            (_, 3) => format!("<all-ipv6 srcipaddr='fd00::{r:x}' srcipmask='64'/>"),
            _ => format!(
                "<tcp-ipv6 dstportstart='{}' state='NEW,ESTABLISHED'/>",
                3000 + r
            ),
        };
        let _ = writeln!(
            s,
            "  <rule action='{action}' direction='{dir}' priority='{prio}'>{body}</rule>"
        );
    }
    s.push_str("</filter>\n");
    s
}

fn root() -> String {
    let mut s = String::from("<filter name='bench-root'>\n");
    for i in 0..FILTERS {
        let _ = writeln!(
            s,
            "  <filterref filter='leaf-{i}'><parameter name='IP' value='192.0.2.{}'/></filterref>",
            i % 250
        );
    }
    s.push_str("</filter>\n");
    s
}

const BINDING: &str = "<filterbinding><owner><name>b</name><uuid>8e8ba8c4-0e8b-4d2b-9a47-6b1f2b3c4d5e</uuid></owner>\
<portdev name='vnet0'/><mac address='52:54:00:12:34:56'/><filterref filter='bench-root'/></filterbinding>";

fn pipeline(texts: &[(String, String)]) -> usize {
    let mut d = Diagnostics::new();
    let mut lib = Library::with_stdlib(&mut d);
    for (name, text) in texts {
        lib.add_text(name, text, Provider::File, &mut d);
    }
    let filters: Vec<_> = lib.iter().map(|l| l.filter.clone()).collect();
    for f in &filters {
        check_filter(&lib, f, &mut d);
    }
    let id = lib.sources.add(
        "binding.xml",
        Origin::Virtual("binding".into()),
        BINDING.to_string(),
    );
    let b = read_binding(&lib.sources, id, &mut d).expect("binding");
    let p = instantiate(&lib, &b, &[], &mut d).expect("program");
    assert!(
        !d.has_errors(),
        "{:?}",
        d.items()
            .iter()
            .find(|x| x.severity == nwf_compiler::diag::Severity::Error)
    );
    p.rule_count()
}

fn bench(c: &mut Criterion) {
    let mut texts: Vec<(String, String)> = (0..FILTERS)
        .map(|i| (format!("leaf-{i}.xml"), leaf(i)))
        .collect();
    texts.push(("bench-root.xml".into(), root()));
    let rules = pipeline(&texts);
    eprintln!("{} source rules -> {rules} program rules", FILTERS * RULES);
    let mut g = c.benchmark_group("front-end");
    g.sample_size(20);
    g.bench_function("parse+check+instantiate 10k rules", |b| {
        b.iter(|| pipeline(&texts))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
