//! Support shared by the kernel tests (tests/kernel_conformance.rs, tests/nft_multiport.rs,
//! tests/nft_proptest.rs): prerequisites, running commands, AF_PACKET sockets inside network
//! namespaces, pcapng frames, nft listings.
//! Each test crate uses a subset.

#![allow(dead_code)]

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a frame may take to cross the bridge before it counts as not delivered.
pub const WAIT: Duration = Duration::from_millis(100);

/// Runs a command; Ok(stdout) on success, Err(description with stderr) otherwise.
pub fn run(prog: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(prog)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("{prog}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{prog} {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

/// Runs `virsh` against the system libvirtd (qemu:///system).
pub fn virsh(args: &[&str]) -> Result<String, String> {
    let mut v = vec!["-c", "qemu:///system"];
    v.extend_from_slice(args);
    run("virsh", &v)
}

pub fn must(prog: &str, args: &[&str]) -> String {
    run(prog, args).unwrap_or_else(|e| panic!("{e}"))
}

pub fn in_path(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

/// Sets the bridge netfilter switches back to what they were; see [`bridge_nf_sysctls`].
#[must_use = "the switches are restored when this is dropped"]
pub struct SysctlGuard(Vec<(String, String)>);

impl Drop for SysctlGuard {
    fn drop(&mut self) {
        for (path, old) in self.0.drain(..) {
            if let Err(e) = fs::write(&path, &old) {
                eprintln!("cleanup: restoring {path} to {old}: {e}");
            }
        }
    }
}

/// Makes sure bridged traffic passes iptables/ip6tables (libvirt's IP-layer rules need it);
/// a report of what was found, and a guard that restores what this changed.
pub fn bridge_nf_sysctls() -> (String, SysctlGuard) {
    let mut report = Vec::new();
    let mut changed = Vec::new();
    for name in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
        let path = format!("/proc/sys/net/bridge/{name}");
        let cur = fs::read_to_string(&path)
            .unwrap_or_default()
            .trim()
            .to_string();
        if cur == "1" {
            report.push(format!("{name}=1"));
        } else {
            fs::write(&path, "1").unwrap_or_else(|e| panic!("setting {path}: {e}"));
            report.push(format!("{name}={cur} (set to 1 for the test)"));
            changed.push((path, cur));
        }
    }
    (report.join(", "), SysctlGuard(changed))
}

pub fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

pub fn pcapng_frames(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut frames = Vec::new();
    let mut off = 0;
    let mut le = true;
    while off + 12 <= data.len() {
        let rd = |o: usize, le: bool| {
            let b = [data[o], data[o + 1], data[o + 2], data[o + 3]];
            if le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        if data[off..off + 4] == [0x0a, 0x0d, 0x0d, 0x0a] {
            le = data[off + 8..off + 12] == [0x4d, 0x3c, 0x2b, 0x1a];
        }
        let btype = rd(off, le);
        let blen = rd(off + 4, le) as usize;
        if blen < 12 || off + blen > data.len() {
            return Err(format!("bad pcapng block at {off}"));
        }
        if btype == 6 {
            let caplen = rd(off + 20, le) as usize;
            frames.push(data[off + 28..off + 28 + caplen].to_vec());
        } else if btype == 3 {
            let caplen = (blen - 16).min(rd(off + 8, le) as usize);
            frames.push(data[off + 12..off + 12 + caplen].to_vec());
        }
        off += blen;
    }
    Ok(frames)
}

/// A raw socket bound to `ifname` inside network namespace `ns`, receiving every frame that
/// arrives there (outgoing frames ignored), non-blocking.
pub fn packet_socket(ns: &str, ifname: &str) -> OwnedFd {
    let ns = ns.to_string();
    let ifname = ifname.to_string();
    std::thread::spawn(move || -> Result<OwnedFd, String> {
        let f =
            fs::File::open(format!("/run/netns/{ns}")).map_err(|e| format!("netns {ns}: {e}"))?;
        // SAFETY: plain syscalls on valid descriptors and buffers; this thread only creates a
        // socket in the namespace and exits.
        unsafe {
            if libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(format!("setns {ns}: {}", std::io::Error::last_os_error()));
            }
            let proto = (libc::ETH_P_ALL as u16).to_be();
            let fd = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                proto as i32,
            );
            if fd < 0 {
                return Err(format!("socket: {}", std::io::Error::last_os_error()));
            }
            let fd = OwnedFd::from_raw_fd(fd);
            let cname = std::ffi::CString::new(ifname.clone()).unwrap();
            let idx = libc::if_nametoindex(cname.as_ptr());
            if idx == 0 {
                return Err(format!("no interface {ifname} in {ns}"));
            }
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = idx as i32;
            if libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            ) != 0
            {
                return Err(format!("bind: {}", std::io::Error::last_os_error()));
            }
            let one: libc::c_int = 1;
            // PACKET_IGNORE_OUTGOING = 23: do not see our own transmissions;
            // PACKET_AUXDATA = 8: report VLAN tags the kernel took out of the frame.
            for opt in [23, 8] {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    opt,
                    &one as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as u32,
                );
            }
            Ok(fd)
        }
    })
    .join()
    .expect("socket thread")
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Receives one frame into `buf`; Some(0) for a frame to ignore, None when nothing is queued.
/// A VLAN tag the kernel moved into the packet's metadata (it does so for every tagged frame
/// crossing veth and the bridge) is put back into the bytes, so they compare with what was sent.
pub fn recv_frame(fd: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    const PACKET_AUXDATA: libc::c_int = 8;
    const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
    const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Aux {
        tp_status: u32,
        tp_len: u32,
        tp_snaplen: u32,
        tp_mac: u16,
        tp_net: u16,
        tp_vlan_tci: u16,
        tp_vlan_tpid: u16,
    }
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut ctl = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf[4..].as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len() - 4,
    };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = &mut sll as *mut libc::sockaddr_ll as *mut libc::c_void;
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&ctl);
    // SAFETY: msg points at live buffers of the stated sizes.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return None;
    }
    if sll.sll_pkttype == libc::PACKET_OUTGOING {
        return Some(0);
    }
    let n = n as usize;
    let mut aux = Aux::default();
    // SAFETY: walking the control messages the kernel wrote into `ctl`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == PACKET_AUXDATA {
                aux = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const Aux);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    // The frame is at buf[4..4 + n]; move it to the front, re-inserting a stripped tag.
    if aux.tp_status & TP_STATUS_VLAN_VALID != 0 && n >= 12 {
        let tpid = if aux.tp_status & TP_STATUS_VLAN_TPID_VALID != 0 {
            aux.tp_vlan_tpid
        } else {
            0x8100
        };
        buf.copy_within(4..16, 0);
        buf[12..14].copy_from_slice(&tpid.to_be_bytes());
        buf[14..16].copy_from_slice(&aux.tp_vlan_tci.to_be_bytes());
        Some(n + 4)
    } else {
        buf.copy_within(4..4 + n, 0);
        Some(n)
    }
}

