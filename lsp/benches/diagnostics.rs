//! Diagnostics for a 5,000-rule filter after an edit: the analysis alone, and the whole path
//! from `didChange` to published diagnostics through the state actor (default debounce
//! included). Measures, never asserts; the figure is reported in docs/ARCHITECTURE.md.

use criterion::{criterion_group, criterion_main, Criterion};
use nwf_lsp::analysis::{self, Base, Disk, OpenDoc};
use nwf_lsp::state::{self, Msg, Output};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tower_lsp_server::ls_types::{Position, Range, TextDocumentContentChangeEvent, Uri};

/// A filter of `n` rules of varied protocols, one of them with a typo so there is a diagnostic.
fn big_filter(n: usize) -> String {
    let mut s = String::from("<filter name='big' chain='root'>\n");
    for i in 0..n {
        let rule = match i % 4 {
            0 => format!(
                "  <rule action='accept' direction='in' priority='{}'>\n    <tcp dstportstart='{}' srcipaddr='10.{}.{}.0' srcipmask='24'/>\n  </rule>\n",
                i % 1000,
                i % 65535,
                (i / 256) % 256,
                i % 256
            ),
            1 => format!(
                "  <rule action='drop' direction='out'>\n    <udp dstportstart='{}'/>\n  </rule>\n",
                i % 65535
            ),
            2 => "  <rule action='accept' direction='inout'>\n    <mac protocolid='arp'/>\n  </rule>\n".to_string(),
            _ => "  <rule action='return' direction='in'>\n    <ip srcipaddr='$IP' protocol='icmp'/>\n  </rule>\n".to_string(),
        };
        s.push_str(&rule);
    }
    s.push_str("  <filterref filter='clean-trafic'/>\n</filter>\n");
    s
}

fn bench(c: &mut Criterion) {
    let text = big_filter(5000);
    let uri: Uri = "file:///bench/big.xml".parse().expect("uri");
    let base = Base::build(&Disk::default(), BTreeSet::new());
    let doc = OpenDoc {
        uri: uri.clone(),
        text: text.clone(),
        version: 1,
    };
    let mut g = c.benchmark_group("lsp_5000_rules");
    g.sample_size(20);
    g.bench_function("analyze", |b| {
        b.iter(|| analysis::analyze(&base, &[&doc], &[]))
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    g.bench_function("did_change_to_published", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let actor = state::spawn(
                    Output::Channel(tx),
                    Default::default(),
                    nwf_lsp::DEFAULT_DEBOUNCE,
                );
                let _ = actor.send(Msg::Open(doc.clone()));
                let _ = rx.recv().await;
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    // Type one character inside the first rule's comment-free area.
                    let change = TextDocumentContentChangeEvent {
                        range: Some(Range::new(Position::new(0, 8), Position::new(0, 8))),
                        range_length: None,
                        text: if i % 2 == 0 { " " } else { "" }.to_string(),
                    };
                    let start = Instant::now();
                    let _ = actor.send(Msg::Change {
                        uri: uri.clone(),
                        version: i as i32 + 2,
                        changes: vec![change],
                    });
                    let _ = rx.recv().await;
                    total += start.elapsed();
                }
                total
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
