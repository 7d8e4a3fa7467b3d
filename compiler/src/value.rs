//! Typed attribute values and their parsing from libvirt's text forms.

use crate::lang::{self, ValueType};
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A MAC address (also used for MAC masks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Parses `xx:xx:xx:xx:xx:xx` (one or two hex digits per byte, as libvirt does).
    pub fn parse(s: &str) -> Option<MacAddr> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in out.iter_mut() {
            let p = parts.next()?;
            if p.is_empty() || p.len() > 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            *b = u8::from_str_radix(p, 16).ok()?;
        }
        parts.next().is_none().then_some(MacAddr(out))
    }

    /// Whether the set bits form one run from the most significant bit.
    pub fn is_contiguous_mask(&self) -> bool {
        let v = self
            .0
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
            << 16;
        v.leading_ones() + v.trailing_zeros() >= 64 || v == 0
    }

    /// The mask with all bits set.
    pub const FULL: MacAddr = MacAddr([0xff; 6]);
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A set of connection-tracking states, as bits (see [`lang::STATES`]); 0 means NONE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StateSet(pub u8);

impl StateSet {
    /// NEW.
    pub const NEW: u8 = 1;
    /// ESTABLISHED.
    pub const ESTABLISHED: u8 = 2;
    /// RELATED.
    pub const RELATED: u8 = 4;
    /// INVALID.
    pub const INVALID: u8 = 8;

    /// Whether the state bit is in the set.
    pub fn contains(&self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

impl fmt::Display for StateSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("NONE");
        }
        let names: Vec<&str> = lang::STATES
            .iter()
            .filter(|(_, b)| *b != 0 && self.0 & b != 0)
            .map(|(n, _)| *n)
            .collect();
        f.write_str(&names.join(","))
    }
}

impl Serialize for StateSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// TCP flags test: the flags in `mask` are examined and those in `set` must be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct TcpFlags {
    /// Flags examined.
    pub mask: u8,
    /// Flags that must be set (of those examined).
    pub set: u8,
}

fn flag_list(bits: u8) -> String {
    if bits == 0 {
        return "NONE".into();
    }
    if bits == 0x3f {
        return "ALL".into();
    }
    lang::TCP_FLAG_NAMES
        .iter()
        .filter(|(n, b)| *n != "ALL" && *n != "NONE" && bits & b != 0)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", flag_list(self.mask), flag_list(self.set))
    }
}

/// Source or destination lookup for one dimension of an ipset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SetDir {
    /// The packet's source address.
    Src,
    /// The packet's destination address.
    Dst,
}

impl SetDir {
    /// The other side.
    pub fn swapped(self) -> SetDir {
        match self {
            SetDir::Src => SetDir::Dst,
            SetDir::Dst => SetDir::Src,
        }
    }
}

/// A typed attribute value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "kebab-case")]
pub enum Value {
    /// A MAC address.
    Mac(MacAddr),
    /// A MAC mask.
    MacMask(MacAddr),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address.
    Ipv6(Ipv6Addr),
    /// A prefix length (IPv4 or IPv6 mask).
    Prefix(u8),
    /// A number (ports, ids, protocol numbers, opcodes, ...).
    Number(u32),
    /// A boolean.
    Bool(bool),
    /// Text (comment, ipset name).
    Text(String),
    /// Connection states.
    States(StateSet),
    /// TCP flags.
    TcpFlags(TcpFlags),
    /// ipset lookup directions.
    SetDirs(Vec<SetDir>),
}