pub fn drain(fd: &OwnedFd) {
    let mut buf = vec![0u8; 65536];
    while recv_frame(fd, &mut buf).is_some() {}
}

/// Sends `frame` on `tx` and reports whether it arrives, byte for byte (Ethernet padding
/// allowed), on `rx` within [`WAIT`].
pub fn crosses(tx: &OwnedFd, rx: &OwnedFd, frame: &[u8]) -> bool {
    drain(rx);
    // SAFETY: valid buffer; the socket is bound, so no address is needed.
    let n = unsafe {
        libc::send(
            tx.as_raw_fd(),
            frame.as_ptr() as *const libc::c_void,
            frame.len(),
            0,
        )
    };
    assert_eq!(
        n,
        frame.len() as isize,
        "send: {}",
        std::io::Error::last_os_error()
    );
    let deadline = Instant::now() + WAIT;
    let mut buf = vec![0u8; 65536];
    loop {
        while let Some(n) = recv_frame(rx, &mut buf) {
            let got = &buf[..n];
            if n >= frame.len()
                && got.starts_with(frame)
                && got[frame.len()..].iter().all(|&b| b == 0)
            {
                return true;
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let mut pfd = libc::pollfd {
            fd: rx.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = (deadline - now).as_millis().max(1) as i32;
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, ms) };
    }
}

/// The ruleset as loaded (`nft list table` of both tables), for reports.
pub fn nft_listing(table: &str) -> String {
    ["bridge", "inet"]
        .iter()
        .map(|fam| {
            run("nft", &["list", "table", fam, table]).unwrap_or_else(|e| format!("# {e}\n"))
        })
        .collect()
}

/// What a kernel test needs and this machine lacks (empty: nothing): root, the `commands`,
/// whatever `check` reports once those are there (a working service), and br_netfilter (loaded
/// if it can be).
pub fn missing_prerequisites(
    commands: &[&str],
    check: impl FnOnce(&mut Vec<String>),
) -> Vec<String> {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (euid 0)".to_string());
        return missing;
    }
    for p in commands {
        if !in_path(p) {
            missing.push(format!("the `{p}` command"));
        }
    }
    if !missing.is_empty() {
        return missing;
    }
    check(&mut missing);
    if !std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists() {
        let _ = run("modprobe", &["br_netfilter"]);
        if !std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists() {
            missing.push("the br_netfilter kernel module".to_string());
        }
    }
    missing
}

