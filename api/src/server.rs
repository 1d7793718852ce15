//! The HTTP server loop. `axum::serve` accepts every connection it is given
//! and closes none of them, so 20,000 idle sockets (the open-file limit)
//! made `accept` fail and left `/healthz` unanswered, and a client sending
//! one header line every few seconds held its connection for ever. This
//! loop, on hyper-util's connection builder, adds what a server facing
//! untrusted networks needs:
//!
//! - a **cap on open connections**, kept below the open-file limit, and a
//!   **cap per client address** so one client (or one attacker) cannot take
//!   them all; trusted proxies, which carry many people's connections, are
//!   held only to the total;
//! - at a cap Baton **keeps accepting by shedding the oldest idle
//!   connection** (of that client, at the client's cap); only when every
//!   connection is busy is a newcomer refused, with a 503 problem;
//! - a **header-read timeout** (the whole request head must arrive within
//!   it; hyper also applies it to a kept-alive connection waiting for its
//!   next request) and an **idle timeout** (no request in flight);
//! - hyper's own answers to a request head it cannot parse (a bare 400, 414
//!   or 431 with no body) are rewritten as problems, like every other
//!   error Baton gives; see [`ProblemAnswers`].
//!
//! A connection is busy while a request is in flight, from its head to the
//! end of its response body, so an open live stream is never idle.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::error::ApiError;

/// How long connections may take to finish once the server stops.
const DRAIN_FOR: Duration = Duration::from_secs(30);
/// How long a shed connection may take to close by itself.
const SHED_GRACE: Duration = Duration::from_secs(1);
/// How often idle connections are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// How long accepting pauses when the process is out of file descriptors
/// (which the cap should prevent: other files, the database pool...).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How long a refused or rewritten answer may take to write, and how long
/// the rest of an over-long request is read and discarded so that the
/// client sees the answer rather than a reset.
const LINGER_FOR: Duration = Duration::from_secs(2);
/// Most bytes read and discarded after a rewritten answer.
const LINGER_AT_MOST: u64 = 4 * 1024 * 1024;

/// The limits of [`serve`].
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// Addresses held only to the total (trusted proxies).
    pub shared_addresses: Vec<IpAddr>,
}

/// Why a connection was shed or refused: the `reason` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

/// Figures for /metrics. Each reason's counter is taken out of its family
/// once, here, so counting is a bare atomic with no lookup; and every
/// reason is shown, at 0, before it first happens.
#[derive(Debug, Clone)]
pub struct ConnectionStats {
    open: Gauge,
    shed: Family<Reason, Counter>,
    refused: Family<Reason, Counter>,
    shed_at_capacity: Counter,
    shed_client_at_capacity: Counter,
    shed_idle: Counter,
    refused_at_capacity: Counter,
    refused_client_at_capacity: Counter,
    header_timeouts: Counter,
    rewritten: Counter,
}

impl Default for ConnectionStats {
    fn default() -> Self {
        let shed = Family::<Reason, Counter>::default();
        let refused = Family::<Reason, Counter>::default();
        let of = |family: &Family<Reason, Counter>, reason| {
            family.get_or_create_owned(&Reason { reason })
        };
        Self {
            open: Gauge::default(),
            shed_at_capacity: of(&shed, "at_capacity"),
            shed_client_at_capacity: of(&shed, "client_at_capacity"),
            shed_idle: of(&shed, "idle_timeout"),
            refused_at_capacity: of(&refused, "at_capacity"),
            refused_client_at_capacity: of(&refused, "client_at_capacity"),
            shed,
            refused,
            header_timeouts: Counter::default(),
            rewritten: Counter::default(),
        }
    }
}

impl ConnectionStats {
    /// Adds these figures to an app's registry (counters without `_total`,
    /// which the encoder appends).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "baton_http_connections_open",
            "Open HTTP connections",
            self.open.clone(),
        );
        registry.register(
            "baton_http_connections_shed",
            "Idle connections closed to make room or after the idle timeout",
            self.shed.clone(),
        );
        registry.register(
            "baton_http_connections_refused",
            "Connections refused because every connection was busy",
            self.refused.clone(),
        );
        registry.register(
            "baton_http_header_timeouts",
            "Connections closed because a request head took too long",
            self.header_timeouts.clone(),
        );
        registry.register(
            "baton_http_unparsed_requests",
            "Request heads that could not be read (answered 400, 414 or 431)",
            self.rewritten.clone(),
        );
    }
}

