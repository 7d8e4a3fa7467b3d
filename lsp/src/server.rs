//! The LSP front: capabilities, and one thin handler per request that asks the state actor
//! for a snapshot and hands it to a feature module.

use crate::analysis::{Analysis, Doc, OpenDoc, Settings};
use crate::state::{self, Msg, Output};
use crate::{complete, convert, hover, misc, nav};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

/// The nwf language server.
pub struct Backend {
    tx: mpsc::UnboundedSender<Msg>,
    client: Client,
    /// Whether the client registers file watchers for us (then saves reload one file).
    watch: AtomicBool,
}

impl Backend {
    /// A server publishing to `client`, with command-line defaults.
    pub fn new(client: Client, settings: Settings, debounce: Duration) -> Backend {
        Backend {
            tx: state::spawn(Output::Client(client.clone()), settings, debounce),
            client,
            watch: AtomicBool::new(false),
        }
    }

    /// Sends to the actor. Called first in every handler, before any `.await`, so messages
    /// reach the actor in the order they arrived (see `state`).
    fn send(&self, m: Msg) {
        let _ = self.tx.send(m);
    }

    fn snapshot_request(&self) -> oneshot::Receiver<Arc<Analysis>> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Snapshot(tx));
        rx
    }

    /// Like [`Backend::with_doc`], after the program positions of the snapshot are known
    /// (hover and inlay hints show them; waits only when a binding is configured).
    async fn with_doc_placed<T>(
        &self,
        uri: &Uri,
        f: impl FnOnce(&Analysis, &Doc) -> T,
    ) -> Result<Option<T>> {
        let rx = self.snapshot_request();
        let a = rx.await.map_err(|_| Error::internal_error())?;
        a.placement_ready().await;
        Ok(convert::doc(&a, uri).map(|d| f(&a, d)))
    }

    /// Runs `f` on the open document `uri` of a fresh snapshot.
    async fn with_doc<T>(
        &self,
        uri: &Uri,
        f: impl FnOnce(&Analysis, &Doc) -> T,
    ) -> Result<Option<T>> {
        let rx = self.snapshot_request();
        let a = rx.await.map_err(|_| Error::internal_error())?;
        Ok(convert::doc(&a, uri).map(|d| f(&a, d)))
    }

    /// `nwf/documentText` (`{"uri": ...}`): the server's version and text of an open
    /// document, so tests can compare it with the text they edited.
    pub async fn document_text(&self, p: Value) -> Result<Option<(i32, String)>> {
        let uri = p
            .get("uri")
            .and_then(Value::as_str)
            .and_then(|u| u.parse::<Uri>().ok())
            .ok_or_else(|| Error::invalid_params("expected {\"uri\": ...}"))?;
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Text(uri, tx));
        rx.await.map_err(|_| Error::internal_error())
    }
}

/// Reads settings from initialization options or `workspace/didChangeConfiguration`:
/// `{"filters": [dirs], "binding": path, "debounceMs": n}`, optionally under an `nwf` key.
fn configure(v: &Value) -> Option<Msg> {
    let v = v.get("nwf").unwrap_or(v);
    if !v.is_object() {
        return None;
    }
    let filters = v.get("filters").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(PathBuf::from)
            .collect()
    });
    let binding = v
        .get("binding")
        .map(|b| b.as_str().filter(|s| !s.is_empty()).map(PathBuf::from));
    let debounce = v
        .get("debounceMs")
        .and_then(Value::as_u64)
        .map(|ms| Duration::from_millis(ms.min(10_000)));
    Some(Msg::Configure {
        filters,
        binding,
        roots: None,
        debounce,
    })
}

