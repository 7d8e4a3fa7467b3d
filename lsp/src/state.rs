//! The document-state actor: the only owner of open documents.
//!
//! tower-lsp-server runs handlers concurrently, so two `didChange` handlers could interleave
//! and apply edits out of order. Every handler therefore does one thing before its first
//! `.await`: it sends a [`Msg`] into an unbounded channel (a synchronous send). The server
//! starts handler futures in the order messages arrive, so the channel holds them in arrival
//! order, and this single task applies them one at a time. Requests send a
//! [`Msg::Snapshot`] the same way and so see every change that arrived before them.
//!
//! Diagnostics are debounced: a change sets a deadline `debounce` ahead (pushed back by
//! further changes, but never more than [`MAX_DELAY_FACTOR`] times past the first unpublished
//! change), and when it passes the documents are analysed once and published.

use crate::analysis::{self, Analysis, Base, Disk, OpenDoc, Settings};
use crate::convert;
use crate::place::Placed;
use nwf_compiler::position::LineIndex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tower_lsp_server::ls_types::{self as lsp, TextDocumentContentChangeEvent, Uri};
use tower_lsp_server::Client;

/// Continuous typing delays diagnostics at most this many debounce periods.
pub const MAX_DELAY_FACTOR: u32 = 4;

/// A message to the actor.
#[derive(Debug)]
pub enum Msg {
    /// `textDocument/didOpen`.
    Open(OpenDoc),
    /// `textDocument/didChange`.
    Change {
        /// The document.
        uri: Uri,
        /// Its version after the change.
        version: i32,
        /// The edits, applied in order.
        changes: Vec<TextDocumentContentChangeEvent>,
    },
    /// `textDocument/didClose`.
    Close(Uri),
    /// New settings (initialize options, configuration changes); `None` keeps the field.
    Configure {
        /// Filter directories.
        filters: Option<Vec<std::path::PathBuf>>,
        /// Binding for variable values.
        binding: Option<Option<std::path::PathBuf>>,
        /// Workspace roots.
        roots: Option<Vec<std::path::PathBuf>>,
        /// Debounce delay.
        debounce: Option<Duration>,
    },
    /// Files on disk changed: read every file again (clients that do not watch files).
    Rescan,
    /// These files were changed, created or deleted on disk (`didChangeWatchedFiles`,
    /// `didSave`): read them again.
    FilesChanged(Vec<std::path::PathBuf>),
    /// The current analysis (made fresh if documents changed).
    Snapshot(oneshot::Sender<Arc<Analysis>>),
    /// The text and version of an open document (tests compare it with their own copy).
    Text(Uri, oneshot::Sender<Option<(i32, String)>>),
}

/// Where published diagnostics go.
#[derive(Clone, Debug)]
pub enum Output {
    /// An LSP client.
    Client(Client),
    /// A channel (benchmarks and tests of the actor alone).
    Channel(mpsc::UnboundedSender<lsp::PublishDiagnosticsParams>),
}

impl Output {
    async fn publish(&self, p: lsp::PublishDiagnosticsParams) {
        match self {
            Output::Client(c) => c.publish_diagnostics(p.uri, p.diagnostics, p.version).await,
            Output::Channel(tx) => {
                let _ = tx.send(p);
            }
        }
    }

    async fn log(&self, message: String) {
        if let Output::Client(c) = self {
            c.log_message(lsp::MessageType::WARNING, message).await;
        }
    }
}

/// Starts the actor on the current tokio runtime; returns its mailbox.
pub fn spawn(out: Output, settings: Settings, debounce: Duration) -> mpsc::UnboundedSender<Msg> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(out, settings, debounce, rx));
    tx
}

struct Actor {
    out: Output,
    settings: Settings,
    debounce: Duration,
    disk: Option<Disk>,
    base: Option<Base>,
    docs: BTreeMap<String, OpenDoc>,
    current: Option<Arc<Analysis>>,
    /// Documents closed since the last publication (their diagnostics are cleared).
    closed: Vec<Uri>,
    /// What was last published per document (version and diagnostics), so that a change
    /// elsewhere re-publishes only the documents whose diagnostics it changed.
    published: BTreeMap<String, (i32, Vec<lsp::Diagnostic>)>,
    deadline: Option<Instant>,
    first_pending: Option<Instant>,
}

async fn run(
    out: Output,
    settings: Settings,
    debounce: Duration,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) {
    let mut a = Actor {
        out,
        settings,
        debounce,
        disk: None,
        base: None,
        docs: BTreeMap::new(),
        current: None,
        closed: Vec::new(),
        published: BTreeMap::new(),
        deadline: None,
        first_pending: None,
    };
    loop {
        let deadline = a.deadline;
        tokio::select! {
            biased;
            msg = rx.recv() => match msg {
                Some(m) => a.handle(m).await,
                None => break,
            },
            _ = sleep_until_opt(deadline) => a.publish().await,
        }
    }
}

