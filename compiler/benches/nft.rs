//! Compile 1,000 ports (clean-traffic plus a 50-rule custom filter each) to one nft script.

use criterion::{criterion_group, criterion_main, Criterion};
use nwf_compiler::backend::nft::{self, NftOptions};
use nwf_compiler::binding::read_binding;
use nwf_compiler::diag::Diagnostics;
use nwf_compiler::instantiate::instantiate;
use nwf_compiler::library::{Library, Provider};
use nwf_compiler::program::Program;
use nwf_compiler::source::Origin;
use std::fmt::Write;

const PORTS: usize = 1000;

fn custom_filter() -> String {
    let mut s = String::from("<filter name='bench-50'>\n  <filterref filter='clean-traffic'/>\n");
    for r in 0..50 {
        let body = match r % 5 {
            0 => format!("<tcp dstportstart='{}'/>", 1000 + r),
            1 => format!(
                "<udp srcipaddr='10.{r}.0.0' srcipmask='16' dstportstart='{}'/>",
                2000 + r
            ),
            2 => "<icmp type='8'/>".to_string(),
            3 => format!("<tcp-ipv6 dstportstart='{}' state='NEW'/>", 3000 + r),
            _ => format!("<all dstipaddr='192.168.{r}.0' dstipmask='24'/>"),
        };
        let action = ["accept", "drop", "reject"][r % 3];
        let _ = writeln!(
            s,
            "  <rule action='{action}' direction='{}' priority='{}'>{body}</rule>",
            ["in", "out"][r % 2],
            100 + r
        );
    }
    s.push_str("</filter>\n");
    s
}

fn programs() -> Vec<Program> {
    let mut d = Diagnostics::new();
    let mut lib = Library::with_stdlib(&mut d);
    lib.add_text("bench-50.xml", &custom_filter(), Provider::File, &mut d);
    (0..PORTS)
        .map(|i| {
            let text = format!(
                "<filterbinding><owner><name>vm{i}</name><uuid>8e8ba8c4-0e8b-4d2b-9a47-6b1f2b3c4d5e</uuid></owner>\
                 <portdev name='vnet{i}'/><mac address='52:54:00:00:{:02x}:{:02x}'/><filterref filter='bench-50'>\
                 <parameter name='IP' value='10.200.{}.{}'/></filterref></filterbinding>",
                i / 256,
                i % 256,
                i / 256,
                i % 250 + 1
            );
            let id = lib.sources.add(format!("b{i}.xml"), Origin::Virtual(format!("b{i}")), text);
            let b = read_binding(&lib.sources, id, &mut d).expect("binding");
            instantiate(&lib, &b, &[], &mut d).unwrap_or_else(|| panic!("{:?}", d.items().iter().find(|x| x.severity == nwf_compiler::diag::Severity::Error)))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let progs = programs();
    let opts = NftOptions::default();
    let script = nft::compile(&progs, &opts, &mut Diagnostics::new()).expect("compiles");
    eprintln!(
        "{PORTS} ports: {} program rules, script {} lines",
        progs.iter().map(Program::rule_count).sum::<usize>(),
        script.lines().count()
    );
    let mut g = c.benchmark_group("nft");
    g.sample_size(10);
    g.bench_function("compile 1000 ports (clean-traffic + 50 rules)", |b| {
        b.iter(|| {
            nft::compile(&progs, &opts, &mut Diagnostics::new())
                .expect("compiles")
                .len()
        })
    });
    g.bench_function("instantiate + compile 1000 ports", |b| {
        b.iter(|| {
            let p = programs();
            nft::compile(&p, &opts, &mut Diagnostics::new())
                .expect("compiles")
                .len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
