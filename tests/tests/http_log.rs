//! The request log: one JSON line per request, its fields where log
//! collectors read them, and never a raw path or query. A binary of its own:
//! it installs the process's one global subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::Write;
use std::sync::{Arc, Mutex};

use baton_tests::http::{Stack, TestApp};
use infra::auth::Role;

/// Where the subscriber writes: kept to read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_request_is_one_line_with_its_id_method_route_status_and_latency_and_no_raw_path() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter("info")
        .with_writer(move || writer.clone())
        .init();
    let app = TestApp::spawn(Stack::Embedded).await;
    let spell = "0b8f8d1e-1d3a-4b3e-9a51-0d1f5c2e7a44";
    let answer = app
        .client
        .get(format!(
            "{}/api/v1/spells/{spell}?consistency_token=secret-token",
            app.base
        ))
        .bearer_auth(app.token(Role::Ward, Some("POOLE")))
        .header("x-request-id", "trace-7")
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    app.stop().await;

    let lines: Vec<_> = captured
        .lines()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "request")
        .collect();
    let ours: Vec<_> = lines
        .iter()
        .filter(|l| l["fields"]["request_id"] == "trace-7")
        .collect();
    assert_eq!(ours.len(), 1, "one line per request: {lines:#?}");
    let fields = &ours[0]["fields"];
    assert_eq!(fields["method"], "GET", "{fields}");
    assert_eq!(fields["route"], "/api/v1/spells/{id}", "{fields}");
    assert_eq!(fields["status"], status, "{fields}");
    assert!(fields["latency_ms"].as_f64().is_some(), "{fields}");
    let line = ours[0].to_string();
    assert!(!line.contains(spell), "the raw path is logged: {line}");
    assert!(
        !line.contains("secret-token"),
        "the query is logged: {line}"
    );
}
