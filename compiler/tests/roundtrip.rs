//! XML -> IR -> XML -> IR gives the same IR, and `fmt` is idempotent: over every filter file
//! in `stdlib/` and `testdata/`, and over generated filters (proptest). Generated filters also
//! go through the DSL: XML -> DSL -> XML and DSL -> XML -> DSL keep meaning and text.

mod common;
use common::{read_dsl, read_xml as read};

use nwf_compiler::ir::{AttrValue, Entry, Filter, FilterRef, Match, Operand, Param, Rule};
use nwf_compiler::lang::{self, Action, Direction, ValueType};
use nwf_compiler::source::{FileId, Span};
use nwf_compiler::value::{Access, MacAddr, SetDir, StateSet, TcpFlags, Value, VarRef};
use nwf_compiler::{dsl, xml};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

/// Asserts the round trip for one text; returns the canonical form.
fn assert_round_trip(name: &str, text: &str) -> String {
    let (f1, d1) = read(text);
    assert!(!d1.has_errors(), "{name}: {:?}", d1.items());
    let f1 = f1.expect("filter");
    let out1 = xml::write_filter(&f1);
    let (f2, d2) = read(&out1);
    assert!(
        !d2.has_errors(),
        "{name}: canonical form has errors: {:?}\n{out1}",
        d2.items()
    );
    let f2 = f2.expect("filter");
    assert_eq!(
        f1.meaning(),
        f2.meaning(),
        "{name}: IR changed through XML\n{out1}"
    );
    let out2 = xml::write_filter(&f2);
    assert_eq!(out1, out2, "{name}: fmt is not idempotent");
    out1
}

fn xml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "xml"));
    v.sort();
    v
}

#[test]
fn every_stdlib_and_testdata_filter_round_trips() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = xml_files(&root.join("stdlib"));
    common::filter_files(&root.join("testdata"), "xml", &mut files);
    for p in &files {
        let text = std::fs::read_to_string(p).unwrap();
        assert_round_trip(&p.display().to_string(), &text);
    }
    assert!(
        files.len() >= 24 + 30,
        "expected the standard filters and the examples, found {}",
        files.len()
    );
}

#[test]
fn mixed_negation_is_written_as_libvirt_writes_it() {
    let text = "<filter name='x'><rule action='drop' direction='in'>\
        <tcp match='no' srcipaddr='10.0.0.0' srcipmask='8' dstportstart='22'/></rule></filter>";
    let out = assert_round_trip("mixed", text);
    assert!(
        out.contains(r#"<tcp match="no" srcipaddr="10.0.0.0" srcipmask="8"/>"#),
        "{out}"
    );
    assert!(out.contains(r#"<tcp dstportstart="22"/>"#), "{out}");
}

// ---- generated filters -------------------------------------------------------------------

fn span() -> Span {
    Span {
        file: FileId(0),
        start: 0,
        end: 0,
    }
}

fn value_for(ty: ValueType) -> BoxedStrategy<Value> {
    match ty {
        ValueType::Mac => any::<[u8; 6]>()
            .prop_map(|b| Value::Mac(MacAddr(b)))
            .boxed(),
        ValueType::MacMask => (0u32..=48)
            .prop_map(|p| {
                let v: u64 = if p == 0 {
                    0
                } else {
                    (!0u64 << (48 - p)) & 0xffff_ffff_ffff
                };
                let b = v.to_be_bytes();
                Value::MacMask(MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]]))
            })
            .boxed(),
        ValueType::Ipv4 => any::<u32>().prop_map(|a| Value::Ipv4(a.into())).boxed(),
        ValueType::Ipv6 => any::<u128>().prop_map(|a| Value::Ipv6(a.into())).boxed(),
        ValueType::Ipv4Mask => (0u8..=32).prop_map(Value::Prefix).boxed(),
        ValueType::Ipv6Mask => (0u8..=128).prop_map(Value::Prefix).boxed(),
        ValueType::Number { min, max, .. } => (min..=max).prop_map(Value::Number).boxed(),
        ValueType::EtherType { min } => (min..=0xffff).prop_map(Value::Number).boxed(),
        ValueType::IpProtocol => (0u32..=255).prop_map(Value::Number).boxed(),
        ValueType::ArpOpcode => (0u32..=65535).prop_map(Value::Number).boxed(),
        ValueType::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        // A comment starting with `$` would be a variable reference.
        ValueType::Comment => "([ -#%-~\t\né<>&'\"][ -~\t\né<>&'\"]{0,40})?"
            .prop_map(Value::Text)
            .boxed(),
        ValueType::States => (0u8..16).prop_map(|b| Value::States(StateSet(b))).boxed(),
        ValueType::TcpFlags => (0u8..64, 0u8..64)
            .prop_map(|(mask, set)| Value::TcpFlags(TcpFlags { mask, set }))
            .boxed(),
        ValueType::IpsetName => "[a-z][a-z0-9_.:-]{0,30}".prop_map(Value::Text).boxed(),
        ValueType::IpsetFlags => {
            prop::collection::vec(prop_oneof![Just(SetDir::Src), Just(SetDir::Dst)], 1..=6)
                .prop_map(Value::SetDirs)
                .boxed()
        }
    }
}

