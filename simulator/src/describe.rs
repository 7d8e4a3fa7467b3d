//! A readable description of frames, turned into a capture: for tests, the conformance suite
//! and bundled examples (never captures of real traffic).
//!
//! One frame per line; `#` starts a comment:
//!
//! ```text
//! [at=SECONDS] (out|in) KIND key=value...
//! out arp op=request spa=10.0.0.5 tpa=10.0.0.1
//! in  ipv4 udp src=10.0.0.1 dst=10.0.0.5 sport=53 dport=40000
//! out ipv4 tcp src=10.0.0.5 dst=10.0.0.1 sport=40000 dport=80 flags=S
//! out ipv6 icmp src=2001:db8::5 dst=2001:db8::1 type=128
//! out raw type=0x88b5
//! out vlan id=10 inner=0x0806
//! out stp
//! ```
//!
//! IP frames take `tos=N` and `badsum=ip|l4`; every frame `cut=N` (truncate to N bytes).
//! ARP and RARP frames take `htype`, `ptype`, `hlen` and `plen` (addresses are then written
//! with those lengths).
//!
//! A line may end with what is expected of the frame: `=> accept`, `=> drop` or `=> reject`,
//! optionally followed by the deciding rule, `by FILE:LINE[:COL]` (see [`Expectation`]):
//!
//! ```text
//! at=0.020 out ipv4 tcp dport=22 flags=S => drop by web.xml:12
//! ```
//! `out` frames go from `smac` (default: the VM's MAC) to `dmac` (default: the peer's MAC);
//! `in` frames the other way. ARP fields default to the frame's MACs; `at` defaults to the
//! previous frame's time plus one millisecond.

use crate::build::{self, ArpFields, Eth, L4};
use crate::eval::Verdict;
use nwf_compiler::program::Way;
use nwf_compiler::value::MacAddr;
use std::collections::HashMap;
use std::time::Duration;

/// A described frame.
#[derive(Clone, Debug)]
pub struct Described {
    /// 1-based line in the description.
    pub line: usize,
    /// When it is sent.
    pub time: Duration,
    /// Which way it crosses the VM's port.
    pub way: Way,
    /// The frame bytes.
    pub data: Vec<u8>,
    /// What the line expects of the frame, if it says.
    pub expect: Option<Expectation>,
}

/// What a description line expects of its frame: `=> VERDICT [by FILE:LINE[:COL]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// The verdict.
    pub verdict: Verdict,
    /// The rule that decides it, if given.
    pub by: Option<RuleAt>,
}

/// A rule's place in a filter file, as an expectation names it: the file name as `nwf
/// simulate` reports it, a 1-based line and optionally a column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleAt {
    /// File name.
    pub file: String,
    /// Line.
    pub line: usize,
    /// Column.
    pub column: Option<usize>,
}

impl std::fmt::Display for RuleAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(c) = self.column {
            write!(f, ":{c}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Expectation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = match self.verdict {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
            Verdict::Reject => "reject",
        };
        write!(f, "=> {v}")?;
        if let Some(by) = &self.by {
            write!(f, " by {by}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Expectation {
    type Err = String;

    /// Reads `accept|drop|reject [by FILE:LINE[:COL]]` (the text after `=>`).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        let verdict = match words.next() {
            Some("accept") => Verdict::Accept,
            Some("drop") => Verdict::Drop,
            Some("reject") => Verdict::Reject,
            Some(w) => {
                return Err(format!(
                    "expected `accept`, `drop` or `reject` after `=>`, found `{w}`"
                ))
            }
            None => return Err("expected `accept`, `drop` or `reject` after `=>`".into()),
        };
        let by = match words.next() {
            None => None,
            Some("by") => {
                let at = words.next().ok_or("expected FILE:LINE[:COL] after `by`")?;
                Some(parse_rule_at(at)?)
            }
            Some(w) => {
                return Err(format!(
                    "expected `by FILE:LINE[:COL]` after the verdict, found `{w}`"
                ))
            }
        };
        if let Some(w) = words.next() {
            return Err(format!("unexpected `{w}` after the expectation"));
        }
        Ok(Expectation { verdict, by })
    }
}

