//! A lean HTTP/1.1 client for `bench-http`: one kept-alive connection per
//! client, on hyper's own client connection (`hyper::client::conn::http1`)
//! with no pool. The load generator shares the benchmark machine's two
//! cores with Baton, PostgreSQL and nats-server, so its own cost is kept to
//! what any HTTP client must do (a general client such as reqwest, with its
//! pool, cost as much CPU per request as the server's HTTP layer), and what
//! the benchmark measures is Baton's.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One connection, signed in with one bearer token.
#[allow(missing_debug_implementations)] // hyper's sender has no Debug
pub struct WireClient {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    authorization: String,
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
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        Self {
            sender,
            host: host.to_owned(),
            authorization: format!("Bearer {token}"),
        }
    }

    /// POST with a JSON body.
    pub async fn post(&mut self, path: &str, body: &serde_json::Value) -> WireAnswer {
        let body = serde_json::to_vec(body).unwrap();
        self.send("POST", path, Some(body)).await
    }

    /// GET.
    pub async fn get(&mut self, path: &str) -> WireAnswer {
        self.send("GET", path, None).await
    }

    /// PUT of a FHIR resource, at the version `if_match` names.
    pub async fn put_fhir(
        &mut self,
        path: &str,
        body: &serde_json::Value,
        if_match: &str,
    ) -> WireAnswer {
        let body = serde_json::to_vec(body).unwrap();
        self.request(
            "PUT",
            path,
            Some(body),
            "application/fhir+json",
            Some(if_match),
        )
        .await
    }

    async fn send(&mut self, method: &str, path: &str, body: Option<Vec<u8>>) -> WireAnswer {
        self.request(method, path, body, "application/json", None)
            .await
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
        if_match: Option<&str>,
    ) -> WireAnswer {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("authorization", &self.authorization);
        if body.is_some() {
            request = request.header("content-type", content_type);
        }
        if let Some(version) = if_match {
            request = request.header("if-match", version);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        self.sender.ready().await.unwrap();
        let response = self.sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        WireAnswer {
            status,
            body: body.to_vec(),
        }
    }
}
