//! CPU time by process group, read from `/proc`, for the benchmark
//! commands: on a two-core machine a path's throughput is bounded by the CPU
//! each command costs across every process it touches (PostgreSQL's
//! backends, nats-server, the benchmark's own process, a load generator's
//! process), so a benchmark that only compares throughputs cannot say where
//! a gap comes from. Linux only; elsewhere every reading is zero.

use std::time::Duration;

/// Who spent CPU: the groups a benchmark report splits by.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CpuTimes {
    /// Every PostgreSQL process (backends, WAL writer, checkpointer...).
    pub postgres: Duration,
    /// Every nats-server process.
    pub nats: Duration,
    /// The benchmark's own process.
    pub this: Duration,
    /// The processes named as clients (a load generator of their own).
    pub clients: Duration,
    /// Every CPU on the machine that was not idle, whoever used it.
    pub machine_busy: Duration,
    /// Every CPU-second the machine had, busy or idle.
    pub machine_total: Duration,
}

impl CpuTimes {
    /// A reading now.
    pub fn now() -> Self {
        Self::now_with_clients(&[])
    }

    /// A reading now, counting the processes `clients` as clients.
    pub fn now_with_clients(clients: &[u32]) -> Self {
        let mut times = Self::default();
        let tick = CLOCK_TICK;
        if let Ok(stat) = std::fs::read_to_string("/proc/stat") {
            if let Some(cpu) = stat.lines().next() {
                let fields: Vec<u64> = cpu
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|f| f.parse().ok())
                    .collect();
                let total: u64 = fields.iter().take(8).sum();
                // idle and iowait
                let idle =
                    fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
                times.machine_total = tick * u32::try_from(total).unwrap_or(u32::MAX);
                times.machine_busy =
                    tick * u32::try_from(total.saturating_sub(idle)).unwrap_or(u32::MAX);
            }
        }
        let me = std::process::id().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return times;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ... utime stime": comm may hold spaces,
            // so split after its closing parenthesis.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let comm = &stat[open + 1..close];
            let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            let ticks = |i: usize| rest.get(i).and_then(|f| f.parse::<u32>().ok()).unwrap_or(0);
            // Fields 14 and 15 of stat; `rest` starts at field 3.
            let used = tick * (ticks(11) + ticks(12));
            if pid == me {
                times.this += used;
            } else if pid.parse().is_ok_and(|pid: u32| clients.contains(&pid)) {
                times.clients += used;
            } else if comm == "postgres" {
                times.postgres += used;
            } else if comm == "nats-server" {
                times.nats += used;
            }
        }
        times
    }

    /// What was spent between `earlier` and this reading.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            postgres: self.postgres.saturating_sub(earlier.postgres),
            nats: self.nats.saturating_sub(earlier.nats),
            this: self.this.saturating_sub(earlier.this),
            clients: self.clients.saturating_sub(earlier.clients),
            machine_busy: self.machine_busy.saturating_sub(earlier.machine_busy),
            machine_total: self.machine_total.saturating_sub(earlier.machine_total),
        }
    }

    /// The sum of two spans.
    pub fn plus(&self, other: &Self) -> Self {
        Self {
            postgres: self.postgres + other.postgres,
            nats: self.nats + other.nats,
            this: self.this + other.this,
            clients: self.clients + other.clients,
            machine_busy: self.machine_busy + other.machine_busy,
            machine_total: self.machine_total + other.machine_total,
        }
    }

    /// Microseconds of CPU per command, by group.
    pub fn per_command(&self, commands: usize) -> PerCommand {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / commands.max(1) as f64;
        PerCommand {
            postgres: per(self.postgres),
            nats: per(self.nats),
            this: per(self.this),
            clients: per(self.clients),
            busy: self.machine_busy.as_secs_f64() / self.machine_total.as_secs_f64().max(1e-9),
        }
    }
}

/// CPU microseconds per command, by group, and how busy the machine was.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct PerCommand {
    /// PostgreSQL's processes.
    pub postgres: f64,
    /// nats-server.
    pub nats: f64,
    /// The benchmark's process.
    pub this: f64,
    /// The client processes (0 where the load is generated in-process).
    pub clients: f64,
    /// The share of the machine's CPU that was busy (0 to 1).
    pub busy: f64,
}

impl PerCommand {
    /// Every group.
    pub fn total(&self) -> f64 {
        self.postgres + self.nats + self.this + self.clients
    }
}

impl std::fmt::Display for PerCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} µs (PostgreSQL {:.0}, nats-server {:.0}, this process {:.0}",
            self.total(),
            self.postgres,
            self.nats,
            self.this,
        )?;
        if self.clients > 0.0 {
            write!(f, ", clients {:.0}", self.clients)?;
        }
        write!(f, "; machine {:.0}% busy)", self.busy * 100.0)
    }
}

/// The length of one clock tick, the unit of /proc's CPU times (almost
/// always 10 ms; this module does not call libc to ask).
const CLOCK_TICK: Duration = Duration::from_millis(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_counted_in_the_total_and_named_only_when_they_spent_cpu() {
        let spent = CpuTimes {
            postgres: Duration::from_millis(300),
            this: Duration::from_millis(200),
            clients: Duration::from_millis(100),
            machine_busy: Duration::from_secs(1),
            machine_total: Duration::from_secs(2),
            ..CpuTimes::default()
        };
        let per = spent.per_command(1000);
        assert_eq!(per.total(), 600.0);
        assert_eq!(
            per.to_string(),
            "600 µs (PostgreSQL 300, nats-server 0, this process 200, clients 100; machine 50% busy)"
        );
        let alone = CpuTimes {
            clients: Duration::ZERO,
            ..spent
        };
        assert!(!alone.per_command(1000).to_string().contains("clients"));
    }

    #[test]
    fn a_reading_of_this_process_is_not_counted_as_a_client() {
        let me = std::process::id();
        let reading = CpuTimes::now_with_clients(&[me]);
        assert_eq!(reading.clients, Duration::ZERO);
    }
}