impl Value {
    /// The number, if this is one.
    pub fn number(&self) -> Option<u32> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The canonical text form for an attribute of type `ty` (what `nwf fmt` writes).
    pub fn to_text(&self, ty: ValueType) -> String {
        match (self, ty) {
            (Value::Number(n), ValueType::EtherType { .. }) => lang::ETHER_TYPES
                .iter()
                .find(|(_, v)| u32::from(*v) == *n)
                .map(|(name, _)| name.to_string())
                .unwrap_or_else(|| format!("0x{n:x}")),
            (Value::Number(n), ValueType::IpProtocol) => lang::IP_PROTOCOLS
                .iter()
                .find(|(_, v)| u32::from(*v) == *n)
                .map(|(name, _)| name.to_string())
                .unwrap_or_else(|| n.to_string()),
            (Value::Number(n), ValueType::ArpOpcode) => lang::ARP_OPCODES
                .iter()
                .find(|(_, v)| u32::from(*v) == *n)
                .map(|(name, _)| name.to_string())
                .unwrap_or_else(|| n.to_string()),
            _ => self.to_string(),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Mac(m) | Value::MacMask(m) => m.fmt(f),
            Value::Ipv4(a) => a.fmt(f),
            Value::Ipv6(a) => a.fmt(f),
            Value::Prefix(p) => p.fmt(f),
            Value::Number(n) => n.fmt(f),
            Value::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            Value::Text(t) => f.write_str(t),
            Value::States(s) => s.fmt(f),
            Value::TcpFlags(t) => t.fmt(f),
            Value::SetDirs(d) => {
                let s: Vec<&str> = d
                    .iter()
                    .map(|d| match d {
                        SetDir::Src => "src",
                        SetDir::Dst => "dst",
                    })
                    .collect();
                f.write_str(&s.join(","))
            }
        }
    }
}

/// Why a text is not a valid value; the caller adds location and the expected form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueError {
    /// What is wrong, beyond "expected ...".
    pub detail: Option<String>,
    /// A suggested replacement value.
    pub suggestion: Option<String>,
}

impl ValueError {
    fn plain() -> ValueError {
        ValueError {
            detail: None,
            suggestion: None,
        }
    }

    fn detail(d: impl Into<String>) -> ValueError {
        ValueError {
            detail: Some(d.into()),
            suggestion: None,
        }
    }
}

/// Parses an unsigned number: decimal, `0x` hex, and bare hex digits when `hex`.
pub fn parse_number(s: &str, hex: bool) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if !hex || h.is_empty() || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        return u64::from_str_radix(h, 16).ok();
    }
    if s.bytes().all(|c| c.is_ascii_digit()) {
        return s.parse().ok();
    }
    if hex && s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return u64::from_str_radix(s, 16).ok();
    }
    None
}

fn parse_ranged(s: &str, min: u32, max: u32, hex: bool) -> Result<Value, ValueError> {
    match parse_number(s, hex) {
        Some(n) if n >= u64::from(min) && n <= u64::from(max) => Ok(Value::Number(n as u32)),
        Some(n) => Err(ValueError::detail(format!("{n} is out of range"))),
        None => Err(ValueError::plain()),
    }
}

fn parse_prefix_mask(s: &str, bits: u8) -> Result<Value, ValueError> {
    if let Some(n) = parse_number(s, false) {
        return if n <= u64::from(bits) {
            Ok(Value::Prefix(n as u8))
        } else {
            Err(ValueError::detail(format!(
                "prefix length {n} is larger than {bits}"
            )))
        };
    }
    let v: u128 = if bits == 32 {
        let a: Ipv4Addr = s.parse().map_err(|_| ValueError::plain())?;
        u128::from(u32::from(a)) << 96
    } else {
        let a: Ipv6Addr = s.parse().map_err(|_| ValueError::plain())?;
        u128::from(a)
    };
    let ones = v.leading_ones();
    if v.checked_shl(ones).unwrap_or(0) != 0 {
        return Err(ValueError::detail("the mask's bits are not contiguous"));
    }
    Ok(Value::Prefix(ones as u8))
}

