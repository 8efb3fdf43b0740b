//! Export of finished call records to the ticket system and the provincial platform.
//!
//! The store writes, in the same transaction as a finished record, one `outbox` row per
//! configured endpoint. The exporter runs one thread per endpoint (a dead endpoint never delays
//! another) that walks that endpoint's undelivered rows strictly in `seq` order and POSTs each
//! record's JSON (`calls.record`, as stored) with:
//!
//! - `Content-Type: application/json`
//! - `Idempotency-Key: <record id>`: the receiver dedupes on it;
//! - `X-Hotline-Schema: <schema>`: the `schema` field of the record.
//!
//! A 2xx answer marks the row delivered. Anything else (connection refused, timeout, any other
//! status, redirects included) counts an attempt, keeps the error in `last_error` and sets
//! `next_attempt_ms` to now + `min(backoff_max, backoff_min · 2^attempts)` ± 20 % jitter; the
//! thread then waits for that row (head-of-line), which keeps the order per endpoint.
//!
//! Delivery is at-least-once: the outbox lives in the SQLite file, so the receiver being down,
//! or the engine restarting, loses nothing; a record is sent again only when its 2xx was not
//! recorded (a timeout after the receiver processed it, a crash between the answer and the
//! update), and the idempotency key lets the receiver drop that copy.
//!
//! A row that can never be sent (its record is missing from `calls`, is not JSON, has no
//! `schema`, or an id that cannot be a header value) is *parked*: `next_attempt_ms` is set to
//! [`PARKED`] and `last_error` says why. It stays in the backlog, visible, but no longer blocks
//! the rows behind it; clearing it is an operator's decision.
//!
//! Only `http://` URLs are accepted: `ureq` is built without its `tls` feature. Enabling
//! `https://` needs that feature in `Cargo.toml` and [`HTTPS_SUPPORTED`] set to `true`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use tracing::{debug, error, info, warn};

/// Whether `https://` endpoints can be used (`ureq` built with its `tls` feature).
pub const HTTPS_SUPPORTED: bool = false;

/// `next_attempt_ms` of a parked row: one that can never be sent as it is.
pub const PARKED: i64 = i64::MAX;

/// Default request timeout of an endpoint.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default shortest wait after a failure.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_secs(1);

/// Default longest wait after failures.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);

/// Default interval at which an idle thread looks for new rows (when not nudged).
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// At most one warning per endpoint per this interval while it fails.
const WARN_EVERY: Duration = Duration::from_secs(30);

/// How long a statement waits for the store's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of an error answer's body goes into `last_error`.
const ERROR_BODY_CHARS: usize = 200;

/// How much of an answer's body is read (and dropped) so the connection can be reused.
const DRAIN_LIMIT: u64 = 64 * 1024;

/// Jitter applied to each backoff, as a fraction (± 20 %).
const JITTER: f64 = 0.2;

/// A receiver of records (ticket system, provincial platform).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Name used in the outbox's `endpoint` column, logs and the backlog.
    pub name: String,
    /// Where records are POSTed (`http://host:port/path`).
    pub url: String,
    /// Whole-request timeout (connect, send, answer).
    pub timeout: Duration,
}

impl Endpoint {
    /// An endpoint with the default timeout.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Endpoint {
            name: name.into(),
            url: url.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// What the exporter needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExporterConfig {
    /// The store's SQLite file (`<data>/records.sqlite`); it must exist.
    pub path: PathBuf,
    /// Where records go; each has its own thread.
    pub endpoints: Vec<Endpoint>,
    /// Wait after a first failure (1 s).
    pub backoff_min: Duration,
    /// Longest wait between attempts (5 min).
    pub backoff_max: Duration,
    /// How often an idle thread looks for new rows when not nudged (1 s).
    pub poll: Duration,
}

impl ExporterConfig {
    /// A configuration with the default backoff and poll interval.
    pub fn new(path: impl Into<PathBuf>, endpoints: Vec<Endpoint>) -> Self {
        ExporterConfig {
            path: path.into(),
            endpoints,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
            poll: DEFAULT_POLL,
        }
    }
}

