//! The frame description language: expectations (`=> VERDICT [by FILE:LINE[:COL]]`) and ARP
//! header fields.

use nwf_compiler::value::MacAddr;
use nwf_simulator::describe::{parse, with_expectations, Defaults, Expectation, RuleAt};
use nwf_simulator::eval::Verdict;
use nwf_simulator::frame::Frame;
use std::collections::HashMap;

fn defaults() -> Defaults {
    Defaults {
        vm_mac: MacAddr::parse("52:54:00:00:00:01").unwrap(),
        peer_mac: MacAddr::parse("52:54:00:00:00:99").unwrap(),
    }
}

#[test]
fn expectations_are_read_with_and_without_a_rule() {
    let text = "out arp spa=10.0.0.5 => accept\n\
                # comment\n\
                in ipv4 udp => drop by web.xml:12  # trailing comment\n\
                out ipv4 tcp flags=S => reject by <stdlib>/clean-traffic.xml:15:5\n\
                out raw\n";
    let d = parse(text, defaults()).unwrap();
    let e: Vec<Option<Expectation>> = d.iter().map(|f| f.expect.clone()).collect();
    assert_eq!(
        e,
        vec![
            Some(Expectation {
                verdict: Verdict::Accept,
                by: None
            }),
            Some(Expectation {
                verdict: Verdict::Drop,
                by: Some(RuleAt {
                    file: "web.xml".into(),
                    line: 12,
                    column: None
                })
            }),
            Some(Expectation {
                verdict: Verdict::Reject,
                by: Some(RuleAt {
                    file: "<stdlib>/clean-traffic.xml".into(),
                    line: 15,
                    column: Some(5)
                })
            }),
            None,
        ]
    );
    assert_eq!(
        e[2].as_ref().unwrap().to_string(),
        "=> reject by <stdlib>/clean-traffic.xml:15:5"
    );
}

#[test]
fn bad_expectations_name_the_line_and_what_was_expected() {
    for (text, want) in [
        ("out raw => allow", "expected `accept`, `drop` or `reject`"),
        ("out raw =>", "expected `accept`, `drop` or `reject`"),
        (
            "out raw => drop at x.xml:3",
            "expected `by FILE:LINE[:COL]`",
        ),
        ("out raw => drop by x.xml", "is not FILE:LINE"),
        ("out raw => drop by x.xml:0", "is not FILE:LINE"),
        ("out raw => drop by x.xml:3 extra", "unexpected `extra`"),
    ] {
        let e = parse(&format!("\n{text}\n"), defaults()).unwrap_err();
        assert_eq!(e.line, 2, "{text}");
        assert!(e.message.contains(want), "{text}: {}", e.message);
    }
}

#[test]
fn expectations_are_rewritten_in_place_keeping_comments() {
    let text = "# head\nout raw => accept  # keep\nin raw\n";
    let mut expect = HashMap::new();
    expect.insert(
        2,
        Expectation {
            verdict: Verdict::Drop,
            by: Some(RuleAt {
                file: "a.xml".into(),
                line: 3,
                column: Some(1),
            }),
        },
    );
    expect.insert(
        3,
        Expectation {
            verdict: Verdict::Accept,
            by: None,
        },
    );
    let out = with_expectations(text, &expect);
    assert_eq!(
        out,
        "# head\nout raw => drop by a.xml:3:1  # keep\nin raw => accept\n"
    );
    // Reading it back gives the same expectations.
    let back = parse(&out, defaults()).unwrap();
    assert_eq!(back[0].expect.as_ref(), expect.get(&2));
    assert_eq!(back[1].expect.as_ref(), expect.get(&3));
}

#[test]
fn arp_header_fields_place_the_addresses_as_the_kernel_reads_them() {
    // hlen 8: the sender IP follows 8 bytes of hardware address, and the kernel (and the
    // decoder) find it there.
    let d = parse(
        "out arp spa=10.0.0.66 tpa=10.0.0.1 hlen=8\n\
         out arp spa=10.0.0.66 tpa=10.0.0.1 ptype=0x86dd\n\
         out arp sha=52:54:00:00:00:66 plen=16\n\
         out arp sha=52:54:00:00:00:66 htype=6\n\
         out arp cut=41\n",
        defaults(),
    )
    .unwrap();
    let f: Vec<Frame> = d.iter().map(|x| Frame::decode(&x.data)).collect();
    let a = f[0].arp.unwrap();
    assert_eq!((a.hlen, a.plen), (8, 4));
    assert_eq!(a.ips.unwrap().spa, [10, 0, 0, 66]);
    assert_eq!(a.ips.unwrap().tpa, [10, 0, 0, 1]);
    assert_eq!(a.sha, None, "hardware length 8 is not Ethernet's");
    assert_eq!(f[1].arp.unwrap().ips, None, "not IPv4");
    let c = f[2].arp.unwrap();
    assert_eq!(c.ips, None, "16-byte protocol addresses");
    assert_eq!(c.sha, MacAddr::parse("52:54:00:00:00:66"));
    assert!(c.tha.is_some(), "the target MAC is found after 16 bytes");
    assert_eq!(f[3].arp.unwrap().sha, None, "hardware type 6");
    assert_eq!(f[4].arp.unwrap().ips, None, "the target IP is cut off");
    assert!(!f[4].arp_truncated, "the 8-byte header is there");
    let short = parse("out arp cut=21\nout rarp cut=21\n", defaults()).unwrap();
    assert!(Frame::decode(&short[0].data).arp_truncated);
    assert!(!Frame::decode(&short[1].data).arp_truncated, "RARP crosses");
}
