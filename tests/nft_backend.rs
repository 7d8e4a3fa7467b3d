//! The nftables backend: golden rulesets for the standard filters, every emitted script passes
//! `nft -c -f` and loads (twice, replacing itself) in a fresh network namespace, the JSON form
//! (`--json`) loads with `nft -j -f` into exactly the same kernel ruleset as the script,
//! constructs nft cannot express are refused, and no value can smuggle syntax into the script.

use nwf_compiler::backend::nft::{self, NftOptions};
use nwf_compiler::diag::{self, Diagnostics};
use nwf_compiler::driver;
use nwf_compiler::program::Program;
use std::path::{Path, PathBuf};
use std::process::Command;

fn program(binding: &Path, params: &[(&str, &str)]) -> Result<Program, String> {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let run = driver::show_binding(&[PathBuf::from("testdata/filters")], binding, &params);
    run.program
        .ok_or_else(|| diag::render(&run.library.sources, &run.diagnostics, false))
}

fn compile(programs: &[Program]) -> Result<String, Vec<String>> {
    build(programs).map(|r| r.to_text())
}

fn build(programs: &[Program]) -> Result<nft::Ruleset, Vec<String>> {
    let mut d = Diagnostics::new();
    nft::build(programs, &NftOptions::default(), &mut d)
        .ok_or_else(|| d.items().iter().map(|x| x.code.to_string()).collect())
}

/// `nft` is needed to check scripts; CI installs it (a skip there is a failure).
fn nft_available() -> bool {
    if Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return true;
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "nft is missing under CI=true"
    );
    eprintln!("SKIPPED: nft is not installed");
    false
}

fn nft_check(script: &str) -> Result<(), String> {
    nft_check_as(script, false)
}

/// `nft -c -f`, or `nft -j -c -f` for a JSON document.
fn nft_check_as(script: &str, json: bool) -> Result<(), String> {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), script).unwrap();
    let out = Command::new("nft")
        .args(if json { &["-j"][..] } else { &[][..] })
        .arg("-c")
        .arg("-f")
        .arg(f.path())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn binding_for(filter: &str, params: &[(&str, &str)]) -> tempfile::NamedTempFile {
    let ps: String = params
        .iter()
        .map(|(n, v)| format!("<parameter name='{n}' value='{v}'/>"))
        .collect();
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        f.path(),
        format!(
            "<filterbinding><owner><name>t</name><uuid>8e8ba8c4-0e8b-4d2b-9a47-6b1f2b3c4d5e</uuid></owner>\
             <portdev name='vnet0'/><mac address='52:54:00:12:34:56'/><filterref filter='{filter}'>{ps}</filterref></filterbinding>"
        ),
    )
    .unwrap();
    f
}

const STD_PARAMS: &[(&str, &str)] = &[
    ("IP", "192.0.2.10"),
    ("IPV6", "2001:db8::10"),
    ("DHCPSERVER", "192.0.2.1"),
    ("GATEWAY_MAC", "52:54:00:00:00:fe"),
];

#[test]
fn standard_filters_compile_to_golden_rulesets() {
    let check = nft_available();
    for (name, _) in nwf_compiler::stdlib::STDLIB {
        // The shipped allow-dhcpv6-server reads $DHCPSERVER as an IPv6 address.
        let params: Vec<(&str, &str)> = STD_PARAMS
            .iter()
            .map(|&(n, v)| {
                if *name == "allow-dhcpv6-server" && n == "DHCPSERVER" {
                    (n, "fe80::1")
                } else {
                    (n, v)
                }
            })
            .collect();
        let b = binding_for(name, &params);
        let p = program(b.path(), &[]).unwrap();
        let ruleset = build(&[p]).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let script = ruleset.to_text();
        if check {
            nft_check(&script)
                .unwrap_or_else(|e| panic!("{name}: nft -c rejects the script:\n{e}\n{script}"));
            same_ruleset_from_text_and_json(name, &script, &ruleset.to_json_string());
        }
        insta::assert_snapshot!(format!("nft-{name}"), script);
    }
}

