//! A three-node NATS JetStream cluster per test: each node has its own
//! client port, cluster port, store directory and `server_name`, and routes
//! to the other two, all on 127.0.0.1. A test can SIGKILL, restart, SIGSTOP
//! and SIGCONT any node, or all of them, without touching anyone else's.
//! The binary is [`crate::nats::binary`] (`BATON_TEST_NATS_SERVER`).

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::Duration;

/// How many nodes a cluster has.
pub const NODES: usize = 3;

/// A free loopback port for a server a test will restart on the same port:
/// one below the kernel's ephemeral range, so that while the server is
/// down no outgoing connection can be given it as its local port (which
/// would make the restart fail to bind). Falls back to an ephemeral port
/// when the range leaves no room below it.
pub fn restartable_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    const LOW: u16 = 10_000;
    if ephemeral_low > LOW + 1_000 {
        let span = u64::from(ephemeral_low - LOW);
        let start = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            % span;
        for i in 0..span {
            let port = LOW + u16::try_from((start + i) % span).unwrap();
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// One node of a [`NatsCluster`].
#[derive(Debug)]
struct Node {
    name: String,
    port: u16,
    cluster_port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    paused: bool,
}

impl Node {
    fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("nats.conf")
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.path().join("nats.log")
    }

    fn spawn(&mut self) {
        let config = self.config_path();
        let child = crate::nats::start_binary([std::ffi::OsStr::new("-c"), config.as_os_str()]);
        self.child = Some(child);
        self.paused = false;
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(child.id().to_string())
                .status()
                .unwrap();
            assert!(status.success(), "kill -{signal} {} failed", child.id());
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL, also ends a stopped process
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// Panics with the log's tail if the process has exited.
    fn check_alive(&mut self) {
        if let Some(child) = &mut self.child {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                let tail: String = log
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                panic!(
                    "nats-server {} exited ({status}); its log ends:\n{tail}",
                    self.name
                );
            }
        }
    }
}

/// Three nats-servers with JetStream, clustered, owned by one test.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<Node>,
}

impl NatsCluster {
    /// Starts three clustered nodes on free loopback ports and waits until
    /// JetStream has a meta leader.
    pub async fn start() -> Self {
        let mut nodes: Vec<Node> = (0..NODES)
            .map(|i| Node {
                name: format!("n{}", i + 1),
                port: restartable_port(),
                cluster_port: restartable_port(),
                dir: tempfile::tempdir().unwrap(),
                child: None,
                paused: false,
            })
            .collect();
        let cluster_ports: Vec<u16> = nodes.iter().map(|n| n.cluster_port).collect();
        for node in &nodes {
            let routes: Vec<String> = cluster_ports
                .iter()
                .filter(|p| **p != node.cluster_port)
                .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
                .collect();
            let store = node.dir.path().join("jetstream");
            let config = format!(
                "server_name: \"{name}\"\n\
                 listen: \"127.0.0.1:{port}\"\n\
                 log_file: \"{log}\"\n\
                 jetstream {{\n  store_dir: \"{store}\"\n}}\n\
                 cluster {{\n  name: \"baton-test\"\n  listen: \"127.0.0.1:{cluster}\"\n  \
                 routes: [{routes}]\n}}\n",
                name = node.name,
                port = node.port,
                log = node.log_path().display(),
                store = store.display(),
                cluster = node.cluster_port,
                routes = routes.join(", "),
            );
            std::fs::write(node.config_path(), config).unwrap();
        }
        for node in &mut nodes {
            node.spawn();
        }
        let mut cluster = Self { nodes };
        for i in 0..NODES {
            cluster.wait_for_node(i, Duration::from_secs(20)).await;
        }
        cluster
            .wait_for_meta_leader(Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        cluster
    }

    /// The client URL of node `i`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port)
    }