fn parse_enum_or_number(
    s: &str,
    names: impl Iterator<Item = (&'static str, u32)> + Clone,
    min: u32,
    max: u32,
    case_insensitive: bool,
) -> Result<Value, ValueError> {
    let found = names.clone().find(|(n, _)| {
        if case_insensitive {
            n.eq_ignore_ascii_case(s)
        } else {
            *n == s
        }
    });
    if let Some((_, v)) = found {
        return Ok(Value::Number(v));
    }
    match parse_number(s, true) {
        Some(n) if n >= u64::from(min) && n <= u64::from(max) => Ok(Value::Number(n as u32)),
        Some(n) => Err(ValueError::detail(format!("{n:#x} ({n}) is out of range"))),
        None => Err(ValueError {
            detail: None,
            suggestion: lang::did_you_mean(s, names.map(|(n, _)| n)).map(str::to_string),
        }),
    }
}

fn parse_flag_list(s: &str) -> Result<u8, ValueError> {
    let mut bits = 0;
    for w in s.split(',') {
        match lang::TCP_FLAG_NAMES.iter().find(|(n, _)| *n == w) {
            Some((_, b)) => bits |= b,
            None => {
                return Err(ValueError {
                    detail: Some(format!("unknown TCP flag `{w}`")),
                    suggestion: lang::did_you_mean(w, lang::TCP_FLAG_NAMES.iter().map(|(n, _)| *n))
                        .map(str::to_string),
                })
            }
        }
    }
    Ok(bits)
}

/// Parses the text of an attribute of type `ty` (variables are handled by the caller).
pub fn parse(ty: ValueType, s: &str) -> Result<Value, ValueError> {
    match ty {
        ValueType::Mac => MacAddr::parse(s)
            .map(Value::Mac)
            .ok_or_else(ValueError::plain),
        ValueType::MacMask => MacAddr::parse(s)
            .map(Value::MacMask)
            .ok_or_else(ValueError::plain),
        ValueType::Ipv4 => s.parse().map(Value::Ipv4).map_err(|_| ValueError::plain()),
        ValueType::Ipv6 => s.parse().map(Value::Ipv6).map_err(|_| ValueError::plain()),
        ValueType::Ipv4Mask => parse_prefix_mask(s, 32),
        ValueType::Ipv6Mask => parse_prefix_mask(s, 128),
        ValueType::Number { min, max, hex } => parse_ranged(s, min, max, hex),
        ValueType::EtherType { min } => parse_enum_or_number(
            s,
            lang::ETHER_TYPES.iter().map(|(n, v)| (*n, u32::from(*v))),
            min,
            0xffff,
            false,
        ),
        ValueType::IpProtocol if s.eq_ignore_ascii_case("dccp") => Err(ValueError {
            detail: Some("libvirt has no name for DCCP; use its number".into()),
            suggestion: Some("33".into()),
        }),
        ValueType::IpProtocol => parse_enum_or_number(
            s,
            lang::IP_PROTOCOLS.iter().map(|(n, v)| (*n, u32::from(*v))),
            0,
            255,
            false,
        ),
        ValueType::ArpOpcode => parse_enum_or_number(
            s,
            lang::ARP_OPCODES.iter().map(|(n, v)| (*n, u32::from(*v))),
            0,
            65535,
            true,
        ),
        // libvirt reads anything but true/1/yes as false; its schema allows only these six.
        ValueType::Bool => match s {
            "true" | "1" | "yes" => Ok(Value::Bool(true)),
            "false" | "0" | "no" => Ok(Value::Bool(false)),
            _ => Err(ValueError {
                detail: Some("libvirt would silently read this as false".into()),
                suggestion: ["true", "false"]
                    .into_iter()
                    .find(|c| c.eq_ignore_ascii_case(s))
                    .map(str::to_string),
            }),
        },
        ValueType::Comment => {
            if s.chars().count() > 256 {
                Err(ValueError::detail(format!(
                    "the comment has {} characters",
                    s.chars().count()
                )))
            } else {
                Ok(Value::Text(s.to_string()))
            }
        }
        ValueType::States => {
            let mut bits = 0;
            for w in s.split(',') {
                match lang::STATES.iter().find(|(n, _)| *n == w) {
                    Some((_, b)) => bits |= b,
                    None => {
                        return Err(ValueError {
                            detail: Some(format!("unknown state `{w}`")),
                            suggestion: lang::did_you_mean(w, lang::STATES.iter().map(|(n, _)| *n))
                                .map(str::to_string),
                        })
                    }
                }
            }
            Ok(Value::States(StateSet(bits)))
        }
        ValueType::TcpFlags => {
            let (m, set) = s
                .split_once('/')
                .ok_or_else(|| ValueError::detail("the `/` between MASK and SET is missing"))?;
            Ok(Value::TcpFlags(TcpFlags {
                mask: parse_flag_list(m)?,
                set: parse_flag_list(set)?,
            }))
        }
        // libvirt's parser takes 0 to 31 of these characters; its schema 1 to 31 (an empty name
        // is refused here).
        ValueType::IpsetName => {
            if s.is_empty() || s.len() > 31 {
                Err(ValueError::detail("ipset names have 1 to 31 characters"))
            } else if !s
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"_.-:+ ".contains(&c))
            {
                Err(ValueError::detail(
                    "ipset names consist of letters, digits, blanks and _ . - : +",
                ))
            } else {
                Ok(Value::Text(s.to_string()))
            }
        }
        ValueType::IpsetFlags => {
            let mut dirs = Vec::new();
            for w in s.split(',') {
                // The names are those of `lang::IPSET_DIRECTIONS`; libvirt ignores their case
                // (`SRC,Dst` is `src,dst`) and writes them back in lower case.
                dirs.push(match w.to_ascii_lowercase().as_str() {
                    "src" => SetDir::Src,
                    "dst" => SetDir::Dst,
                    _ => return Err(ValueError::detail(format!("`{w}` is neither src nor dst"))),
                });
            }
            if dirs.len() > 6 {
                return Err(ValueError::detail("at most 6 directions"));
            }
            Ok(Value::SetDirs(dirs))
        }
    }
}

