//! Property test of the nft backend against `nwf simulate`: random filters and random frames, run
//! through the real kernel in batches; any disagreement is shrunk to a small case and kept in
//! `testdata/nft-regressions/<hash>/` as a regression.
//!
//! A case is a random filter (1-8 rules; random action, direction, priority and protocol
//! element: mac, arp, ip, tcp, udp, icmp, all, tcp-ipv6, udp-ipv6, icmpv6 or none; attribute
//! values from small pools that the frames use too, so that rules do match; sometimes
//! `match='no'` and `statematch='false'`; sometimes some rules in a sub-chain filter (`ipv4`,
//! `arp` or `mac`) referenced from the root filter) and 6-12 frames in the description language
//! of `simulator/src/describe.rs` (both directions, including TCP and UDP conversations, so that
//! conntrack state matters).
//!
//! All cases of a run share ONE network: a Linux bridge with two veth ports (learning off, so
//! every frame is flooded to the other port), the VM port's other end in a namespace "vm", the
//! peer port's in a namespace "peer". Per case: `nwf synth` + `nwf simulate` give nwf's verdicts;
//! `nwf compile --target nft --table nwfp<pid>_<n>` is loaded with `nft -f`; the case's frames are
//! sent raw (AF_PACKET) from the sending side and a frame is "delivered" when its bytes arrive on
//! the other side; both tables are deleted (Drop). nwf's `accept` must be "delivered", `drop`
//! and `reject` "not delivered". Every case has a fresh conntrack zone (an nft table of this
//! test sets `ct zone` at priority raw on what the bridge hands to the IP layer, whose input
//! device is the bridge), flushed before use when the `conntrack` command is there.
//!
//! A case that nwf refuses (`nwf compile` fails with only E0401 errors: nft cannot express it;
//! or the generated filter is invalid) is discarded and another one drawn.
//!
//! On a disagreement the case is run again (a flaky kernel result is not kept), then shrunk
//! greedily (drop frames, rules, the sub-chain, attributes, `match='no'`, `statematch`), each
//! step checked in the kernel; the minimal case is printed (filters, frames, kernel vs nwf per
//! frame, `nft list table`) and written to `testdata/nft-regressions/<hash>/` in the format of
//! `testdata/kernel/<case>/` (`case.txt`, `filters/*.xml`, `frames`, plus `kernel.txt` with the
//! findings), ready to be moved there. The test `nft_regressions_replay` runs every folder of
//! `testdata/nft-regressions/` through the same comparison.
//!
//! The generator is self-contained (a seeded PRNG and a greedy shrinker in this file): the root
//! package has no `proptest` dev-dependency. Knobs:
//! - `NWF_PROPTEST_CASES=N`: cases per run (default 24);
//! - `NWF_PROPTEST_SEED=S`: the seed (default: from the clock; always printed, so a failure can
//!   be replayed with the same seed);
//! - `NWF_PROPTEST_KEEP_GOING=1`: go on after a finding (default: stop at the first, like
//!   proptest);
//! - `NWF_PROPTEST_VERBOSE=1`: print every case and frame.
//!
//! Needs root, `ip`, `nft` and br_netfilter; without them it prints `SKIPPED: ...` and passes,
//! except under `CI=true` where it fails. Every link, namespace and nft table carries this
//! process's id and is removed on every path (Drop).
//! Run: `cargo test --test nft_proptest -- --nocapture`.

mod common;
use common::*;
use std::fmt::Write as _;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most kernel runs spent on shrinking one finding.
const SHRINK_RUNS: usize = 250;
const SHRINK_TIME: Duration = Duration::from_secs(240);

const VM_MAC: &str = "52:54:00:00:00:01";
const PEER_MAC: &str = "52:54:00:00:00:99";
const OTHER_MAC: &str = "52:54:00:00:00:77";
const VM_IP: &str = "10.0.0.5";
const IPS: [&str; 3] = ["10.0.0.5", "10.0.0.1", "10.0.0.9"];
const IP6S: [&str; 2] = ["2001:db8::5", "2001:db8::1"];
const PORTS: [&str; 3] = ["22", "53", "80"];
const ROOT_FILTER: &str = "nwk-pt";
const SUB_FILTER: &str = "nwk-pt-sub";

/// The two tests share the machine's bridge-netfilter settings: one at a time.
static LOCK: Mutex<()> = Mutex::new(());
/// Numbers the nft tables and conntrack zones of this process.
static SEQ: AtomicUsize = AtomicUsize::new(0);

// ---------------------------------------------------------------------------------------------
// Commands

fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (euid 0)".to_string());
        return missing;
    }
    for p in ["ip", "nft"] {
        if !in_path(p) {
            missing.push(format!("the `{p}` command"));
        }
    }
    if !missing.is_empty() {
        return missing;
    }
    if run("nft", &["list", "tables"]).is_err() {
        missing.push("a working nftables (`nft list tables` fails)".to_string());
    }
    if !Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists() {
        let _ = run("modprobe", &["br_netfilter"]);
        if !Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists() {
            missing.push("the br_netfilter kernel module".to_string());
        }
    }
    missing
}

/// Prerequisites: Some(()) to go on; None after printing `SKIPPED` (panics under CI=true).
fn prerequisites(what: &str) -> Option<()> {
    let missing = missing_prerequisites();
    if missing.is_empty() {
        return Some(());
    }
    let why = format!("{what} needs {}", missing.join(", "));
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; under CI=true this is a failure");
    }
    eprintln!("SKIPPED: {why}");
    None
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// A case on disk (the format of testdata/kernel/<case>/)

#[derive(Clone, Debug)]
struct CaseFiles {
    filter: String,
    params: Vec<(String, String)>,
    vm_mac: String,
    peer_mac: String,
    /// (file name, XML).
    filters: Vec<(String, String)>,
    /// Frame lines (`out ...` / `in ...`).
    frames: Vec<String>,
}

