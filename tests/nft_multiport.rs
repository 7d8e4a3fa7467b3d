//! nft backend, several ports in the real kernel: ONE script compiled from TWO bindings
//! (`nwf compile --binding a.xml --binding b.xml`) must give, frame by frame, the verdicts of
//! `nwf simulate` for each port, including traffic between the two VMs, which must pass the
//! sender's from-VM chains and the receiver's to-VM chains (as with libvirt).
//!
//! The network: a Linux bridge with three veth ports, each with its other end in a namespace:
//! VM port a (filter `nwm-web`: clean-traffic plus a stateful web server), VM port b (filter
//! `nwm-dns`: a DNS/web client) and an unfiltered peer. Learning is off and the three MACs are
//! static FDB entries, so every (unicast) frame goes to exactly one port and never depends on
//! what the bridge saw before. Frames are sent raw (AF_PACKET) from the sender's namespace; a
//! frame is "delivered" when the identical bytes arrive at the receiver.
//!
//! `testdata/nft-multiport/frames` lists the frames (`SENDER>RECEIVER KIND key=value...`).
//! The test writes one `nwf synth` description per VM port holding the frames that cross that
//! port (sender: `out`, receiver: `in`), in order, and runs `nwf simulate --format json` on
//! each: a frame must be delivered iff every filtered port it crosses accepts it.
//!
//! The same frames run in three phases, each in a fresh conntrack zone (an nft table of this
//! test sets `ct zone` at priority raw on what its bridge forwards; the test checks that the
//! phase's packets went through that rule and, given the `conntrack` command, that their
//! connections are in the zone):
//! 1. `late-ports`: the script is loaded with `nft -f` BEFORE the bridge and the VM ports exist
//!    (the dispatch is by interface name);
//! 2. `reload`: the same script is loaded again on the live network (it replaces the two tables
//!    in one transaction; the listing must be the same and each table present once);
//! 3. `new-ports`: both VM ports are deleted and created again (new interface indexes) while
//!    the script stays loaded.
//!
//! Needs root, `ip`, `bridge`, `nft` and br_netfilter; without them it prints `SKIPPED: ...`
//! and passes, except under `CI=true` where it fails. Every link, namespace and nft table it
//! creates carries this process's id and is removed on every path (Drop). `NWF_MP_VERBOSE=1`
//! prints every frame's result.
//! Run: `cargo test --test nft_multiport -- --nocapture`.

mod common;
use common::*;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

// ---------------------------------------------------------------------------------------------
// The three endpoints

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    A,
    B,
    Peer,
}

impl Side {
    const ALL: [Side; 3] = [Side::A, Side::B, Side::Peer];
    /// The filtered ones (VM ports), in binding order.
    const VMS: [Side; 2] = [Side::A, Side::B];

    fn parse(s: &str) -> Option<Side> {
        match s {
            "a" => Some(Side::A),
            "b" => Some(Side::B),
            "peer" => Some(Side::Peer),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Side::A => "a",
            Side::B => "b",
            Side::Peer => "peer",
        }
    }

    fn mac(self) -> &'static str {
        match self {
            Side::A => "52:54:00:4d:00:0a",
            Side::B => "52:54:00:4d:00:0b",
            Side::Peer => "52:54:00:4d:00:01",
        }
    }

    /// The VM's address (the binding's `IP` parameter).
    fn ip(self) -> &'static str {
        match self {
            Side::A => "10.77.0.10",
            Side::B => "10.77.0.11",
            Side::Peer => "10.77.0.1",
        }
    }

    fn filter(self) -> &'static str {
        match self {
            Side::A => "nwm-web",
            Side::B => "nwm-dns",
            Side::Peer => unreachable!("the peer is not filtered"),
        }
    }

    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
            Side::Peer => 2,
        }
    }
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/nft-multiport")
}

// ---------------------------------------------------------------------------------------------
// Commands

// ---------------------------------------------------------------------------------------------
// The scenario

struct Frame {
    /// 1-based line in `frames`.
    line: usize,
    text: String,
    from: Side,
    to: Side,
    /// Position of the frame in the capture of port a and of port b (if it crosses it).
    pos: [Option<usize>; 2],
}