impl LanguageServer for Backend {
    #[allow(deprecated)] // root_uri: old clients send only it.
    async fn initialize(&self, p: InitializeParams) -> Result<InitializeResult> {
        let mut roots: Vec<PathBuf> = p
            .workspace_folders
            .iter()
            .flatten()
            .filter_map(|f| crate::uri::to_path(&f.uri))
            .collect();
        if roots.is_empty() {
            roots.extend(p.root_uri.as_ref().and_then(crate::uri::to_path));
        }
        self.send(Msg::Configure {
            filters: None,
            binding: None,
            roots: Some(roots),
            debounce: None,
        });
        if let Some(m) = p.initialization_options.as_ref().and_then(configure) {
            self.send(m);
        }
        let watch = p
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|w| w.dynamic_registration)
            .unwrap_or(false);
        self.watch.store(watch, Ordering::Relaxed);
        let trigger = ["<", " ", "'", "\"", "$", ",", "/"]
            .map(String::from)
            .to_vec();
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                // Columns are UTF-16 code units, the protocol's default every client supports.
                position_encoding: Some(PositionEncodingKind::UTF16),
                text_document_sync: Some(TextDocumentSyncCapability::Kind(
                    TextDocumentSyncKind::INCREMENTAL,
                )),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(trigger),
                    ..Default::default()
                }),
                definition_provider: Some(OneOf::Left(true)),
                references_provider: Some(OneOf::Left(true)),
                rename_provider: Some(OneOf::Right(RenameOptions {
                    prepare_provider: Some(true),
                    work_done_progress_options: Default::default(),
                })),
                document_symbol_provider: Some(OneOf::Left(true)),
                workspace_symbol_provider: Some(OneOf::Left(true)),
                folding_range_provider: Some(FoldingRangeProviderCapability::Simple(true)),
                document_formatting_provider: Some(OneOf::Left(true)),
                code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
                inlay_hint_provider: Some(OneOf::Left(true)),
                semantic_tokens_provider: Some(
                    SemanticTokensServerCapabilities::SemanticTokensOptions(
                        SemanticTokensOptions {
                            legend: misc::legend(),
                            full: Some(SemanticTokensFullOptions::Bool(true)),
                            range: None,
                            work_done_progress_options: Default::default(),
                        },
                    ),
                ),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "nwf".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        if !self.watch.load(Ordering::Relaxed) {
            return;
        }
        // Filters changed on disk (a checkout, another editor) reach us as file events.
        let watchers = ["**/*.xml", "**/*.nwf"]
            .map(|g| FileSystemWatcher {
                glob_pattern: GlobPattern::String(g.to_string()),
                kind: None,
            })
            .to_vec();
        let options = DidChangeWatchedFilesRegistrationOptions { watchers };
        let registration = Registration {
            id: "nwf-watch-filters".into(),
            method: "workspace/didChangeWatchedFiles".into(),
            register_options: serde_json::to_value(options).ok(),
        };
        if let Err(e) = self.client.register_capability(vec![registration]).await {
            // Saves still reload files (see did_save).
            self.watch.store(false, Ordering::Relaxed);
            self.client
                .log_message(
                    MessageType::WARNING,
                    format!("cannot watch filter files: {e}"),
                )
                .await;
        }
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, p: DidOpenTextDocumentParams) {
        self.send(Msg::Open(OpenDoc {
            uri: p.text_document.uri,
            text: p.text_document.text,
            version: p.text_document.version,
        }));
    }

    async fn did_change(&self, p: DidChangeTextDocumentParams) {
        self.send(Msg::Change {
            uri: p.text_document.uri,
            version: p.text_document.version,
            changes: p.content_changes,
        });
    }

    async fn did_close(&self, p: DidCloseTextDocumentParams) {
        self.send(Msg::Close(p.text_document.uri));
    }

    async fn did_change_configuration(&self, p: DidChangeConfigurationParams) {
        if let Some(m) = configure(&p.settings) {
            self.send(m);
        }
    }

    async fn did_change_watched_files(&self, p: DidChangeWatchedFilesParams) {
        let paths = p
            .changes
            .iter()
            .filter_map(|c| crate::uri::to_path(&c.uri))
            .collect();
        self.send(Msg::FilesChanged(paths));
    }

    async fn did_save(&self, p: DidSaveTextDocumentParams) {
        if self.watch.load(Ordering::Relaxed) {
            // Changes of other files arrive as watched-file events.
            self.send(Msg::FilesChanged(
                crate::uri::to_path(&p.text_document.uri)
                    .into_iter()
                    .collect(),
            ));
        } else {
            // Without a watcher, other files' disk copies may have changed too: read them all.
            self.send(Msg::Rescan);
        }
    }

    async fn hover(&self, p: HoverParams) -> Result<Option<Hover>> {
        let pp = p.text_document_position_params;
        Ok(self
            .with_doc_placed(&pp.text_document.uri, |a, d| {
                hover::hover(a, d, pp.position)
            })
            .await?
            .flatten())
    }

    async fn completion(&self, p: CompletionParams) -> Result<Option<CompletionResponse>> {
        let pp = p.text_document_position;
        self.with_doc(&pp.text_document.uri, |a, d| {
            CompletionResponse::Array(complete::complete(a, d, pp.position))
        })
        .await
    }

    async fn goto_definition(
        &self,
        p: GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        let pp = p.text_document_position_params;
        Ok(self
            .with_doc(&pp.text_document.uri, |a, d| {
                nav::definition(a, d, pp.position)
            })
            .await?
            .flatten()
            .map(GotoDefinitionResponse::Scalar))
    }

    async fn references(&self, p: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let pp = p.text_document_position;
        let decl = p.context.include_declaration;
        self.with_doc(&pp.text_document.uri, |a, d| {
            nav::references(a, d, pp.position, decl)
        })
        .await
    }

    async fn prepare_rename(
        &self,
        p: TextDocumentPositionParams,
    ) -> Result<Option<PrepareRenameResponse>> {
        let r = self
            .with_doc(&p.text_document.uri, |a, d| {
                nav::prepare_rename(a, d, p.position).map(|(name, r)| {
                    let text = convert::text(a, d);
                    PrepareRenameResponse::RangeWithPlaceholder {
                        range: convert::range(&d.index, text, r),
                        placeholder: name,
                    }
                })
            })
            .await?;
        match r {
            Some(Ok(x)) => Ok(Some(x)),
            Some(Err(msg)) => Err(Error::invalid_params(msg)),
            None => Ok(None),
        }
    }

    async fn rename(&self, p: RenameParams) -> Result<Option<WorkspaceEdit>> {
        let pp = p.text_document_position;
        let r = self
            .with_doc(&pp.text_document.uri, |a, d| {
                nav::rename(a, d, pp.position, &p.new_name)
            })
            .await?;
        match r {
            Some(Ok(x)) => Ok(Some(x)),
            Some(Err(msg)) => Err(Error::invalid_params(msg)),
            None => Ok(None),
        }
    }

    async fn document_symbol(
        &self,
        p: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        self.with_doc(&p.text_document.uri, |a, d| {
            DocumentSymbolResponse::Nested(nav::document_symbols(a, d))
        })
        .await
    }

    async fn symbol(&self, p: WorkspaceSymbolParams) -> Result<Option<WorkspaceSymbolResponse>> {
        let rx = self.snapshot_request();
        let a = rx.await.map_err(|_| Error::internal_error())?;
        Ok(Some(WorkspaceSymbolResponse::Nested(
            nav::workspace_symbols(&a, &p.query),
        )))
    }

    async fn folding_range(&self, p: FoldingRangeParams) -> Result<Option<Vec<FoldingRange>>> {
        self.with_doc(&p.text_document.uri, misc::folding).await
    }

    async fn formatting(&self, p: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        Ok(self
            .with_doc(&p.text_document.uri, misc::format)
            .await?
            .flatten())
    }

    async fn semantic_tokens_full(
        &self,
        p: SemanticTokensParams,
    ) -> Result<Option<SemanticTokensResult>> {
        self.with_doc(&p.text_document.uri, |a, d| {
            SemanticTokensResult::Tokens(SemanticTokens {
                result_id: None,
                data: misc::semantic_tokens(a, d),
            })
        })
        .await
    }

    async fn code_action(&self, p: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        self.with_doc(&p.text_document.uri, |a, d| {
            misc::code_actions(a, d, p.range)
        })
        .await
    }

    async fn inlay_hint(&self, p: InlayHintParams) -> Result<Option<Vec<InlayHint>>> {
        self.with_doc_placed(&p.text_document.uri, |a, d| {
            misc::inlay_hints(a, d, p.range)
        })
        .await
    }
}
