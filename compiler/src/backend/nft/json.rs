//! The ruleset as nft JSON (`nft -j -f`), built from the `nftables` crate's schema types.

use super::ruleset::{Ruleset, Table};
use nftables::schema::{self, NfCmd, NfListObject, NfObject, Nftables};
use nftables::types::{NfChainPolicy, NfChainType};
use std::borrow::Cow;

impl Ruleset {
    /// The ruleset as nft JSON commands: the same transaction as [`Ruleset::to_text`]
    /// (create and delete each table, then define it), chains before rules so that every
    /// jump target exists when its rule is added.
    pub fn to_json(&self) -> Nftables<'static> {
        let mut objects: Vec<NfObject<'static>> = Vec::new();
        let table = |t: &Table| schema::Table {
            family: t.family,
            name: Cow::Owned(self.name.clone()),
            handle: None,
        };
        for t in &self.tables {
            objects.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Table(table(
                t,
            )))));
            objects.push(NfObject::CmdObject(NfCmd::Delete(NfListObject::Table(
                table(t),
            ))));
        }
        for t in &self.tables {
            objects.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Table(table(
                t,
            )))));
            for c in &t.chains {
                let mut chain = schema::Chain {
                    family: t.family,
                    table: Cow::Owned(self.name.clone()),
                    name: Cow::Owned(c.name.clone()),
                    ..Default::default()
                };
                if let Some((hook, prio)) = c.base {
                    chain._type = Some(NfChainType::Filter);
                    chain.hook = Some(hook);
                    chain.prio = Some(prio);
                    chain.policy = Some(NfChainPolicy::Accept);
                }
                objects.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Chain(chain))));
            }
        }
        for t in &self.tables {
            for c in &t.chains {
                for r in &c.rules {
                    objects.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(
                        schema::Rule {
                            family: t.family,
                            table: Cow::Owned(self.name.clone()),
                            chain: Cow::Owned(c.name.clone()),
                            expr: Cow::Owned(r.stmts.clone()),
                            comment: r.comment.clone().map(Cow::Owned),
                            ..Default::default()
                        },
                    ))));
                }
            }
        }
        Nftables {
            objects: Cow::Owned(objects),
        }
    }

    /// The JSON document as text, ready for `nft -j -f`: one command per line, so that it
    /// stays readable and diffs well.
    ///
    /// One fix-up on top of the crate's types: a TCP option nft has no name for (the crate
    /// can only name options) is written the way nft itself lists it,
    /// `{"tcp option": {"base": N, "offset": 0, "len": 8}}`.
    pub fn to_json_string(&self) -> String {
        let doc = self.to_json();
        let mut out = String::from("{\"nftables\": [\n");
        for (i, object) in doc.objects.iter().enumerate() {
            let mut v = serde_json::to_value(object).expect("nft JSON serializes");
            fix_tcp_options(&mut v);
            if i > 0 {
                out.push_str(",\n");
            }
            out.push_str(&v.to_string());
        }
        out.push_str("\n]}\n");
        out
    }
}

fn fix_tcp_options(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(opt)) = map.get_mut("tcp option") {
                let number = opt
                    .get("name")
                    .and_then(|n| n.as_str())
                    .and_then(|n| n.strip_prefix('@'))
                    .and_then(|n| n.parse::<u8>().ok());
                if let Some(n) = number {
                    opt.clear();
                    opt.insert("base".into(), n.into());
                    opt.insert("offset".into(), 0.into());
                    opt.insert("len".into(), 8.into());
                }
            }
            map.values_mut().for_each(fix_tcp_options);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(fix_tcp_options),
        _ => {}
    }
}