fn load_case(dir: &Path) -> Result<CaseFiles, String> {
    let text = fs::read_to_string(dir.join("case.txt")).map_err(|e| format!("case.txt: {e}"))?;
    let mut c = CaseFiles {
        filter: String::new(),
        params: Vec::new(),
        vm_mac: "52:54:00:00:00:01".into(),
        peer_mac: "52:54:00:00:00:99".into(),
        filters: Vec::new(),
        frames: Vec::new(),
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("case.txt line {}: expected `key: value`", i + 1))?;
        let v = v.trim().to_string();
        match k.trim() {
            "filter" => c.filter = v,
            "param" => {
                let (n, val) = v
                    .split_once('=')
                    .ok_or_else(|| format!("case.txt line {}: param NAME=VALUE", i + 1))?;
                c.params.push((n.trim().into(), val.trim().into()));
            }
            "vm-mac" => c.vm_mac = v,
            "peer-mac" => c.peer_mac = v,
            other => return Err(format!("case.txt line {}: unknown key `{other}`", i + 1)),
        }
    }
    if c.filter.is_empty() {
        return Err("case.txt has no `filter:` line".into());
    }
    if let Ok(rd) = fs::read_dir(dir.join("filters")) {
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "xml"))
            .collect();
        paths.sort();
        for p in paths {
            let xml = fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            c.filters
                .push((p.file_name().unwrap().to_string_lossy().into_owned(), xml));
        }
    }
    let ftext = fs::read_to_string(dir.join("frames")).map_err(|e| format!("frames: {e}"))?;
    for raw in ftext.lines() {
        let line = raw.split('#').next().unwrap().trim();
        if !line.is_empty() {
            c.frames.push(line.to_string());
        }
    }
    Ok(c)
}

fn binding_xml(c: &CaseFiles, port: &str, n: usize) -> String {
    let mut params = String::new();
    for (k, v) in &c.params {
        let _ = writeln!(params, "    <parameter name='{k}' value='{v}'/>");
    }
    format!(
        "<filterbinding>\n  <owner>\n    <name>nwp-{n}</name>\n    \
         <uuid>6e777000-{:04x}-4000-8000-{:012x}</uuid>\n  </owner>\n  \
         <portdev name='{port}'/>\n  <mac address='{}'/>\n  <filterref filter='{}'>\n{params}  \
         </filterref>\n</filterbinding>\n",
        n % 0x10000,
        std::process::id(),
        c.vm_mac,
        c.filter
    )
}

// ---------------------------------------------------------------------------------------------
// The generator: a seeded PRNG (splitmix64)

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    fn pick<T: Copy>(&mut self, s: &[T]) -> T {
        s[self.below(s.len())]
    }
    /// True with probability `pct` percent.
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

