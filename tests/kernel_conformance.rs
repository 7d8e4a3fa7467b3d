//! Kernel conformance: every folder of `testdata/kernel/` is a case with the real kernel's
//! verdict recorded on each frame's line, and two named tests check both sides against it:
//!
//! - `simulate::CASE` (always, no root needed): `nwf synth` + `nwf simulate` must give each
//!   frame the recorded verdict (`=> accept|drop|reject`) and, where the line names it, the
//!   deciding rule (`by FILE:LINE[:COL]`); the case's filters and every standard filter
//!   converted to the DSL must give the same verdicts.
//! - `kernel::CASE` (root, libvirtd, the firewall tools and br_netfilter): builds a Linux bridge
//!   with a VM port and a peer port (veth pairs into namespaces "vm" and "peer"), sends every
//!   frame raw (AF_PACKET) from the sending side, and requires `accept` = the identical bytes
//!   arrive on the other side, `drop`/`reject` = they do not. Two passes:
//!   - libvirt: the case's filter applied by libvirt (`virsh nwfilter-binding-create`);
//!   - nft: nwf's nftables ruleset (`nwf compile --target nft`, `nft -f`; no libvirt). A case
//!     whose filters nft cannot express (only E0401 errors) is reported and not sent.
//!
//! A case: `case.txt` (`filter: NAME`, repeatable `param: NAME=VALUE`, optional `vm-mac:` and
//! `peer-mac:`), optional `filters/*.xml` (defined into libvirt for the run and undefined
//! afterwards; names start with `nwk-`) and `frames` (`docs/captures.md`).
//!
//! Kernel truth is written only from a kernel run: `NWF_BLESS_KERNEL=1` (root) rewrites every
//! frame's expectation from the libvirt pass (delivered = accept; not delivered = reject where
//! the simulator says reject, else drop: the test network has no receiver for a reject's
//! reply), with the simulator's deciding rule where it agrees; the nft pass then checks the new
//! lines. Without it nothing is written, so drift on either side fails.
//!
//! Run one case by name: `cargo test --test kernel_conformance -- kernel::arp-element`.
//! Without the kernel prerequisites the `kernel::` tests are ignored, except under `CI=true`
//! where they fail. `NWF_KERNEL_PASSES=libvirt|nft|libvirt,nft` selects the passes (default
//! both); `NWF_KERNEL_VERBOSE=1` prints every frame's result; `NWF_KERNEL_NFT_LIST=1` prints the
//! loaded nft ruleset of every case (always printed with the mismatches of the nft pass).
//! Conntrack of each case lives in its own zone (raw-table `CT --zone` rules on the case's two
//! bridge ports), flushed between the passes.

mod common;
use common::*;
use libtest_mimic::{Arguments, Failed, Trial};
use nwf_simulator::describe::{self, Expectation, RuleAt};
use nwf_simulator::eval::Verdict;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Commands

// ---------------------------------------------------------------------------------------------
// Cases

struct Case {
    name: String,
    dir: PathBuf,
    filter: String,
    params: Vec<(String, String)>,
    vm_mac: String,
    peer_mac: String,
    /// Custom filters: (name, path).
    filters: Vec<(String, PathBuf)>,
    frames: Vec<FrameLine>,
}

struct FrameLine {
    line: usize,
    text: String,
    out: bool,
    /// The recorded kernel verdict (and deciding rule).
    expect: Option<Expectation>,
}