/// Why the exporter could not start, or the backlog could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The configuration is unusable.
    #[error("export configuration: {0}")]
    Config(String),
    /// The store's file could not be opened or read.
    #[error("record store {path}: {source}")]
    Store {
        /// The SQLite file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the export thread for {endpoint}: {source}")]
    Thread {
        /// The endpoint.
        endpoint: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Undelivered rows of one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backlog {
    /// The endpoint's name.
    pub endpoint: String,
    /// Rows not yet delivered (parked ones included).
    pub pending: u64,
    /// `created_ms` of the oldest (first in order) undelivered row, Unix ms.
    pub oldest_ms: Option<i64>,
    /// The error of the row at the head of the queue, when it has failed.
    pub last_error: Option<String>,
}

/// The undelivered rows per endpoint, by endpoint name; endpoints with nothing pending are not
/// listed (an empty list means everything was delivered), and rows of endpoints no longer
/// configured are. For logs, the CLI and the API.
pub fn backlog(path: &Path) -> Result<Vec<Backlog>, ExportError> {
    let store = |source| ExportError::Store {
        path: path.to_path_buf(),
        source,
    };
    let conn = open(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(store)?;
    let mut stmt = conn
        .prepare(
            // Hops from endpoint to endpoint on the store's (endpoint, delivered_ms, seq)
            // index, so the cost does not grow with the delivered history.
            "WITH RECURSIVE eps(name) AS (
                 SELECT (SELECT MIN(endpoint) FROM outbox)
                 UNION ALL
                 SELECT (SELECT MIN(o.endpoint) FROM outbox o WHERE o.endpoint > eps.name)
                   FROM eps WHERE eps.name IS NOT NULL
             )
             SELECT eps.name,
                    (SELECT COUNT(*) FROM outbox
                      WHERE endpoint = eps.name AND delivered_ms IS NULL) AS pending,
                    (SELECT created_ms FROM outbox
                      WHERE endpoint = eps.name AND delivered_ms IS NULL ORDER BY seq LIMIT 1),
                    (SELECT last_error FROM outbox
                      WHERE endpoint = eps.name AND delivered_ms IS NULL ORDER BY seq LIMIT 1)
               FROM eps
              WHERE eps.name IS NOT NULL AND pending > 0
              ORDER BY eps.name",
        )
        .map_err(store)?;
    let rows = stmt
        .query_map([], |row| {
            Ok(Backlog {
                endpoint: row.get(0)?,
                pending: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                oldest_ms: row.get(2)?,
                last_error: row.get(3)?,
            })
        })
        .map_err(store)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(store)
}

/// The running exporter: one thread per endpoint.
#[derive(Debug)]
pub struct Exporter {
    shared: Arc<Shared>,
    threads: Vec<(String, JoinHandle<()>)>,
}

impl Exporter {
    /// Checks the configuration, opens the store's file once per endpoint and starts the
    /// threads. Rows left undelivered by a previous run are sent first.
    pub fn start(config: ExporterConfig) -> Result<Exporter, ExportError> {
        check(&config)?;
        let store = |source| ExportError::Store {
            path: config.path.clone(),
            source,
        };
        let mut conns = Vec::with_capacity(config.endpoints.len());
        for _ in &config.endpoints {
            conns.push(open(&config.path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(store)?);
        }
        let shared = Arc::new(Shared::default());
        let mut exporter = Exporter {
            shared: shared.clone(),
            threads: Vec::new(),
        };
        for (endpoint, conn) in config.endpoints.iter().zip(conns) {
            let agent = ureq::AgentBuilder::new()
                .timeout(endpoint.timeout)
                .timeout_connect(endpoint.timeout)
                .redirects(0)
                .user_agent(concat!("hotline/", env!("CARGO_PKG_VERSION")))
                .build();
            let worker = Worker {
                endpoint: endpoint.clone(),
                conn,
                agent,
                shared: shared.clone(),
                backoff_min: config.backoff_min,
                backoff_max: config.backoff_max,
                poll: config.poll,
                episode: None,
                last_warn: None,
                suppressed: 0,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("export-{}", endpoint.name))
                .spawn(move || worker.run());
            match spawned {
                Ok(handle) => exporter.threads.push((endpoint.name.clone(), handle)),
                Err(source) => {
                    // Dropping `exporter` stops the threads already started.
                    return Err(ExportError::Thread {
                        endpoint: endpoint.name.clone(),
                        source,
                    });
                }
            }
        }
        info!(
            endpoints = ?config.endpoints.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            "record export started"
        );
        Ok(exporter)
    }

    /// Wakes the threads (the store just committed new outbox rows) instead of waiting for their
    /// poll. A thread waiting out a backoff only re-checks its head row.
    pub fn nudge(&self) {
        let mut signal = self.shared.lock();
        signal.nudges = signal.nudges.wrapping_add(1);
        self.shared.wake.notify_all();
    }

    /// Stops and joins the threads, leaving undelivered rows for the next start. Waiting threads
    /// stop at once; one in the middle of a request stops when it ends (at most its endpoint's
    /// timeout), and records its outcome first.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        {
            let mut signal = self.shared.lock();
            signal.stop = true;
            self.shared.wake.notify_all();
        }
        for (endpoint, handle) in self.threads.drain(..) {
            if handle.join().is_err() {
                error!(endpoint, "record export thread panicked");
            }
        }
        info!("record export stopped");
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn check(config: &ExporterConfig) -> Result<(), ExportError> {
    let bad = |msg: String| Err(ExportError::Config(msg));
    if config.backoff_min.is_zero() || config.backoff_max < config.backoff_min {
        return bad(format!(
            "backoff must satisfy 0 < min <= max (min {:?}, max {:?})",
            config.backoff_min, config.backoff_max
        ));
    }
    if config.poll.is_zero() {
        return bad("the poll interval must not be zero".into());
    }
    for (i, endpoint) in config.endpoints.iter().enumerate() {
        if endpoint.name.is_empty() {
            return bad(format!("endpoint {} has no name", i + 1));
        }
        if config.endpoints[..i]
            .iter()
            .any(|e| e.name == endpoint.name)
        {
            return bad(format!("endpoint {} is declared twice", endpoint.name));
        }
        if endpoint.timeout.is_zero() {
            return bad(format!(
                "endpoint {}: the timeout must not be zero",
                endpoint.name
            ));
        }
        let url = ureq::AgentBuilder::new()
            .build()
            .post(&endpoint.url)
            .request_url()
            .map_err(|e| {
                ExportError::Config(format!("endpoint {}: bad URL: {e}", endpoint.name))
            })?;
        match url.scheme() {
            "http" => {}
            "https" if HTTPS_SUPPORTED => {}
            "https" => {
                return bad(format!(
                    "endpoint {}: https needs ureq's `tls` feature, which this build lacks",
                    endpoint.name
                ))
            }
            other => {
                return bad(format!(
                    "endpoint {}: unsupported scheme {other}",
                    endpoint.name
                ))
            }
        }
    }
    Ok(())
}

fn open(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The wait after a failure of a row that had failed `attempts` times before:
/// `min(max, min · 2^attempts)`, scaled by `1 + JITTER · jitter` (`jitter` in `-1.0..=1.0`).
pub(crate) fn backoff(min: Duration, max: Duration, attempts: i64, jitter: f64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(0, 31)).unwrap_or(31);
    let base = min.saturating_mul(1u32 << exponent).min(max);
    base.mul_f64(1.0 + JITTER * jitter.clamp(-1.0, 1.0))
}

/// What the threads wait on.
#[derive(Debug, Default)]
struct Shared {
    signal: Mutex<Signal>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct Signal {
    stop: bool,
    nudges: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Signal> {
        self.signal.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stopped(&self) -> bool {
        self.lock().stop
    }

    /// Waits up to `timeout`, or until stopped or nudged (when `nudgeable`). True when stopped.
    fn wait(&self, timeout: Duration, nudgeable: bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut signal = self.lock();
        let seen = signal.nudges;
        loop {
            if signal.stop {
                return true;
            }
            if nudgeable && signal.nudges != seen {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            signal = match self.wake.wait_timeout(signal, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// The head row of an endpoint's queue.
struct Row {
    seq: i64,
    record_id: String,
    attempts: i64,
    next_attempt_ms: i64,
}

/// What sending a row gave.
enum Outcome {
    /// 2xx.
    Delivered(u16),
    /// Worth retrying.
    Failed(String),
    /// Can never be sent as it is.
    Unsendable(String),
}

/// A run of failures of an endpoint.
struct Episode {
    since: Instant,
    failures: u64,
    warned: bool,
}

struct Worker {
    endpoint: Endpoint,
    conn: Connection,
    agent: ureq::Agent,
    shared: Arc<Shared>,
    backoff_min: Duration,
    backoff_max: Duration,
    poll: Duration,
    episode: Option<Episode>,
    last_warn: Option<Instant>,
    suppressed: u64,
}

impl Worker {
    fn run(mut self) {
        debug!(endpoint = %self.endpoint.name, url = %self.endpoint.url, "export thread started");
        // A wait longer than any backoff can only come from the wall clock stepping back (or a
        // smaller backoff_max than the run that wrote the row): the row is tried anyway.
        let longest = ms(self.backoff_max.mul_f64(1.0 + JITTER) + self.poll);
        while !self.shared.stopped() {
            let row = match self.head() {
                Ok(Some(row)) => row,
                Ok(None) => {
                    if self.shared.wait(self.poll, true) {
                        break;
                    }
                    continue;
                }
                Err(error) => {
                    self.fail_log(&format!("reading the outbox: {error}"), None, self.poll);
                    if self.shared.wait(self.poll, false) {
                        break;
                    }
                    continue;
                }
            };
            let due_in = row.next_attempt_ms.saturating_sub(now_ms());
            if due_in > 0 && due_in <= longest {
                // Head-of-line: nothing behind this row goes before it. Re-check on a nudge
                // (cheap) in case the row changed under us, but don't try before it is due.
                let wait = Duration::from_millis(u64::try_from(due_in).unwrap_or(0));
                if self
                    .shared
                    .wait(wait.min(self.poll.max(Duration::from_millis(1))), false)
                {
                    break;
                }
                continue;
            }
            self.attempt(&row);
        }
        debug!(endpoint = %self.endpoint.name, "export thread stopped");
    }

    fn head(&self) -> rusqlite::Result<Option<Row>> {
        self.conn
            .prepare_cached(
                "SELECT seq, record_id, attempts, next_attempt_ms FROM outbox
                  WHERE endpoint = ?1 AND delivered_ms IS NULL AND next_attempt_ms < ?2
                  ORDER BY seq LIMIT 1",
            )?
            .query_row(params![self.endpoint.name, PARKED], |r| {
                Ok(Row {
                    seq: r.get(0)?,
                    record_id: r.get(1)?,
                    attempts: r.get(2)?,
                    next_attempt_ms: r.get(3)?,
                })
            })
            .optional()
    }

    fn pending(&self) -> Option<u64> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE endpoint = ?1 AND delivered_ms IS NULL",
                params![self.endpoint.name],
                |r| r.get::<_, i64>(0),
            )
            .ok()
            .and_then(|n| u64::try_from(n).ok())
    }

    fn attempt(&mut self, row: &Row) {
        let outcome = match self.load(&row.record_id) {
            Ok(Ok((record, schema))) => self.post(&row.record_id, &record, schema),
            Ok(Err(why)) => Outcome::Unsendable(why),
            Err(error) => {
                // The store is busy or broken: not the endpoint's fault, no attempt counted.
                self.fail_log(&format!("reading the record: {error}"), None, self.poll);
                self.shared.wait(self.poll, false);
                return;
            }
        };
        let now = now_ms();
        let jitter = rand::thread_rng().gen_range(-1.0..=1.0);
        let retry_in = backoff(self.backoff_min, self.backoff_max, row.attempts, jitter);
        let update = match &outcome {
            Outcome::Delivered(_) => self.conn.execute(
                "UPDATE outbox SET delivered_ms = ?1, attempts = attempts + 1 WHERE seq = ?2",
                params![now, row.seq],
            ),
            Outcome::Failed(why) => self.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?1,
                        next_attempt_ms = ?2 WHERE seq = ?3",
                params![why, now.saturating_add(ms(retry_in)), row.seq],
            ),
            Outcome::Unsendable(why) => self.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?1,
                        next_attempt_ms = ?2 WHERE seq = ?3",
                params![format!("parked: {why}"), PARKED, row.seq],
            ),
        };
        if let Err(error) = update {
            // After a 2xx this means the record goes again (the receiver dedupes it).
            self.fail_log(
                &format!("recording the outcome of {}: {error}", row.record_id),
                None,
                self.poll,
            );
            self.shared.wait(self.poll, false);
            return;
        }
        match outcome {
            Outcome::Delivered(status) => self.delivered(row, status),
            Outcome::Failed(why) => self.fail_log(&why, Some(row), retry_in),
            Outcome::Unsendable(why) => error!(
                endpoint = %self.endpoint.name,
                record = %row.record_id,
                seq = row.seq,
                "record parked (it can never be sent as stored): {why}"
            ),
        }
    }

    /// The record's JSON and schema, or why it can never be sent.
    fn load(&self, id: &str) -> rusqlite::Result<Result<(String, u64), String>> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Ok(Err(format!(
                "record id {id:?} cannot be an Idempotency-Key"
            )));
        }
        let record: Option<String> = self
            .conn
            .prepare_cached("SELECT record FROM calls WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?;
        let Some(record) = record else {
            return Ok(Err(format!("record {id} is not in the calls table")));
        };
        let schema = match serde_json::from_str::<serde_json::Value>(&record) {
            Ok(value) => value.get("schema").and_then(serde_json::Value::as_u64),
            Err(error) => return Ok(Err(format!("record {id} is not JSON: {error}"))),
        };
        match schema {
            Some(schema) => Ok(Ok((record, schema))),
            None => Ok(Err(format!("record {id} has no schema"))),
        }
    }

    fn post(&self, id: &str, record: &str, schema: u64) -> Outcome {
        let sent = self
            .agent
            .post(&self.endpoint.url)
            .set("Content-Type", "application/json")
            .set("Idempotency-Key", id)
            .set("X-Hotline-Schema", &schema.to_string())
            .send_string(record);
        match sent {
            Ok(response) => {
                let status = response.status();
                let text = response.status_text().to_string();
                drain(response);
                if (200..300).contains(&status) {
                    Outcome::Delivered(status)
                } else {
                    Outcome::Failed(format!("HTTP {status} {text}"))
                }
            }
            Err(ureq::Error::Status(status, response)) => {
                let text = response.status_text().to_string();
                let body = body_excerpt(response);
                match body.is_empty() {
                    true => Outcome::Failed(format!("HTTP {status} {text}")),
                    false => Outcome::Failed(format!("HTTP {status} {text}: {body}")),
                }
            }
            Err(ureq::Error::Transport(transport)) => Outcome::Failed(transport.to_string()),
        }
    }

    fn delivered(&mut self, row: &Row, status: u16) {
        debug!(endpoint = %self.endpoint.name, record = %row.record_id, status, "record delivered");
        let Some(episode) = self.episode.take() else {
            return;
        };
        if episode.warned {
            info!(
                endpoint = %self.endpoint.name,
                failures = episode.failures,
                down_s = episode.since.elapsed().as_secs(),
                backlog = self.pending().unwrap_or(0),
                "record export recovered"
            );
        } else {
            debug!(endpoint = %self.endpoint.name, failures = episode.failures, "record export recovered");
        }
    }

    /// Notes a failure; warns at most once per [`WARN_EVERY`] per endpoint.
    fn fail_log(&mut self, why: &str, row: Option<&Row>, retry_in: Duration) {
        let episode = self.episode.get_or_insert_with(|| Episode {
            since: Instant::now(),
            failures: 0,
            warned: false,
        });
        episode.failures += 1;
        if self.last_warn.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            self.suppressed += 1;
            debug!(endpoint = %self.endpoint.name, error = why, "record export failed");
            return;
        }
        episode.warned = true;
        self.last_warn = Some(Instant::now());
        let suppressed = std::mem::take(&mut self.suppressed);
        let backlog = self.pending();
        warn!(
            endpoint = %self.endpoint.name,
            url = %self.endpoint.url,
            record = row.map(|r| r.record_id.as_str()),
            attempts = row.map(|r| r.attempts + 1),
            backlog,
            retry_in_ms = ms(retry_in),
            failures_not_logged = suppressed,
            "record export failed: {why}"
        );
    }
}

/// Reads (a bounded part of) an answer so its connection can go back to the pool.
fn drain(response: ureq::Response) {
    let mut sink = Vec::new();
    let _ = response
        .into_reader()
        .take(DRAIN_LIMIT)
        .read_to_end(&mut sink);
}

/// The start of an error answer's body, on one line, for `last_error`.
fn body_excerpt(response: ureq::Response) -> String {
    let mut bytes = Vec::new();
    let _ = response
        .into_reader()
        .take(DRAIN_LIMIT)
        .read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(ERROR_BODY_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