/// One open connection, as the table and its own task see it.
#[derive(Debug)]
struct Tracked {
    in_flight: AtomicUsize,
    /// Milliseconds since `epoch` when the last request ended (or the
    /// connection opened).
    idle_since: AtomicU64,
    close: Notify,
}

impl Tracked {
    fn idle_since(&self) -> Option<u64> {
        let since = self.idle_since.load(Ordering::Acquire);
        (self.in_flight.load(Ordering::Acquire) == 0).then_some(since)
    }
}

/// A request in flight: the connection is busy until it is dropped, with
/// the end of the response body.
#[derive(Debug)]
struct Busy {
    tracked: Arc<Tracked>,
    epoch: Instant,
}

impl Busy {
    fn begin(tracked: Arc<Tracked>, epoch: Instant) -> Self {
        tracked.in_flight.fetch_add(1, Ordering::AcqRel);
        Self { tracked, epoch }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.tracked
            .idle_since
            .store(millis_since(self.epoch), Ordering::Release);
        self.tracked.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug)]
struct Entry {
    client: IpAddr,
    tracked: Arc<Tracked>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    entries: HashMap<u64, Entry>,
    per_client: HashMap<IpAddr, usize>,
}

/// What to do with a newly accepted connection.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    /// Serve it (as this id).
    Admit(u64),
    /// Every connection is busy: answer 503.
    Refuse(Cap),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cap {
    Total,
    Client,
}

