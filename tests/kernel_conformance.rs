//! Kernel conformance: `nwf simulate` must give the verdict that the real kernel gives, frame by
//! frame, both with libvirt's own rules and with the ruleset of nwf's nftables backend.
//!
//! Every folder of `testdata/kernel/` is a case: `case.txt` (`filter: NAME`, repeatable
//! `param: NAME=VALUE`, optional `vm-mac:` and `peer-mac:`), optional `filters/*.xml` (custom
//! filters, defined into libvirt for the run and undefined afterwards; their names must start with
//! `nwk-`) and `frames` (the description language of `simulator/src/describe.rs`).
//!
//! For each case the test builds a Linux bridge in the root namespace with two veth pairs: the VM
//! port (the binding's portdev, whose other end is in a namespace "vm") and a peer port (other end
//! in a namespace "peer"). Then two passes run on that network, each sending every frame raw
//! (AF_PACKET) from the sending side's namespace; a frame is "delivered" when the identical bytes
//! arrive on the other side. `nwf synth` + `nwf simulate` must agree in both passes:
//! accept == delivered, drop/reject == not delivered. Before the passes, every filter the case
//! uses (its own and the standard ones) is converted to the DSL and `nwf simulate` on the `.nwf`
//! files must give the same verdict for every frame as on the XML.
//! - libvirt: libvirt applies the case's filter to the VM port with
//!   `virsh nwfilter-binding-create`; the binding is deleted afterwards, and the test checks that
//!   no ebtables/iptables/ip6tables rule naming the port is left before the next pass.
//! - nft: `nwf compile --target nft --table nwfk<pid>_<case>` (no libvirt involved) is loaded
//!   with `nft -f`; both tables are deleted afterwards (also on panic). A case whose filters nft
//!   cannot express (`nwf compile` fails with only E0401 errors) is reported as
//!   `skipped for nft: ...`; any other compile or load failure is an error.
//!
//! Conntrack of each case lives in its own zone (raw-table `CT --zone` rules on the case's two
//! bridge ports), so connections of one case never leak into another; the zone is flushed between
//! the passes.
//!
//! Needs root, libvirtd (`scripts/libvirt-up`), ip, ebtables, iptables, ip6tables, conntrack, nft
//! and br_netfilter. Without them the test prints `SKIPPED: ...` and passes, except under
//! `CI=true` where it fails. `NWF_KERNEL_CASES=a,b` runs only the cases whose names contain a or
//! b; `NWF_KERNEL_PASSES=libvirt|nft|libvirt,nft` selects the passes (default both);
//! `NWF_KERNEL_VERBOSE=1` prints every frame's kernel result and nwf verdict;
//! `NWF_KERNEL_NFT_LIST=1` prints the loaded nft ruleset of every case (it is always printed with
//! the mismatches of the nft pass).
//! Run: `cargo test --test kernel_conformance -- --nocapture` (or `scripts/kernel-env`).

mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const URI: &str = "qemu:///system";

// ---------------------------------------------------------------------------------------------
// Commands

fn virsh(args: &[&str]) -> Result<String, String> {
    let mut v = vec!["-c", URI];
    v.extend_from_slice(args);
    run("virsh", &v)
}

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
    let mut frames = Vec::new();
    for (i, raw) in ftext.lines().enumerate() {
        let line = raw.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace().peekable();
        if words.peek().is_some_and(|w| w.starts_with("at=")) {
            words.next();
        }
        let out = match words.next() {
            Some("out") => true,
            Some("in") => false,
            other => return Err(format!("frames line {}: direction {other:?}", i + 1)),
        };
        frames.push(FrameLine {
            line: i + 1,
            text: line.to_string(),
            out,
        });
    }
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
        && (run(
            "ebtables",
            &["-t", "nat", "-L", &format!("libvirt-I-{port}")],
        )
        .is_ok()
            || run("iptables", &["-w", "-S", &format!("FI-{port}")]).is_ok()
            || run("ip6tables", &["-w", "-S", &format!("FI-{port}")]).is_ok())
}

// ---------------------------------------------------------------------------------------------
// nwf

