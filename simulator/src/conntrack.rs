//! A connection tracker that follows the kernel's (nf_conntrack) rules closely enough to agree
//! with it on what libvirt's rules test: NEW, ESTABLISHED, RELATED and INVALID, the connection
//! direction, timeouts driven by capture timestamps, and connection counts for connlimit.
//!
//! As in the kernel, a packet's connection is only *confirmed* (remembered) when the packet is
//! finally accepted: `lookup` classifies, `commit` records.

use crate::eval::CtView;
use crate::frame::Frame;
use nwf_compiler::program::CtDir;
use nwf_compiler::value::StateSet;
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::time::Duration;

/// One end of a connection.
type End = (IpAddr, u16);

/// A connection key independent of direction: protocol, then the two ends in sorted order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    proto: u8,
    lo: End,
    hi: End,
}

impl Key {
    fn new(proto: u8, a: End, b: End) -> Key {
        if a <= b {
            Key {
                proto,
                lo: a,
                hi: b,
            }
        } else {
            Key {
                proto,
                lo: b,
                hi: a,
            }
        }
    }
}

/// Kernel TCP states that matter for timeouts and validity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tcp {
    SynSent,
    SynRecv,
    Established,
    FinWait,
    Close,
}

#[derive(Clone, Copy, Debug)]
struct Conn {
    /// The end that sent the first packet.
    orig_src: End,
    /// A packet was seen in the reply direction.
    replied: bool,
    tcp: Option<Tcp>,
    expires: Duration,
}

/// What to record if the packet is accepted.
#[derive(Clone, Copy, Debug)]
pub struct Pending {
    /// When the packet was seen.
    at: Duration,
    key: Option<Key>,
    conn: Option<Conn>,
}

/// Kernel default timeouts (seconds).
mod timeout {
    pub const TCP_SYN_SENT: u64 = 120;
    pub const TCP_SYN_RECV: u64 = 60;
    pub const TCP_ESTABLISHED: u64 = 432_000;
    pub const TCP_FIN_WAIT: u64 = 120;
    pub const TCP_CLOSE: u64 = 10;
    pub const UDP: u64 = 30;
    pub const UDP_STREAM: u64 = 120;
    pub const ICMP: u64 = 30;
    pub const GENERIC: u64 = 600;
}

/// The connection table.
#[derive(Debug, Default)]
pub struct Conntrack {
    table: FxHashMap<Key, Conn>,
    since_sweep: u32,
    /// Whether connection counts per source are needed (the program uses connlimit).
    count_sources: bool,
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

impl Conntrack {
    /// An empty table.
    pub fn new() -> Conntrack {
        Conntrack::default()
    }

    /// An empty table that also counts connections per source address (for connlimit; this
    /// costs a scan of the table per packet, so only programs that need it ask for it).
    pub fn with_source_counts() -> Conntrack {
        Conntrack {
            count_sources: true,
            ..Conntrack::default()
        }
    }