fn parse_rule_at(at: &str) -> Result<RuleAt, String> {
    let bad = || format!("`{at}` is not FILE:LINE or FILE:LINE:COL");
    let num = |s: &str| s.parse::<usize>().ok().filter(|n| *n > 0);
    let (rest, last) = at.rsplit_once(':').ok_or_else(bad)?;
    let last = num(last).ok_or_else(bad)?;
    match rest.rsplit_once(':') {
        Some((file, line)) if num(line).is_some() && !file.is_empty() => Ok(RuleAt {
            file: file.to_string(),
            line: num(line).expect("checked"),
            column: Some(last),
        }),
        _ if !rest.is_empty() => Ok(RuleAt {
            file: rest.to_string(),
            line: last,
            column: None,
        }),
        _ => Err(bad()),
    }
}

/// The description `text` with the expectation of each line in `expect` (1-based line
/// numbers) written at its end, replacing any expectation it had; comments and layout are kept.
pub fn with_expectations(text: &str, expect: &HashMap<usize, Expectation>) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, raw) in text.lines().enumerate() {
        match expect.get(&(i + 1)) {
            Some(e) => {
                let (body, comment) = match raw.find('#') {
                    Some(at) => (&raw[..at], Some(&raw[at..])),
                    None => (raw, None),
                };
                let body = body.split("=>").next().unwrap_or("").trim_end();
                out.push_str(body);
                out.push(' ');
                out.push_str(&e.to_string());
                if let Some(c) = comment {
                    out.push_str("  ");
                    out.push_str(c);
                }
            }
            None => out.push_str(raw),
        }
        out.push('\n');
    }
    out
}

/// Default addresses for descriptions.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    /// The VM's MAC.
    pub vm_mac: MacAddr,
    /// The peer's MAC.
    pub peer_mac: MacAddr,
}

/// A mistake in a description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribeError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses a description.
pub fn parse(text: &str, d: Defaults) -> Result<Vec<Described>, DescribeError> {
    let mut out = Vec::new();
    let mut time = Duration::ZERO;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let n = i + 1;
        let err = |message: String| DescribeError { line: n, message };
        let (line, expect) = match line.split_once("=>") {
            Some((frame, e)) => (frame.trim(), Some(e.parse::<Expectation>().map_err(err)?)),
            None => (line, None),
        };
        let mut words: Vec<&str> = line.split_whitespace().collect();
        if let Some(at) = words.first().and_then(|w| w.strip_prefix("at=")) {
            let secs: f64 = at
                .parse()
                .map_err(|_| err(format!("`at={at}` is not a number of seconds")))?;
            if !(0.0..1e9).contains(&secs) {
                return Err(err(format!("`at={at}` is out of range")));
            }
            time = Duration::from_secs_f64(secs);
            words.remove(0);
        } else if !out.is_empty() {
            time += Duration::from_millis(1);
        }
        let way = match words.first() {
            Some(&"out") => Way::FromVm,
            Some(&"in") => Way::ToVm,
            other => return Err(err(format!("expected `out` or `in`, found {other:?}"))),
        };
        let kind = *words
            .get(1)
            .ok_or_else(|| err("expected a frame kind after the direction".into()))?;
        let mut kv: HashMap<&str, &str> = HashMap::new();
        let mut l4_word = None;
        for w in &words[2..] {
            match w.split_once('=') {
                Some((k, v)) => {
                    kv.insert(k, v);
                }
                None => l4_word = Some(*w),
            }
        }
        let data = frame(way, kind, l4_word, &kv, d).map_err(err)?;
        out.push(Described {
            line: n,
            time,
            way,
            data,
            expect,
        });
    }
    Ok(out)
}