fn operand_for(ty: ValueType) -> BoxedStrategy<Operand> {
    let lit = value_for(ty).prop_map(Operand::Lit);
    if matches!(
        ty,
        ValueType::States | ValueType::TcpFlags | ValueType::Bool | ValueType::Comment
    ) {
        return lit.boxed();
    }
    let var = ("[A-Z][A-Z0-9_]{0,6}", 0u32..3, any::<bool>()).prop_map(|(name, n, idx)| {
        Operand::Var(VarRef {
            name,
            access: if idx {
                Access::Index(n)
            } else {
                Access::Iterator(n)
            },
        })
    });
    prop_oneof![4 => lit, 1 => var].boxed()
}

/// Replaces the match's `protocol` with a plain (not negated) `n`.
fn set_protocol(m: &mut Match, n: u32) {
    m.attrs.retain(|a| a.spec.name != "protocol");
    m.attrs.push(AttrValue {
        spec: m.proto.attr("protocol").unwrap(),
        value: Operand::Lit(Value::Number(n)),
        negated: false,
        written_negated: false,
        name_span: span(),
        span: span(),
    });
}

fn match_strategy() -> impl Strategy<Value = Match> {
    (0..lang::PROTOCOLS.len(), any::<bool>())
        .prop_flat_map(|(pi, negated)| {
            let proto = &lang::PROTOCOLS[pi];
            let attrs: Vec<BoxedStrategy<Option<AttrValue>>> = proto
                .attrs
                .iter()
                .map(move |spec| {
                    prop::option::weighted(0.3, operand_for(spec.ty))
                        .prop_map(move |op| {
                            op.map(|value| AttrValue {
                                spec,
                                value,
                                negated,
                                written_negated: negated,
                                name_span: span(),
                                span: span(),
                            })
                        })
                        .boxed()
                })
                .collect();
            (Just(proto), attrs)
        })
        .prop_map(|(proto, attrs)| {
            let mut m = Match {
                proto,
                attrs: attrs.into_iter().flatten().collect(),
                span: span(),
                invalid: Vec::new(),
            };
            // Rules libvirt cannot apply are errors (E0120): keep generated rules applicable.
            let negated = m.attrs.iter().any(|a| a.written_negated);
            let is_port = |a: &AttrValue| a.spec.name.contains("port");
            let is_icmp = |a: &AttrValue| {
                matches!(a.spec.field, lang::Field::IcmpType | lang::Field::IcmpCode)
            };
            if matches!(proto.name, "ip" | "ipv6") && negated {
                m.attrs
                    .retain(|a| !(is_port(a) || (proto.name == "ipv6" && is_icmp(a))));
            }
            if m.attrs.iter().any(is_port) {
                m.attrs.retain(|a| !is_icmp(a));
            }
            for a in &mut m.attrs {
                let fix = match (&a.spec.ty, &a.value, a.spec.name) {
                    (ValueType::MacMask, Operand::Lit(Value::MacMask(mm)), _) if mm.0 == [0; 6] => {
                        Some(Value::MacMask(MacAddr::FULL))
                    }
                    (_, Operand::Lit(Value::Prefix(0)), _) => Some(Value::Prefix(1)),
                    (_, Operand::Lit(Value::Number(4095)), "vlanid") => Some(Value::Number(4094)),
                    (_, Operand::Lit(Value::Number(0)), "option") => Some(Value::Number(1)),
                    _ => None,
                };
                if let Some(v) = fix {
                    a.value = Operand::Lit(v);
                }
            }
            if proto.name == "ipv6" && m.attrs.iter().any(is_icmp) {
                set_protocol(&mut m, 58);
            }
            // Ports on ip/ipv6 need a port protocol: keep generated rules valid.
            if matches!(proto.name, "ip" | "ipv6")
                && m.attrs.iter().any(|a| a.spec.name.contains("port"))
            {
                set_protocol(&mut m, 6);
            }
            // A number range that ends before it starts is an error (E0119): keep generated
            // ranges in order by swapping the two ends.
            let ends: Vec<usize> = (0..m.attrs.len())
                .filter(|&i| m.attrs[i].spec.part == lang::Part::End)
                .collect();
            for e in ends {
                let field = m.attrs[e].spec.field;
                let Some(s) = m
                    .attrs
                    .iter()
                    .position(|a| a.spec.field == field && a.spec.part == lang::Part::Value)
                else {
                    continue;
                };
                if let (Operand::Lit(Value::Number(a)), Operand::Lit(Value::Number(b))) =
                    (&m.attrs[s].value, &m.attrs[e].value)
                {
                    if a > b {
                        let (a, b) = (*a, *b);
                        m.attrs[s].value = Operand::Lit(Value::Number(b));
                        m.attrs[e].value = Operand::Lit(Value::Number(a));
                    }
                }
            }
            m.attrs
                .sort_by_key(|a| proto.attrs.iter().position(|s| s.name == a.spec.name));
            m.apply_negation_rules();
            m
        })
}