/// How a variable reference selects values from a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "n", rename_all = "lowercase")]
pub enum Access {
    /// `$X` or `$X[@N]`: iterate with iterator N (0 for plain `$X`).
    Iterator(u32),
    /// `$X[N]`: element N only.
    Index(u32),
}

/// A variable reference in an attribute value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct VarRef {
    /// Variable name.
    pub name: String,
    /// How its values are selected.
    pub access: Access,
}

/// The canonical form, as libvirt writes it back: `$X[@0]` is `$X`, blanks are gone.
impl fmt::Display for VarRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.access {
            Access::Iterator(0) => write!(f, "${}", self.name),
            Access::Iterator(n) => write!(f, "${}[@{}]", self.name, n),
            Access::Index(n) => write!(f, "${}[{}]", self.name, n),
        }
    }
}

/// Whether `s` is a valid variable (parameter) name.
pub fn is_var_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Whether `s` is a valid parameter value.
pub fn is_param_value(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.:".contains(&c))
}

/// The largest iterator id libvirt accepts (`$X[@1000]`); element indexes have no limit below
/// 2^32.
pub const MAX_ITERATOR: u32 = 1000;

/// Parses `$NAME`, `$NAME[@N]` or `$NAME[N]`; `s` starts with `$`.
///
/// Blanks are read as libvirt 9.0 reads them (checked with `virsh nwfilter-define --validate`):
/// allowed after `[`, before `]` and after `]` (`$A[ 0]`, `$B[  @0 ] `), not after `$`, after the
/// name, after `@` (its parser takes `$B[@ 0]`, its schema refuses it) or after a plain `$A`.
pub fn parse_var_ref(s: &str) -> Result<VarRef, String> {
    let body = &s[1..];
    let (name, rest) = match body.find('[') {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    if !is_var_name(name) {
        return Err("a variable name consists of letters, digits and `_`".into());
    }
    let Some(rest) = rest else {
        return Ok(VarRef {
            name: name.to_string(),
            access: Access::Iterator(0),
        });
    };
    let (inner, after) = rest
        .split_once(']')
        .ok_or("expected `[@N]` or `[N]` after the variable name")?;
    if !after.bytes().all(|c| c == b' ') {
        return Err(format!(
            "`{after}` after `]`: libvirt ignores it, its schema rejects it"
        ));
    }
    let inner = inner.trim_matches(' ');
    let (iter, digits) = match inner.strip_prefix('@') {
        Some(d) => (true, d),
        None => (false, inner),
    };
    let what = if iter { "iterator id" } else { "index" };
    if iter && digits.starts_with(' ') {
        return Err("a blank after `@`: libvirt's schema rejects it".into());
    }
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("the {what} must be a number"));
    }
    let n: u32 = digits
        .parse()
        .map_err(|_| format!("the {what} {digits} is too large"))?;
    if iter && n > MAX_ITERATOR {
        return Err(format!("iterator id {n} is larger than {MAX_ITERATOR}"));
    }
    Ok(VarRef {
        name: name.to_string(),
        access: if iter {
            Access::Iterator(n)
        } else {
            Access::Index(n)
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("22", false), Some(22));
        assert_eq!(parse_number("0x16", true), Some(22));
        assert_eq!(parse_number("0x16", false), None);
        assert_eq!(parse_number("ff", true), Some(255));
        assert_eq!(parse_number("ff", false), None);
        assert_eq!(parse_number("", true), None);
    }

    #[test]
    fn masks() {
        assert_eq!(
            parse(ValueType::Ipv4Mask, "255.255.255.0"),
            Ok(Value::Prefix(24))
        );
        assert_eq!(parse(ValueType::Ipv4Mask, "24"), Ok(Value::Prefix(24)));
        assert!(parse(ValueType::Ipv4Mask, "255.0.255.0").is_err());
        assert!(parse(ValueType::Ipv4Mask, "33").is_err());
        assert_eq!(
            parse(ValueType::Ipv6Mask, "ffff:ffff::"),
            Ok(Value::Prefix(32))
        );
        assert!(MacAddr::parse("ff:ff:ff:00:00:00")
            .unwrap()
            .is_contiguous_mask());
        assert!(!MacAddr::parse("01:00:00:00:00:00")
            .unwrap()
            .is_contiguous_mask());
    }

    #[test]
    fn vars() {
        let v = parse_var_ref("$IP[@2]").unwrap();
        assert_eq!(v.access, Access::Iterator(2));
        assert_eq!(parse_var_ref("$IP").unwrap().access, Access::Iterator(0));
        assert_eq!(parse_var_ref("$IP[3]").unwrap().access, Access::Index(3));
        assert!(parse_var_ref("$").is_err());
        assert!(parse_var_ref("$A[x]").is_err());
    }

    /// What libvirt 9.0 accepts (schema and parser) and writes back, checked with virsh.
    #[test]
    fn vars_as_libvirt_reads_them() {
        for (written, canonical) in [
            ("$A[ 0]", "$A[0]"),
            ("$A[0 ]", "$A[0]"),
            ("$A[ 01 ]", "$A[1]"),
            ("$A[1]  ", "$A[1]"),
            ("$A[1 ] ", "$A[1]"),
            ("$B[  @0 ]", "$B"),
            ("$B[ @0]", "$B"),
            ("$B[@0]", "$B"),
            ("$B[@0] ", "$B"),
            ("$B[@1]", "$B[@1]"),
            ("$B[@1000]", "$B[@1000]"),
            ("$A[1001]", "$A[1001]"),
            ("$A[4294967295]", "$A[4294967295]"),
        ] {
            let v = parse_var_ref(written).unwrap_or_else(|e| panic!("{written}: {e}"));
            assert_eq!(v.to_string(), canonical, "{written}");
        }
        // Refused by libvirt's parser, or by its schema.
        for bad in [
            "$A ",
            "$ A",
            "$A [0]",
            "$B[@ 0]",
            "$B[ @ 0 ]",
            "$A[+1]",
            "$A[-1]",
            "$A[0]x",
            "$A[\t0]",
            "$",
            "$[0]",
            "$B[@1001]",
            "$A[4294967296]",
        ] {
            assert!(parse_var_ref(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ipsets() {
        // As libvirt 9.0 reads them (checked with `virsh nwfilter-define --validate`).
        let dirs = parse(ValueType::IpsetFlags, "SRC,dSt,src").unwrap();
        assert_eq!(
            dirs,
            Value::SetDirs(vec![SetDir::Src, SetDir::Dst, SetDir::Src])
        );
        assert_eq!(dirs.to_string(), "src,dst,src");
        assert!(parse(ValueType::IpsetFlags, "src,dst,src,dst,src,dst").is_ok());
        for bad in [
            "",
            "src,",
            " src",
            "src ,dst",
            "srcx",
            "src,dst,src,dst,src,dst,src",
        ] {
            assert!(parse(ValueType::IpsetFlags, bad).is_err(), "{bad:?}");
        }
        for good in ["test:_.-+", "my set", &"a".repeat(31)] {
            assert!(parse(ValueType::IpsetName, good).is_ok(), "{good:?}");
        }
        for bad in ["", "a/b", &"a".repeat(32)] {
            assert!(parse(ValueType::IpsetName, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags() {
        assert_eq!(
            parse(ValueType::TcpFlags, "SYN,ACK/SYN"),
            Ok(Value::TcpFlags(TcpFlags {
                mask: 0x12,
                set: 0x02
            }))
        );
        assert!(parse(ValueType::TcpFlags, "SYN").is_err());
    }
}
