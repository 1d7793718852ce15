//! An identity provider's JWKS endpoint on loopback, for the JWKS tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::header;

/// Serves `body` as the JWKS at `url` and counts the requests.
pub(super) struct JwksServer {
    pub(super) url: String,
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwksServer {
    pub(super) async fn start(body: serde_json::Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let path = "/.well-known/jwks.json";
        let url = format!("http://{}{path}", listener.local_addr().unwrap());
        let body = Arc::new(Mutex::new(body.to_string()));
        let hits = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (Arc::clone(&body), Arc::clone(&hits));
        let jwks = move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let body = served.lock().unwrap().clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        };
        let router = axum::Router::new().route(path, axum::routing::get(jwks));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            url,
            body,
            hits,
            task,
        }
    }

    pub(super) fn serve(&self, body: serde_json::Value) {
        *self.body.lock().unwrap() = body.to_string();
    }

    pub(super) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
