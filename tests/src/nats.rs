//! A nats-server with JetStream per test: its own port and store directory,
//! so a test can stop and restart it without touching anyone else's.
//! `BATON_TEST_NATS_SERVER` picks the binary (CI runs the suite against
//! Debian's 2.9 and a current 2.x); the default is Debian's.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// The nats-server binary tests use.
pub fn binary() -> String {
    std::env::var("BATON_TEST_NATS_SERVER").unwrap_or_else(|_| "/usr/sbin/nats-server".to_owned())
}

/// Starts the nats-server binary tests use with `args`, its output
/// discarded, or fails the test saying how to install it.
pub fn start_binary<I, S>(args: I) -> Child
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let binary = binary();
    Command::new(&binary)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "nats-server is required ({binary}; set BATON_TEST_NATS_SERVER, or run \
                 `bash .ci/run` which installs it): {e}"
            )
        })
}

/// The version of the nats-server binary tests use, for reports.
pub fn version() -> String {
    std::process::Command::new(binary())
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .replace("nats-server: ", "")
        })
        .unwrap_or_default()
}

/// A running (or stopped) nats-server owned by one test.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl NatsServer {
    /// Starts a server on a free port and waits until JetStream is up.
    pub async fn start() -> Self {
        Self::start_with(Vec::new()).await
    }

    /// Starts a server with more command-line arguments (TLS, say).
    pub async fn start_with(extra: Vec<String>) -> Self {
        let mut server = Self {
            child: None,
            port: crate::free_port(),
            dir: tempfile::tempdir().unwrap(),
            extra,
        };
        server.spawn().await;
        server
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let port = self.port.to_string();
        let dir = self.dir.path().as_os_str();
        let own = ["-a", "127.0.0.1", "-p", &port, "-js", "-sd"].map(std::ffi::OsStr::new);
        let child = start_binary(
            own.into_iter()
                .chain([dir])
                .chain(self.extra.iter().map(std::ffi::OsStr::new)),
        );
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::time::Instant::now() < deadline {
            if jetstream_ready(self.port).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "nats-server on port {} did not start JetStream within 15s",
            self.port
        );
    }

    /// Stops the server (as a crash would: SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers,
    /// as with a hung host.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Thaws a frozen server (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("a running server");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }

    /// Starts it again on the same port with the same store.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// True when the server on `port` greets with JetStream enabled.
pub async fn jetstream_ready(port: u16) -> bool {
    let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut line = String::new();
    let read = tokio::time::timeout(
        Duration::from_secs(1),
        BufReader::new(stream).read_line(&mut line),
    )
    .await;
    matches!(read, Ok(Ok(_))) && line.contains("\"jetstream\":true")
}