fn load_case(dir: &Path) -> Result<Case, String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let text = fs::read_to_string(dir.join("case.txt")).map_err(|e| format!("case.txt: {e}"))?;
    let mut filter = None;
    let mut params = Vec::new();
    let mut vm_mac = "52:54:00:00:00:01".to_string();
    let mut peer_mac = "52:54:00:00:00:99".to_string();
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
            "filter" => filter = Some(v),
            "param" => {
                let (n, val) = v
                    .split_once('=')
                    .ok_or_else(|| format!("case.txt line {}: param NAME=VALUE", i + 1))?;
                params.push((n.trim().to_string(), val.trim().to_string()));
            }
            "vm-mac" => vm_mac = v,
            "peer-mac" => peer_mac = v,
            other => return Err(format!("case.txt line {}: unknown key `{other}`", i + 1)),
        }
    }
    let filter = filter.ok_or("case.txt has no `filter:` line")?;
    let mut filters = Vec::new();
    if let Ok(rd) = fs::read_dir(dir.join("filters")) {
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "xml"))
            .collect();
        paths.sort();
        for p in paths {
            let xml = fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let fname = filter_name(&xml)
                .ok_or_else(|| format!("{}: no <filter name=...>", p.display()))?;
            if !fname.starts_with("nwk-") {
                return Err(format!(
                    "{}: custom filter names must start with `nwk-` (found `{fname}`)",
                    p.display()
                ));
            }
            filters.push((fname, p));
        }
    }
    let ftext = fs::read_to_string(dir.join("frames")).map_err(|e| format!("frames: {e}"))?;
    let mac = |m: &str| {
        nwf_compiler::value::MacAddr::parse(m).ok_or_else(|| format!("case.txt: bad MAC `{m}`"))
    };
    let defaults = describe::Defaults {
        vm_mac: mac(&vm_mac)?,
        peer_mac: mac(&peer_mac)?,
    };
    let described = describe::parse(&ftext, defaults)
        .map_err(|e| format!("frames line {}: {}", e.line, e.message))?;
    let frames = described
        .into_iter()
        .map(|d| FrameLine {
            line: d.line,
            text: ftext
                .lines()
                .nth(d.line - 1)
                .unwrap_or("")
                .trim()
                .to_string(),
            out: d.way == nwf_compiler::program::Way::FromVm,
            expect: d.expect,
        })
        .collect();
    Ok(Case {
        name,
        dir: dir.to_path_buf(),
        filter,
        params,
        vm_mac,
        peer_mac,
        filters,
        frames,
    })
}

fn filter_name(xml: &str) -> Option<String> {
    let start = xml.find("<filter")?;
    let rest = &xml[start..];
    let end = rest.find('>')?;
    let tag = &rest[..end];
    let i = tag.find("name=")?;
    let q = tag[i + 5..].chars().next()?;
    let v = &tag[i + 6..];
    Some(v[..v.find(q)?].to_string())
}

fn binding_xml(case: &Case, port: &str, uuid: &str) -> String {
    let mut params = String::new();
    for (n, v) in &case.params {
        params.push_str(&format!("    <parameter name='{n}' value='{v}'/>\n"));
    }
    format!(
        "<filterbinding>\n  <owner>\n    <name>nwk-{}</name>\n    <uuid>{uuid}</uuid>\n  </owner>\n  \
         <portdev name='{port}'/>\n  <mac address='{}'/>\n  <filterref filter='{}'>\n{params}  \
         </filterref>\n</filterbinding>\n",
        case.name, case.vm_mac, case.filter
    )
}

// ---------------------------------------------------------------------------------------------
// pcapng (only what `nwf synth` writes: SHB, IDB, EPB)

// ---------------------------------------------------------------------------------------------
// The network of one case, torn down by Drop (also when a step panics)

struct Net {
    bridge: String,
    vm_port: String,
    peer_port: String,
    vm_ns: String,
    peer_ns: String,
    zone: u16,
    /// Cleanup commands, run in reverse order.
    undo: Undo,
}

impl Net {
    fn build(n: usize) -> Net {
        let pid = std::process::id();
        let tag = format!("nwk{:03}{n:02}", pid % 1000);
        let mut net = Net {
            bridge: format!("{tag}b"),
            vm_port: format!("{tag}v"),
            peer_port: format!("{tag}p"),
            vm_ns: format!("nwk{pid}-{n}-vm"),
            peer_ns: format!("nwk{pid}-{n}-peer"),
            zone: 10000 + ((pid % 500) as u16) * 100 + n as u16,
            undo: Undo::default(),
        };
        build_two_port_bridge(
            &mut net.undo,
            &net.bridge,
            &net.vm_port,
            &net.peer_port,
            &net.vm_ns,
            &net.peer_ns,
        );
        let (v, p) = (net.vm_port.clone(), net.peer_port.clone());
        // A private conntrack zone for this case's frames.
        let zone = net.zone.to_string();
        for ipt in ["iptables", "ip6tables"] {
            for port in [&v, &p] {
                let rule = [
                    "PREROUTING",
                    "-m",
                    "physdev",
                    "--physdev-in",
                    port.as_str(),
                    "-j",
                    "CT",
                    "--zone",
                    zone.as_str(),
                ];
                let mut add = vec!["-w", "-t", "raw", "-I"];
                add.extend_from_slice(&rule);
                let mut del = vec!["-w", "-t", "raw", "-D"];
                del.extend_from_slice(&rule);
                net.undo.step(ipt, &add, Some(&del));
            }
        }
        net.flush_conntrack();
        net
    }