fn get<T: std::str::FromStr>(kv: &HashMap<&str, &str>, k: &str, default: T) -> Result<T, String> {
    match kv.get(k) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("invalid value `{v}` for `{k}`")),
    }
}

fn num(kv: &HashMap<&str, &str>, k: &str, default: u32) -> Result<u32, String> {
    match kv.get(k) {
        None => Ok(default),
        Some(v) => nwf_compiler::value::parse_number(v, v.starts_with("0x"))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("invalid number `{v}` for `{k}`")),
    }
}

fn mac_of(kv: &HashMap<&str, &str>, k: &str, default: MacAddr) -> Result<MacAddr, String> {
    match kv.get(k) {
        None => Ok(default),
        Some(v) => MacAddr::parse(v).ok_or_else(|| format!("invalid MAC `{v}` for `{k}`")),
    }
}

fn frame(
    way: Way,
    kind: &str,
    l4: Option<&str>,
    kv: &HashMap<&str, &str>,
    d: Defaults,
) -> Result<Vec<u8>, String> {
    let (s, t) = match way {
        Way::FromVm => (d.vm_mac, d.peer_mac),
        Way::ToVm => (d.peer_mac, d.vm_mac),
    };
    let eth = Eth::new(mac_of(kv, "smac", s)?, mac_of(kv, "dmac", t)?);
    let known: &[&str] = match kind {
        "arp" | "rarp" => &[
            "op", "sha", "spa", "tha", "tpa", "htype", "ptype", "hlen", "plen",
        ],
        "ipv4" | "ipv6" => &[
            "src", "dst", "sport", "dport", "flags", "type", "code", "proto", "tos", "badsum",
        ],
        "raw" => &["type", "len"],
        "vlan" => &["id", "inner", "len"],
        "stp" => &[],
        other => {
            return Err(format!(
                "unknown frame kind `{other}` (arp, rarp, ipv4, ipv6, raw, vlan, stp)"
            ))
        }
    };
    for k in kv.keys() {
        if !known.contains(k) && !matches!(*k, "smac" | "dmac" | "cut") {
            return Err(format!(
                "`{k}` is not a field of `{kind}` frames (fields: {})",
                known.join(", ")
            ));
        }
    }
    let mut bytes = match kind {
        "arp" | "rarp" => {
            let op = match kv.get("op").copied().unwrap_or("request") {
                "request" => 1,
                "reply" => 2,
                "rrequest" => 3,
                "rreply" => 4,
                other => nwf_compiler::value::parse_number(other, other.starts_with("0x"))
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| format!("invalid ARP op `{other}`"))?,
            };
            let default_tha = if op == 1 { MacAddr([0; 6]) } else { eth.dst };
            let std = build::ArpHeader::ETHERNET_IPV4;
            let byte = |k: &str, default: u8| -> Result<u8, String> {
                u8::try_from(num(kv, k, default.into())?)
                    .map_err(|_| format!("`{k}` is one byte (0..255)"))
            };
            let word = |k: &str, default: u16| -> Result<u16, String> {
                u16::try_from(num(kv, k, default.into())?)
                    .map_err(|_| format!("`{k}` is two bytes (0..65535)"))
            };
            let a = ArpFields {
                header: build::ArpHeader {
                    htype: word("htype", std.htype)?,
                    ptype: word("ptype", std.ptype)?,
                    hlen: byte("hlen", std.hlen)?,
                    plen: byte("plen", std.plen)?,
                },
                opcode: op,
                sha: mac_of(kv, "sha", eth.src)?,
                spa: get(kv, "spa", std::net::Ipv4Addr::UNSPECIFIED)?,
                tha: mac_of(kv, "tha", default_tha)?,
                tpa: get(kv, "tpa", std::net::Ipv4Addr::UNSPECIFIED)?,
            };
            if kind == "arp" {
                build::arp(eth, a)
            } else {
                build::rarp(eth, a)
            }
        }
        "ipv4" | "ipv6" => {
            let l4 = match l4.unwrap_or("udp") {
                "udp" => L4::Udp(
                    num(kv, "sport", 40000)? as u16,
                    num(kv, "dport", 53)? as u16,
                ),
                "tcp" => L4::Tcp(
                    num(kv, "sport", 40000)? as u16,
                    num(kv, "dport", 80)? as u16,
                    tcp_flags(kv.get("flags").copied().unwrap_or("S"))?,
                ),
                "icmp" => L4::Icmp(
                    num(kv, "type", if kind == "ipv4" { 8 } else { 128 })? as u8,
                    num(kv, "code", 0)? as u8,
                ),
                "other" => L4::Other(num(kv, "proto", 50)? as u8),
                w => return Err(format!("unknown transport `{w}` (udp, tcp, icmp, other)")),
            };
            if kind == "ipv4" {
                build::ipv4(
                    eth,
                    get(kv, "src", "10.0.0.5".parse().unwrap())?,
                    get(kv, "dst", "10.0.0.1".parse().unwrap())?,
                    l4,
                )
            } else {
                build::ipv6(
                    eth,
                    get(kv, "src", "2001:db8::5".parse().unwrap())?,
                    get(kv, "dst", "2001:db8::1".parse().unwrap())?,
                    l4,
                )
            }
        }
        "raw" => {
            let t = num(kv, "type", 0x88b5)?;
            let len = num(kv, "len", 46)?.min(1500) as usize;
            build::raw(eth, t as u16, &vec![0; len])
        }
        "vlan" => {
            let len = num(kv, "len", 42)?.min(1500) as usize;
            build::vlan(
                eth,
                num(kv, "id", 1)? as u16,
                num(kv, "inner", 0x0800)? as u16,
                &vec![0; len],
            )
        }
        _ => build::stp_tcn(eth.src),
    };
    if matches!(kind, "ipv4" | "ipv6") {
        damage(&mut bytes, kind == "ipv4", kv)?;
    }
    if let Some(n) = kv.get("cut") {
        let n: usize = n
            .parse()
            .map_err(|_| format!("invalid length `{n}` for `cut`"))?;
        bytes.truncate(n);
    }
    Ok(bytes)
}

