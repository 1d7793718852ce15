//! A small MLLP client (Baton's own framing codec on a plain TCP stream):
//! the Rust client of the HL7 feed tests. Real clients nobody here wrote
//! (PyPI `hl7`, `hl7apy`) are driven in `tests/tests/hl7_clients.rs`.

use std::path::PathBuf;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use infra::hl7::mllp::MllpCodec;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// One MLLP connection.
#[allow(missing_debug_implementations)]
pub struct MllpClient(Framed<TcpStream, MllpCodec>);

/// A message file kept under `tests/hl7/`.
pub fn message_file(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("hl7")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// MSA-1 of an acknowledgement (`AA`, `AE`, `AR`).
pub fn ack_code(ack: &str) -> String {
    field_of(ack, "MSA", 1)
}

/// Field `n` of the first `segment` of `text` (separators `|`).
pub fn field_of(text: &str, segment: &str, n: usize) -> String {
    text.split(['\r', '\n'])
        .find(|s| s.starts_with(segment))
        .and_then(|s| s.split('|').nth(n))
        .unwrap_or_default()
        .to_owned()
}

impl MllpClient {
    /// Connects to Baton's MLLP port.
    pub async fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        Self(Framed::new(stream, MllpCodec))
    }

    /// Sends a message and waits (at most 30 s) for its acknowledgement;
    /// `None` when Baton closed the connection without one.
    pub async fn send(&mut self, message: &[u8]) -> Option<String> {
        self.0.send(message).await.unwrap();
        self.answer().await
    }

    /// Sends raw bytes as they are (no framing added).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.0.get_mut().write_all(bytes).await.unwrap();
    }

    /// The next acknowledgement, or `None` when the connection closed.
    pub async fn answer(&mut self) -> Option<String> {
        let frame = tokio::time::timeout(Duration::from_secs(30), self.0.next())
            .await
            .expect("no acknowledgement within 30 s")?;
        Some(String::from_utf8(frame.ok()?.to_vec()).unwrap())
    }
}

/// Sends one message on a connection of its own; its acknowledgement.
pub async fn send_one(port: u16, message: &[u8]) -> String {
    MllpClient::connect(port)
        .await
        .send(message)
        .await
        .expect("Baton closed the connection without an acknowledgement")
}