    fn flush_conntrack(&self) {
        let zone = self.zone.to_string();
        for fam in ["ipv4", "ipv6"] {
            // Exit status 1 = nothing to delete.
            let _ = run("conntrack", &["-D", "-f", fam, "-w", &zone]);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.undo
            .run_all(|_, e| eprintln!("kernel conformance: cleanup: {e}"));
        self.flush_conntrack();
    }
}

// ---------------------------------------------------------------------------------------------
// AF_PACKET sockets inside a namespace

// ---------------------------------------------------------------------------------------------
// libvirt

/// A filter defined into libvirt for one case; undefined on drop.
struct Defined(Vec<String>);

impl Drop for Defined {
    fn drop(&mut self) {
        for n in self.0.iter().rev() {
            if let Err(e) = virsh(&["nwfilter-undefine", n]) {
                eprintln!("kernel conformance: cleanup: {e}");
            }
        }
    }
}

/// The binding of a case; deleted on drop.
struct Binding(String);

impl Drop for Binding {
    fn drop(&mut self) {
        if let Err(e) = virsh(&["nwfilter-binding-delete", &self.0]) {
            eprintln!("kernel conformance: cleanup: {e}");
        }
    }
}

fn rules_in_place(port: &str) -> bool {
    let listed = virsh(&["nwfilter-binding-list"])
        .map(|s| s.lines().any(|l| l.split_whitespace().next() == Some(port)))
        .unwrap_or(false);
    listed
        && (["I", "O"].iter().any(|w| {
            run(
                "ebtables",
                &["-t", "nat", "-L", &format!("libvirt-{w}-{port}")],
            )
            .is_ok()
        }) || run("iptables", &["-w", "-S", &format!("FI-{port}")]).is_ok()
            || run("ip6tables", &["-w", "-S", &format!("FI-{port}")]).is_ok())
}

// ---------------------------------------------------------------------------------------------
// nwf

struct NwfVerdict {
    verdict: String,
    layer: String,
    rule: String,
    /// The deciding rule as an expectation names it (a case's own filter by its file name,
    /// a standard filter as `<stdlib>/NAME.xml`).
    at: Option<RuleAt>,
    summary: String,
}

impl NwfVerdict {
    fn verdict(&self) -> Verdict {
        match self.verdict.as_str() {
            "accept" => Verdict::Accept,
            "reject" => Verdict::Reject,
            _ => Verdict::Drop,
        }
    }
}

fn nwf_verdicts(
    case: &Case,
    binding: &Path,
    filters: Option<&Path>,
    work: &Path,
) -> Result<Vec<NwfVerdict>, String> {
    let pcap = work.join("frames.pcapng");
    let exe = env!("CARGO_BIN_EXE_nwf");
    let frames = case.dir.join("frames");
    run(
        exe,
        &[
            "synth",
            "--color",
            "never",
            "--vm-mac",
            &case.vm_mac,
            "--peer-mac",
            &case.peer_mac,
            "-o",
            pcap.to_str().unwrap(),
            frames.to_str().unwrap(),
        ],
    )?;
    let mut args = vec![
        "simulate",
        "--color",
        "never",
        "--binding",
        binding.to_str().unwrap(),
    ];
    let fdir_s = filters.map(|f| f.to_string_lossy().into_owned());
    if let Some(f) = &fdir_s {
        args.extend(["--filters", f.as_str()]);
    }
    args.extend(["--format", "json", pcap.to_str().unwrap()]);
    let out = run(exe, &args)?;
    let mut v = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let j: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("nwf simulate JSON: {e}: {line}"))?;
        let s = |k: &str| j[k].as_str().unwrap_or("").to_string();
        let r = &j["rule"];
        let rule = if r.is_null() {
            "no rule (default)".to_string()
        } else {
            let path: Vec<&str> = r["path"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            format!(
                "{}:{} (filter {}, via {})",
                r["file"].as_str().unwrap_or("?"),
                r["line"],
                r["filter"].as_str().unwrap_or("?"),
                path.join(" > ")
            )
        };
        let at = r["file"].as_str().map(|file| RuleAt {
            file: if file.starts_with("<stdlib>/") {
                file.to_string()
            } else {
                Path::new(file)
                    .file_name()
                    .map_or(file.to_string(), |n| n.to_string_lossy().into_owned())
            },
            line: r["line"].as_u64().unwrap_or(0) as usize,
            column: r["column"].as_u64().map(|c| c as usize),
        });
        v.push(NwfVerdict {
            verdict: s("verdict"),
            layer: s("layer"),
            rule,
            at,
            summary: s("summary"),
        });
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------

fn verbose() -> bool {
    std::env::var_os("NWF_KERNEL_VERBOSE").is_some()
}

fn blessing() -> bool {
    std::env::var_os("NWF_BLESS_KERNEL").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The two ways the suite puts a case's filter into the kernel.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pass {
    /// libvirt's own ebtables/iptables/ip6tables rules (`virsh nwfilter-binding-create`).
    Libvirt,
    /// nwf's nftables backend (`nwf compile --target nft`, loaded with `nft -f`; no libvirt).
    Nft,
}

impl Pass {
    const ALL: [Pass; 2] = [Pass::Libvirt, Pass::Nft];

    fn name(self) -> &'static str {
        match self {
            Pass::Libvirt => "libvirt",
            Pass::Nft => "nft",
        }
    }
}

/// What one pass of one case gave.
enum PassResult {
    /// The frames were sent: whether each was delivered, and the loaded ruleset if it helps.
    Ran {
        delivered: Vec<bool>,
        listing: Option<String>,
    },
    /// The pass does not apply to this case (nft cannot express one of its filters).
    Skipped(String),
    /// The pass could not run to the end.
    Error(String),
}

/// A scratch directory for one case; removed on drop.
struct Work(PathBuf);

impl Work {
    fn new(kind: &str, n: usize) -> Result<Work, String> {
        let dir =
            std::env::temp_dir().join(format!("nwf-kernel-{kind}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Work(dir))
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes the case's binding for `port` into `work` and replays the case's frames through
/// `nwf simulate` with the case's own filters: the binding's path and the verdicts.
fn simulate_port(
    n: usize,
    case: &Case,
    port: &str,
    work: &Path,
) -> Result<(PathBuf, Vec<NwfVerdict>), String> {
    let uuid = format!("6e776b00-{n:04x}-4000-8000-{:012x}", std::process::id());
    let binding_path = work.join("binding.xml");
    fs::write(&binding_path, binding_xml(case, port, &uuid)).map_err(|e| e.to_string())?;
    let fdir = case.dir.join("filters");
    let nwf = nwf_verdicts(case, &binding_path, fdir.is_dir().then_some(&*fdir), work)?;
    Ok((binding_path, nwf))
}

/// `simulate::CASE`: the simulator gives every frame its recorded verdict and deciding rule,
/// and the same verdicts from the filters converted to the DSL.
fn simulate_case(n: usize, dir: &Path) -> Result<(), String> {
    let case = load_case(dir)?;
    let work = Work::new("sim", n)?;
    let (binding_path, nwf) = simulate_port(n, &case, "nwkport0", &work.0)?;
    if nwf.len() != case.frames.len() {
        return Err(format!(
            "{} described frames, {} nwf verdicts",
            case.frames.len(),
            nwf.len()
        ));
    }
    let dsl_dir = work.0.join("dsl-filters");
    convert_filters_to_dsl(&case.dir.join("filters"), &dsl_dir)?;
    let nwf_dsl = nwf_verdicts(&case, &binding_path, Some(&dsl_dir), &work.0)?;
    let mut problems = Vec::new();
    if let Some(d) = nwf_dsl.iter().find(|d| d.rule.contains(".xml")) {
        problems.push(format!("the DSL run decided by an XML rule: {}", d.rule));
    }
    for ((f, x), d) in case.frames.iter().zip(&nwf).zip(&nwf_dsl) {
        let at = format!("{}/frames:{}: `{}`", case.name, f.line, f.text);
        if (&x.verdict, &x.layer) != (&d.verdict, &d.layer) {
            problems.push(format!(
                "{at}\n    the filters converted to the DSL give {} ({}) where the XML gives {} ({})",
                d.verdict, d.rule, x.verdict, x.rule
            ));
        }
        let Some(e) = &f.expect else {
            problems.push(format!(
                "{at}\n    no recorded verdict (record the kernel's: NWF_BLESS_KERNEL=1 as root)"
            ));
            continue;
        };
        let rule_differs = e.by.as_ref().is_some_and(|by| x.at.as_ref() != Some(by));
        if x.verdict() != e.verdict || rule_differs {
            problems.push(format!(
                "{at}\n    frame: {}\n    recorded: {e}\n    nwf simulate: {} at the {} layer by {}",
                x.summary, x.verdict, x.layer, x.rule
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// `kernel::CASE`: the kernel, with libvirt's rules and with nwf's nft ruleset, delivers
/// exactly the frames recorded as accepted (or, when blessing, records what libvirt's rules do).
fn kernel_case(n: usize, dir: &Path, passes: &[Pass]) -> Result<String, String> {
    let mut case = load_case(dir)?;
    let work = Work::new("net", n)?;
    let net = Net::build(n);
    let (binding_path, nwf) = simulate_port(n, &case, &net.vm_port, &work.0)?;
    let bytes = pcapng_frames(&fs::read(work.0.join("frames.pcapng")).map_err(|e| e.to_string())?)?;
    if bytes.len() != case.frames.len() || nwf.len() != case.frames.len() {
        return Err(format!(
            "{} described frames, {} in the capture, {} nwf verdicts",
            case.frames.len(),
            bytes.len(),
            nwf.len()
        ));
    }
    if blessing() && !passes.contains(&Pass::Libvirt) {
        return Err(
            "NWF_BLESS_KERNEL records libvirt's verdicts: the libvirt pass must run".into(),
        );
    }
    let mut report = Vec::new();
    let mut problems = Vec::new();
    for &pass in passes {
        // A pass that panics (a failed command) leaves through its guards' Drop; the network
        // is still intact for the next pass.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match pass {
            Pass::Libvirt => libvirt_pass(&case, &net, &binding_path, &bytes),
            Pass::Nft => nft_pass(n, &case, &net, &binding_path, &work.0, &bytes),
        }));
        let r = r.unwrap_or_else(|p| PassResult::Error(format!("panicked: {}", panic_message(p))));
        // Nothing of this pass may influence the next: no connection survives it.
        net.flush_conntrack();
        let (delivered, listing) = match r {
            PassResult::Ran { delivered, listing } => (delivered, listing),
            PassResult::Skipped(why) => {
                report.push(format!("{} skipped: {why}", pass.name()));
                continue;
            }
            PassResult::Error(e) => {
                problems.push(format!("[{}] {e}", pass.name()));
                continue;
            }
        };
        if pass == Pass::Libvirt && blessing() {
            bless(&mut case, &delivered, &nwf)?;
            report.push("libvirt: verdicts recorded".into());
        }
        let mut mismatches = Vec::new();
        for ((f, &got), v) in case.frames.iter().zip(&delivered).zip(&nwf) {
            let shown = if got { "delivered" } else { "not delivered" };
            if verbose() {
                eprintln!(
                    "    [{}] {}:{} {shown:<13} recorded {:<24} {}",
                    pass.name(),
                    case.name,
                    f.line,
                    f.expect.as_ref().map_or("-".into(), |e| e.to_string()),
                    f.text
                );
            }
            let Some(e) = &f.expect else {
                mismatches.push(format!(
                    "[{}] {}/frames:{}: `{}`: no recorded verdict",
                    pass.name(),
                    case.name,
                    f.line,
                    f.text
                ));
                continue;
            };
            if got != (e.verdict == Verdict::Accept) {
                mismatches.push(format!(
                    "[{}] {}/frames:{}: `{}`\n    frame: {}\n    kernel: {shown}; recorded: {e}; \
                     nwf simulate: {} at the {} layer by {}",
                    pass.name(),
                    case.name,
                    f.line,
                    f.text,
                    v.summary,
                    v.verdict,
                    v.layer,
                    v.rule
                ));
            }
        }
        report.push(format!("{} {} mismatches", pass.name(), mismatches.len()));
        let show_listing =
            !mismatches.is_empty() || std::env::var_os("NWF_KERNEL_NFT_LIST").is_some();
        if let (true, Some(l)) = (show_listing, listing) {
            let indented: String = l.lines().map(|l| format!("      {l}\n")).collect();
            mismatches.push(format!("    the ruleset of {}:\n{indented}", case.name));
        }
        problems.extend(mismatches);
    }
    if problems.is_empty() {
        Ok(format!(
            "{}: {} frames; {}",
            case.name,
            case.frames.len(),
            report.join(", ")
        ))
    } else {
        Err(problems.join("\n"))
    }
    // net drops here: the network is torn down.
}

/// Writes the kernel's verdicts into the case's frames file (and into `case`): delivered is
/// accept; not delivered is reject where the simulator says reject, else drop. The deciding
/// rule is the simulator's where it agrees with the kernel.
fn bless(case: &mut Case, delivered: &[bool], nwf: &[NwfVerdict]) -> Result<(), String> {
    let mut expect = HashMap::new();
    for ((f, &got), v) in case.frames.iter_mut().zip(delivered).zip(nwf) {
        let verdict = match (got, v.verdict()) {
            (true, _) => Verdict::Accept,
            (false, Verdict::Reject) => Verdict::Reject,
            (false, _) => Verdict::Drop,
        };
        let by = if v.verdict() == verdict {
            v.at.clone()
        } else {
            None
        };
        let e = Expectation { verdict, by };
        expect.insert(f.line, e.clone());
        f.expect = Some(e);
    }
    let path = case.dir.join("frames");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    fs::write(&path, describe::with_expectations(&text, &expect))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Sends every frame of the case across `net`: whether each was delivered.
fn send_frames(case: &Case, net: &Net, bytes: &[Vec<u8>]) -> Vec<bool> {
    let vm = packet_socket(&net.vm_ns, "vm0");
    let peer = packet_socket(&net.peer_ns, "peer0");
    case.frames
        .iter()
        .zip(bytes)
        .map(|(f, data)| {
            if f.out {
                crosses(&vm, &peer, data)
            } else {
                crosses(&peer, &vm, data)
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The libvirt pass

fn libvirt_pass(case: &Case, net: &Net, binding_path: &Path, bytes: &[Vec<u8>]) -> PassResult {
    let r = (|| -> Result<Vec<bool>, String> {
        let mut defined = Defined(Vec::new());
        for (fname, path) in &case.filters {
            if virsh(&["nwfilter-dumpxml", fname]).is_ok() {
                // Names `nwk-*` belong to this suite: a leftover of an interrupted run.
                virsh(&["nwfilter-undefine", fname])?;
            }
            virsh(&["nwfilter-define", path.to_str().unwrap()])?;
            defined.0.push(fname.clone());
        }
        virsh(&["nwfilter-binding-create", binding_path.to_str().unwrap()])?;
        let binding = Binding(net.vm_port.clone());
        let t0 = Instant::now();
        while !rules_in_place(&net.vm_port) {
            if t0.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "libvirt's rules for {} did not appear",
                    net.vm_port
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let delivered = send_frames(case, net, bytes);
        drop(binding);
        drop(defined);
        Ok(delivered)
    })();
    match r {
        Ok(delivered) => PassResult::Ran {
            delivered,
            listing: None,
        },
        Err(e) => PassResult::Error(e),
    }
}

/// Writes every filter of `xml_dir` (if any) and every standard filter to `out` as `.nwf` files.
fn convert_filters_to_dsl(xml_dir: &Path, out: &Path) -> Result<(), String> {
    use nwf_compiler::diag::Diagnostics;
    use nwf_compiler::source::{Origin, SourceMap};
    fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let mut texts: Vec<(String, String)> = nwf_compiler::stdlib::STDLIB
        .iter()
        .map(|(name, text)| (name.to_string(), text.to_string()))
        .collect();
    if let Ok(rd) = fs::read_dir(xml_dir) {
        for e in rd {
            let p = e.map_err(|e| e.to_string())?.path();
            let text = fs::read_to_string(&p).map_err(|e| e.to_string())?;
            texts.push((p.file_stem().unwrap().to_string_lossy().into_owned(), text));
        }
    }
    for (stem, text) in texts {
        let mut sources = SourceMap::new();
        let mut diags = Diagnostics::new();
        let id = sources.add(format!("{stem}.xml"), Origin::Virtual(stem.clone()), text);
        let f = nwf_compiler::xml::read_filter(&sources, id, &mut diags)
            .ok_or_else(|| format!("{stem}: cannot read the XML to convert it"))?;
        fs::write(
            out.join(format!("{stem}.nwf")),
            nwf_compiler::dsl::write_filter(&f),
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Rules of libvirt's (ebtables, iptables, ip6tables filter tables) that still name `port`.
/// The raw-table conntrack-zone rules are the suite's own and are not looked at.
fn libvirt_rules_for(port: &str) -> Vec<String> {
    let mut found = Vec::new();
    let listings: [(&str, &[&str]); 5] = [
        ("ebtables", &["-t", "nat", "-L"]),
        ("ebtables", &["-t", "filter", "-L"]),
        ("ebtables", &["-t", "broute", "-L"]),
        ("iptables", &["-w", "-t", "filter", "-S"]),
        ("ip6tables", &["-w", "-t", "filter", "-S"]),
    ];
    for (prog, args) in listings {
        if !in_path(prog) {
            continue;
        }
        // A table that does not exist holds no rule.
        if let Ok(out) = run(prog, args) {
            found.extend(
                out.lines()
                    .filter(|l| l.contains(port))
                    .map(|l| format!("{prog} {}: {}", args.join(" "), l.trim())),
            );
        }
    }
    found
}

/// The tables of one nft pass; deleted on drop (also when the pass panics).
struct NftTables(String);

impl Drop for NftTables {
    fn drop(&mut self) {
        for fam in ["bridge", "inet"] {
            if run("nft", &["delete", "table", fam, &self.0]).is_err()
                && run("nft", &["list", "table", fam, &self.0]).is_ok()
            {
                eprintln!(
                    "kernel conformance: cleanup: cannot delete nft table {fam} {}",
                    self.0
                );
            }
        }
    }
}

/// The table name of the nft pass of case `n`: unique to this process and case.
fn nft_table(n: usize) -> String {
    format!("nwfk{}_{n}", std::process::id())
}

/// If every error of a failed `nwf compile` is E0401 (nft cannot express the filter): the
/// reason, for the skip message.
fn e0401_reason(stderr: &str) -> Option<String> {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    if errors.is_empty() || !errors.iter().all(|l| l.starts_with("error[E0401]")) {
        return None;
    }
    let first = errors[0].trim_start_matches("error[E0401]:").trim();
    // The location line that follows, `┌─ FILE:LINE:COL`.
    let at = stderr
        .lines()
        .skip_while(|l| !l.starts_with("error[E0401]"))
        .nth(1)
        .and_then(|l| l.split_once("─ "))
        .map(|(_, loc)| {
            let root = concat!(env!("CARGO_MANIFEST_DIR"), "/");
            format!(" ({})", loc.trim().trim_start_matches(root))
        })
        .unwrap_or_default();
    let more = if errors.len() > 1 {
        format!(" and {} more", errors.len() - 1)
    } else {
        String::new()
    };
    Some(format!("E0401 {first}{at}{more}"))
}

fn nft_pass(
    n: usize,
    case: &Case,
    net: &Net,
    binding_path: &Path,
    work: &Path,
    bytes: &[Vec<u8>],
) -> PassResult {
    // libvirt's rules for the port must be gone, or the kernel's verdict would be theirs too.
    let t0 = Instant::now();
    loop {
        let left = libvirt_rules_for(&net.vm_port);
        if left.is_empty() {
            break;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            return PassResult::Error(format!(
                "libvirt's rules for {} are still there after the binding was deleted:\n      {}",
                net.vm_port,
                left.join("\n      ")
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    net.flush_conntrack();

    let table = nft_table(n);
    let script = work.join("ruleset.nft");
    let exe = env!("CARGO_BIN_EXE_nwf");
    let fdir = case.dir.join("filters");
    let mut args = vec![
        "compile".to_string(),
        "--color".into(),
        "never".into(),
        "--target".into(),
        "nft".into(),
        "--binding".into(),
        binding_path.to_string_lossy().into_owned(),
    ];
    if fdir.is_dir() {
        args.extend(["--filters".into(), fdir.to_string_lossy().into_owned()]);
    }
    args.extend([
        "--table".into(),
        table.clone(),
        "-o".into(),
        script.to_string_lossy().into_owned(),
    ]);
    let out = match Command::new(exe).args(&args).env("LC_ALL", "C").output() {
        Ok(o) => o,
        Err(e) => return PassResult::Error(format!("nwf compile: {e}")),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(1) {
            if let Some(reason) = e0401_reason(&stderr) {
                return PassResult::Skipped(reason);
            }
        }
        return PassResult::Error(format!(
            "`nwf {}` failed ({}): {}",
            args.join(" "),
            out.status,
            stderr.trim()
        ));
    }

    let tables = NftTables(table.clone());
    if let Err(e) = run("nft", &["-f", &script.to_string_lossy()]) {
        return PassResult::Error(format!(
            "loading the generated ruleset: {e}\n--- script\n{}",
            fs::read_to_string(&script).unwrap_or_default()
        ));
    }
    // `nft -f` commits one transaction before it returns; make sure both tables are there.
    let t0 = Instant::now();
    while ["bridge", "inet"]
        .iter()
        .any(|fam| run("nft", &["list", "table", fam, &table]).is_err())
    {
        if t0.elapsed() > Duration::from_secs(10) {
            return PassResult::Error(format!("nft tables {table} did not appear"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let delivered = send_frames(case, net, bytes);
    let listing = nft_listing(&table);
    drop(tables);
    PassResult::Ran {
        delivered,
        listing: Some(listing),
    }
}

// ---------------------------------------------------------------------------------------------

/// The passes to run: `NWF_KERNEL_PASSES=libvirt,nft` (default: both).
fn wanted_passes() -> Vec<Pass> {
    match std::env::var("NWF_KERNEL_PASSES") {
        Ok(s) if !s.trim().is_empty() => Pass::ALL
            .into_iter()
            .filter(|p| s.split(',').any(|w| w.trim() == p.name()))
            .collect(),
        _ => Pass::ALL.to_vec(),
    }
}

/// What the kernel tests need that this host lacks (empty: they can run).
fn kernel_prerequisites(passes: &[Pass]) -> Vec<String> {
    let mut tools = vec![
        "ip",
        "virsh",
        "ebtables",
        "iptables",
        "ip6tables",
        "conntrack",
    ];
    if passes.contains(&Pass::Nft) {
        tools.push("nft");
    }
    missing_prerequisites(&tools, |missing| {
        if virsh(&["nwfilter-list"]).is_err() {
            missing.push("libvirtd reachable at qemu:///system (run scripts/libvirt-up)".into());
        }
    })
}

fn main() -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    // Kernel cases share the host's libvirt and conntrack: one at a time.
    args.test_threads = Some(1);
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let passes = wanted_passes();
    let missing = kernel_prerequisites(&passes);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kernel");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .expect("testdata/kernel exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("case.txt").is_file())
        .collect();
    dirs.sort();
    // The bridge netfilter switches are set for the kernel tests and restored afterwards.
    let sysctls = (missing.is_empty() && !args.list).then(|| {
        let (report, guard) = bridge_nf_sysctls();
        eprintln!("kernel conformance: {report}; passes: {passes:?}");
        guard
    });
    let mut trials = Vec::new();
    for (n, dir) in dirs.into_iter().enumerate() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let d = dir.clone();
        trials.push(Trial::test(format!("simulate::{name}"), move || {
            simulate_case(n, &d).map_err(Failed::from)
        }));
        let (p, m) = (passes.clone(), missing.clone());
        let kernel = Trial::test(format!("kernel::{name}"), move || {
            if !m.is_empty() {
                return Err(format!(
                    "missing: {} (under CI=true a missing prerequisite is a failure)",
                    m.join(", ")
                )
                .into());
            }
            let t = Instant::now();
            let r = std::panic::catch_unwind(|| kernel_case(n, &dir, &p))
                .unwrap_or_else(|e| Err(format!("panicked: {}", panic_message(e))));
            let summary = r.map_err(Failed::from)?;
            eprintln!("  {summary} ({:.1}s)", t.elapsed().as_secs_f64());
            Ok(())
        });
        trials.push(kernel.with_ignored_flag(!missing.is_empty() && !ci));
    }
    if !missing.is_empty() {
        eprintln!(
            "kernel conformance: kernel tests {}: missing {}",
            if ci { "fail (CI=true)" } else { "ignored" },
            missing.join(", ")
        );
    }
    let conclusion = libtest_mimic::run(&args, trials);
    drop(sysctls);
    conclusion.exit_code()
}