/// Whether a test may run: with nothing `missing`, true; otherwise it prints `SKIPPED: ...`
/// and returns false, except under `CI=true`, where a skip is a failure (panics).
pub fn may_run(what: &str, missing: &[String]) -> bool {
    if missing.is_empty() {
        return true;
    }
    let why = format!("{what} needs {}", missing.join(", "));
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; under CI=true this is a failure");
    }
    eprintln!("SKIPPED: {why}");
    false
}

/// `nft list tables` works (nftables usable), else a note in `missing`.
pub fn check_nft(missing: &mut Vec<String>) {
    if run("nft", &["list", "tables"]).is_err() {
        missing.push("a working nftables (`nft list tables` fails)".to_string());
    }
}

/// Cleanup commands of a test network, run newest first by [`Undo::run_all`].
#[derive(Default)]
pub struct Undo(Vec<Vec<String>>);

impl Undo {
    /// Runs a command (panics on failure) and remembers `undo` (arguments for the same
    /// program) to revert it.
    pub fn step(&mut self, prog: &str, args: &[&str], undo: Option<&[&str]>) {
        must(prog, args);
        if let Some(u) = undo {
            self.push(prog, u);
        }
    }

    /// Remembers a cleanup command without running anything.
    pub fn push(&mut self, prog: &str, args: &[&str]) {
        let mut c = vec![prog.to_string()];
        c.extend(args.iter().map(|s| s.to_string()));
        self.0.push(c);
    }

    /// Runs every cleanup command, newest first; `failed` hears of each that fails.
    pub fn run_all(&mut self, mut failed: impl FnMut(&[String], String)) {
        while let Some(c) = self.0.pop() {
            let args: Vec<&str> = c[1..].iter().map(|s| s.as_str()).collect();
            if let Err(e) = run(&c[0], &args) {
                failed(&c, e);
            }
        }
    }
}

/// Builds the two-port test network: bridge `bridge` (no STP, no forward delay, no multicast
/// snooping) with veth ports `vm_port` and `peer_port`, whose other ends are `vm0` in namespace
/// `vm_ns` and `peer0` in `peer_ns`. The ports do not learn (every unicast frame is flooded to
/// the other port, so a frame's fate never depends on earlier frames) and IPv6 is off
/// everywhere (no stray router solicitations). Refuses to touch interfaces or namespaces that
/// already exist; everything it creates goes into `undo`.
pub fn build_two_port_bridge(
    undo: &mut Undo,
    bridge: &str,
    vm_port: &str,
    peer_port: &str,
    vm_ns: &str,
    peer_ns: &str,
) {
    for name in [bridge, vm_port, peer_port] {
        assert!(
            run("ip", &["link", "show", name]).is_err(),
            "interface {name} already exists; not touching it"
        );
    }
    for ns in [vm_ns, peer_ns] {
        assert!(
            !std::path::Path::new(&format!("/run/netns/{ns}")).exists(),
            "namespace {ns} already exists; not touching it"
        );
    }
    for ns in [vm_ns, peer_ns] {
        undo.step("ip", &["netns", "add", ns], Some(&["netns", "del", ns]));
    }
    undo.step(
        "ip",
        &[
            "link",
            "add",
            bridge,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ],
        Some(&["link", "del", bridge]),
    );
    for (port, inner, ns) in [(vm_port, "vm0", vm_ns), (peer_port, "peer0", peer_ns)] {
        undo.step(
            "ip",
            &[
                "link", "add", port, "type", "veth", "peer", "name", inner, "netns", ns,
            ],
            Some(&["link", "del", port]),
        );
    }
    for i in [bridge, vm_port, peer_port] {
        let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{i}/disable_ipv6"), "1");
    }
    for port in [vm_port, peer_port] {
        undo.step("ip", &["link", "set", port, "master", bridge], None);
        undo.step(
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
    for i in [bridge, vm_port, peer_port] {
        undo.step("ip", &["link", "set", i, "up"], None);
    }
    for (ns, ifname) in [(vm_ns, "vm0"), (peer_ns, "peer0")] {
        for sysctl in [
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ] {
            undo.step("ip", &["netns", "exec", ns, "sysctl", "-qw", sysctl], None);
        }
        undo.step("ip", &["-n", ns, "link", "set", ifname, "up"], None);
    }
}