/// The frames and, per VM port, its `nwf synth` description.
fn load_frames(text: &str) -> Result<(Vec<Frame>, [String; 2]), String> {
    let mut frames = Vec::new();
    let mut desc = [String::new(), String::new()];
    let mut count = [0usize; 2];
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        let err = |m: &str| format!("frames line {}: {m}", i + 1);
        let (ends, rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| err("expected `SENDER>RECEIVER KIND ...`"))?;
        let (f, t) = ends
            .split_once('>')
            .ok_or_else(|| err("expected `SENDER>RECEIVER`"))?;
        let from = Side::parse(f).ok_or_else(|| err("sender must be a, b or peer"))?;
        let to = Side::parse(t).ok_or_else(|| err("receiver must be a, b or peer"))?;
        if from == to {
            return Err(err("sender and receiver are the same"));
        }
        let rest = rest.trim();
        // Both captures must hold the very same bytes: fix both MACs in the description.
        let mut body = rest.to_string();
        if !rest.split_whitespace().any(|w| w.starts_with("smac=")) {
            body.push_str(&format!(" smac={}", from.mac()));
        }
        if !rest.split_whitespace().any(|w| w.starts_with("dmac=")) {
            body.push_str(&format!(" dmac={}", to.mac()));
        }
        let mut pos = [None, None];
        for vm in Side::VMS {
            let dir = if from == vm {
                "out"
            } else if to == vm {
                "in"
            } else {
                continue;
            };
            let k = vm.index();
            desc[k].push_str(&format!("{dir} {body}  # frames:{}\n", i + 1));
            pos[k] = Some(count[k]);
            count[k] += 1;
        }
        frames.push(Frame {
            line: i + 1,
            text: line.to_string(),
            from,
            to,
            pos,
        });
    }
    Ok((frames, desc))
}

fn binding_xml(vm: Side, port: &str) -> String {
    format!(
        "<filterbinding>\n  <owner>\n    <name>nwm-{}</name>\n    \
         <uuid>6e776d00-{:04x}-4000-8000-{:012x}</uuid>\n  </owner>\n  \
         <portdev name='{port}'/>\n  <mac address='{}'/>\n  <filterref filter='{}'>\n    \
         <parameter name='IP' value='{}'/>\n  </filterref>\n</filterbinding>\n",
        vm.name(),
        vm.index(),
        std::process::id(),
        vm.mac(),
        vm.filter(),
        vm.ip()
    )
}

// ---------------------------------------------------------------------------------------------
// pcapng (only what `nwf synth` writes: SHB, IDB, EPB)

// ---------------------------------------------------------------------------------------------
// nwf

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

/// Synthesises the capture of one VM port and simulates it: (frame bytes, verdicts).
fn simulate_port(
    vm: Side,
    desc: &str,
    binding: &Path,
    work: &Path,
) -> Result<(Vec<Vec<u8>>, Vec<NwfVerdict>), String> {
    let dpath = work.join(format!("{}.frames", vm.name()));
    let pcap = work.join(format!("{}.pcapng", vm.name()));
    fs::write(&dpath, desc).map_err(|e| e.to_string())?;
    let filters = data_dir().join("filters");
    nwf(&[
        "synth",
        "--vm-mac",
        vm.mac(),
        "--peer-mac",
        Side::Peer.mac(),
        "-o",
        pcap.to_str().unwrap(),
        dpath.to_str().unwrap(),
    ])?;
    let bytes = pcapng_frames(&fs::read(&pcap).map_err(|e| e.to_string())?)?;
    let out = nwf(&[
        "simulate",
        "--binding",
        binding.to_str().unwrap(),
        "--filters",
        filters.to_str().unwrap(),
        "--format",
        "json",
        pcap.to_str().unwrap(),
    ])?;
    let mut v = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let j: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("nwf simulate JSON: {e}: {line}"))?;
        let s = |k: &str| j[k].as_str().unwrap_or("").to_string();
        let r = &j["rule"];
        let rule = if r.is_null() {
            "no rule (default)".to_string()
        } else {
            let root = concat!(env!("CARGO_MANIFEST_DIR"), "/");
            format!(
                "{}:{} (filter {})",
                r["file"].as_str().unwrap_or("?").trim_start_matches(root),
                r["line"],
                r["filter"].as_str().unwrap_or("?"),
            )
        };
        v.push(NwfVerdict {
            verdict: s("verdict"),
            layer: s("layer"),
            rule,
            summary: s("summary"),
        });
    }
    if v.len() != bytes.len() {
        return Err(format!(
            "port {}: {} frames in the capture, {} verdicts",
            vm.name(),
            bytes.len(),
            v.len()
        ));
    }
    Ok((bytes, v))
}

// ---------------------------------------------------------------------------------------------
// The rig: names, network and nft tables, all removed by Drop (also when a step panics)