impl Table {
    fn leave(&mut self, id: u64) {
        if let Some(entry) = self.entries.remove(&id) {
            if let Some(count) = self.per_client.get_mut(&entry.client) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.per_client.remove(&entry.client);
                }
            }
        }
    }

    /// The longest-idle connection, of `client` if given.
    fn oldest_idle(&self, client: Option<IpAddr>) -> Option<u64> {
        self.entries
            .iter()
            .filter(|(_, e)| client.is_none_or(|c| e.client == c))
            .filter_map(|(id, e)| e.tracked.idle_since().map(|since| (since, *id)))
            .min()
            .map(|(_, id)| id)
    }

    /// Closes the connection `id` (it stops counting at once; its task
    /// finishes the close).
    fn shed(&mut self, id: u64) {
        if let Some(entry) = self.entries.get(&id) {
            entry.tracked.close.notify_one();
        }
        self.leave(id);
    }

    fn admit(
        &mut self,
        client: IpAddr,
        limits: &Limits,
        tracked: Arc<Tracked>,
        stats: &ConnectionStats,
    ) -> Admission {
        let shared = limits.shared_addresses.contains(&client);
        if !shared
            && self.per_client.get(&client).copied().unwrap_or(0)
                >= limits.max_connections_per_client
        {
            match self.oldest_idle(Some(client)) {
                Some(id) => {
                    self.shed(id);
                    stats.shed_client_at_capacity.inc();
                }
                None => return Admission::Refuse(Cap::Client),
            }
        }
        if self.entries.len() >= limits.max_connections {
            match self.oldest_idle(None) {
                Some(id) => {
                    self.shed(id);
                    stats.shed_at_capacity.inc();
                }
                None => return Admission::Refuse(Cap::Total),
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(id, Entry { client, tracked });
        *self.per_client.entry(client).or_default() += 1;
        Admission::Admit(id)
    }
}

#[derive(Debug)]
struct Shared {
    table: Mutex<Table>,
    limits: Limits,
    stats: Arc<ConnectionStats>,
    epoch: Instant,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock cannot leave the table torn: every
        // change to it is a single insert or remove.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sweep(&self) {
        let now = millis_since(self.epoch);
        let idle_for = u64::try_from(self.limits.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let mut table = self.table();
        let expired: Vec<u64> = table
            .entries
            .iter()
            .filter_map(|(id, e)| {
                let since = e.tracked.idle_since()?;
                (now.saturating_sub(since) >= idle_for).then_some(*id)
            })
            .collect();
        for id in expired {
            table.shed(id);
            self.stats.shed_idle.inc();
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` turns
/// true, then lets open connections finish (live streams end by
/// themselves once the app's `closing` signal is sent) for up to 30 s.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stats: Arc<ConnectionStats>,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let shared = Arc::new(Shared {
        table: Mutex::new(Table::default()),
        limits,
        stats,
        epoch: Instant::now(),
    });
    let mut connections = JoinSet::new();
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = sweep.tick() => {
                shared.sweep();
                continue;
            }
            // Finished connections' results are collected as they come, so
            // the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, or a connection reset before it was
                // accepted: the listener itself is fine.
                tracing::warn!(%error, "could not accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let client = peer.ip().to_canonical();
        let tracked = Arc::new(Tracked {
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(millis_since(shared.epoch)),
            close: Notify::new(),
        });
        let admission =
            shared
                .table()
                .admit(client, &shared.limits, tracked.clone(), &shared.stats);
        match admission {
            Admission::Refuse(cap) => {
                let counter = match cap {
                    Cap::Total => &shared.stats.refused_at_capacity,
                    Cap::Client => &shared.stats.refused_client_at_capacity,
                };
                counter.inc();
                connections.spawn(refuse(stream, cap));
            }
            Admission::Admit(id) => {
                connections.spawn(connection(
                    stream,
                    peer,
                    id,
                    tracked,
                    router.clone(),
                    shared.clone(),
                    shutdown.clone(),
                ));
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_FOR, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            "connections still open after the drain period: closing them"
        );
        connections.abort_all();
    }
    Ok(())
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    tracked: Arc<Tracked>,
    router: Router,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    shared.stats.open.inc();
    let epoch = shared.epoch;
    let busy_of = tracked.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let busy = Busy::begin(busy_of.clone(), epoch);
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move {
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|body| Body::new(Tracking { body, _busy: busy })))
        }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let io = TokioIo::new(ProblemAnswers::new(stream, shared.stats.clone()));
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut closing = false;
    // A connection closed to make room was idle, but hyper only closes a
    // connection part-way through a request head once the head is done (or
    // its timeout passes): a slow client's sockets would pile up past the
    // cap. So one still open a moment after being shed, with no request in
    // flight, is dropped.
    let shed_grace = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(shed_grace);
    let mut shed = false;
    let result = loop {
        tokio::select! {
            result = connection.as_mut() => break Some(result),
            _ = tracked.close.notified(), if !closing => {
                closing = true;
                shed = true;
                shed_grace.as_mut().reset(tokio::time::Instant::now() + SHED_GRACE);
                connection.as_mut().graceful_shutdown();
            }
            _ = shutdown.wait_for(|stop| *stop), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = shed_grace.as_mut(), if shed => {
                if tracked.in_flight.load(Ordering::Acquire) == 0 {
                    break None;
                }
                shed_grace.as_mut().reset(tokio::time::Instant::now() + SHED_GRACE);
            }
        }
    };
    let result = result.unwrap_or(Ok(()));
    if let Err(error) = result {
        let timed_out = error
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_timeout);
        if timed_out {
            shared.stats.header_timeouts.inc();
        }
        tracing::debug!(%error, "connection ended with an error");
    }
    shared.table().leave(id);
    shared.stats.open.dec();
}

/// Tells a newcomer that every connection is busy, and closes.
async fn refuse(mut stream: TcpStream, cap: Cap) {
    use tokio::io::AsyncWriteExt;
    let detail = match cap {
        Cap::Total => "Baton is at its connection limit and every connection is busy; try again",
        Cap::Client => {
            "this address has as many connections open as Baton allows one client, all busy; \
             close one or try again"
        }
    };
    let answer = raw_answer(&ApiError::Unavailable(detail.to_owned()));
    let _ = tokio::time::timeout(LINGER_FOR, async {
        let _ = stream.write_all(&answer).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// A whole HTTP/1.1 answer (head and body) for `error`, closing the
/// connection.
fn raw_answer(error: &ApiError) -> Vec<u8> {
    let problem = error.problem();
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let status = axum::http::StatusCode::from_u16(problem.status)
        .unwrap_or(axum::http::StatusCode::BAD_REQUEST);
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nconnection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if status == axum::http::StatusCode::SERVICE_UNAVAILABLE {
        answer.push_str("retry-after: 1\r\n");
    }
    answer.push_str("\r\n");
    let mut answer = answer.into_bytes();
    answer.extend_from_slice(&body);
    answer
}

/// A response body that keeps its connection busy until it ends.
#[derive(Debug)]
struct Tracking {
    body: Body,
    _busy: Busy,
}

impl HttpBody for Tracking {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The one kind of answer hyper writes by itself: to a request head it
/// cannot parse (a bad request line or header: 400; a URI longer than the
/// `http` crate's 65,534 bytes: 414; a head larger than the read buffer:
/// 431), with no body, before any service sees the request, and with no
/// hook to change it (hyper's `Server::on_error`). Every answer Baton's
/// router gives to an error carries a content type (`app::answer_and_count`
/// makes sure of it), so a 400, 414 or 431 head without one is
/// hyper's, and is replaced here by the same problem Baton would give.
/// After it the client's remaining bytes are read and discarded for a
/// moment (a "lingering close", as nginx does) so that closing a socket
/// with unread data does not reset the connection before the client has
/// read the answer.
#[derive(Debug)]
pub struct ProblemAnswers<S> {
    inner: S,
    pending: Option<(Vec<u8>, usize)>,
    linger: Option<Linger>,
    stats: Arc<ConnectionStats>,
}

#[derive(Debug)]
struct Linger {
    deadline: Pin<Box<tokio::time::Sleep>>,
    discarded: u64,
    shut: bool,
}

impl<S> ProblemAnswers<S> {
    /// Wraps a connection's stream.
    pub fn new(inner: S, stats: Arc<ConnectionStats>) -> Self {
        Self {
            inner,
            pending: None,
            linger: None,
            stats,
        }
    }
}

/// The problem that replaces hyper's own answer starting `head`, if it is
/// one.
pub fn replacement_for(head: &[u8]) -> Option<Vec<u8>> {
    let error = if head.starts_with(b"HTTP/1.1 431 ") {
        ApiError::HeadersTooLarge
    } else if head.starts_with(b"HTTP/1.1 414 ") {
        ApiError::UriTooLong
    } else if head.starts_with(b"HTTP/1.1 400 ") {
        ApiError::BadRequest {
            detail: "the request line or a header could not be read as HTTP".to_owned(),
            errors: Vec::new(),
        }
    } else {
        return None;
    };
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(head.len());
    let typed = head[..end]
        .split(|b| *b == b'\n')
        .any(|line| line.to_ascii_lowercase().starts_with(b"content-type:"));
    (!typed).then(|| raw_answer(&error))
}

impl<S: AsyncWrite + Unpin> ProblemAnswers<S> {
    /// Writes what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written >= bytes.len() {
                self.pending = None;
                break;
            }
            let n =
                std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    fn replace(&mut self, head: &[u8]) -> bool {
        if self.pending.is_some() || self.linger.is_some() {
            return false;
        }
        match replacement_for(head) {
            Some(answer) => {
                self.stats.rewritten.inc();
                self.pending = Some((answer, 0));
                self.linger = Some(Linger {
                    deadline: Box::pin(tokio::time::sleep(LINGER_FOR)),
                    discarded: 0,
                    shut: false,
                });
                true
            }
            None => false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ProblemAnswers<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ProblemAnswers<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replace(buf) {
            return Poll::Ready(Ok(buf.len()));
        }
        if this.linger.is_some() {
            // Nothing follows hyper's own answer; swallow it all.
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            if this.replace(first) {
                return Poll::Ready(Ok(total));
            }
        }
        if this.linger.is_some() {
            return Poll::Ready(Ok(total));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        std::task::ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        std::task::ready!(this.poll_pending(cx))?;
        let Some(linger) = &mut this.linger else {
            return Pin::new(&mut this.inner).poll_shutdown(cx);
        };
        if !linger.shut {
            std::task::ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            linger.shut = true;
        }
        // Read and discard until the client stops sending, the deadline
        // passes, or it has sent too much.
        let mut scratch = [0u8; 8192];
        loop {
            if linger.deadline.as_mut().poll(cx).is_ready() || linger.discarded >= LINGER_AT_MOST {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => linger.discarded += buf.filled().len() as u64,
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_client: usize) -> Limits {
        Limits {
            max_connections: total,
            max_connections_per_client: per_client,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shared_addresses: vec![IpAddr::from([10, 0, 0, 1])],
        }
    }

    fn tracked(busy: bool, idle_since: u64) -> Arc<Tracked> {
        Arc::new(Tracked {
            in_flight: AtomicUsize::new(usize::from(busy)),
            idle_since: AtomicU64::new(idle_since),
            close: Notify::new(),
        })
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let stats = ConnectionStats::default();
        let limits = limits(2, 10);
        let mut table = Table::default();
        let older = tracked(false, 5);
        let newer = tracked(false, 9);
        assert_eq!(
            table.admit(ip(1), &limits, older, &stats),
            Admission::Admit(0)
        );
        assert_eq!(
            table.admit(ip(2), &limits, newer, &stats),
            Admission::Admit(1)
        );
        assert_eq!(
            table.admit(ip(3), &limits, tracked(false, 10), &stats),
            Admission::Admit(2)
        );
        assert!(!table.entries.contains_key(&0));
        assert!(table.entries.contains_key(&1));
        assert_eq!(stats.shed_at_capacity.get(), 1);
    }

    #[test]
    fn at_the_cap_with_every_connection_busy_a_newcomer_is_refused() {
        let stats = ConnectionStats::default();
        let limits = limits(1, 10);
        let mut table = Table::default();
        table.admit(ip(1), &limits, tracked(true, 0), &stats);
        assert_eq!(
            table.admit(ip(2), &limits, tracked(false, 1), &stats),
            Admission::Refuse(Cap::Total)
        );
        assert_eq!(table.entries.len(), 1);
    }

    #[test]
    fn a_client_at_its_cap_sheds_its_own_idle_connection_not_anothers() {
        let stats = ConnectionStats::default();
        let limits = limits(10, 2);
        let mut table = Table::default();
        // Another client's connection is the oldest idle of all.
        table.admit(ip(9), &limits, tracked(false, 0), &stats);
        table.admit(ip(1), &limits, tracked(false, 3), &stats);
        table.admit(ip(1), &limits, tracked(false, 4), &stats);
        assert_eq!(
            table.admit(ip(1), &limits, tracked(false, 5), &stats),
            Admission::Admit(3)
        );
        assert!(table.entries.contains_key(&0));
        assert!(!table.entries.contains_key(&1));
        assert_eq!(table.per_client[&ip(1)], 2);
        assert_eq!(stats.shed_client_at_capacity.get(), 1);
    }

    #[test]
    fn a_client_at_its_cap_with_every_connection_busy_is_refused() {
        let stats = ConnectionStats::default();
        let limits = limits(10, 1);
        let mut table = Table::default();
        table.admit(ip(1), &limits, tracked(true, 0), &stats);
        assert_eq!(
            table.admit(ip(1), &limits, tracked(false, 1), &stats),
            Admission::Refuse(Cap::Client)
        );
    }

    #[test]
    fn a_trusted_proxy_is_held_only_to_the_total() {
        let stats = ConnectionStats::default();
        let limits = limits(3, 1);
        let proxy = IpAddr::from([10, 0, 0, 1]);
        let mut table = Table::default();
        for _ in 0..3 {
            assert!(matches!(
                table.admit(proxy, &limits, tracked(true, 0), &stats),
                Admission::Admit(_)
            ));
        }
        assert_eq!(
            table.admit(proxy, &limits, tracked(true, 0), &stats),
            Admission::Refuse(Cap::Total)
        );
    }

    #[test]
    fn hyper_own_answers_are_replaced_and_ours_are_not() {
        let bare =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let replaced = replacement_for(bare).map(String::from_utf8);
        assert!(matches!(&replaced, Some(Ok(text))
            if text.starts_with("HTTP/1.1 431 ") && text.contains("application/problem+json")));
        assert!(
            replacement_for(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n").is_some()
        );
        assert!(
            replacement_for(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").is_some()
        );
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(replacement_for(ours), None);
        assert_eq!(
            replacement_for(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
            None
        );
    }
}
