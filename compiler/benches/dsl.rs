//! Parse + check of one 10,000-rule `.nwf` file (and, for comparison, the same filter as XML).

use criterion::{criterion_group, criterion_main, Criterion};
use nwf_compiler::check::check_filter;
use nwf_compiler::diag::Diagnostics;
use nwf_compiler::library::{Library, Provider};
use nwf_compiler::source::{Origin, SourceMap};
use std::fmt::Write;

const RULES: usize = 10_000;

/// One filter with every kind of rule the front end reads: layers, variables, masks, ranges,
/// states, negations, priorities.
fn xml_filter() -> String {
    let mut s = String::from("<filter name='big' chain='root'>\n");
    for r in 0..RULES {
        let prio = (r * 7) % 1000;
        let dir = ["in", "out", "inout"][r % 3];
        let action = ["accept", "drop", "return"][r % 3];
        let (a, b) = (r / 256 % 256, r % 256);
        let body = match r % 8 {
            0 => format!(
                "<tcp dstipaddr='10.{a}.{b}.1' dstportstart='{}' dstportend='{}'/>",
                r % 60000 + 1,
                r % 60000 + 10
            ),
            1 => format!("<udp srcipaddr='$IP' dstportstart='{}'/>", r % 60000 + 1),
            2 => "<icmp type='8' state='NEW,ESTABLISHED'/>".to_string(),
            3 => format!("<all-ipv6 srcipaddr='fd00::{r:x}' srcipmask='64'/>"),
            4 => format!("<arp opcode='Request' arpsrcipaddr='10.{a}.{b}.0' arpsrcipmask='24'/>"),
            5 => format!("<mac srcmacaddr='52:54:00:00:{a:02x}:{b:02x}' protocolid='ipv4'/>"),
            6 => format!("<ip match='no' srcipaddr='192.0.{a}.{b}' protocol='udp'/>"),
            _ => format!(
                "<tcp-ipv6 dstportstart='{}' flags='SYN,ACK/SYN'/>",
                r % 60000 + 1
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

fn parse_and_check(name: &str, text: &str) -> usize {
    let mut d = Diagnostics::new();
    let mut lib = Library::new();
    lib.add_text(name, text, Provider::File, &mut d);
    let filters: Vec<_> = lib.iter().map(|l| l.filter.clone()).collect();
    for f in &filters {
        check_filter(&lib, f, &mut d);
    }
    assert!(!d.has_errors(), "{:?}", d.items().first());
    filters.iter().map(|f| f.rules().count()).sum()
}

fn bench(c: &mut Criterion) {
    let xml = xml_filter();
    let mut sources = SourceMap::new();
    let id = sources.add("big.xml", Origin::Virtual("big".into()), xml.clone());
    let f = nwf_compiler::xml::read_filter(&sources, id, &mut Diagnostics::new()).expect("reads");
    let dsl = nwf_compiler::dsl::write_filter(&f);
    assert_eq!(parse_and_check("big.nwf", &dsl), RULES);
    eprintln!(
        "{RULES} rules: {} KB of DSL, {} KB of XML",
        dsl.len() / 1024,
        xml.len() / 1024
    );
    let mut g = c.benchmark_group("dsl");
    g.sample_size(20);
    g.bench_function("parse+check 10k-rule .nwf", |b| {
        b.iter(|| parse_and_check("big.nwf", &dsl))
    });
    g.bench_function("tokens only 10k-rule .nwf", |b| {
        b.iter(|| nwf_compiler::dsl::lexer::tokens(&dsl).len())
    });
    g.bench_function("syntax only 10k-rule .nwf", |b| {
        b.iter(|| nwf_compiler::dsl::parse(&dsl).1.len())
    });
    g.bench_function("parse+check 10k-rule .xml", |b| {
        b.iter(|| parse_and_check("big.xml", &xml))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