async fn sleep_until_opt(d: Option<Instant>) {
    match d {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Actor {
    async fn handle(&mut self, m: Msg) {
        match m {
            Msg::Open(doc) => {
                let key = doc.uri.as_str().to_string();
                // A document opened again gets its diagnostics even if they did not change.
                self.published.remove(&key);
                self.docs.insert(key, doc);
                self.changed();
            }
            Msg::Change {
                uri,
                version,
                changes,
            } => {
                let Some(doc) = self.docs.get_mut(uri.as_str()) else {
                    self.out
                        .log(format!(
                            "change to a document that is not open: {}",
                            uri.as_str()
                        ))
                        .await;
                    return;
                };
                if version <= doc.version {
                    // Versions only grow; an older one means the client resent or reordered.
                    self.out
                        .log(format!(
                            "change to {} has version {version}, not newer than {}",
                            uri.as_str(),
                            doc.version
                        ))
                        .await;
                }
                for c in &changes {
                    apply_change(&mut doc.text, c);
                }
                doc.version = version;
                self.changed();
            }
            Msg::Close(uri) => {
                if self.docs.remove(uri.as_str()).is_some() {
                    // Its disk copy now counts, and may differ from the one read before.
                    if let (Some(disk), Some(path)) = (&mut self.disk, crate::uri::to_path(&uri)) {
                        disk.reload(&self.settings, &path);
                    }
                    self.closed.push(uri);
                    self.changed();
                }
            }
            Msg::Configure {
                filters,
                binding,
                roots,
                debounce,
            } => {
                let mut s = self.settings.clone();
                if let Some(f) = filters {
                    s.filters = f;
                }
                if let Some(b) = binding {
                    s.binding = b;
                }
                if let Some(r) = roots {
                    s.roots = r;
                }
                if let Some(d) = debounce {
                    self.debounce = d;
                }
                if s != self.settings {
                    self.settings = s;
                    self.disk = None;
                    self.base = None;
                    self.changed();
                }
            }
            Msg::Rescan => {
                self.disk = None;
                self.base = None;
                self.changed();
            }
            Msg::FilesChanged(paths) => {
                // Not loaded yet: the first analysis reads everything anyway.
                let Some(disk) = &mut self.disk else { return };
                let mut changed = false;
                for p in &paths {
                    if self
                        .settings
                        .binding
                        .as_deref()
                        .is_some_and(|b| analysis::same_file(b, p))
                    {
                        disk.load_binding(&self.settings);
                        changed = true;
                    }
                    changed |= disk.reload(&self.settings, p);
                }
                if changed {
                    self.base = None;
                    self.changed();
                }
            }
            Msg::Snapshot(reply) => {
                let a = self.analysis().await;
                let _ = reply.send(a);
            }
            Msg::Text(uri, reply) => {
                let _ = reply.send(
                    self.docs
                        .get(uri.as_str())
                        .map(|d| (d.version, d.text.clone())),
                );
            }
        }
    }

    fn changed(&mut self) {
        self.current = None;
        let now = Instant::now();
        let first = *self.first_pending.get_or_insert(now);
        let cap = first + self.debounce * MAX_DELAY_FACTOR;
        self.deadline = Some((now + self.debounce).min(cap));
    }

    /// The analysis of the current documents, computed now if anything changed.
    async fn analysis(&mut self) -> Arc<Analysis> {
        if let Some(a) = &self.current {
            return a.clone();
        }
        let disk = match &self.disk {
            Some(d) => d,
            None => {
                let d = analysis::load_disk(&self.settings);
                for p in &d.problems {
                    self.out.log(p.clone()).await;
                }
                self.disk.insert(d)
            }
        };
        let open_paths: BTreeSet<_> = self
            .docs
            .values()
            .filter_map(|d| crate::uri::to_path(&d.uri))
            .collect();
        let base = match self.base.take() {
            Some(b) if b.without == open_paths => b,
            _ => Base::build(disk, open_paths),
        };
        let open: Vec<&OpenDoc> = self.docs.values().collect();
        let mut a = analysis::analyze(&base, &open, &disk.vars);
        let binding = disk.binding.clone();
        let tx = binding.as_ref().map(|_| {
            let (tx, rx) = watch::channel(None);
            a.placement = Some(rx);
            tx
        });
        let a = Arc::new(a);
        if let (Some(binding), Some(tx)) = (binding, tx) {
            // Instantiation runs off the actor, so edits never wait for it. A task whose
            // analysis is already gone (superseded, no request holds it) does nothing.
            let weak = Arc::downgrade(&a);
            tokio::task::spawn_blocking(move || {
                let Some(a) = weak.upgrade() else { return };
                let placed = Placed::compute(&a.lib, &binding);
                let _ = tx.send(Some(Arc::new(placed)));
            });
        }
        self.base = Some(base);
        self.current = Some(a.clone());
        a
    }

    async fn publish(&mut self) {
        self.deadline = None;
        self.first_pending = None;
        let a = self.analysis().await;
        for uri in std::mem::take(&mut self.closed) {
            if !a.docs.contains_key(uri.as_str()) {
                self.published.remove(uri.as_str());
                self.out
                    .publish(lsp::PublishDiagnosticsParams::new(uri, Vec::new(), None))
                    .await;
            }
        }
        for doc in a.docs.values() {
            let diags = convert::diagnostics(&a, doc);
            let last = (doc.version, diags);
            if self.published.get(doc.uri.as_str()) == Some(&last) {
                continue;
            }
            let diags = last.1.clone();
            self.published.insert(doc.uri.as_str().to_string(), last);
            self.out
                .publish(lsp::PublishDiagnosticsParams::new(
                    doc.uri.clone(),
                    diags,
                    Some(doc.version),
                ))
                .await;
        }
    }
}

/// Applies one content change to a text. Never panics: ranges are clamped to the text, a
/// reversed range is taken as written from its smaller end, and a position between the two
/// UTF-16 halves of a character snaps to the character's start.
pub fn apply_change(text: &mut String, c: &TextDocumentContentChangeEvent) {
    let Some(r) = c.range else {
        *text = c.text.clone();
        return;
    };
    let ix = LineIndex::new(text);
    let a = ix.from_utf16(text, r.start.line, r.start.character);
    let b = ix.from_utf16(text, r.end.line, r.end.character);
    let (a, b) = (a.min(b), a.max(b));
    text.replace_range(a..b, &c.text);
}