fn rule_strategy() -> impl Strategy<Value = Rule> {
    (
        0..5usize,
        0..3usize,
        -1000i32..=1000,
        any::<bool>(),
        prop::option::of(match_strategy()),
    )
        .prop_map(|(a, d, priority, statematch, matches)| {
            let action = [
                Action::Accept,
                Action::Drop,
                Action::Reject,
                Action::Return,
                Action::Continue,
            ][a];
            let direction = [Direction::In, Direction::Out, Direction::Inout][d];
            Rule {
                action,
                direction,
                priority,
                statematch,
                matches,
                span: span(),
                comments: Vec::new(),
            }
        })
}

fn ref_strategy() -> impl Strategy<Value = FilterRef> {
    (
        "[a-z][a-z0-9-]{0,12}",
        prop::collection::vec(("[A-Z][A-Z0-9_]{0,5}", "[A-Za-z0-9_.:]{1,12}"), 0..4),
    )
        .prop_map(|(filter, mut params)| FilterRef {
            filter,
            params: {
                // The IR keeps parameters sorted by name (only the order within a name counts).
                params.sort_by(|a, b| a.0.cmp(&b.0));
                params
                    .into_iter()
                    .map(|(name, value)| Param {
                        name,
                        value,
                        span: span(),
                    })
                    .collect()
            },
            span: span(),
            name_span: span(),
            comments: Vec::new(),
        })
}

fn filter_strategy() -> impl Strategy<Value = Filter> {
    let chains = prop_oneof![
        Just("root".to_string()),
        Just("mac".to_string()),
        Just("arp-x".to_string()),
        Just("ipv4".to_string()),
        Just("ipv6-in".to_string()),
        Just("stp".to_string()),
    ];
    (
        "[a-z][a-z0-9-]{0,15}",
        chains,
        -1000i32..=1000,
        prop::collection::vec(prop_oneof![3 => rule_strategy().prop_map(Entry::Rule), 1 => ref_strategy().prop_map(Entry::Ref)], 0..8),
    )
        .prop_map(|(name, chain, priority, entries)| Filter {
            name,
            priority: if chain == "root" { 0 } else { priority },
            priority_written: chain != "root",
            chain,
            uuid: None,
            entries,
            file: FileId(0),
            span: span(),
            name_span: span(),
            chain_span: None,
            priority_span: None,
            comments: Vec::new(),
            trailing_comments: Vec::new(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_filters_round_trip(f in filter_strategy()) {
        let text = xml::write_filter(&f);
        let (back, d) = read(&text);
        prop_assert!(!d.has_errors(), "{:?}\n{}", d.items(), text);
        let back = back.unwrap();
        prop_assert_eq!(f.meaning(), back.meaning(), "{}", text);
        prop_assert_eq!(xml::write_filter(&back), text);
    }

    #[test]
    fn generated_filters_round_trip_through_the_dsl(f in filter_strategy()) {
        // XML -> DSL -> XML.
        let x1 = xml::write_filter(&f);
        let (fx, d) = read(&x1);
        prop_assert!(!d.has_errors(), "{:?}\n{}", d.items(), x1);
        let fx = fx.unwrap();
        let d1 = dsl::write_filter(&fx);
        let (fd, d) = read_dsl(&d1);
        prop_assert!(!d.has_errors(), "{:?}\n{}", d.items(), d1);
        let fd = fd.unwrap();
        prop_assert_eq!(f.meaning(), fd.meaning(), "{}", d1);
        prop_assert_eq!(xml::write_filter(&fd), x1, "{}", d1);
        // DSL -> XML -> DSL.
        let d2 = dsl::write_filter(&f);
        prop_assert_eq!(&d2, &d1);
        let (g, d) = read_dsl(&d2);
        prop_assert!(!d.has_errors(), "{:?}\n{}", d.items(), d2);
        let x2 = xml::write_filter(&g.unwrap());
        let (h, d) = read(&x2);
        prop_assert!(!d.has_errors(), "{:?}\n{}", d.items(), x2);
        let h = h.unwrap();
        prop_assert_eq!(f.meaning(), h.meaning(), "{}", x2);
        prop_assert_eq!(dsl::write_filter(&h), d2);
    }
}
