//! The IP-layer index changes nothing: for every example binding and random frames, indexed
//! and linear evaluation give the same verdict, layer and deciding rule.

use nwf_compiler::driver;
use nwf_compiler::program::{Program, Way};
use nwf_simulator::build::{self, mac, Eth, L4};
use nwf_simulator::eval::{evaluate_traced, Context};
use nwf_simulator::frame::Frame;
use nwf_simulator::index::ProgramIndex;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn programs() -> &'static Vec<Program> {
    static P: OnceLock<Vec<Program>> = OnceLock::new();
    P.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut v = Vec::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("testdata/bindings"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for b in files {
            let run = driver::show_binding(
                &[root.join("testdata/filters")],
                &b,
                &[("IP".into(), "10.0.0.5".into())],
            );
            if let Some(p) = run.program {
                v.push(p);
            }
        }
        assert!(v.len() >= 5, "expected the example bindings");
        v
    })
}

fn frame_strategy() -> impl Strategy<Value = (bool, Vec<u8>)> {
    let addr4 = prop_oneof![Just([10, 0, 0, 5]), Just([10, 0, 0, 1]), any::<[u8; 4]>()];
    let port = prop_oneof![
        0u16..1024,
        Just(53u16),
        Just(80),
        Just(443),
        Just(22),
        any::<u16>()
    ];
    (
        any::<bool>(),
        addr4.clone(),
        addr4,
        port.clone(),
        port,
        0u8..4,
        any::<u8>(),
    )
        .prop_map(|(out, s, d, sp, dp, kind, flags)| {
            let eth = if out {
                Eth::new(mac("52:54:00:00:00:01"), mac("52:54:00:00:00:99"))
            } else {
                Eth::new(mac("52:54:00:00:00:99"), mac("52:54:00:00:00:01"))
            };
            let l4 = match kind {
                0 => L4::Tcp(sp, dp, flags & 0x3f),
                1 => L4::Udp(sp, dp),
                2 => L4::Icmp(flags % 20, 0),
                _ => L4::Other(flags),
            };
            (out, build::ipv4(eth, s.into(), d.into(), l4))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn indexed_equals_linear((out, bytes) in frame_strategy()) {
        let f = Frame::decode(&bytes);
        let way = if out { Way::FromVm } else { Way::ToVm };
        let cx = Context::default();
        for p in programs() {
            let ix = ProgramIndex::new(p);
            let a = evaluate_traced(p, None, way, &f, &cx, &mut |_| {});
            let b = evaluate_traced(p, Some(&ix), way, &f, &cx, &mut |_| {});
            prop_assert_eq!(a.verdict, b.verdict);
            prop_assert_eq!(a.layer, b.layer);
            prop_assert_eq!(a.rule.map(|r| r.id), b.rule.map(|r| r.id));
        }
    }
}
