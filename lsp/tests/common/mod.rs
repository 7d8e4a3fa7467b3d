//! An in-process LSP client: drives the real server over an in-memory duplex stream with
//! JSON-RPC messages, as an editor would.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// How long any single answer may take before the test fails (a hang).
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A client connected to a fresh server.
pub struct Client {
    write: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    incoming: mpsc::UnboundedReceiver<Value>,
    /// Notifications received while waiting for something else.
    pub notifications: VecDeque<Value>,
    /// Requests the server sent (answered with `null`).
    pub server_requests: Vec<Value>,
    next_id: i64,
    versions: std::collections::HashMap<String, i32>,
}

/// The workspace of the fixtures.
pub fn ws_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/lsp/ws")
        .canonicalize()
        .expect("fixture workspace exists")
}

/// The `file:` URI of a path.
pub fn uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// Standard filters are written below a cache directory; tests use their own.
pub fn cache_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("nwf-lsp-test-cache-{}", std::process::id()));
    // SAFETY of set_var: every test sets the same value, before the server reads it.
    std::env::set_var("XDG_CACHE_HOME", &d);
    d
}

/// Makes a JSON value independent of where the repository and the cache are.
pub fn redact(v: &Value) -> String {
    redact_text(&serde_json::to_string_pretty(v).expect("serializes"))
}

/// Makes a text independent of where the repository and the cache are.
pub fn redact_text(s: &str) -> String {
    s.replace(&uri(&ws_root()), "file:///WS")
        .replace(&uri(&cache_dir()), "file:///CACHE")
        .replace(&ws_root().display().to_string(), "/WS")
}

impl Client {
    /// Starts a server and initializes it with `root` as workspace folder.
    pub async fn start(root: Option<&Path>, options: Value) -> Client {
        Client::start_with(root, options, json!({})).await
    }

