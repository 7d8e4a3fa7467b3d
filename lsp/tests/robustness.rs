//! Thousands of random edit sequences against one server: half-typed documents, positions that
//! split characters or lie past the end, reversed ranges, deleting everything, undecodable
//! messages — with requests in between. The server must answer every request (no crash, no
//! hang: every answer has a timeout) and its copy of each document must equal ours (edits
//! applied in order).

mod common;

use common::{uri, ws_root, Client};
use serde_json::{json, Value};
use std::time::Duration;
use tower_lsp_server::ls_types::TextDocumentContentChangeEvent;

/// A small deterministic generator (xorshift64*), so failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Pieces typed into documents: fragments of filters, broken syntax, multi-byte characters.
const FRAGMENTS: &[&str] = &[
    "<rule action='accept' direction='in'>",
    "</rule>",
    "<tcp dstportstart='22'/>",
    "<filterref filter='clean-traffic'/>",
    "<filterref filter='web'/>",
    "<filter name='x'>",
    "</filter>",
    "<ip srcipaddr='$IP' protocol='",
    "<arp opcode='Req",
    "<!-- 😀 é ✓ -->",
    "<!--",
    "-->",
    "'",
    "\"",
    "<",
    ">",
    "/>",
    "=",
    "$",
    "\n",
    "\r\n",
    "😀",
    "é",
    "\u{10FFFF}",
    "<![CDATA[",
    "<!DOCTYPE x [<!ENTITY a 'b'>]>",
    "&a;",
    "<?xml version='1.0'?>",
    "state='NEW,ESTABLISHED'",
    "flags='SYN,ACK/SYN'",
    "filter x {",
    "}",
    "in drop tcp dstportstart == ",
    "out accept arp opcode != Request priority 10",
    "use base-rules(IP = [1.2.3.4, $X",
    ")",
    "# comment 😀",
    "\"unterminated",
    "..",
    "!=",
    ";",
    "",
];

fn random_position(rng: &mut Rng, text: &str) -> (u32, u32) {
    let lines = text.split('\n').count() as u64;
    let line = match rng.below(10) {
        0 => rng.below(1_000_000) as u32,
        _ => rng.below(lines + 1) as u32,
    };
    let len = text
        .split('\n')
        .nth(line as usize)
        .map_or(0, |l| l.encode_utf16().count() as u64);
    let col = match rng.below(10) {
        0 => u32::MAX - rng.below(10) as u32,
        1 => (len + rng.below(5)) as u32,
        // Any UTF-16 column of the line, including the middle of a surrogate pair.
        _ => rng.below(len + 1) as u32,
    };
    (line, col)
}

fn random_change(rng: &mut Rng, text: &str) -> Value {
    match rng.below(20) {
        0 => json!({"text": ""}),
        1 => json!({"text": rng.pick(FRAGMENTS).repeat(rng.below(4) as usize)}),
        _ => {
            let (sl, sc) = random_position(rng, text);
            let (el, ec) = if rng.below(3) == 0 {
                random_position(rng, text)
            } else {
                (sl, sc.saturating_add(rng.below(4) as u32))
            };
            let insert = if rng.below(4) == 0 {
                String::new()
            } else {
                (0..=rng.below(3))
                    .map(|_| *rng.pick(FRAGMENTS))
                    .collect::<String>()
            };
            json!({"range": {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}, "text": insert})
        }
    }
}

const REQUESTS: &[&str] = &[
    "textDocument/hover",
    "textDocument/completion",
    "textDocument/definition",
    "textDocument/references",
    "textDocument/prepareRename",
    "textDocument/rename",
    "textDocument/documentSymbol",
    "textDocument/foldingRange",
    "textDocument/formatting",
    "textDocument/semanticTokens/full",
    "textDocument/codeAction",
    "textDocument/inlayHint",
];

