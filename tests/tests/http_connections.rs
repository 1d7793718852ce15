//! Connections from a hostile network (issue 13, items 2 and 5): idle
//! sockets past the cap make room instead of exhausting the server, one
//! client cannot take every connection, slow and idle connections are
//! closed, a newcomer finding every connection busy is told so, and heads
//! hyper cannot read are answered as problems.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use baton_tests::http::{Events, TestApp};
use infra::auth::Role;
use infra::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

async fn spawn(tune: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = Config {
        listen: "127.0.0.1:0".to_owned(),
        data_dir: data_dir.path().to_path_buf(),
        ..Config::default()
    };
    tune(&mut config);
    TestApp::start(config, data_dir, None, None).await
}

fn port(app: &TestApp) -> u16 {
    app.base.rsplit(':').next().unwrap().parse().unwrap()
}

/// A connection from 127.0.0.`from` (all of 127/8 is this machine).
async fn connect_from(from: u8, port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::from([127, 0, 0, from]), 0))
        .unwrap();
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap()
}

/// True once the server has closed `stream` (end of file or a reset),
/// false if it is still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Sends `request` and reads the answer until the server closes or the
/// head and `content-length` body have arrived; the status and the whole
/// text.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> (u16, String) {
    let (mut read, mut write) = stream.split();
    let request = request.to_vec();
    let writing = async move {
        // The server may answer and close before all is sent.
        let _ = write.write_all(&request).await;
    };
    let reading = async move {
        let mut answer = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            answer.extend_from_slice(&buf[..n]);
            if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&answer[..end]).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if length.is_some_and(|length| answer.len() >= end + 4 + length) {
                    break;
                }
            }
        }
        answer
    };
    let ((), answer) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(writing, reading)
    })
    .await
    .expect("no answer within 20 s");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    (status, text)
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: baton\r\n\r\n";

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.text("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test]
async fn idle_connections_past_the_cap_make_room_and_health_is_still_answered() {
    let app = spawn(|c| {
        c.max_connections = 20;
        c.max_connections_per_client = 1000;
    })
    .await;
    let port = port(&app);
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(connect_from(1, port).await);
    }
    // The newest connection is served, however many idle ones came first.
    let mut fresh = connect_from(1, port).await;
    let (status, _) = exchange(&mut fresh, HEALTH).await;
    assert_eq!(status, 200);
    // The oldest were closed to make room: at most the cap stay open.
    assert!(closed_within(&mut idle[0], Duration::from_secs(5)).await);
    assert!(closed_within(&mut idle[150], Duration::from_secs(5)).await);
    let (status, _) = exchange(idle.last_mut().unwrap(), HEALTH).await;
    assert_eq!(status, 200, "a recent idle connection is still served");
    assert!(metric(&app, "baton_http_connections_open").await <= 20.0);
    assert!(
        metric(
            &app,
            "baton_http_connections_shed_total{reason=\"at_capacity\"}"
        )
        .await
            >= 180.0
    );
    app.stop().await;
}

