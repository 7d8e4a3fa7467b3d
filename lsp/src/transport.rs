//! A guard in front of the protocol reader.
//!
//! tower-lsp-server stops serving at the first message it cannot decode (invalid UTF-8 or
//! JSON in a body): its reader loop ends when the framed stream yields its error. One bad
//! message from a client (or a stray write to the server's stdin) must not end the session,
//! so incoming bytes pass through [`sanitize`] first: it re-frames them and forwards only
//! messages whose body is valid JSON, dropping the rest with a line on stderr.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Largest message body accepted (bigger ones are skipped): 256 MiB.
const MAX_BODY: usize = 256 << 20;

/// Copies well-formed messages from `input` to `output` until `input` ends.
pub async fn sanitize<R, W>(input: R, mut output: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut r = BufReader::new(input);
    let mut line = Vec::new();
    loop {
        let mut len: Option<usize> = None;
        let mut saw_header = false;
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                if saw_header {
                    break;
                }
                continue;
            }
            saw_header = true;
            if let Some((name, value)) = text.split_once(':') {
                if name.trim().eq_ignore_ascii_case("content-length") {
                    len = value.trim().parse().ok();
                }
            }
        }
        let Some(len) = len else {
            eprintln!("nwf lsp: dropped a message without Content-Length");
            continue;
        };
        if len > MAX_BODY {
            eprintln!("nwf lsp: dropped a message of {len} bytes");
            let mut skip = (&mut r).take(len as u64);
            if tokio::io::copy(&mut skip, &mut tokio::io::sink())
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).await.is_err() {
            return;
        }
        if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
            eprintln!("nwf lsp: dropped a message that is not valid JSON");
            continue;
        }
        let head = format!("Content-Length: {len}\r\n\r\n");
        if output.write_all(head.as_bytes()).await.is_err()
            || output.write_all(&body).await.is_err()
            || output.flush().await.is_err()
        {
            return;
        }
    }
}