fn request_params(rng: &mut Rng, method: &str, uri: &str, text: &str) -> Value {
    let (line, character) = random_position(rng, text);
    let p = json!({"line": line, "character": character});
    let range = json!({"start": {"line": 0, "character": 0}, "end": p});
    let mut v = json!({"textDocument": {"uri": uri}, "position": p});
    match method {
        "textDocument/references" => v["context"] = json!({"includeDeclaration": true}),
        "textDocument/rename" => v["newName"] = json!("renamed"),
        "textDocument/formatting" => v["options"] = json!({"tabSize": 2, "insertSpaces": true}),
        "textDocument/codeAction" => {
            v["range"] = range;
            v["context"] = json!({"diagnostics": []});
        }
        "textDocument/inlayHint" => v["range"] = range,
        _ => {}
    }
    v
}

async fn run(seed: u64, sequences: usize) {
    let mut rng = Rng(seed);
    let mut c = Client::start(Some(&ws_root()), json!({"debounceMs": 1})).await;
    let seeds: Vec<String> = ["web.xml", "base-rules.xml", "loop-a.xml", "guard.nwf"]
        .iter()
        .map(|f| std::fs::read_to_string(ws_root().join(f)).expect("fixture"))
        .chain([String::new(), "<filter name='😀'>".to_string()])
        .collect();
    for s in 0..sequences {
        // Both front ends: every other document is in the filter language.
        let ext = if s % 2 == 0 { "xml" } else { "nwf" };
        let u = uri(&ws_root().join(format!("random-{}.{ext}", s % 7)));
        let mut text = rng.pick(&seeds).clone();
        c.open(&u, &text).await;
        let mut version = 1;
        for _ in 0..rng.below(12) + 1 {
            let changes: Vec<Value> = (0..rng.below(3) + 1)
                .map(|_| random_change(&mut rng, &text))
                .collect();
            // Our copy, with the server's documented rules for odd ranges.
            for ch in &changes {
                let ev: TextDocumentContentChangeEvent =
                    serde_json::from_value(ch.clone()).expect("valid change");
                nwf_lsp::state::apply_change(&mut text, &ev);
            }
            version += 1;
            c.change_raw(&u, version, json!(changes)).await;
            if rng.below(3) == 0 {
                let m = *rng.pick(REQUESTS);
                let params = request_params(&mut rng, m, &u, &text);
                let r = c.request(m, params).await;
                assert!(
                    r.get("result").is_some() || r.get("error").is_some(),
                    "seed {seed} seq {s}: {m} answered {r}"
                );
            }
        }
        if rng.below(50) == 0 {
            // Not JSON, not UTF-8: the server answers with an error and goes on.
            c.send_raw(b"{\"jsonrpc\": \"2.0\", \xff\xfe}").await;
        }
        let got = c.server_text(&u).await;
        assert_eq!(
            got,
            Some((version, text.clone())),
            "seed {seed} seq {s}: server text differs"
        );
        c.notify("textDocument/didClose", json!({"textDocument": {"uri": u}}))
            .await;
        c.notifications.clear();
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_edit_sequences_never_crash_or_hang() {
    let total = Duration::from_secs(300);
    let work = async {
        for seed in [1u64, 0x9e37_79b9_7f4a_7c15, 42, 7] {
            run(seed, 600).await;
        }
    };
    tokio::time::timeout(total, work)
        .await
        .expect("2,400 sequences finish well within the time limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_changes_is_applied_in_order() {
    // Hundreds of single-character insertions sent without waiting: any reordering would
    // scramble the text.
    let mut c = Client::start(Some(&ws_root()), json!({"debounceMs": 1})).await;
    let u = uri(&ws_root().join("burst.xml"));
    c.open(&u, "").await;
    let mut expected = String::new();
    for i in 0..2000u32 {
        let ch = char::from(b'a' + (i % 26) as u8).to_string();
        let col = expected.len() as u32;
        c.change_raw(
            &u,
            i as i32 + 2,
            json!([{"range": {"start": {"line": 0, "character": col}, "end": {"line": 0, "character": col}}, "text": ch}]),
        )
        .await;
        expected.push_str(&ch);
    }
    let got = c.server_text(&u).await;
    assert_eq!(got, Some((2001, expected)));
    c.shutdown().await;
}