    /// Number of live connections (for memory accounting and tests).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Classifies a packet at time `now`. `None` for frames conntrack does not see (non-IP).
    pub fn lookup(&mut self, f: &Frame, now: Duration) -> Option<(CtView, Pending)> {
        let ip = f.ip?;
        self.since_sweep += 1;
        if self.since_sweep >= 65_536 {
            self.since_sweep = 0;
            self.table.retain(|_, c| c.expires > now);
        }
        let invalid = |src| {
            (
                CtView {
                    state: StateSet::INVALID,
                    dir: CtDir::Original,
                    conns_from_source: 0,
                },
                Pending {
                    at: now,
                    key: None,
                    conn: None,
                },
            )
                .with_count(src)
        };
        let t = &f.transport;
        if !t.checksum_ok {
            return Some(invalid(0));
        }
        let (src, dst) = match (ip.proto, t.ports, t.icmp) {
            (1 | 58, _, Some((ty, _))) => return Some(self.icmp(f, ty, now)),
            (_, Some((sp, dp)), _) => ((ip.src, sp), (ip.dst, dp)),
            _ if ip.later_fragment => return Some(invalid(0)),
            (6 | 17 | 132 | 33 | 136, None, _) => return Some(invalid(0)),
            _ => ((ip.src, 0), (ip.dst, 0)),
        };
        let key = Key::new(ip.proto, src, dst);
        let existing = self.table.get(&key).copied().filter(|c| c.expires > now);
        let view = |state, dir| CtView {
            state,
            dir,
            conns_from_source: 0,
        };
        let (mut v, conn) = match (ip.proto, existing) {
            (6, None) => {
                let flags = t.tcp_flags.unwrap_or(0);
                let tcp = if flags & (SYN | ACK | RST | FIN) == SYN {
                    Tcp::SynSent
                } else if flags & (SYN | RST | FIN) == 0 && flags & ACK != 0 {
                    // nf_conntrack_tcp_loose: a mid-stream ACK picks the connection up.
                    Tcp::Established
                } else {
                    return Some(invalid(0));
                };
                let c = Conn {
                    orig_src: src,
                    replied: false,
                    tcp: Some(tcp),
                    expires: now + tcp_timeout(tcp),
                };
                (view(StateSet::NEW, CtDir::Original), c)
            }
            (6, Some(mut c)) => {
                let dir = if src == c.orig_src {
                    CtDir::Original
                } else {
                    CtDir::Reply
                };
                let flags = t.tcp_flags.unwrap_or(0);
                let Some(next) = tcp_next(c.tcp.unwrap_or(Tcp::Established), dir, flags) else {
                    return Some(invalid(0));
                };
                if next == Tcp::SynSent
                    && dir == CtDir::Original
                    && matches!(c.tcp, Some(Tcp::Close))
                {
                    // A new SYN after the connection closed starts a new connection.
                    let n = Conn {
                        orig_src: src,
                        replied: false,
                        tcp: Some(Tcp::SynSent),
                        expires: now + tcp_timeout(Tcp::SynSent),
                    };
                    (view(StateSet::NEW, CtDir::Original), n)
                } else {
                    c.replied |= dir == CtDir::Reply;
                    c.tcp = Some(next);
                    c.expires = now + tcp_timeout(next);
                    let state = if c.replied {
                        StateSet::ESTABLISHED
                    } else {
                        StateSet::NEW
                    };
                    (view(state, dir), c)
                }
            }
            (_, None) => {
                let c = Conn {
                    orig_src: src,
                    replied: false,
                    tcp: None,
                    expires: now + Duration::from_secs(other_timeout(ip.proto, false)),
                };
                (view(StateSet::NEW, CtDir::Original), c)
            }
            (_, Some(mut c)) => {
                let dir = if src == c.orig_src {
                    CtDir::Original
                } else {
                    CtDir::Reply
                };
                c.replied |= dir == CtDir::Reply;
                c.expires = now + Duration::from_secs(other_timeout(ip.proto, c.replied));
                let state = if c.replied {
                    StateSet::ESTABLISHED
                } else {
                    StateSet::NEW
                };
                (view(state, dir), c)
            }
        };
        if self.count_sources {
            v.conns_from_source = self.count_from(ip.src, now) + u32::from(existing.is_none());
        }
        Some((
            v,
            Pending {
                at: now,
                key: Some(key),
                conn: Some(conn),
            },
        ))
    }

    fn icmp(&mut self, f: &Frame, ty: u8, now: Duration) -> (CtView, Pending) {
        let ip = f.ip.expect("checked by caller");
        let v6 = ip.proto == 58;
        let none = Pending {
            at: now,
            key: None,
            conn: None,
        };
        let view = |state, dir| CtView {
            state,
            dir,
            conns_from_source: 0,
        };
        // Errors: RELATED to the connection of the quoted packet, else INVALID.
        if let Some(inner) = f.transport.icmp_inner {
            let (sp, dp) = inner.ports.unwrap_or((0, 0));
            let key = Key::new(inner.proto, (inner.src, sp), (inner.dst, dp));
            let related = self.table.get(&key).is_some_and(|c| c.expires > now);
            let state = if related {
                StateSet::RELATED
            } else {
                StateSet::INVALID
            };
            let dir = match self.table.get(&key) {
                Some(c) if c.orig_src.0 == ip.src => CtDir::Original,
                Some(_) => CtDir::Reply,
                None => CtDir::Original,
            };
            return (view(state, dir), none);
        }
        // Queries and their replies (echo, timestamp, info, address mask).
        let (request, reply) = if v6 {
            ([128u8].as_slice(), [129u8].as_slice())
        } else {
            ([8u8, 13, 15, 17].as_slice(), [0u8, 14, 16, 18].as_slice())
        };
        if v6 && matches!(ty, 130..=137 | 143) {
            // Neighbour discovery and MLD are not tracked: no state matches.
            return (view(0, CtDir::Original), none);
        }
        let id = f.transport.icmp_id.unwrap_or(0);
        let key = Key::new(ip.proto, (ip.src, id), (ip.dst, id));
        let existing = self.table.get(&key).copied().filter(|c| c.expires > now);
        let t = Duration::from_secs(timeout::ICMP);
        if request.contains(&ty) {
            return match existing {
                Some(mut c) => {
                    let dir = if c.orig_src.0 == ip.src {
                        CtDir::Original
                    } else {
                        CtDir::Reply
                    };
                    c.expires = now + t;
                    let state = if c.replied {
                        StateSet::ESTABLISHED
                    } else {
                        StateSet::NEW
                    };
                    (
                        view(state, dir),
                        Pending {
                            at: now,
                            key: Some(key),
                            conn: Some(c),
                        },
                    )
                }
                None => {
                    let c = Conn {
                        orig_src: (ip.src, id),
                        replied: false,
                        tcp: None,
                        expires: now + t,
                    };
                    (
                        view(StateSet::NEW, CtDir::Original),
                        Pending {
                            at: now,
                            key: Some(key),
                            conn: Some(c),
                        },
                    )
                }
            };
        }
        if reply.contains(&ty) {
            return match existing {
                Some(mut c) if c.orig_src.0 != ip.src => {
                    c.replied = true;
                    c.expires = now + t;
                    (
                        view(StateSet::ESTABLISHED, CtDir::Reply),
                        Pending {
                            at: now,
                            key: Some(key),
                            conn: Some(c),
                        },
                    )
                }
                _ => (view(StateSet::INVALID, CtDir::Original), none),
            };
        }
        // Other ICMP types cannot start a connection.
        (view(StateSet::INVALID, CtDir::Original), none)
    }