struct NwfVerdict {
    verdict: String,
    layer: String,
    rule: String,
    summary: String,
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
        v.push(NwfVerdict {
            verdict: s("verdict"),
            layer: s("layer"),
            rule,
            summary: s("summary"),
        });
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------

fn verbose() -> bool {
    std::env::var_os("NWF_KERNEL_VERBOSE").is_some()
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
    /// The frames were sent; the mismatches found (empty: all frames agree).
    Ran(Vec<String>),
    /// The pass does not apply to this case (nft cannot express one of its filters).
    Skipped(String),
    /// The pass could not run to the end.
    Error(String),
}

struct Outcome {
    frames: usize,
    passes: Vec<(Pass, PassResult)>,
}

fn run_case(n: usize, case: &Case, passes: &[Pass]) -> Result<Outcome, String> {
    let work = std::env::temp_dir().join(format!("nwf-kernel-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let result = run_case_in(n, case, passes, &work);
    let _ = fs::remove_dir_all(&work);
    result
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

fn run_case_in(n: usize, case: &Case, passes: &[Pass], work: &Path) -> Result<Outcome, String> {
    let net = Net::build(n);
    let uuid = format!("6e776b00-{:04x}-4000-8000-{:012x}", n, std::process::id());
    let binding_path = work.join("binding.xml");
    fs::write(&binding_path, binding_xml(case, &net.vm_port, &uuid)).map_err(|e| e.to_string())?;

    // nwf first: a case nwf cannot even simulate is reported without touching the kernel.
    let fdir = case.dir.join("filters");
    let nwf = nwf_verdicts(case, &binding_path, fdir.is_dir().then_some(&*fdir), work)?;
    // The same filters in the DSL (the case's own and every standard filter, converted, so
    // the whole tree is read from `.nwf` files) must give the same verdict for every frame,
    // and so match the kernel too.
    let dsl_dir = work.join("dsl-filters");
    convert_filters_to_dsl(&fdir, &dsl_dir)?;
    let nwf_dsl = nwf_verdicts(case, &binding_path, Some(&dsl_dir), work)?;
    if let Some(d) = nwf_dsl.iter().find(|d| d.rule.contains(".xml")) {
        return Err(format!("the DSL run decided by an XML rule: {}", d.rule));
    }
    for (i, (x, d)) in nwf.iter().zip(&nwf_dsl).enumerate() {
        if (&x.verdict, &x.layer) != (&d.verdict, &d.layer) {
            return Err(format!(
                "frame {}: the filters converted to the DSL give {} ({}) where the XML gives {} ({})",
                i + 1,
                d.verdict,
                d.rule,
                x.verdict,
                x.rule
            ));
        }
    }
    let bytes = pcapng_frames(&fs::read(work.join("frames.pcapng")).map_err(|e| e.to_string())?)?;
    if bytes.len() != case.frames.len() || nwf.len() != case.frames.len() {
        return Err(format!(
            "{} described frames, {} in the capture, {} nwf verdicts",
            case.frames.len(),
            bytes.len(),
            nwf.len()
        ));
    }

    let mut results = Vec::new();
    for &pass in passes {
        // A pass that panics (a failed command) leaves through its guards' Drop; the network
        // is still intact for the next pass.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match pass {
            Pass::Libvirt => libvirt_pass(case, &net, &binding_path, &bytes, &nwf),
            Pass::Nft => nft_pass(n, case, &net, &binding_path, work, &bytes, &nwf),
        }));
        let r = r.unwrap_or_else(|p| PassResult::Error(format!("panicked: {}", panic_message(p))));
        // Nothing of this pass may influence the next: no connection survives it.
        net.flush_conntrack();
        results.push((pass, r));
    }
    Ok(Outcome {
        frames: bytes.len(),
        passes: results,
    })
    // net drops here: the network is torn down.
}

/// Sends every frame of the case across `net` and compares delivery with nwf's verdicts.
fn send_frames(
    pass: Pass,
    case: &Case,
    net: &Net,
    bytes: &[Vec<u8>],
    nwf: &[NwfVerdict],
) -> Vec<String> {
    let vm = packet_socket(&net.vm_ns, "vm0");
    let peer = packet_socket(&net.peer_ns, "peer0");
    let mut mismatches = Vec::new();
    for ((f, data), v) in case.frames.iter().zip(bytes).zip(nwf) {
        let delivered = if f.out {
            crosses(&vm, &peer, data)
        } else {
            crosses(&peer, &vm, data)
        };
        let nwf_delivers = v.verdict == "accept";
        if verbose() {
            eprintln!(
                "    [{}] {}:{} {:<13} nwf {:<6} {}",
                pass.name(),
                case.name,
                f.line,
                if delivered {
                    "delivered"
                } else {
                    "not delivered"
                },
                v.verdict,
                f.text
            );
        }
        if delivered != nwf_delivers {
            mismatches.push(format!(
                "[{}] {}/frames:{}: `{}`\n    frame: {}\n    kernel ({}): {}; nwf: {} at the {} \
                 layer by {}",
                pass.name(),
                case.name,
                f.line,
                f.text,
                v.summary,
                pass.name(),
                if delivered {
                    "delivered"
                } else {
                    "not delivered"
                },
                v.verdict,
                v.layer,
                v.rule
            ));
        }
    }
    mismatches
}

// ---------------------------------------------------------------------------------------------
// The libvirt pass

fn libvirt_pass(
    case: &Case,
    net: &Net,
    binding_path: &Path,
    bytes: &[Vec<u8>],
    nwf: &[NwfVerdict],
) -> PassResult {
    let r = (|| -> Result<Vec<String>, String> {
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
        let mismatches = send_frames(Pass::Libvirt, case, net, bytes, nwf);
        drop(binding);
        drop(defined);
        Ok(mismatches)
    })();
    match r {
        Ok(m) => PassResult::Ran(m),
        Err(e) => PassResult::Error(e),
    }
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

// ---------------------------------------------------------------------------------------------
// The nft pass

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
    nwf: &[NwfVerdict],
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
    let mut mismatches = send_frames(Pass::Nft, case, net, bytes, nwf);
    if !mismatches.is_empty() || std::env::var_os("NWF_KERNEL_NFT_LIST").is_some() {
        let listing = nft_listing(&table);
        let indented: String = listing.lines().map(|l| format!("      {l}\n")).collect();
        if let Some(last) = mismatches.last_mut() {
            last.push_str(&format!("\n    the ruleset of {}:\n{indented}", case.name));
        } else {
            eprintln!("    [nft] {} ruleset:\n{indented}", case.name);
        }
    }
    drop(tables);
    PassResult::Ran(mismatches)
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

#[derive(Default)]
struct Totals {
    cases: usize,
    frames: usize,
    mismatches: Vec<String>,
    errors: Vec<String>,
    skipped: Vec<String>,
}

#[test]
fn kernel_matches_nwf_simulate() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let missing = missing_prerequisites(
        &[
            "ip",
            "virsh",
            "ebtables",
            "iptables",
            "ip6tables",
            "conntrack",
        ],
        |missing| {
            if virsh(&["nwfilter-list"]).is_err() {
                missing.push(
                    "libvirtd reachable at qemu:///system (run scripts/libvirt-up)".to_string(),
                );
            }
        },
    );
    if !may_run("kernel conformance", &missing) {
        return;
    }
    let mut passes = wanted_passes();
    if passes.contains(&Pass::Nft) && !in_path("nft") {
        let why = "the nft pass of kernel conformance needs the `nft` command";
        if ci {
            panic!("{why}; under CI=true this is a failure");
        }
        eprintln!("SKIPPED (nft pass): {why}");
        passes.retain(|&p| p != Pass::Nft);
    }
    let (sysctls, _restore) = bridge_nf_sysctls();
    eprintln!(
        "kernel conformance: {sysctls}; passes: {}",
        passes
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kernel");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .expect("testdata/kernel exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("case.txt").is_file())
        .collect();
    dirs.sort();
    let only: Vec<String> = std::env::var("NWF_KERNEL_CASES")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();

    let started = Instant::now();
    let mut totals: Vec<(Pass, Totals)> = passes.iter().map(|&p| (p, Totals::default())).collect();
    // Errors of a case as a whole (loading it, simulating it, building its network).
    let mut errors = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !only.is_empty() && !only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        let case = match load_case(dir) {
            Ok(c) => c,
            Err(e) => {
                errors.push(format!("{name}: {e}"));
                continue;
            }
        };
        let t = Instant::now();
        let r = std::panic::catch_unwind(|| run_case(i, &case, &passes));
        match r {
            Ok(Ok(o)) => {
                let mut parts = Vec::new();
                for (pass, res) in o.passes {
                    let tot = &mut totals.iter_mut().find(|(p, _)| *p == pass).unwrap().1;
                    match res {
                        PassResult::Ran(m) => {
                            parts.push(format!("{} {} mismatches", pass.name(), m.len()));
                            tot.cases += 1;
                            tot.frames += o.frames;
                            tot.mismatches.extend(m);
                        }
                        PassResult::Skipped(why) => {
                            parts.push(format!("{} skipped", pass.name()));
                            tot.skipped.push(format!("{name}: {why}"));
                        }
                        PassResult::Error(e) => {
                            parts.push(format!("{} ERROR", pass.name()));
                            tot.errors.push(format!("[{}] {name}: {e}", pass.name()));
                        }
                    }
                }
                eprintln!(
                    "  {name}: {} frames; {} ({:.1}s)",
                    o.frames,
                    parts.join(", "),
                    t.elapsed().as_secs_f64()
                );
            }
            Ok(Err(e)) => errors.push(format!("{name}: {e}")),
            Err(p) => errors.push(format!("{name}: panicked: {}", panic_message(p))),
        }
    }
    for (pass, tot) in &totals {
        for s in &tot.skipped {
            eprintln!("skipped for {}: {s}", pass.name());
        }
        for m in &tot.mismatches {
            eprintln!("MISMATCH {m}");
        }
        for e in &tot.errors {
            eprintln!("ERROR {e}");
        }
    }
    for e in &errors {
        eprintln!("ERROR {e}");
    }
    for (pass, tot) in &totals {
        let skipped = if tot.skipped.is_empty() {
            String::new()
        } else {
            format!(", {} skipped", tot.skipped.len())
        };
        eprintln!(
            "kernel conformance ({}): {} cases, {} frames, {} mismatches, {} case errors{skipped}",
            pass.name(),
            tot.cases,
            tot.frames,
            tot.mismatches.len(),
            tot.errors.len()
        );
    }
    if !errors.is_empty() {
        eprintln!(
            "kernel conformance: {} cases failed before any pass",
            errors.len()
        );
    }
    eprintln!(
        "kernel conformance: {:.0}s",
        started.elapsed().as_secs_f64()
    );
    let nmis: usize = totals.iter().map(|(_, t)| t.mismatches.len()).sum();
    let nerr: usize = errors.len() + totals.iter().map(|(_, t)| t.errors.len()).sum::<usize>();
    assert!(
        nmis == 0 && nerr == 0,
        "{nmis} mismatches and {nerr} case errors between the kernel and nwf simulate (see above)"
    );
}