#[derive(Clone, Debug)]
struct Rule {
    action: &'static str,
    dir: &'static str,
    prio: i32,
    /// None: a rule without a protocol element.
    proto: Option<&'static str>,
    attrs: Vec<(&'static str, String)>,
    match_no: bool,
    stateless: bool,
}

#[derive(Clone, Debug)]
struct Sub {
    chain: &'static str,
    priority: Option<i32>,
    rules: Vec<Rule>,
}

#[derive(Clone, Debug)]
struct Spec {
    rules: Vec<Rule>,
    sub: Option<Sub>,
    frames: Vec<String>,
}

const ROOT_PROTOS: [Option<&str>; 11] = [
    Some("mac"),
    Some("arp"),
    Some("ip"),
    Some("tcp"),
    Some("udp"),
    Some("icmp"),
    Some("all"),
    Some("tcp-ipv6"),
    Some("udp-ipv6"),
    Some("icmpv6"),
    None,
];
const PRIOS: [i32; 8] = [-100, 100, 200, 300, 500, 500, 700, 900];

fn is_ethernet(proto: Option<&str>) -> bool {
    matches!(proto, Some("mac" | "arp" | "ip"))
}

fn gen_rule(rng: &mut Rng, protos: &[Option<&'static str>]) -> Rule {
    let proto = rng.pick(protos);
    let mut attrs: Vec<(&'static str, String)> = Vec::new();
    fn maybe(
        rng: &mut Rng,
        attrs: &mut Vec<(&'static str, String)>,
        name: &'static str,
        pool: &[&str],
    ) {
        if rng.chance(35) {
            attrs.push((name, rng.pick(pool).to_string()));
        }
    }
    match proto {
        Some("mac") => {
            maybe(
                rng,
                &mut attrs,
                "protocolid",
                &["arp", "ipv4", "ipv6", "0x88b5"],
            );
            maybe(
                rng,
                &mut attrs,
                "srcmacaddr",
                &[VM_MAC, PEER_MAC, OTHER_MAC],
            );
            maybe(rng, &mut attrs, "dstmacaddr", &[VM_MAC, PEER_MAC]);
        }
        Some("arp") => {
            maybe(rng, &mut attrs, "opcode", &["Request", "Reply"]);
            maybe(rng, &mut attrs, "arpsrcipaddr", &IPS);
            maybe(rng, &mut attrs, "arpdstipaddr", &IPS);
            maybe(rng, &mut attrs, "srcmacaddr", &[VM_MAC, OTHER_MAC]);
        }
        Some("ip") => {
            maybe(rng, &mut attrs, "srcipaddr", &IPS);
            maybe(rng, &mut attrs, "dstipaddr", &IPS);
            let p = rng.pick(&["tcp", "udp", "icmp", ""]);
            if !p.is_empty() {
                attrs.push(("protocol", p.to_string()));
                if p != "icmp" {
                    maybe(rng, &mut attrs, "srcportstart", &PORTS);
                    maybe(rng, &mut attrs, "dstportstart", &PORTS);
                }
            }
        }
        Some(p @ ("tcp" | "udp")) => {
            maybe(rng, &mut attrs, "srcipaddr", &IPS);
            maybe(rng, &mut attrs, "dstipaddr", &IPS);
            maybe(rng, &mut attrs, "srcportstart", &PORTS);
            maybe(rng, &mut attrs, "dstportstart", &PORTS);
            if p == "tcp" {
                maybe(
                    rng,
                    &mut attrs,
                    "flags",
                    &[
                        "SYN/SYN",
                        "SYN,ACK/SYN",
                        "SYN,ACK/SYN,ACK",
                        "ACK/ACK",
                        "RST/RST",
                        "SYN,ACK,RST,FIN/ACK",
                    ],
                );
            }
            maybe(
                rng,
                &mut attrs,
                "state",
                &["NEW", "ESTABLISHED", "NEW,ESTABLISHED"],
            );
        }
        Some("icmp") => {
            maybe(rng, &mut attrs, "srcipaddr", &IPS);
            maybe(rng, &mut attrs, "dstipaddr", &IPS);
            maybe(rng, &mut attrs, "type", &["8", "0", "3"]);
            maybe(rng, &mut attrs, "state", &["NEW", "ESTABLISHED"]);
        }
        Some("all") => {
            maybe(rng, &mut attrs, "srcipaddr", &IPS);
            maybe(rng, &mut attrs, "dstipaddr", &IPS);
            maybe(rng, &mut attrs, "state", &["NEW", "ESTABLISHED"]);
        }
        Some("tcp-ipv6" | "udp-ipv6") => {
            maybe(rng, &mut attrs, "srcipaddr", &IP6S);
            maybe(rng, &mut attrs, "dstipaddr", &IP6S);
            maybe(rng, &mut attrs, "srcportstart", &PORTS);
            maybe(rng, &mut attrs, "dstportstart", &PORTS);
        }
        Some("icmpv6") => {
            maybe(rng, &mut attrs, "srcipaddr", &IP6S);
            maybe(rng, &mut attrs, "type", &["128", "129"]);
        }
        _ => {}
    }
    let mut match_no = !attrs.is_empty() && rng.chance(15);
    // With match='no' the ports take the negation of srcportstart (libvirt): give it one.
    let ports = |a: &[(&str, String)]| a.iter().any(|(k, _)| k.ends_with("portstart"));
    if match_no && ports(&attrs) && !attrs.iter().any(|(k, _)| *k == "srcportstart") {
        attrs.push(("srcportstart", rng.pick(&PORTS).to_string()));
    }
    if attrs.is_empty() {
        match_no = false;
    }
    let ip_layer = !is_ethernet(proto) && proto.is_some();
    let stateless = ip_layer && !attrs.iter().any(|(k, _)| *k == "state") && rng.chance(15);
    let mut actions = vec!["accept", "accept", "drop", "drop", "reject", "return"];
    if is_ethernet(proto) {
        actions.push("continue");
    }
    Rule {
        action: rng.pick(&actions),
        dir: rng.pick(&["in", "out", "inout"]),
        prio: rng.pick(&PRIOS),
        proto,
        attrs,
        match_no,
        stateless,
    }
}

fn gen_frames(rng: &mut Rng) -> Vec<String> {
    let want = rng.range(6, 12);
    let mut frames: Vec<String> = Vec::new();
    let peer_ip = |rng: &mut Rng| rng.pick(&["10.0.0.1", "10.0.0.9"]).to_string();
    while frames.len() < want {
        let out = rng.chance(50);
        let d = if out { "out" } else { "in" };
        let (src, dst) = {
            let p = peer_ip(rng);
            let (mut s, mut t) = if out {
                (VM_IP.to_string(), p)
            } else {
                (p, VM_IP.to_string())
            };
            if rng.chance(20) {
                s = rng.pick(&IPS).to_string();
            }
            if rng.chance(20) {
                t = rng.pick(&IPS).to_string();
            }
            (s, t)
        };
        let port = |rng: &mut Rng| rng.pick(&["22", "53", "80", "40000"]).to_string();
        let mut extra = String::new();
        if rng.chance(8) {
            let _ = write!(extra, " smac={OTHER_MAC}");
        }
        match rng.below(10) {
            0 => {
                let op = rng.pick(&["request", "reply"]);
                let _ = write!(
                    extra,
                    " op={op} spa={} tpa={}",
                    rng.pick(&IPS),
                    rng.pick(&IPS)
                );
                frames.push(format!("{d} arp{extra}"));
            }
            1 => {
                let (s, t) = if out {
                    (IP6S[0], IP6S[1])
                } else {
                    (IP6S[1], IP6S[0])
                };
                let l4 = rng.pick(&["tcp flags=S", "udp", "icmp type=128", "icmp type=129"]);
                let (l4, fl) = l4.split_once(' ').unwrap_or((l4, ""));
                let ports = if l4 == "icmp" {
                    String::new()
                } else {
                    format!(" sport={} dport={}", port(rng), port(rng))
                };
                frames.push(format!("{d} ipv6 {l4} src={s} dst={t}{ports} {fl}{extra}"));
            }
            2 => frames.push(format!(
                "{d} raw type={}{extra}",
                rng.pick(&["0x88b5", "0x88b6"])
            )),
            3 => {
                let ty = rng.pick(&["8", "0", "3"]);
                frames.push(format!(
                    "{d} ipv4 icmp src={src} dst={dst} type={ty}{extra}"
                ));
            }
            4 => {
                let fl = rng.pick(&["S", "SA", "A", "PA", "R", "FA"]);
                frames.push(format!(
                    "{d} ipv4 tcp src={src} dst={dst} sport={} dport={} flags={fl}{extra}",
                    port(rng),
                    port(rng)
                ));
            }
            5 => frames.push(format!(
                "{d} ipv4 udp src={src} dst={dst} sport={} dport={}{extra}",
                port(rng),
                port(rng)
            )),
            6..=7 => {
                // A TCP conversation: SYN, SYN-ACK, ACK (and maybe data), client on side `d`.
                let (r, cp, sp) = (
                    if out { "in" } else { "out" },
                    rng.pick(&["40000", "40001"]),
                    rng.pick(&PORTS),
                );
                let n = rng.range(2, 4);
                let steps = [
                    (d, &src, &dst, cp, sp, "S"),
                    (r, &dst, &src, sp, cp, "SA"),
                    (d, &src, &dst, cp, sp, "A"),
                    (r, &dst, &src, sp, cp, "PA"),
                ];
                for (w, a, b, x, y, f) in steps.iter().take(n) {
                    frames.push(format!(
                        "{w} ipv4 tcp src={a} dst={b} sport={x} dport={y} flags={f}"
                    ));
                }
            }
            _ => {
                // A UDP exchange: request and reply (maybe a second request).
                let r = if out { "in" } else { "out" };
                let (cp, sp) = (rng.pick(&["40000", "40001"]), rng.pick(&PORTS));
                frames.push(format!(
                    "{d} ipv4 udp src={src} dst={dst} sport={cp} dport={sp}"
                ));
                frames.push(format!(
                    "{r} ipv4 udp src={dst} dst={src} sport={sp} dport={cp}"
                ));
                if rng.chance(30) {
                    frames.push(format!(
                        "{d} ipv4 udp src={src} dst={dst} sport={cp} dport={sp}"
                    ));
                }
            }
        }
    }
    frames.truncate(12);
    frames
        .into_iter()
        .map(|f| f.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn gen_spec(seed: u64) -> Spec {
    let mut rng = Rng(seed);
    let n = rng.range(1, 8);
    let mut sub = None;
    if rng.chance(30) {
        let chain = rng.pick(&["ipv4", "arp", "mac"]);
        let proto = match chain {
            "ipv4" => "ip",
            c => c,
        };
        let k = rng.range(1, 3);
        let rules = (0..k).map(|_| gen_rule(&mut rng, &[Some(proto)])).collect();
        let priority = if rng.chance(30) {
            Some(rng.pick(&[-900, -750, -600, -400, 0, 300]))
        } else {
            None
        };
        sub = Some(Sub {
            chain,
            priority,
            rules,
        });
    }
    let mut rules: Vec<Rule> = (0..n).map(|_| gen_rule(&mut rng, &ROOT_PROTOS)).collect();
    // Often a catch-all at the end, so that not everything is accepted by default.
    if rng.chance(50) {
        let proto = rng.pick(&[Some("all"), None, Some("tcp"), Some("udp"), Some("mac")]);
        rules.push(Rule {
            action: rng.pick(&["drop", "drop", "reject"]),
            dir: rng.pick(&["in", "out", "inout", "inout"]),
            prio: 1000,
            proto,
            attrs: Vec::new(),
            match_no: false,
            stateless: false,
        });
    }
    Spec {
        rules,
        sub,
        frames: gen_frames(&mut rng),
    }
}

/// Rule `i` of the root filter, then of the sub-chain filter.
fn rule_mut(s: &mut Spec, i: usize) -> &mut Rule {
    let nroot = s.rules.len();
    if i < nroot {
        &mut s.rules[i]
    } else {
        &mut s.sub.as_mut().unwrap().rules[i - nroot]
    }
}

fn rule_xml(r: &Rule) -> String {
    let mut s = format!(
        "  <rule action='{}' direction='{}' priority='{}'",
        r.action, r.dir, r.prio
    );
    if r.stateless {
        s.push_str(" statematch='false'");
    }
    match r.proto {
        None => s.push_str("/>\n"),
        Some(p) => {
            s.push_str(&format!(">\n    <{p}"));
            if r.match_no {
                s.push_str(" match='no'");
            }
            for (k, v) in &r.attrs {
                s.push_str(&format!(" {k}='{v}'"));
            }
            s.push_str("/>\n  </rule>\n");
        }
    }
    s
}

impl Spec {
    fn files(&self) -> CaseFiles {
        let mut root = format!("<filter name='{ROOT_FILTER}' chain='root'>\n");
        let mut filters = Vec::new();
        if let Some(sub) = &self.sub {
            let _ = writeln!(root, "  <filterref filter='{SUB_FILTER}'/>");
            let prio = sub
                .priority
                .map(|p| format!(" priority='{p}'"))
                .unwrap_or_default();
            let mut x = format!("<filter name='{SUB_FILTER}' chain='{}'{prio}>\n", sub.chain);
            for r in &sub.rules {
                x.push_str(&rule_xml(r));
            }
            x.push_str("</filter>\n");
            filters.push((format!("{SUB_FILTER}.xml"), x));
        }
        for r in &self.rules {
            root.push_str(&rule_xml(r));
        }
        root.push_str("</filter>\n");
        filters.insert(0, (format!("{ROOT_FILTER}.xml"), root));
        CaseFiles {
            filter: ROOT_FILTER.into(),
            params: Vec::new(),
            vm_mac: VM_MAC.into(),
            peer_mac: PEER_MAC.into(),
            filters,
            frames: self.frames.clone(),
        }
    }

    /// Smaller variants, most promising first.
    fn shrink_candidates(&self) -> Vec<Spec> {
        let mut v = Vec::new();
        if self.frames.len() > 1 {
            // Halves first, then single frames.
            let h = self.frames.len() / 2;
            if h >= 1 && self.frames.len() >= 4 {
                let mut a = self.clone();
                a.frames.drain(h..);
                v.push(a);
                let mut b = self.clone();
                b.frames.drain(..h);
                v.push(b);
            }
            for i in 0..self.frames.len() {
                let mut c = self.clone();
                c.frames.remove(i);
                v.push(c);
            }
        }
        if self.sub.is_some() {
            let mut c = self.clone();
            c.sub = None;
            v.push(c);
        }
        if self.rules.len() + self.sub.as_ref().map_or(0, |s| s.rules.len()) > 1 {
            for i in 0..self.rules.len() {
                let mut c = self.clone();
                c.rules.remove(i);
                v.push(c);
            }
        }
        if let Some(sub) = &self.sub {
            if sub.rules.len() > 1 {
                for i in 0..sub.rules.len() {
                    let mut c = self.clone();
                    c.sub.as_mut().unwrap().rules.remove(i);
                    v.push(c);
                }
            }
            if sub.priority.is_some() {
                let mut c = self.clone();
                c.sub.as_mut().unwrap().priority = None;
                v.push(c);
            }
        }
        // Simplify the rules of both filters.
        let nroot = self.rules.len();
        let nsub = self.sub.as_ref().map_or(0, |s| s.rules.len());
        for i in 0..nroot + nsub {
            let r = if i < nroot {
                &self.rules[i]
            } else {
                &self.sub.as_ref().unwrap().rules[i - nroot]
            };
            let mut edit = |f: &dyn Fn(&mut Rule)| {
                let mut c = self.clone();
                f(rule_mut(&mut c, i));
                v.push(c);
            };
            for j in 0..r.attrs.len() {
                edit(&|r: &mut Rule| {
                    r.attrs.remove(j);
                    if r.attrs.is_empty() {
                        r.match_no = false;
                    }
                });
            }
            if r.match_no {
                edit(&|r: &mut Rule| r.match_no = false);
            }
            if r.stateless {
                edit(&|r: &mut Rule| r.stateless = false);
            }
            if r.dir == "inout" {
                edit(&|r: &mut Rule| r.dir = "in");
                edit(&|r: &mut Rule| r.dir = "out");
            }
        }
        v
    }
}

// ---------------------------------------------------------------------------------------------
// pcapng (only what `nwf synth` writes: SHB, IDB, EPB)

// ---------------------------------------------------------------------------------------------
// nwf

#[derive(Clone, Debug)]
struct NwfVerdict {
    verdict: String,
    layer: String,
    rule: String,
    summary: String,
}

fn nwf(args: &[&str]) -> Result<String, String> {
    let mut v = vec![args[0], "--color", "never"];
    v.extend_from_slice(&args[1..]);
    run(env!("CARGO_BIN_EXE_nwf"), &v)
}

fn parse_verdicts(out: &str) -> Result<Vec<NwfVerdict>, String> {
    let mut v = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let j: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("nwf simulate JSON: {e}: {line}"))?;
        let s = |k: &str| j[k].as_str().unwrap_or("").to_string();
        let r = &j["rule"];
        let rule = if r.is_null() {
            "no rule (default)".to_string()
        } else {
            let file = r["file"].as_str().unwrap_or("?");
            let file = file.rsplit('/').next().unwrap_or(file);
            format!(
                "{file}:{} (filter {})",
                r["line"],
                r["filter"].as_str().unwrap_or("?")
            )
        };
        v.push(NwfVerdict {
            verdict: s("verdict"),
            layer: s("layer"),
            rule,
            summary: s("summary"),
        });
    }
    Ok(v)
}

/// If every error of a failed `nwf compile` is E0401: the first message.
fn e0401_reason(stderr: &str) -> Option<String> {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    if errors.is_empty() || !errors.iter().all(|l| l.starts_with("error[E0401]")) {
        return None;
    }
    Some(errors[0].to_string())
}

// ---------------------------------------------------------------------------------------------
// The network, shared by all cases of a test; torn down by Drop (also when a step panics)

struct Net {
    bridge: String,
    vm_port: String,
    peer_port: String,
    vm_ns: String,
    peer_ns: String,
    zone_table: String,
    zones: Vec<u16>,
    zone_base: u16,
    vm_sock: Option<OwnedFd>,
    peer_sock: Option<OwnedFd>,
    /// Cleanup commands, run in reverse order.
    undo: Vec<Vec<String>>,
}

impl Net {
    fn step(&mut self, prog: &str, args: &[&str], undo: Option<&[&str]>) {
        must(prog, args);
        if let Some(u) = undo {
            let mut c = vec![prog.to_string()];
            c.extend(u.iter().map(|s| s.to_string()));
            self.undo.push(c);
        }
    }

    /// `tag`: one letter telling the tests of this file apart.
    fn build(tag: char) -> Net {
        let pid = std::process::id();
        let t = format!("nwp{:05}{tag}", pid % 100_000);
        let mut net = Net {
            bridge: format!("{t}b"),
            vm_port: format!("{t}v"),
            peer_port: format!("{t}p"),
            vm_ns: format!("nwp{pid}{tag}-vm"),
            peer_ns: format!("nwp{pid}{tag}-peer"),
            zone_table: format!("nwfp{pid}{tag}z"),
            zones: Vec::new(),
            zone_base: 40000 + ((pid % 24) as u16) * 1000 + if tag == 'r' { 900 } else { 0 },
            vm_sock: None,
            peer_sock: None,
            undo: Vec::new(),
        };
        let (b, v, p) = (
            net.bridge.clone(),
            net.vm_port.clone(),
            net.peer_port.clone(),
        );
        let (vns, pns) = (net.vm_ns.clone(), net.peer_ns.clone());
        for name in [&b, &v, &p] {
            assert!(
                run("ip", &["link", "show", name]).is_err(),
                "interface {name} already exists; not touching it"
            );
        }
        for ns in [&vns, &pns] {
            assert!(
                !Path::new(&format!("/run/netns/{ns}")).exists(),
                "namespace {ns} already exists; not touching it"
            );
        }
        let z = net.zone_table.clone();
        assert!(
            run("nft", &["list", "table", "inet", &z]).is_err(),
            "nft table inet {z} already exists; not touching it"
        );
        net.undo.push(vec![
            "nft".into(),
            "delete".into(),
            "table".into(),
            "inet".into(),
            z,
        ]);
        net.step("ip", &["netns", "add", &vns], Some(&["netns", "del", &vns]));
        net.step("ip", &["netns", "add", &pns], Some(&["netns", "del", &pns]));
        net.step(
            "ip",
            &[
                "link",
                "add",
                &b,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
                "mcast_snooping",
                "0",
            ],
            Some(&["link", "del", &b]),
        );
        for (port, inner, ns) in [(&v, "vm0", &vns), (&p, "peer0", &pns)] {
            net.step(
                "ip",
                &[
                    "link", "add", port, "type", "veth", "peer", "name", inner, "netns", ns,
                ],
                Some(&["link", "del", port]),
            );
        }
        for i in [&b, &v, &p] {
            let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{i}/disable_ipv6"), "1");
        }
        for port in [&v, &p] {
            net.step("ip", &["link", "set", port, "master", &b], None);
            // No learning: every unicast frame is flooded to the other port.
            net.step(
                "ip",
                &[
                    "link",
                    "set",
                    port,
                    "type",
                    "bridge_slave",
                    "learning",
                    "off",
                ],
                None,
            );
        }
        for i in [&b, &v, &p] {
            net.step("ip", &["link", "set", i, "up"], None);
        }
        for (ns, ifname) in [(&vns, "vm0"), (&pns, "peer0")] {
            for sysctl in [
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ] {
                net.step("ip", &["netns", "exec", ns, "sysctl", "-qw", sysctl], None);
            }
            net.step("ip", &["-n", ns, "link", "set", ifname, "up"], None);
        }
        net.vm_sock = Some(packet_socket(&vns, "vm0"));
        net.peer_sock = Some(packet_socket(&pns, "peer0"));
        net.wait_forwarding();
        net
    }

    /// Waits until the bridge forwards both ways (ports just brought up may not yet).
    fn wait_forwarding(&self) {
        let probe = |src: &str, dst: &str| -> Vec<u8> {
            let mac = |m: &str| -> Vec<u8> {
                m.split(':')
                    .map(|x| u8::from_str_radix(x, 16).unwrap())
                    .collect()
            };
            let mut f = mac(dst);
            f.extend(mac(src));
            f.extend([0x88, 0xb5]);
            f.resize(60, 0);
            f
        };
        let (vm, peer) = (
            self.vm_sock.as_ref().unwrap(),
            self.peer_sock.as_ref().unwrap(),
        );
        let t0 = Instant::now();
        while !(crosses(vm, peer, &probe(VM_MAC, PEER_MAC))
            && crosses(peer, vm, &probe(PEER_MAC, VM_MAC)))
        {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the bridge {} does not forward",
                self.bridge
            );
        }
    }

    /// A fresh conntrack zone for the bridge's traffic from now on.
    fn new_zone(&mut self, n: usize) -> u16 {
        let zone = self.zone_base + (n % 900) as u16;
        if in_path("conntrack") {
            for fam in ["ipv4", "ipv6"] {
                let _ = run("conntrack", &["-D", "-f", fam, "-w", &zone.to_string()]);
            }
        }
        let z = &self.zone_table;
        let script = format!(
            "table inet {z}\ndelete table inet {z}\ntable inet {z} {{\n\tchain prerouting {{\n\t\t\
             type filter hook prerouting priority raw; policy accept;\n\t\t\
             iifname \"{}\" ct zone set {zone}\n\t}}\n}}\n",
            self.bridge
        );
        nft_script(&script).unwrap_or_else(|e| panic!("zone table: {e}"));
        if !self.zones.contains(&zone) {
            self.zones.push(zone);
        }
        zone
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.vm_sock = None;
        self.peer_sock = None;
        while let Some(c) = self.undo.pop() {
            let args: Vec<&str> = c[1..].iter().map(|s| s.as_str()).collect();
            if let Err(e) = run(&c[0], &args) {
                let absent =
                    c[0] == "nft" && run("nft", &["list", "table", args[2], args[3]]).is_err();
                if !absent {
                    eprintln!("nft proptest: cleanup: {e}");
                }
            }
        }
        if in_path("conntrack") {
            for z in &self.zones {
                for fam in ["ipv4", "ipv6"] {
                    let _ = run("conntrack", &["-D", "-f", fam, "-w", &z.to_string()]);
                }
            }
        }
    }
}

/// Loads an nft script (one transaction) from a temporary file.
fn nft_script(script: &str) -> Result<(), String> {
    let path = std::env::temp_dir().join(format!(
        "nwf-pt-{}-{}.nft",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    fs::write(&path, script).map_err(|e| e.to_string())?;
    let r = run("nft", &["-f", path.to_str().unwrap()]).map(|_| ());
    let _ = fs::remove_file(&path);
    r
}

/// The tables of one case; deleted on drop.
struct NftTables(String);

impl Drop for NftTables {
    fn drop(&mut self) {
        for fam in ["bridge", "inet"] {
            if run("nft", &["delete", "table", fam, &self.0]).is_err()
                && run("nft", &["list", "table", fam, &self.0]).is_ok()
            {
                eprintln!(
                    "nft proptest: cleanup: cannot delete nft table {fam} {}",
                    self.0
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AF_PACKET sockets inside a namespace

// ---------------------------------------------------------------------------------------------
// One case through nwf and the kernel

struct FrameResult {
    text: String,
    delivered: bool,
    nwf: NwfVerdict,
}

impl FrameResult {
    fn agrees(&self) -> bool {
        self.delivered == (self.nwf.verdict == "accept")
    }
}

enum Checked {
    /// nwf refuses the case (E0401, or an invalid filter): the reason.
    Refused(String),
    Ran {
        results: Vec<FrameResult>,
        listing: String,
        zone: u16,
    },
}

impl Checked {
    fn mismatches(&self) -> usize {
        match self {
            Checked::Refused(_) => 0,
            Checked::Ran { results, .. } => results.iter().filter(|r| !r.agrees()).count(),
        }
    }
}

fn check_case(net: &mut Net, c: &CaseFiles) -> Result<Checked, String> {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let work = std::env::temp_dir().join(format!("nwf-pt-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(work.join("filters")).map_err(|e| e.to_string())?;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_case_in(net, c, n, &work)
    }));
    let _ = fs::remove_dir_all(&work);
    r.unwrap_or_else(|p| Err(format!("panicked: {}", panic_message(p))))
}

fn check_case_in(net: &mut Net, c: &CaseFiles, n: usize, work: &Path) -> Result<Checked, String> {
    for (name, xml) in &c.filters {
        fs::write(work.join("filters").join(name), xml).map_err(|e| e.to_string())?;
    }
    let fdir = work.join("filters");
    let fdir = fdir.to_str().unwrap();
    let frames = work.join("frames");
    fs::write(&frames, c.frames.join("\n") + "\n").map_err(|e| e.to_string())?;
    let binding = work.join("binding.xml");
    fs::write(&binding, binding_xml(c, &net.vm_port, n)).map_err(|e| e.to_string())?;
    let binding = binding.to_str().unwrap();
    let pcap = work.join("frames.pcapng");
    let pcap = pcap.to_str().unwrap();

    // nwf's verdicts.
    nwf(&[
        "synth",
        "--vm-mac",
        &c.vm_mac,
        "--peer-mac",
        &c.peer_mac,
        "-o",
        pcap,
        frames.to_str().unwrap(),
    ])?;
    let bytes = pcapng_frames(&fs::read(pcap).map_err(|e| e.to_string())?)?;
    let verdicts = match nwf(&[
        "simulate",
        "--binding",
        binding,
        "--filters",
        fdir,
        "--format",
        "json",
        pcap,
    ]) {
        Ok(out) => parse_verdicts(&out)?,
        Err(e) => return Ok(Checked::Refused(format!("nwf simulate: {e}"))),
    };
    if bytes.len() != c.frames.len() || verdicts.len() != c.frames.len() {
        return Err(format!(
            "{} frames described, {} in the capture, {} verdicts",
            c.frames.len(),
            bytes.len(),
            verdicts.len()
        ));
    }

    // The ruleset.
    let table = format!("nwfp{}_{n}", std::process::id());
    let script = work.join("ruleset.nft");
    let exe = env!("CARGO_BIN_EXE_nwf");
    let out = Command::new(exe)
        .args([
            "compile",
            "--color",
            "never",
            "--target",
            "nft",
            "--binding",
            binding,
            "--filters",
            fdir,
            "--table",
            &table,
            "-o",
            script.to_str().unwrap(),
        ])
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("nwf compile: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if let Some(reason) = e0401_reason(&stderr) {
            return Ok(Checked::Refused(reason));
        }
        return Err(format!(
            "nwf compile failed ({}): {}",
            out.status,
            stderr.trim()
        ));
    }
    let zone = net.new_zone(n);
    let tables = NftTables(table.clone());
    run("nft", &["-f", script.to_str().unwrap()]).map_err(|e| {
        format!(
            "loading the generated ruleset: {e}\n--- script\n{}",
            fs::read_to_string(&script).unwrap_or_default()
        )
    })?;
    let (vm, peer) = (
        net.vm_sock.as_ref().unwrap(),
        net.peer_sock.as_ref().unwrap(),
    );
    let mut results = Vec::new();
    for ((text, data), v) in c.frames.iter().zip(&bytes).zip(verdicts) {
        let out = text.split_whitespace().find(|w| !w.starts_with("at=")) == Some("out");
        let delivered = if out {
            crosses(vm, peer, data)
        } else {
            crosses(peer, vm, data)
        };
        let mut v = v;
        if selfcheck() && text.contains(" udp") {
            // A planted disagreement, to check the shrinker.
            v.verdict = if v.verdict == "accept" {
                "drop"
            } else {
                "accept"
            }
            .into();
        }
        results.push(FrameResult {
            text: text.clone(),
            delivered,
            nwf: v,
        });
    }
    let listing = nft_listing(&table);
    drop(tables);
    Ok(Checked::Ran {
        results,
        listing,
        zone,
    })
}

// ---------------------------------------------------------------------------------------------
// Reports and regression folders

fn result_word(d: bool) -> &'static str {
    if d {
        "delivered"
    } else {
        "not delivered"
    }
}

fn describe_results(results: &[FrameResult]) -> String {
    let mut s = String::new();
    for (i, r) in results.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {} frames:{:<2} {:<60} kernel {:<13} nwf {} at the {} layer by {}",
            if r.agrees() { "  " } else { "!!" },
            i + 1,
            r.text,
            result_word(r.delivered),
            r.nwf.verdict,
            r.nwf.layer,
            r.nwf.rule
        );
    }
    s
}

fn fnv64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn case_text(c: &CaseFiles) -> String {
    let mut s = String::new();
    for (name, xml) in &c.filters {
        let _ = writeln!(s, "--- filters/{name}\n{xml}");
    }
    let _ = writeln!(s, "--- frames\n{}", c.frames.join("\n"));
    s
}

/// Writes the case to `testdata/nft-regressions/<hash>/`; the folder.
fn save_regression(c: &CaseFiles, header: &str, report: &str) -> PathBuf {
    let hash = format!("{:016x}", fnv64(&case_text(c)));
    let base = if selfcheck() {
        std::env::temp_dir().join(format!("nwf-pt-selfcheck-{}", std::process::id()))
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/nft-regressions")
    };
    let dir = base.join(hash);
    let _ = fs::create_dir_all(dir.join("filters"));
    let mut ct = String::new();
    for l in header.lines() {
        let _ = writeln!(ct, "# {l}");
    }
    let _ = writeln!(ct, "filter: {}", c.filter);
    for (k, v) in &c.params {
        let _ = writeln!(ct, "param: {k}={v}");
    }
    let _ = writeln!(ct, "vm-mac: {}\npeer-mac: {}", c.vm_mac, c.peer_mac);
    let _ = fs::write(dir.join("case.txt"), ct);
    for (name, xml) in &c.filters {
        let _ = fs::write(dir.join("filters").join(name), xml);
    }
    let _ = fs::write(dir.join("frames"), c.frames.join("\n") + "\n");
    let _ = fs::write(dir.join("kernel.txt"), report);
    dir
}

// ---------------------------------------------------------------------------------------------
// The property

/// `NWF_PROPTEST_SELFCHECK=1`: nwf's verdict of every UDP frame is inverted (a planted
/// disagreement that the shrinker must bring down to one rule-less UDP frame); the findings go to
/// a temporary folder instead of testdata/.
fn selfcheck() -> bool {
    std::env::var_os("NWF_PROPTEST_SELFCHECK").is_some()
}

fn verbose() -> bool {
    std::env::var_os("NWF_PROPTEST_VERBOSE").is_some()
}

/// Shrinks a failing spec greedily: the smallest variant found that still disagrees.
fn shrink(net: &mut Net, spec: Spec) -> (Spec, usize) {
    let started = Instant::now();
    let mut best = spec;
    let mut runs = 0;
    'outer: loop {
        for cand in best.shrink_candidates() {
            if runs >= SHRINK_RUNS || started.elapsed() > SHRINK_TIME {
                break 'outer;
            }
            runs += 1;
            if let Ok(ch) = check_case(net, &cand.files()) {
                if ch.mismatches() > 0 {
                    if verbose() {
                        eprintln!(
                            "    shrink: {} rules, {} frames",
                            cand.rules.len(),
                            cand.frames.len()
                        );
                    }
                    best = cand;
                    continue 'outer;
                }
            }
        }
        break;
    }
    (best, runs)
}

#[test]
fn nft_random_filters_match_nwf_simulate() {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if prerequisites("the nft property test").is_none() {
        return;
    }
    let cases = env_usize("NWF_PROPTEST_CASES", 24);
    let seed: u64 = std::env::var("NWF_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            (t.as_nanos() as u64 ^ u64::from(std::process::id())) % 1_000_000_000
        });
    let keep_going = std::env::var_os("NWF_PROPTEST_KEEP_GOING").is_some();
    eprintln!(
        "nft proptest: {}; {cases} cases, seed {seed} (NWF_PROPTEST_SEED={seed} to replay)",
        bridge_nf_sysctls()
    );
    let started = Instant::now();
    let mut net = Net::build('p');
    let (mut ran, mut frames, mut refused, mut drawn) = (0usize, 0usize, Vec::new(), 0u64);
    let mut errors = Vec::new();
    let mut findings = Vec::new();
    while ran < cases && drawn < (cases as u64) * 4 {
        let case_seed = seed.wrapping_mul(1000).wrapping_add(drawn);
        drawn += 1;
        let spec = gen_spec(case_seed);
        let files = spec.files();
        let t = Instant::now();
        let checked = match check_case(&mut net, &files) {
            Ok(c) => c,
            Err(e) => {
                errors.push(format!("case seed {case_seed}: {e}\n{}", case_text(&files)));
                continue;
            }
        };
        let (results, listing) = match &checked {
            Checked::Refused(why) => {
                if verbose() {
                    eprintln!("  case seed {case_seed}: refused: {why}");
                }
                refused.push(why.clone());
                continue;
            }
            Checked::Ran {
                results, listing, ..
            } => (results, listing),
        };
        ran += 1;
        frames += results.len();
        let bad = checked.mismatches();
        if verbose() || bad > 0 {
            eprintln!(
                "  case {ran} (seed {case_seed}): {} rules{}, {} frames, {bad} mismatches ({:.1}s)",
                spec.rules.len(),
                spec.sub
                    .as_ref()
                    .map(|s| format!(" + {} in chain {}", s.rules.len(), s.chain))
                    .unwrap_or_default(),
                results.len(),
                t.elapsed().as_secs_f64()
            );
        }
        if verbose() {
            eprint!("{}", describe_results(results));
        }
        if bad == 0 {
            continue;
        }
        let _ = listing;
        // Once more: a disagreement the kernel does not repeat is not kept.
        let again = check_case(&mut net, &files)
            .map(|c| c.mismatches())
            .unwrap_or(0);
        if again == 0 {
            eprintln!("  case seed {case_seed}: the disagreement did not repeat; not kept");
            continue;
        }
        let t = Instant::now();
        let (min, runs) = shrink(&mut net, spec);
        let mfiles = min.files();
        let confirm = check_case(&mut net, &mfiles);
        let (results, listing, zone) = match &confirm {
            Ok(Checked::Ran {
                results,
                listing,
                zone,
            }) if results.iter().any(|r| !r.agrees()) => (results, listing, zone),
            _ => {
                eprintln!("  case seed {case_seed}: the shrunk case no longer disagrees; not kept");
                continue;
            }
        };
        let mut report = format!(
            "nwf nft backend vs nwf simulate: found by tests/nft_proptest.rs (case seed \
             {case_seed}), shrunk in {runs} kernel runs ({:.0}s)\n",
            t.elapsed().as_secs_f64()
        );
        for r in results.iter().filter(|r| !r.agrees()) {
            let _ = writeln!(
                report,
                "`{}`: kernel {}, nwf {} ({})",
                r.text,
                result_word(r.delivered),
                r.nwf.verdict,
                r.nwf.summary
            );
        }
        let header = report.clone();
        let _ = write!(
            report,
            "\n{}\nevery frame (conntrack zone {zone}):\n{}\nthe ruleset as loaded:\n{listing}",
            case_text(&mfiles),
            describe_results(results)
        );
        let dir = save_regression(&mfiles, &header, &report);
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/");
        let msg = format!(
            "FINDING (saved to {}):\n{report}",
            dir.display().to_string().trim_start_matches(root)
        );
        eprintln!("{msg}");
        findings.push(msg);
        if !keep_going {
            break;
        }
    }
    drop(net);
    let mut reasons: Vec<(String, usize)> = Vec::new();
    for r in &refused {
        let key: String = r.chars().take(110).collect();
        match reasons.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 += 1,
            None => reasons.push((key, 1)),
        }
    }
    for (k, n) in &reasons {
        eprintln!("  refused {n}x: {k}");
    }
    for e in &errors {
        eprintln!("ERROR {e}");
    }
    eprintln!(
        "nft proptest: {ran} cases, {frames} frames compared, {} refused by nwf, {} errors, {} \
         findings ({:.1}s)",
        refused.len(),
        errors.len(),
        findings.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        errors.is_empty(),
        "{} cases failed to run (see above)",
        errors.len()
    );
    assert!(
        findings.is_empty(),
        "the kernel and nwf simulate disagree:\n{}",
        findings.join("\n")
    );
}

/// Every folder of `testdata/nft-regressions/` through the same comparison.
#[test]
fn nft_regressions_replay() {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/nft-regressions");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("case.txt").is_file())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    if dirs.is_empty() {
        eprintln!("nft regressions: no case in testdata/nft-regressions/");
        return;
    }
    if prerequisites("the nft regression replay").is_none() {
        return;
    }
    eprintln!("nft regressions: {}", bridge_nf_sysctls());
    let mut net = Net::build('r');
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let c = match load_case(dir) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        match check_case(&mut net, &c) {
            Err(e) => failures.push(format!("{name}: {e}")),
            Ok(Checked::Refused(why)) => eprintln!("  {name}: refused by nwf: {why}"),
            Ok(ch @ Checked::Ran { .. }) => {
                let bad = ch.mismatches();
                eprintln!("  {name}: {} frames, {bad} mismatches", c.frames.len());
                if let Checked::Ran {
                    results, listing, ..
                } = &ch
                {
                    if bad > 0 {
                        failures.push(format!(
                            "{name}:\n{}the ruleset as loaded:\n{listing}",
                            describe_results(results)
                        ));
                    }
                }
            }
        }
    }
    drop(net);
    assert!(
        failures.is_empty(),
        "nft regressions: {} cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