struct Rig {
    bridge: String,
    /// Bridge port of a, b and the peer (Side::index order).
    ports: [String; 3],
    /// Namespace of a, b and the peer.
    ns: [String; 3],
    table: String,
    /// The table setting the conntrack zone of the bridge's traffic.
    zone_table: String,
    zones: Vec<u16>,
    zone_base: u16,
    /// Cleanup commands, run in reverse order.
    undo: Vec<Vec<String>>,
}

/// The interface name inside each namespace.
fn inner_if(side: Side) -> &'static str {
    if side == Side::Peer {
        "peer0"
    } else {
        "vm0"
    }
}

impl Rig {
    fn new() -> Rig {
        let pid = std::process::id();
        let tag = format!("nwm{:05}", pid % 100_000);
        Rig {
            bridge: format!("{tag}br"),
            ports: [format!("{tag}a"), format!("{tag}b"), format!("{tag}p")],
            ns: [
                format!("nwm{pid}-a"),
                format!("nwm{pid}-b"),
                format!("nwm{pid}-peer"),
            ],
            table: format!("nwfm{pid}"),
            zone_table: format!("nwfm{pid}z"),
            zones: Vec::new(),
            zone_base: 20000 + ((pid % 10_000) as u16) * 4,
            undo: Vec::new(),
        }
    }

    fn port(&self, s: Side) -> &str {
        &self.ports[s.index()]
    }

    fn ns(&self, s: Side) -> &str {
        &self.ns[s.index()]
    }

    fn on_drop(&mut self, prog: &str, args: &[&str]) {
        let mut c = vec![prog.to_string()];
        c.extend(args.iter().map(|s| s.to_string()));
        self.undo.push(c);
    }

    fn step(&mut self, prog: &str, args: &[&str], undo: Option<&[&str]>) {
        must(prog, args);
        if let Some(u) = undo {
            self.on_drop(prog, u);
        }
    }

    /// Registers the removal of the nft tables (before they are created: a failed or partial
    /// load is cleaned up too).
    fn own_tables(&mut self) {
        let (t, z) = (self.table.clone(), self.zone_table.clone());
        for (fam, name) in [("inet", &z), ("bridge", &t), ("inet", &t)] {
            assert!(
                run("nft", &["list", "table", fam, name]).is_err(),
                "nft table {fam} {name} already exists; not touching it"
            );
            self.on_drop("nft", &["delete", "table", fam, name]);
        }
    }

    /// Puts every packet bridged by the test's bridge in conntrack zone `zone` from now on.
    /// br_netfilter hands bridged IPv4 to the IP hooks with the bridge as input device (the
    /// port is only its "physdev"), so the rule matches the bridge's name.
    fn set_zone(&mut self, zone: u16) {
        let z = &self.zone_table;
        let script = format!(
            "table inet {z}\ndelete table inet {z}\ntable inet {z} {{\n\tchain prerouting {{\n\t\t\
             type filter hook prerouting priority raw; policy accept;\n\t\t\
             iifname \"{}\" counter ct zone set {zone}\n\t}}\n}}\n",
            self.bridge
        );
        nft_script(&script).unwrap_or_else(|e| panic!("zone table: {e}"));
        self.zones.push(zone);
    }

    /// Checks that the frames of a phase went through the zone rule (and, with the
    /// `conntrack` command, that their connections are in the zone).
    fn check_zone(&self) -> Result<String, String> {
        let zone = *self.zones.last().expect("a zone is set");
        let listing = run("nft", &["list", "table", "inet", &self.zone_table])?;
        let packets: u64 = listing
            .split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if packets == 0 {
            return Err(format!(
                "no packet went through the conntrack-zone rule:\n{listing}"
            ));
        }
        if !in_path("conntrack") {
            return Ok(format!("zone {zone}: {packets} packets"));
        }
        let out =
            run("conntrack", &["-L", "-f", "ipv4", "-w", &zone.to_string()]).unwrap_or_default();
        let conns = out.lines().filter(|l| l.contains("10.77.0.")).count();
        if conns == 0 {
            return Err(format!("no connection in conntrack zone {zone}"));
        }
        Ok(format!(
            "zone {zone}: {packets} packets, {conns} connections"
        ))
    }