    /// Every node's client URL, comma-separated (`BATON_NATS_URL`).
    pub fn urls(&self) -> String {
        (0..NODES)
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every node's client address, for `async_nats::connect`.
    pub fn server_addrs(&self) -> Vec<async_nats::ServerAddr> {
        (0..NODES).map(|i| self.url(i).parse().unwrap()).collect()
    }

    /// The process id of node `i`, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// The tail of node `i`'s log, for failure messages.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let log = std::fs::read_to_string(self.nodes[i].log_path()).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGKILLs node `i` (as a crash would).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again (same ports, same store), after a kill, and
    /// waits until it accepts clients with JetStream on.
    pub async fn restart(&mut self, i: usize) {
        self.nodes[i].kill();
        self.nodes[i].spawn();
        self.wait_for_node(i, Duration::from_secs(20)).await;
    }

    /// SIGSTOPs node `i`: it keeps its sockets but answers nothing.
    pub fn pause(&mut self, i: usize) {
        self.nodes[i].signal("STOP");
        self.nodes[i].paused = true;
    }

    /// SIGCONTs node `i`.
    pub fn resume(&mut self, i: usize) {
        self.nodes[i].signal("CONT");
        self.nodes[i].paused = false;
    }

    /// SIGKILLs every node.
    pub fn kill_all(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }

    /// Starts every node that is not running, and waits until each accepts
    /// clients (not for a meta leader: see [`Self::wait_for_meta_leader`]).
    pub async fn start_all(&mut self) {
        for node in &mut self.nodes {
            if node.child.is_none() {
                node.spawn();
            }
        }
        for i in 0..NODES {
            self.wait_for_node(i, Duration::from_secs(20)).await;
        }
    }

    async fn wait_for_node(&mut self, i: usize, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            self.nodes[i].check_alive();
            if crate::nats::jetstream_ready(self.nodes[i].port).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "nats-server {} on port {} did not accept clients with JetStream within {within:?}; \
             its log ends:\n{}",
            self.nodes[i].name,
            self.nodes[i].port,
            self.log_tail(i, 30)
        );
    }

    /// Waits until JetStream answers an account-info request through every
    /// running, unpaused node: the cluster has a meta leader. An error
    /// names the last answer.
    pub async fn wait_for_meta_leader(&self, within: Duration) -> Result<(), String> {
        self.wait_for_api("$JS.API.INFO", within).await
    }

    /// Waits until the stream `name` answers stream info through every
    /// running, unpaused node: the stream has a leader.
    pub async fn wait_for_stream(&self, name: &str, within: Duration) -> Result<(), String> {
        self.wait_for_api(&format!("$JS.API.STREAM.INFO.{name}"), within)
            .await
    }

    /// The node leading stream `name` now (asked through any running,
    /// unpaused node), if one answers.
    pub async fn stream_leader(&self, name: &str) -> Option<usize> {
        let subject = format!("$JS.API.STREAM.INFO.{name}");
        for node in self.nodes.iter().filter(|n| n.child.is_some() && !n.paused) {
            if let Ok(info) = api_request(node.port, &subject).await {
                let leader = info["cluster"]["leader"].as_str()?;
                return self.nodes.iter().position(|n| n.name == leader);
            }
        }
        None
    }

    async fn wait_for_api(&self, subject: &str, within: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + within;
        let mut last = String::from("no answer yet");
        loop {
            let mut all = true;
            for node in self.nodes.iter().filter(|n| n.child.is_some() && !n.paused) {
                match api_request(node.port, subject).await {
                    Ok(_) => {}
                    Err(e) => {
                        last = format!("{}: {e}", node.name);
                        all = false;
                        break;
                    }
                }
            }
            if all {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "JetStream did not answer {subject} within {within:?}: {last}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}

/// One JetStream API request through the node on `port`: its answer, when
/// it answered without an error.
async fn api_request(port: u16, subject: &str) -> Result<serde_json::Value, String> {
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(1))
        .request_timeout(Some(Duration::from_secs(2)))
        .connect(format!("nats://127.0.0.1:{port}"));
    let client = tokio::time::timeout(Duration::from_secs(3), connect)
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(
        Duration::from_secs(3),
        client.request(subject.to_owned(), "".into()),
    )
    .await
    .map_err(|_| "request timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    let body: serde_json::Value =
        serde_json::from_slice(&answer.payload).map_err(|e| e.to_string())?;
    match body.get("error") {
        Some(error) => Err(error.to_string()),
        None => Ok(body),
    }
}
