//! A private PostgreSQL server per test: `initdb` into a temporary
//! directory, trust authentication, listening on 127.0.0.1 at a free port,
//! its unix socket in the same directory. A test can crash it
//! (`pg_ctl stop -m immediate`) and start it again without touching the
//! shared server on 5432 that other tests use.
//!
//! The binaries come from `BATON_TEST_PG_BIN`, else the newest
//! `/usr/lib/postgresql/*/bin`. PostgreSQL refuses to run as root, so as
//! root every command runs as the `postgres` user (`runuser`), in a
//! directory handed to that user.
//!
//! `fsync` is off: a crash here is the server process dying, not the
//! machine, so what PostgreSQL wrote is in the kernel's cache either way,
//! and crash recovery on restart is exercised just the same.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sqlx::{Connection, PgConnection};

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("BATON_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").exists().then_some((version, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    match candidates.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL's server binaries (initdb, pg_ctl) are required: none in \
             /usr/lib/postgresql/*/bin; install postgresql (`bash .ci/run` does) or set \
             BATON_TEST_PG_BIN"
        ),
    }
}

fn id_of(flag: &str, user: Option<&str>) -> u32 {
    let output = std::process::Command::new("id")
        .arg(flag)
        .args(user)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `id {flag}`: {e}"));
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("`id {flag} {user:?}` failed: is there a postgres user?"))
}

/// A PostgreSQL server owned by one test, stopped when dropped.
#[derive(Debug)]
pub struct PgInstance {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    running: bool,
}

impl PgInstance {
    /// Creates a cluster with `initdb` and starts it.
    pub async fn start() -> Self {
        let bin = bin_dir();
        for tool in ["initdb", "pg_ctl", "postgres"] {
            assert!(
                bin.join(tool).exists(),
                "PostgreSQL's {tool} is required in {} (set BATON_TEST_PG_BIN)",
                bin.display()
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = id_of("-u", None) == 0;
        if as_postgres {
            let uid = id_of("-u", Some("postgres"));
            let gid = id_of("-g", Some("postgres"));
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let mut instance = Self {
            dir,
            bin,
            port: crate::cluster::restartable_port(),
            as_postgres,
            running: false,
        };
        let data = instance.data_dir();
        let initdb = instance
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run initdb{}: {e}", instance.how()));
        assert!(
            initdb.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&initdb.stdout),
            String::from_utf8_lossy(&initdb.stderr)
        );
        instance.start_again().await;
        instance
    }

    fn how(&self) -> &'static str {
        if self.as_postgres {
            " (as root: through `runuser -u postgres`)"
        } else {
            ""
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn command(&self, tool: &str) -> tokio::process::Command {
        let program = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = tokio::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            tokio::process::Command::new(program)
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    fn pg_ctl_args(&self, action: &str) -> Vec<String> {
        let socket_dir = self.dir.path().display().to_string();
        let mut args = vec![
            "-D".to_owned(),
            self.data_dir().display().to_string(),
            "-l".to_owned(),
            self.log_path().display().to_string(),
            "-w".to_owned(),
            "-t".to_owned(),
            "60".to_owned(),
        ];
        if action == "start" {
            args.push("-o".to_owned());
            args.push(format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {socket_dir} -c fsync=off \
                 -c max_connections=200",
                self.port
            ));
        } else {
            args.extend(["-m".to_owned(), "immediate".to_owned()]);
        }
        args.push(action.to_owned());
        args
    }

    /// Starts the server (again), and waits until it accepts connections.
    pub async fn start_again(&mut self) {
        let output = self
            .command("pg_ctl")
            .args(self.pg_ctl_args("start"))
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run pg_ctl{}: {e}", self.how()));
        assert!(
            output.status.success(),
            "pg_ctl start failed: {}{}\nlog:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log_tail(30)
        );
        self.running = true;
        let url = self.admin_url();
        crate::eventually(
            "the private PostgreSQL to accept connections",
            Duration::from_secs(30),
            || {
                let url = url.clone();
                async move { PgConnection::connect(&url).await.is_ok() }
            },
        )
        .await;
    }

    /// Crashes the server: `pg_ctl stop -m immediate` (no checkpoint, no
    /// goodbye to clients; the next start runs crash recovery).
    pub async fn crash(&mut self) {
        let output = self
            .command("pg_ctl")
            .args(self.pg_ctl_args("stop"))
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run pg_ctl{}: {e}", self.how()));
        assert!(
            output.status.success(),
            "pg_ctl stop -m immediate failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        self.running = false;
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` on it, as user `postgres`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The URL of its `postgres` database.
    pub fn admin_url(&self) -> String {
        self.url("postgres")
    }

    /// Creates an empty database and returns its URL.
    pub async fn create_database(&self, name: &str) -> String {
        let mut conn = PgConnection::connect(&self.admin_url()).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        self.url(name)
    }

    /// The tail of the server's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Where its files live.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgInstance {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let program = self.bin.join("pg_ctl");
        let mut command = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            std::process::Command::new(program)
        };
        let _ = command
            .args(self.pg_ctl_args("stop"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