    /// The namespaces (they outlive the links of phase 3).
    fn namespaces(&mut self) {
        for s in Side::ALL {
            let ns = self.ns(s).to_string();
            assert!(
                !Path::new(&format!("/run/netns/{ns}")).exists(),
                "namespace {ns} already exists; not touching it"
            );
            self.step("ip", &["netns", "add", &ns], Some(&["netns", "del", &ns]));
            for sysctl in [
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ] {
                self.step("ip", &["netns", "exec", &ns, "sysctl", "-qw", sysctl], None);
            }
        }
    }

    fn bridge(&mut self) {
        let b = self.bridge.clone();
        assert!(
            run("ip", &["link", "show", &b]).is_err(),
            "interface {b} already exists; not touching it"
        );
        self.step(
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
        let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{b}/disable_ipv6"), "1");
        self.step("ip", &["link", "set", &b, "up"], None);
    }

    /// The veth pair of `side`: bridge port in the root namespace, `vm0`/`peer0` in its
    /// namespace; no learning, the side's MAC as a static FDB entry.
    fn port_link(&mut self, side: Side) {
        let p = self.port(side).to_string();
        let ns = self.ns(side).to_string();
        let b = self.bridge.clone();
        let inner = inner_if(side);
        assert!(
            run("ip", &["link", "show", &p]).is_err(),
            "interface {p} already exists; not touching it"
        );
        self.step(
            "ip",
            &[
                "link", "add", &p, "type", "veth", "peer", "name", inner, "netns", &ns,
            ],
            Some(&["link", "del", &p]),
        );
        let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{p}/disable_ipv6"), "1");
        self.step("ip", &["link", "set", &p, "master", &b], None);
        self.step(
            "ip",
            &["link", "set", &p, "type", "bridge_slave", "learning", "off"],
            None,
        );
        self.step(
            "bridge",
            &["fdb", "replace", side.mac(), "dev", &p, "master", "static"],
            None,
        );
        self.step("ip", &["link", "set", &p, "up"], None);
        self.step("ip", &["-n", &ns, "link", "set", inner, "up"], None);
    }

    /// Deletes the veth pair of `side` (its undo entry stays: deleting twice only warns).
    fn del_port_link(&mut self, side: Side) {
        let p = self.port(side).to_string();
        must("ip", &["link", "del", &p]);
        self.undo
            .retain(|c| c[..] != ["ip", "link", "del", p.as_str()]);
    }

    fn ifindex(&self, side: Side) -> String {
        fs::read_to_string(format!("/sys/class/net/{}/ifindex", self.port(side)))
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        while let Some(c) = self.undo.pop() {
            let args: Vec<&str> = c[1..].iter().map(|s| s.as_str()).collect();
            if let Err(e) = run(&c[0], &args) {
                // A table that a failed load never created is not an error.
                let absent =
                    c[0] == "nft" && run("nft", &["list", "table", args[2], args[3]]).is_err();
                if !absent {
                    eprintln!("nft multiport: cleanup: {e}");
                }
            }
        }
        // Connections of the test's zones (they would only expire otherwise).
        if in_path("conntrack") {
            for z in &self.zones {
                let _ = run("conntrack", &["-D", "-f", "ipv4", "-w", &z.to_string()]);
            }
        }
    }
}

/// Loads an nft script (one transaction) from a temporary file.
fn nft_script(script: &str) -> Result<(), String> {
    let path = std::env::temp_dir().join(format!(
        "nwf-mp-{}-{}.nft",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    fs::write(&path, script).map_err(|e| e.to_string())?;
    let r = run("nft", &["-f", path.to_str().unwrap()]).map(|_| ());
    let _ = fs::remove_file(&path);
    r
}

static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

// ---------------------------------------------------------------------------------------------
// AF_PACKET sockets inside a namespace

// ---------------------------------------------------------------------------------------------
// Sending the frames

struct Expected<'a> {
    frames: &'a [Frame],
    /// Per frame, its bytes.
    bytes: Vec<Vec<u8>>,
    /// Per VM port, the verdicts of its capture.
    verdicts: [Vec<NwfVerdict>; 2],
}

impl Expected<'_> {
    fn delivers(&self, f: &Frame) -> bool {
        Side::VMS
            .iter()
            .filter_map(|vm| f.pos[vm.index()].map(|p| &self.verdicts[vm.index()][p]))
            .all(|v| v.verdict == "accept")
    }

    fn explain(&self, f: &Frame) -> String {
        let mut s = Vec::new();
        for vm in Side::VMS {
            if let Some(p) = f.pos[vm.index()] {
                let v = &self.verdicts[vm.index()][p];
                let dir = if f.from == vm { "out" } else { "in" };
                s.push(format!(
                    "port {} ({dir}): {} at the {} layer by {}",
                    vm.name(),
                    v.verdict,
                    v.layer,
                    v.rule
                ));
            }
        }
        s.join("; ")
    }
}

/// Sends every frame across the rig; the mismatches with nwf's verdicts.
fn send_all(phase: &str, rig: &Rig, exp: &Expected) -> Vec<String> {
    let socks: Vec<OwnedFd> = Side::ALL
        .iter()
        .map(|&s| packet_socket(rig.ns(s), inner_if(s)))
        .collect();
    let verbose = std::env::var_os("NWF_MP_VERBOSE").is_some();
    let mut mismatches = Vec::new();
    for (f, data) in exp.frames.iter().zip(&exp.bytes) {
        let delivered = crosses(&socks[f.from.index()], &socks[f.to.index()], data);
        let want = exp.delivers(f);
        let result = |d: bool| if d { "delivered" } else { "not delivered" };
        if verbose {
            eprintln!(
                "    [{phase}] frames:{:<3} {:<13} nwf {:<13} {}",
                f.line,
                result(delivered),
                result(want),
                f.text
            );
        }
        if delivered != want {
            let summary = Side::VMS
                .iter()
                .find_map(|vm| f.pos[vm.index()].map(|p| &exp.verdicts[vm.index()][p].summary))
                .cloned()
                .unwrap_or_default();
            mismatches.push(format!(
                "[{phase}] frames:{}: `{}`\n    frame: {summary}\n    kernel: {}; nwf: {} ({})",
                f.line,
                f.text,
                result(delivered),
                result(want),
                exp.explain(f)
            ));
        }
    }
    mismatches
}

// ---------------------------------------------------------------------------------------------

#[test]
fn nft_multiport_matches_nwf_simulate() {
    let missing = missing_prerequisites(&["ip", "bridge", "nft"], check_nft);
    if !may_run("nft multiport", &missing) {
        return;
    }
    let started = Instant::now();
    let (sysctls, _restore) = bridge_nf_sysctls();
    eprintln!("nft multiport: {sysctls}");

    let work = std::env::temp_dir().join(format!("nwf-mp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let r = std::panic::catch_unwind(|| run_all(&work));
    let _ = fs::remove_dir_all(&work);
    let (nframes, mismatches, listing) = match r {
        Ok(x) => x,
        Err(p) => panic!("nft multiport: {}", panic_message(p)),
    };
    for m in &mismatches {
        eprintln!("MISMATCH {m}");
    }
    if !mismatches.is_empty() {
        let indented: String = listing.lines().map(|l| format!("      {l}\n")).collect();
        eprintln!("the ruleset as loaded:\n{indented}");
    }
    eprintln!(
        "nft multiport: {nframes} frames, {} mismatches ({:.1}s)",
        mismatches.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches between the kernel and nwf simulate (see above)",
        mismatches.len()
    );
}

/// The three phases: (frames sent, mismatches, the ruleset listing).
fn run_all(work: &Path) -> (usize, Vec<String>, String) {
    let mut rig = Rig::new();
    let text =
        fs::read_to_string(data_dir().join("frames")).expect("testdata/nft-multiport/frames");
    let (frames, desc) = load_frames(&text).unwrap_or_else(|e| panic!("{e}"));

    // nwf's side: bindings, one script for both ports, one simulation per port.
    let mut bindings = Vec::new();
    let mut per_port = Vec::new();
    for vm in Side::VMS {
        let path = work.join(format!("{}.xml", vm.name()));
        fs::write(&path, binding_xml(vm, rig.port(vm))).unwrap();
        per_port.push(
            simulate_port(vm, &desc[vm.index()], &path, work).unwrap_or_else(|e| panic!("{e}")),
        );
        bindings.push(path);
    }
    let mut bytes = Vec::new();
    for f in &frames {
        let mut b: Option<&Vec<u8>> = None;
        for vm in Side::VMS {
            if let Some(p) = f.pos[vm.index()] {
                let here = &per_port[vm.index()].0[p];
                if let Some(prev) = b {
                    assert_eq!(prev, here, "frames:{}: the two captures differ", f.line);
                }
                b = Some(here);
            }
        }
        bytes.push(b.expect("every frame crosses a VM port").clone());
    }
    let [(_, va), (_, vb)]: [(Vec<Vec<u8>>, Vec<NwfVerdict>); 2] =
        per_port.try_into().ok().unwrap();
    let exp = Expected {
        frames: &frames,
        bytes,
        verdicts: [va, vb],
    };
    let script = work.join("ruleset.nft");
    let filters = data_dir().join("filters");
    nwf(&[
        "compile",
        "--target",
        "nft",
        "--binding",
        bindings[0].to_str().unwrap(),
        "--binding",
        bindings[1].to_str().unwrap(),
        "--filters",
        filters.to_str().unwrap(),
        "--table",
        &rig.table,
        "-o",
        script.to_str().unwrap(),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let script_s = script.to_str().unwrap().to_string();
    let ndrop = exp.frames.iter().filter(|f| !exp.delivers(f)).count();
    eprintln!(
        "nft multiport: {} frames per phase ({} to be delivered, {} not); ports {} (a), {} (b), {} (peer) on {}; table {}",
        frames.len(),
        frames.len() - ndrop,
        ndrop,
        rig.ports[0],
        rig.ports[1],
        rig.ports[2],
        rig.bridge,
        rig.table
    );

    let mut mismatches = Vec::new();
    let mut sent = 0;

    // ---- 1. the script is loaded before any port exists
    rig.own_tables();
    rig.set_zone(rig.zone_base + 1);
    for s in Side::ALL {
        assert!(
            run("ip", &["link", "show", rig.port(s)]).is_err(),
            "port {} exists before the script is loaded",
            rig.port(s)
        );
    }
    must("nft", &["-f", &script_s]);
    let listing = nft_listing(&rig.table);
    for fam in ["bridge", "inet"] {
        assert!(
            run("nft", &["list", "table", fam, &rig.table]).is_ok(),
            "table {fam} {} not loaded",
            rig.table
        );
    }
    rig.namespaces();
    rig.bridge();
    for s in Side::ALL {
        rig.port_link(s);
    }
    let t = Instant::now();
    let m = send_all("late-ports", &rig, &exp);
    let zone = rig
        .check_zone()
        .unwrap_or_else(|e| panic!("late-ports: {e}"));
    eprintln!(
        "  late-ports: script loaded before the ports existed: {} mismatches ({:.1}s; {zone})",
        m.len(),
        t.elapsed().as_secs_f64()
    );
    sent += frames.len();
    mismatches.extend(m);

    // ---- 2. the same script loaded again replaces the tables
    rig.set_zone(rig.zone_base + 2);
    must("nft", &["-f", &script_s]);
    let tables = must("nft", &["list", "tables"]);
    for fam in ["bridge", "inet"] {
        let n = tables
            .lines()
            .filter(|l| l.trim() == format!("table {fam} {}", rig.table))
            .count();
        assert_eq!(
            n, 1,
            "after the second load: {n} tables `{fam} {}`",
            rig.table
        );
    }
    let again = nft_listing(&rig.table);
    assert_eq!(
        listing, again,
        "the second load of the same script gave another ruleset"
    );
    let t = Instant::now();
    let m = send_all("reload", &rig, &exp);
    let zone = rig.check_zone().unwrap_or_else(|e| panic!("reload: {e}"));
    eprintln!(
        "  reload: the same script loaded a second time: {} mismatches ({:.1}s; {zone})",
        m.len(),
        t.elapsed().as_secs_f64()
    );
    sent += frames.len();
    mismatches.extend(m);

    // ---- 3. the VM ports are deleted and created again under the loaded script
    rig.set_zone(rig.zone_base + 3);
    let before = [rig.ifindex(Side::A), rig.ifindex(Side::B)];
    for vm in Side::VMS {
        rig.del_port_link(vm);
    }
    for vm in Side::VMS {
        rig.port_link(vm);
    }
    let after = [rig.ifindex(Side::A), rig.ifindex(Side::B)];
    assert!(
        before[0] != after[0] && before[1] != after[1],
        "the recreated ports kept their ifindexes ({before:?} -> {after:?})"
    );
    let t = Instant::now();
    let m = send_all("new-ports", &rig, &exp);
    let zone = rig
        .check_zone()
        .unwrap_or_else(|e| panic!("new-ports: {e}"));
    eprintln!(
        "  new-ports: VM ports recreated (ifindex {} -> {}, {} -> {}): {} mismatches ({:.1}s; {zone})",
        before[0],
        after[0],
        before[1],
        after[1],
        m.len(),
        t.elapsed().as_secs_f64()
    );
    sent += frames.len();
    mismatches.extend(m);

    let listing = nft_listing(&rig.table);
    drop(rig);
    (sent, mismatches, listing)
}