/// `tos=N` sets the TOS byte (traffic class); `badsum=ip|l4` breaks the IPv4 header checksum
/// or the TCP/UDP checksum. Checksums are recomputed after `tos`.
fn damage(b: &mut [u8], v4: bool, kv: &HashMap<&str, &str>) -> Result<(), String> {
    if let Some(t) = kv.get("tos") {
        let tos = nwf_compiler::value::parse_number(t, t.starts_with("0x"))
            .filter(|n| *n <= 255)
            .ok_or_else(|| format!("invalid TOS `{t}`"))? as u8;
        if v4 {
            b[15] = tos;
            b[24] = 0;
            b[25] = 0;
            let sum = ones_complement(&b[14..34]);
            b[24..26].copy_from_slice(&sum.to_be_bytes());
        } else {
            b[14] = (b[14] & 0xf0) | (tos >> 4);
            b[15] = (b[15] & 0x0f) | (tos << 4);
        }
    }
    match kv.get("badsum").copied() {
        None => {}
        Some("ip") if v4 => b[24] ^= 0xff,
        Some("l4") => {
            let (proto, l4) = if v4 {
                (b[23], 14 + usize::from(b[14] & 0x0f) * 4)
            } else {
                (b[20], 54)
            };
            let at = match proto {
                6 => l4 + 16,
                17 => l4 + 6,
                _ => return Err("badsum=l4 needs TCP or UDP".into()),
            };
            b[at] ^= 0xff;
        }
        Some(other) => return Err(format!("invalid badsum `{other}` (ip for IPv4, l4)")),
    }
    Ok(())
}

fn ones_complement(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn tcp_flags(s: &str) -> Result<u8, String> {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            'A' | '.' => 0x10,
            'U' => 0x20,
            _ => return Err(format!("unknown TCP flag `{c}` (F S R P A U)")),
        };
    }
    Ok(f)
}