    fn count_from(&self, src: IpAddr, now: Duration) -> u32 {
        self.table
            .values()
            .filter(|c| c.orig_src.0 == src && c.expires > now && c.tcp != Some(Tcp::Close))
            .count() as u32
    }

    /// Records what the kernel would keep of a packet conntrack has seen: an update of an
    /// existing connection always (the kernel updates it before the filter hooks, even for a
    /// packet that is then dropped); a new connection only if the packet was accepted (the kernel
    /// confirms new connections last).
    pub fn settle(&mut self, p: Pending, accepted: bool) {
        let existed = p
            .key
            .and_then(|k| self.table.get(&k))
            .is_some_and(|c| c.expires > p.at);
        if existed || accepted {
            self.commit(p);
        }
    }

    /// Records the packet's connection (as for an accepted frame).
    pub fn commit(&mut self, p: Pending) {
        if let (Some(k), Some(c)) = (p.key, p.conn) {
            self.table.insert(k, c);
        }
    }
}

trait WithCount {
    fn with_count(self, n: u32) -> Self;
}

impl WithCount for (CtView, Pending) {
    fn with_count(mut self, n: u32) -> Self {
        self.0.conns_from_source = n;
        self
    }
}

fn tcp_timeout(t: Tcp) -> Duration {
    Duration::from_secs(match t {
        Tcp::SynSent => timeout::TCP_SYN_SENT,
        Tcp::SynRecv => timeout::TCP_SYN_RECV,
        Tcp::Established => timeout::TCP_ESTABLISHED,
        Tcp::FinWait => timeout::TCP_FIN_WAIT,
        Tcp::Close => timeout::TCP_CLOSE,
    })
}

fn other_timeout(proto: u8, replied: bool) -> u64 {
    match (proto, replied) {
        (17 | 136, false) => timeout::UDP,
        (17 | 136, true) => timeout::UDP_STREAM,
        _ => timeout::GENERIC,
    }
}

/// The TCP state after a packet, or `None` when the kernel would call the packet INVALID.
fn tcp_next(state: Tcp, dir: CtDir, flags: u8) -> Option<Tcp> {
    let syn = flags & SYN != 0;
    let ack = flags & ACK != 0;
    if flags & RST != 0 {
        return Some(Tcp::Close);
    }
    if syn && flags & FIN != 0 {
        return None;
    }
    Some(match (state, dir, syn, ack) {
        (Tcp::SynSent, CtDir::Original, true, false) => Tcp::SynSent,
        (Tcp::SynSent, CtDir::Reply, true, true) => Tcp::SynRecv,
        (Tcp::SynSent, CtDir::Reply, true, false) => Tcp::SynRecv,
        (Tcp::SynSent, _, _, _) => return None,
        (Tcp::SynRecv, CtDir::Original, false, true) => Tcp::Established,
        (Tcp::SynRecv, _, true, _) => Tcp::SynRecv,
        (Tcp::SynRecv, _, false, _) => Tcp::SynRecv,
        (Tcp::Close, CtDir::Original, true, false) => Tcp::SynSent,
        (Tcp::Close, _, _, _) => return None,
        (_, _, _, _) if flags & FIN != 0 => Tcp::FinWait,
        (Tcp::FinWait, _, _, true) => Tcp::FinWait,
        (s, _, _, _) => s,
    })
}
