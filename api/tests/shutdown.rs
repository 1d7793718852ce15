//! `baton serve` stops cleanly on SIGTERM: it answers until the signal, a
//! live stream open at the time ends, and the process exits with success
//! after stopping the relay and the runner.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_ends_streams_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = baton_tests::free_port();
    let log = dir.path().join("baton.log");
    let mut child = baton_tests::serve_command(env!("CARGO_BIN_EXE_baton"), &log)
        .env("BATON_LISTEN", format!("127.0.0.1:{port}"))
        .env("BATON_DATA_DIR", dir.path())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    baton_tests::eventually("baton answers", Duration::from_secs(30), || async {
        client.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    let token = String::from_utf8(
        Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["token", "--role", "system", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let mut stream = client
        .get(format!("{base}/api/v1/boards/stream?board=system"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    stream.chunk().await.unwrap().expect("the opening event");

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // The stream ends rather than holding the shutdown open.
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the live stream did not end");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "baton did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "exit {status:?}: {text}");
    assert!(text.contains("shutting down"), "{text}");
    assert!(text.contains("stopped"), "{text}");
}