    /// Starts a server announcing client `capabilities`.
    pub async fn start_with(root: Option<&Path>, options: Value, capabilities: Value) -> Client {
        cache_dir();
        let (client_io, server_io) = tokio::io::duplex(1 << 22);
        let (sr, sw) = tokio::io::split(server_io);
        tokio::spawn(nwf_lsp::serve(sr, sw, nwf_lsp::Options::default()));
        let (cr, cw) = tokio::io::split(client_io);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut r = BufReader::new(cr);
            loop {
                let mut len = None;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length:") {
                        len = v.trim().parse::<usize>().ok();
                    }
                }
                let Some(len) = len else { return };
                let mut body = vec![0; len];
                if r.read_exact(&mut body).await.is_err() {
                    return;
                }
                let Ok(v) = serde_json::from_slice::<Value>(&body) else {
                    return;
                };
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let mut c = Client {
            write: cw,
            incoming: rx,
            notifications: VecDeque::new(),
            server_requests: Vec::new(),
            next_id: 1,
            versions: Default::default(),
        };
        let folders = root.map(|r| json!([{ "uri": uri(r), "name": "ws" }]));
        let init = c
            .request(
                "initialize",
                json!({
                    "processId": null,
                    "rootUri": root.map(uri),
                    "workspaceFolders": folders,
                    "capabilities": capabilities,
                    "initializationOptions": options,
                }),
            )
            .await;
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        c.notify("initialized", json!({})).await;
        c
    }

    async fn send(&mut self, v: Value) {
        let body = serde_json::to_vec(&v).expect("serializes");
        let mut msg = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        msg.extend(body);
        self.write.write_all(&msg).await.expect("server reads");
    }

    /// Sends raw bytes as one message body (to test undecodable input).
    pub async fn send_raw(&mut self, body: &[u8]) {
        let mut msg = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        msg.extend(body);
        self.write.write_all(&msg).await.expect("server reads");
    }

    /// Sends a notification.
    pub async fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    async fn next(&mut self) -> Value {
        match tokio::time::timeout(TIMEOUT, self.incoming.recv()).await {
            Ok(Some(v)) => v,
            Ok(None) => panic!("server closed the connection"),
            Err(_) => panic!("server did not answer within {TIMEOUT:?}"),
        }
    }

    /// Sends a request and waits for its response (the whole response object).
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let v = self.next().await;
            if v.get("id") == Some(&json!(id)) && v.get("method").is_none() {
                return v;
            }
            self.stash(v).await;
        }
    }

    /// The `result` of a request (panics on an error response).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let v = self.request(method, params).await;
        match v.get("result") {
            Some(r) => r.clone(),
            None => panic!("{method} failed: {v}"),
        }
    }

    async fn stash(&mut self, v: Value) {
        if v.get("method").is_some() && v.get("id").is_some() {
            // A request from the server: answer it so it does not wait.
            let id = v["id"].clone();
            self.send(json!({"jsonrpc": "2.0", "id": id, "result": null}))
                .await;
            self.server_requests.push(v);
        } else if v.get("method").is_some() {
            self.notifications.push_back(v);
        }
    }

    /// Opens a document.
    pub async fn open(&mut self, uri: &str, text: &str) {
        self.versions.insert(uri.to_string(), 1);
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "xml", "version": 1, "text": text}}),
        )
        .await;
    }

    /// Sends a change with explicit JSON content changes and a version.
    pub async fn change_raw(&mut self, uri: &str, version: i32, changes: Value) {
        self.versions.insert(uri.to_string(), version);
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}),
        )
        .await;
    }

    /// Sends incremental edits (`[(start line, start col, end line, end col, text)]`).
    pub async fn change(&mut self, uri: &str, edits: &[(u32, u32, u32, u32, &str)]) {
        let v = self.versions.entry(uri.to_string()).or_insert(0);
        *v += 1;
        let version = *v;
        let changes: Vec<Value> = edits
            .iter()
            .map(|(sl, sc, el, ec, t)| {
                json!({"range": {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}, "text": t})
            })
            .collect();
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}),
        )
        .await;
    }

    /// The version of the last change sent for a document.
    pub fn version(&self, uri: &str) -> i32 {
        self.versions.get(uri).copied().unwrap_or(0)
    }

    /// Waits for diagnostics of `uri` at `version` (or any version when `None`).
    pub async fn diagnostics(&mut self, uri: &str, version: Option<i32>) -> Value {
        let matches = |v: &Value| {
            v["method"] == "textDocument/publishDiagnostics"
                && v["params"]["uri"] == uri
                && version.is_none_or(|ver| v["params"]["version"] == json!(ver))
        };
        if let Some(i) = self.notifications.iter().rposition(matches) {
            let v = self.notifications[i].clone();
            self.notifications.drain(..=i);
            return v["params"]["diagnostics"].clone();
        }
        loop {
            let v = self.next().await;
            if matches(&v) {
                return v["params"]["diagnostics"].clone();
            }
            self.stash(v).await;
        }
    }

    /// Waits until diagnostics of `uri` satisfy `pred` (any version); returns them.
    pub async fn diagnostics_until(&mut self, uri: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let d = self.diagnostics(uri, None).await;
            if pred(&d) {
                return d;
            }
        }
    }

    /// Waits for the next message from the server (answering its requests); `None` after
    /// `wait` without one.
    pub async fn pump(&mut self, wait: Duration) -> Option<()> {
        let v = tokio::time::timeout(wait, self.incoming.recv())
            .await
            .ok()??;
        self.stash(v).await;
        Some(())
    }

    /// The server's copy of a document: (version, text).
    pub async fn server_text(&mut self, uri: &str) -> Option<(i32, String)> {
        let v = self.call("nwf/documentText", json!({"uri": uri})).await;
        serde_json::from_value(v).ok()
    }

    /// Shuts the server down cleanly.
    pub async fn shutdown(mut self) {
        let _ = self.call("shutdown", Value::Null).await;
        self.notify("exit", Value::Null).await;
    }
}

/// The (line, UTF-16 column) of the `n`-th occurrence of `needle` in `text`, plus `delta`
/// characters.
pub fn pos(text: &str, needle: &str, delta: usize) -> Value {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} in text"))
        + delta;
    let before = &text[..at];
    let line = before.matches('\n').count();
    let col: usize = before
        .rsplit('\n')
        .next()
        .unwrap_or("")
        .chars()
        .map(char::len_utf16)
        .sum();
    json!({"line": line, "character": col})
}