#[tokio::test]
async fn one_client_cannot_crowd_out_another() {
    let app = spawn(|c| {
        c.max_connections = 30;
        c.max_connections_per_client = 5;
    })
    .await;
    let port = port(&app);
    let mut greedy = Vec::new();
    for _ in 0..40 {
        greedy.push(connect_from(2, port).await);
    }
    let mut other = Vec::new();
    for _ in 0..5 {
        other.push(connect_from(3, port).await);
    }
    // The greedy client's own oldest connections made room for its newest.
    assert!(closed_within(&mut greedy[0], Duration::from_secs(5)).await);
    assert!(closed_within(&mut greedy[34], Duration::from_secs(5)).await);
    let (status, _) = exchange(&mut greedy[39], HEALTH).await;
    assert_eq!(status, 200);
    // The other client kept every one of its connections.
    for stream in &mut other {
        let (status, _) = exchange(stream, HEALTH).await;
        assert_eq!(status, 200);
    }
    assert!(
        metric(
            &app,
            "baton_http_connections_shed_total{reason=\"client_at_capacity\"}"
        )
        .await
            >= 35.0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_client_sending_its_headers_slowly_is_cut_off() {
    let app = spawn(|c| c.header_read_timeout_seconds = 1).await;
    let mut slow = connect_from(1, port(&app)).await;
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let mut cut_off = false;
    let mut ticks = tokio::time::interval(Duration::from_millis(200));
    while started.elapsed() < Duration::from_secs(10) {
        ticks.tick().await;
        if slow.write_all(b"X-Slow: 1\r\n").await.is_err()
            || closed_within(&mut slow, Duration::from_millis(1)).await
        {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "a slow header sender was never closed");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(metric(&app, "baton_http_header_timeouts_total").await >= 1.0);
    app.stop().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout_but_a_live_stream_is_not() {
    let app = spawn(|c| {
        c.idle_timeout_seconds = 1;
        c.header_read_timeout_seconds = 60;
    })
    .await;
    app.seed_reference().await;
    let nurse = app.as_(Role::Ward, Some("POOLE"));
    let mut live = Events::new(nurse.stream("ward:W1").await);
    live.next(Duration::from_secs(10)).await;
    let mut idle = connect_from(1, port(&app)).await;
    let (status, _) = exchange(&mut idle, HEALTH).await;
    assert_eq!(status, 200);
    let started = Instant::now();
    assert!(closed_within(&mut idle, Duration::from_secs(10)).await);
    assert!(started.elapsed() >= Duration::from_millis(900));
    // The stream, open longer than the idle timeout, still delivers (its
    // next freshness report comes within 5 s).
    let (name, _) = live.next(Duration::from_secs(10)).await;
    assert_eq!(name, "freshness");
    assert!(
        metric(
            &app,
            "baton_http_connections_shed_total{reason=\"idle_timeout\"}"
        )
        .await
            >= 1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_newcomer_finding_every_connection_busy_is_told_so() {
    let app = spawn(|c| c.max_connections = 2).await;
    app.seed_reference().await;
    let nurse = app.as_(Role::Ward, Some("POOLE"));
    let mut first = Events::new(nurse.stream("ward:W1").await);
    first.next(Duration::from_secs(10)).await;
    let mut second = Events::new(nurse.stream("ward:W1").await);
    second.next(Duration::from_secs(10)).await;
    let mut newcomer = connect_from(1, port(&app)).await;
    let (status, text) = exchange(&mut newcomer, HEALTH).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.contains("/problems/unavailable"), "{text}");
    drop((first, second));
    app.stop().await;
}

#[tokio::test]
async fn a_header_too_large_to_read_is_answered_as_a_problem() {
    let app = spawn(|_| {}).await;
    let mut stream = connect_from(1, port(&app)).await;
    let mut request = b"GET /api/v1/me HTTP/1.1\r\nHost: baton\r\nAuthorization: Bearer ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    request.extend_from_slice(b"\r\n\r\n");
    let (status, text) = exchange(&mut stream, &request).await;
    assert_eq!(status, 431, "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.contains("/problems/headers-too-large"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn a_path_too_long_to_read_is_answered_as_a_problem() {
    let app = spawn(|_| {}).await;
    let mut stream = connect_from(1, port(&app)).await;
    let path = "a".repeat(100 * 1024);
    let request = format!("GET /{path} HTTP/1.1\r\nHost: baton\r\n\r\n");
    let (status, text) = exchange(&mut stream, request.as_bytes()).await;
    assert_eq!(status, 414, "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.contains("/problems/uri-too-long"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn a_request_line_that_is_not_http_is_answered_as_a_problem() {
    let app = spawn(|_| {}).await;
    let mut stream = connect_from(1, port(&app)).await;
    let (status, text) = exchange(&mut stream, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.contains("/problems/bad-request"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn the_benchmarks_client_keeps_one_connection_for_many_requests() {
    let app = spawn(|_| {}).await;
    app.seed_reference().await;
    let token = app.token(Role::Ward, Some("POOLE"));
    let mut client = baton_tests::wire::WireClient::connect(&app.base, &token).await;
    let spell = client
        .post("/api/v1/spells", &baton_tests::http::admission(1, "W1", 1))
        .await
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = client.get(&format!("/api/v1/spells/{spell}")).await.ok();
    assert_eq!(read.json()["id"], spell.as_str());
    assert_eq!(metric(&app, "baton_http_connections_open").await, 2.0);
    app.stop().await;
}

#[tokio::test]
async fn a_connection_shed_part_way_through_its_request_head_is_closed_at_once() {
    let app = spawn(|c| {
        c.max_connections = 3;
        c.header_read_timeout_seconds = 60;
    })
    .await;
    let port = port(&app);
    let mut slow = connect_from(1, port).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: 1\r\n")
        .await
        .unwrap();
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(connect_from(1, port).await);
    }
    let (status, _) = exchange(others.last_mut().unwrap(), HEALTH).await;
    assert_eq!(status, 200);
    // Well within the 60 s the head would otherwise be given.
    assert!(closed_within(&mut slow, Duration::from_secs(5)).await);
    app.stop().await;
}
