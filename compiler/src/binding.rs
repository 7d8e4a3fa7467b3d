//! Reads the port a filter is instantiated for: a libvirt `<filterbinding>`, or a domain's
//! `<interface>` element as `virsh dumpxml` prints it.

use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::Param;
use crate::source::{FileId, SourceMap, Span};
use crate::value::{self, MacAddr};
use roxmltree::Node;

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(name))
}

/// One VM port and the filter applied to it.
#[derive(Clone, Debug)]
pub struct Binding {
    /// The host-side port device (`vnet0`).
    pub port: String,
    /// The VM's MAC address.
    pub mac: MacAddr,
    /// The filter applied.
    pub filter: String,
    /// The filter name's span.
    pub filter_span: Span,
    /// Parameters of the filterref (the top-level variables).
    pub params: Vec<Param>,
    /// The file it was read from.
    pub file: FileId,
}

/// Reads a binding file; all problems go to `diags`.
pub fn read_binding(sources: &SourceMap, file: FileId, diags: &mut Diagnostics) -> Option<Binding> {
    let doc = crate::xml::parse_document(sources, file, "binding", diags)?;
    let root = doc.root_element();
    let span = |n: Node| {
        let s = n.range().start;
        Span::new(file, s..s + 1 + n.tag_name().name().len())
    };
    let (port_elem, port_attr, mac_elem) = match root.tag_name().name() {
        "filterbinding" => ("portdev", "name", "mac"),
        "interface" => ("target", "dev", "mac"),
        other => {
            diags.push(
                Diagnostic::error(
                    "E0004",
                    format!("expected <filterbinding> or <interface>, found <{other}>"),
                )
                .at(span(root), "not a binding")
                .with_help("a binding names the port (<portdev>), its <mac> and a <filterref>"),
            );
            return None;
        }
    };
    let mut ok = true;
    let mut missing = |what: &str, diags: &mut Diagnostics| {
        ok = false;
        diags.push(
            Diagnostic::error("E0101", format!("the binding has no {what}"))
                .at(span(root), format!("{what} is missing")),
        );
    };
    let port = child(root, port_elem)
        .and_then(|n| n.attribute(port_attr))
        .map(str::to_string);
    if port.is_none() {
        missing(&format!("<{port_elem} {port_attr}='...'>"), diags);
    }
    let mac = match child(root, mac_elem).and_then(|n| n.attribute_node("address")) {
        Some(a) => match MacAddr::parse(a.value()) {
            Some(m) => Some(m),
            None => {
                diags.push(
                    Diagnostic::error("E0104", format!("invalid MAC address `{}`", a.value())).at(
                        Span::new(file, a.range_value()),
                        "expected a MAC address like 52:54:00:12:34:56",
                    ),
                );
                None
            }
        },
        None => {
            missing("<mac address='...'>", diags);
            None
        }
    };
    let fref = child(root, "filterref");
    let filter = fref.and_then(|n| n.attribute_node("filter"));
    if filter.is_none() {
        missing("<filterref filter='...'>", diags);
    }
    let mut params = Vec::new();
    if let Some(fr) = fref {
        for p in fr.children().filter(|c| c.has_tag_name("parameter")) {
            let (Some(name), Some(value)) = (p.attribute("name"), p.attribute("value")) else {
                diags.push(
                    Diagnostic::error("E0101", "a <parameter> needs `name` and `value`")
                        .at(span(p), "incomplete parameter"),
                );
                ok = false;
                continue;
            };
            if !value::is_var_name(name) || !value::is_param_value(value) {
                let vspan = p
                    .attribute_node("value")
                    .map(|a| Span::new(file, a.range_value()))
                    .unwrap_or(span(p));
                diags.push(
                    Diagnostic::error("E0111", format!("invalid parameter {name}='{value}'"))
                        .at(vspan, "names are [A-Za-z0-9_]+, values [A-Za-z0-9_.:]+")
                        .with_note("libvirt silently drops such a parameter"),
                );
                ok = false;
                continue;
            }
            params.push(Param {
                name: name.to_string(),
                value: value.to_string(),
                span: Span::new(file, p.range()),
            });
        }
    }
    if let Some(p) = &port {
        if let Err(why) = check_ifname(p) {
            let pspan = child(root, port_elem)
                .and_then(|n| n.attribute_node(port_attr))
                .map(|a| Span::new(file, a.range_value()))
                .unwrap_or(span(root));
            diags.push(
                Diagnostic::error("E0104", format!("invalid interface name `{p}`")).at(pspan, why),
            );
            ok = false;
        }
    }
    let (port, mac, filter) = (port?, mac?, filter?);
    if !ok {
        return None;
    }
    Some(Binding {
        port,
        mac,
        filter: filter.value().to_string(),
        filter_span: Span::new(file, filter.range_value()),
        params,
        file,
    })
}

/// Checks a Linux interface name: 1-15 bytes, no `/`, `:` or whitespace, not `.` or `..`.
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err("interface names have 1 to 15 bytes".into());
    }
    if name == "." || name == ".." {
        return Err("`.` and `..` are not interface names".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || *c == '/' || *c == ':' || c.is_control())
    {
        return Err(format!("{c:?} is not allowed in an interface name"));
    }
    if !name.is_ascii() {
        return Err("only ASCII characters are accepted in interface names".into());
    }
    Ok(())
}