#[test]
fn example_bindings_compile_or_are_refused_with_a_reason() {
    let check = nft_available();
    let mut dir: Vec<PathBuf> = std::fs::read_dir("testdata/bindings")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dir.sort();
    let mut compiled = Vec::new();
    for b in dir {
        let p = program(&b, &[]).unwrap();
        match compile(std::slice::from_ref(&p)) {
            Ok(script) => {
                if check {
                    nft_check(&script).unwrap_or_else(|e| panic!("{}: {e}", b.display()));
                }
                compiled.push(p);
            }
            // Gratuitous ARP and ipsets cannot be expressed in nftables: a diagnostic, no script.
            Err(codes) => assert!(
                !codes.is_empty() && codes.iter().all(|c| c == "E0401"),
                "{}: {codes:?}",
                b.display()
            ),
        }
    }
    assert!(compiled.len() >= 8);
    // All of them in one script, in a fresh namespace, loaded twice (the second replaces).
    let ruleset = build(&compiled).unwrap();
    let script = ruleset.to_text();
    if check {
        nft_check(&script).unwrap();
        load_twice_in_fresh_namespace(&script);
        same_ruleset_from_text_and_json("all examples", &script, &ruleset.to_json_string());
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

/// A network namespace that is deleted when dropped (also when a test fails).
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("nwf{tag}{}x{n}", std::process::id());
        assert!(Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success());
        Netns(name)
    }

    /// Loads a script (`-j` for JSON) and returns what the kernel then lists.
    fn load_and_list(&self, script: &str, json: bool) -> Result<String, String> {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), script).unwrap();
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0, "nft"])
            .args(if json { &["-j"][..] } else { &[][..] })
            .arg("-f")
            .arg(f.path())
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0, "nft", "list", "ruleset"])
            .output()
            .unwrap();
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// The JSON document passes `nft -j -c -f` and, loaded into a fresh namespace, gives the
/// kernel exactly the ruleset the text script gives it (chain comments aside: nft 1.0.6 has
/// no chain comments in JSON).
fn same_ruleset_from_text_and_json(what: &str, script: &str, json: &str) {
    nft_check_as(json, true).unwrap_or_else(|e| panic!("{what}: nft -j -c rejects the JSON:\n{e}"));
    if !is_root() {
        eprintln!("SKIPPED: comparing loaded rulesets needs root");
        return;
    }
    let strip = |listing: String| -> String {
        listing
            .lines()
            .filter(|l| !l.trim_start().starts_with("comment \""))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let from_text = strip(Netns::new("t").load_and_list(script, false).unwrap());
    // Twice: the JSON transaction must replace its own tables too.
    let ns = Netns::new("j");
    ns.load_and_list(json, true)
        .unwrap_or_else(|e| panic!("{what}: nft -j -f fails:\n{e}"));
    let from_json = strip(
        ns.load_and_list(json, true)
            .unwrap_or_else(|e| panic!("{what}: nft -j -f fails the second time:\n{e}")),
    );
    assert!(from_text.contains("table inet nwf"), "{from_text}");
    let differ: Vec<String> = from_text
        .lines()
        .zip(from_json.lines())
        .filter(|(a, b)| a != b)
        .take(5)
        .map(|(a, b)| format!("text: {a}\njson: {b}"))
        .collect();
    assert!(
        differ.is_empty() && from_text.lines().count() == from_json.lines().count(),
        "{what}: text and JSON load differently:\n{}",
        differ.join("\n")
    );
}

fn load_twice_in_fresh_namespace(script: &str) {
    if !is_root() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "loading needs root under CI=true"
        );
        eprintln!("SKIPPED: loading the ruleset needs root");
        return;
    }
    let ns = Netns::new("l");
    for _ in 0..2 {
        ns.load_and_list(script, false).unwrap();
    }
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "nft", "list", "tables"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "table bridge nwf\ntable inet nwf\n"
    );
}

#[test]
fn values_cannot_inject_syntax() {
    // A parameter value with a semicolon never reaches the script.
    let b = binding_for("clean-traffic", &[]);
    let params = [("IP".to_string(), "1.2.3.4; flush ruleset".to_string())];
    let run = driver::show_binding(&[], b.path(), &params);
    assert!(run.program.is_none());
    assert!(run.diagnostics.iter().any(|d| d.code == "E0111"));
    // Nor does an interface name with quotes or spaces.
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        f.path(),
        "<filterbinding><owner><name>t</name><uuid>8e8ba8c4-0e8b-4d2b-9a47-6b1f2b3c4d5e</uuid></owner>\
         <portdev name='vnet0\" accept; flush'/><mac address='52:54:00:12:34:56'/><filterref filter='clean-traffic'/></filterbinding>",
    )
    .unwrap();
    let run = driver::show_binding(&[], f.path(), &[("IP".into(), "10.0.0.1".into())]);
    assert!(run.program.is_none());
    assert!(
        run.diagnostics.iter().any(|d| d.code == "E0104"),
        "{:?}",
        run.diagnostics
    );
}

