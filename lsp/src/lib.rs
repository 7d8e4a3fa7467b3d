//! nwf's language server: diagnostics, hover, completion, navigation, formatting and more for
//! nwfilter documents, over the Language Server Protocol (`nwf lsp`).
//!
//! Layout: [`server`] answers the protocol; [`state`] is the single owner of open documents
//! (edits are applied strictly in arrival order, diagnostics are debounced); [`analysis`]
//! turns texts into the compiler's IR and diagnostics; the feature modules read a snapshot.
//! See `docs/ARCHITECTURE.md`, section "Language server".

#![warn(missing_docs)]

pub mod analysis;
pub mod complete;
pub mod context;
pub mod convert;
pub mod dslctx;
pub mod dslfeat;
pub mod hover;
pub mod misc;
pub mod nav;
pub mod place;
pub mod scan;
pub mod server;
pub mod state;
pub mod transport;
pub mod uri;

use std::path::PathBuf;
use std::time::Duration;
use tower_lsp_server::{ClientSocket, LspService};

/// Default debounce of diagnostics: long enough to skip intermediate keystrokes, short enough
/// that a 5,000-rule file still shows diagnostics within 100 ms of the last edit.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(40);

/// Options given on the command line (initialization options and configuration may change
/// them).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Filter directories searched for names (like `--filters`).
    pub filters: Vec<PathBuf>,
    /// A binding file whose parameters give variable values.
    pub binding: Option<PathBuf>,
    /// Diagnostics debounce; `None` for [`DEFAULT_DEBOUNCE`].
    pub debounce: Option<Duration>,
}

/// The service and its client socket, for [`tower_lsp_server::Server`] over any streams.
/// Must be called inside a tokio runtime (the state actor is spawned on it).
pub fn service(opts: Options) -> (LspService<server::Backend>, ClientSocket) {
    let settings = analysis::Settings {
        filters: opts.filters,
        binding: opts.binding,
        roots: Vec::new(),
    };
    let debounce = opts.debounce.unwrap_or(DEFAULT_DEBOUNCE);
    LspService::build(move |client| server::Backend::new(client, settings, debounce))
        .custom_method("nwf/documentText", server::Backend::document_text)
        .finish()
}

/// Serves the protocol on any pair of streams until the client exits or `input` ends.
/// Incoming messages pass through [`transport::sanitize`], so a malformed one is dropped
/// instead of ending the session.
pub async fn serve<R, W>(input: R, output: W, opts: Options)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin,
{
    let (service, socket) = service(opts);
    let (clean_read, clean_write) = tokio::io::duplex(1 << 20);
    tokio::spawn(transport::sanitize(input, clean_write));
    tower_lsp_server::Server::new(clean_read, output, socket)
        .serve(service)
        .await;
}

/// Serves the protocol on standard input and output until the client exits.
pub async fn run_stdio(opts: Options) {
    serve(tokio::io::stdin(), tokio::io::stdout(), opts).await;
}

/// Builds a tokio runtime and serves on standard input and output until the client exits (for
/// callers without a runtime of their own, like the `nwf` command line).
pub fn run_stdio_blocking(opts: Options) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_stdio(opts));
    Ok(())
}
