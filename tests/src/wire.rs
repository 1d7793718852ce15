//! A lean HTTP/1.1 client for `bench-http`: one kept-alive connection, each
//! request written in one piece, each answer read by its `Content-Length`.
//! The load generator shares the benchmark machine's two cores with Baton,
//! PostgreSQL and nats-server, so its own cost is kept to what any HTTP
//! client must do (a general client such as reqwest, with its pool and
//! header maps, cost as much CPU per request as the server's HTTP layer),
//! and what the benchmark measures is Baton's. Only what Baton answers is
//! understood: no chunked bodies, no redirects.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// One connection, signed in with one bearer token.
#[derive(Debug)]
pub struct WireClient {
    stream: TcpStream,
    host: String,
    authorization: String,
    buffer: Vec<u8>,
}

/// An answer: its status and body.
#[derive(Debug)]
pub struct WireAnswer {
    /// HTTP status.
    pub status: u16,
    /// The body's bytes.
    pub body: Vec<u8>,
}

impl WireAnswer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Panics unless the status is 2xx.
    pub fn ok(self) -> Self {
        assert!(
            (200..300).contains(&self.status),
            "unexpected answer {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        self
    }
}

impl WireClient {
    /// Connects to `base` (`http://host:port`).
    pub async fn connect(base: &str, token: &str) -> Self {
        let host = base.trim_start_matches("http://").trim_end_matches('/');
        let stream = TcpStream::connect(host).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            host: host.to_owned(),
            authorization: format!("Bearer {token}"),
            buffer: Vec::with_capacity(4096),
        }
    }

    /// POST with a JSON body.
    pub async fn post(&mut self, path: &str, body: &serde_json::Value) -> WireAnswer {
        let body = serde_json::to_vec(body).unwrap();
        self.send("POST", path, Some(&body)).await
    }

    /// GET.
    pub async fn get(&mut self, path: &str) -> WireAnswer {
        self.send("GET", path, None).await
    }

    async fn send(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> WireAnswer {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nauthorization: {}\r\n",
            self.host, self.authorization
        )
        .into_bytes();
        if let Some(body) = body {
            request.extend_from_slice(
                format!(
                    "content-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            request.extend_from_slice(body);
        } else {
            request.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&request).await.unwrap();
        self.read_answer().await
    }

    async fn read_answer(&mut self) -> WireAnswer {
        self.buffer.clear();
        let head_end = loop {
            if let Some(i) = find(&self.buffer, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await;
        };
        let head = std::str::from_utf8(&self.buffer[..head_end]).unwrap();
        let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("an answer without content-length: {head}"));
        while self.buffer.len() < head_end + length {
            self.fill().await;
        }
        WireAnswer {
            status,
            body: self.buffer[head_end..head_end + length].to_vec(),
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        self.buffer.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