#[test]
fn the_same_port_twice_is_an_error() {
    let b = binding_for("clean-traffic", STD_PARAMS);
    let p = program(b.path(), &[]).unwrap();
    assert_eq!(compile(&[p.clone(), p]).unwrap_err(), ["E0402"]);
}

#[test]
fn list_variables_become_one_rule_with_a_set() {
    // A 1,000-address list: libvirt makes 1,000 rules; nwf one rule whose set the kernel looks
    // up in constant time.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("blocklist.xml"),
        "<filter name='blocklist'><rule action='drop' direction='in'><ip srcipaddr='$BAD'/></rule></filter>",
    )
    .unwrap();
    let params: String = (0..1000)
        .map(|i| {
            format!(
                "<parameter name='BAD' value='10.{}.{}.1'/>",
                i / 256,
                i % 256
            )
        })
        .collect();
    let b = dir.path().join("b.xml");
    std::fs::write(
        &b,
        format!(
            "<filterbinding><owner><name>t</name><uuid>8e8ba8c4-0e8b-4d2b-9a47-6b1f2b3c4d5e</uuid></owner>\
             <portdev name='vnet9'/><mac address='52:54:00:12:34:56'/><filterref filter='blocklist'>{params}</filterref></filterbinding>"
        ),
    )
    .unwrap();
    let run = driver::show_binding(&[dir.path().to_path_buf()], &b, &[]);
    let p = run.program.expect("program");
    assert_eq!(p.rule_count(), 1000);
    let script = compile(&[p]).unwrap();
    let rules: Vec<&str> = script
        .lines()
        .filter(|l| l.contains("blocklist.xml"))
        .collect();
    assert_eq!(rules.len(), 1, "{script}");
    assert_eq!(rules[0].matches(", 10.").count(), 999, "{}", rules[0]);
    if nft_available() {
        nft_check(&script).unwrap();
    }
}

#[test]
fn json_and_text_agree_on_every_kind_of_match() {
    // Constructs the examples do not all reach: TCP options nft has no name for, masked and
    // negated MACs, RARP raw offsets, STP fields, TOS, ICMP codes, connlimit meters.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kinds.xml"),
        "<filter name='kinds' chain='root'>\
           <rule action='drop' direction='in'><tcp option='6' dstportstart='22'/></rule>\
           <rule action='drop' direction='in'><tcp option='30' match='no'/></rule>\
           <rule action='drop' direction='out'><mac srcmacaddr='52:54:00:00:00:00' srcmacmask='ff:ff:ff:00:00:00' match='no'/></rule>\
           <rule action='accept' direction='out'><rarp opcode='3' arpsrcipaddr='10.0.0.0' arpsrcipmask='8'/></rule>\
           <rule action='drop' direction='inout'><stp type='0' rootpriority='4096' rootpriorityhi='8192'/></rule>\
           <rule action='accept' direction='out'><ip dstipaddr='10.0.0.1' match='no' dscp='10'/></rule>\
           <rule action='drop' direction='in'><icmp type='3' code='4'/></rule>\
           <rule action='drop' direction='in'><tcp dstportstart='80' connlimit-above='5'/></rule>\
           <rule action='accept' direction='in'><tcp flags='SYN,ACK/SYN' state='NEW,ESTABLISHED'/></rule>\
           <rule action='reject' direction='out'><udp srcipfrom='10.0.0.1' srcipto='10.0.0.9' srcportstart='1000' srcportend='2000'/></rule>\
         </filter>",
    )
    .unwrap();
    let b = binding_for("kinds", &[]);
    let run = driver::show_binding(&[dir.path().to_path_buf()], b.path(), &[]);
    let p = run.program.unwrap_or_else(|| {
        panic!(
            "{}",
            diag::render(&run.library.sources, &run.diagnostics, false)
        )
    });
    let ruleset = build(&[p]).unwrap();
    let json = ruleset.to_json_string();
    assert!(
        json.contains(r#"{"tcp option":{"base":6,"len":8,"offset":0}}"#),
        "{json}"
    );
    assert!(json.contains(r#""name":"mptcp""#), "{json}");
    if nft_available() {
        let script = ruleset.to_text();
        nft_check(&script).unwrap_or_else(|e| panic!("{e}\n{script}"));
        same_ruleset_from_text_and_json("kinds", &script, &json);
    }
}
