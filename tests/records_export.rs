//! Record export against a real HTTP receiver on loopback: down, slow, failing, up; engine
//! restarts; independent endpoints. The receiver is a small `std::net` server whose behaviour
//! the tests script; it dedupes on `Idempotency-Key` like the ticket system does.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use hotline::tickets::export::{backlog, Backlog, Endpoint, Exporter, ExporterConfig};
use hotline::tickets::record::{CallEnd, CallRecord, Party};
use rusqlite::{params, Connection};

// ---------------------------------------------------------------------------------------------
// The store's tables, as the store creates them (the tests only).

fn setup(dir: &Path) -> PathBuf {
    let path = dir.join("records.sqlite");
    let conn = Connection::open(&path).expect("create the store");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("WAL");
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS calls(
             id TEXT PRIMARY KEY,
             arrived_ms INTEGER NOT NULL,
             ended_ms INTEGER,
             dialled TEXT NOT NULL,
             caller TEXT NOT NULL,
             hotline TEXT,
             finished INTEGER NOT NULL,
             record TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS outbox(
             seq INTEGER PRIMARY KEY AUTOINCREMENT,
             endpoint TEXT NOT NULL,
             record_id TEXT NOT NULL,
             created_ms INTEGER NOT NULL,
             attempts INTEGER NOT NULL DEFAULT 0,
             next_attempt_ms INTEGER NOT NULL,
             delivered_ms INTEGER,
             last_error TEXT);
         CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(endpoint, delivered_ms, seq);",
    )
    .expect("tables");
    path
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// Writes `n` finished records and their outbox rows (one per endpoint), one transaction per
/// record as the store does; returns their ids in outbox order.
fn insert(path: &Path, n: usize, endpoints: &[&str]) -> Vec<String> {
    let mut conn = Connection::open(path).expect("open the store");
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = uuid::Uuid::new_v4().to_string();
        let now = Utc::now();
        let mut record = CallRecord::new(
            id.clone(),
            format!("{id}@test"),
            Party {
                number: format!("1380000{i:04}"),
                display_name: None,
            },
            "12345".into(),
            now,
        );
        record.hotline = Some("12345".into());
        record.times.ended = Some(now);
        record.end = Some(CallEnd {
            by: "caller".into(),
            cause: "bye".into(),
            sip_status: None,
        });
        let json = serde_json::to_string(&record).expect("record JSON");
        let tx = conn.transaction().expect("transaction");
        tx.execute(
            "INSERT INTO calls(id, arrived_ms, ended_ms, dialled, caller, hotline, finished, record)
             VALUES (?1, ?2, ?2, '12345', ?3, '12345', 1, ?4)",
            params![id, now_ms(), record.caller.number, json],
        )
        .expect("insert call");
        for endpoint in endpoints {
            tx.execute(
                "INSERT INTO outbox(endpoint, record_id, created_ms, next_attempt_ms)
                 VALUES (?1, ?2, ?3, ?3)",
                params![endpoint, id, now_ms()],
            )
            .expect("insert outbox row");
        }
        tx.commit().expect("commit");
        ids.push(id);
    }
    ids
}

/// `(attempts, last_error)` of the first undelivered row of `endpoint`.
fn head(path: &Path, endpoint: &str) -> Option<(i64, Option<String>)> {
    let conn = Connection::open(path).expect("open the store");
    conn.query_row(
        "SELECT attempts, last_error FROM outbox
          WHERE endpoint = ?1 AND delivered_ms IS NULL ORDER BY seq LIMIT 1",
        params![endpoint],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .ok()
}

fn pending(path: &Path, endpoint: &str) -> u64 {
    backlog(path)
        .expect("backlog")
        .iter()
        .find(|b| b.endpoint == endpoint)
        .map_or(0, |b| b.pending)
}

/// Polls `done` until it holds, failing the test after `limit`.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    start.elapsed()
}

fn config(path: &Path, endpoints: Vec<Endpoint>) -> ExporterConfig {
    let mut config = ExporterConfig::new(path, endpoints);
    config.backoff_min = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(200);
    config.poll = Duration::from_millis(50);
    config
}

fn endpoint(name: &str, receiver: &Receiver, timeout_ms: u64) -> Endpoint {
    Endpoint {
        name: name.into(),
        url: format!("http://{}/records", receiver.addr),
        timeout: Duration::from_millis(timeout_ms),
    }
}

// ---------------------------------------------------------------------------------------------
// The receiver.

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Stores the record, answers 200.
    Up,
    /// Stores the record, answers 200 after this long (past the exporter's timeout).
    Slow(Duration),
    /// Stores nothing, answers 500.
    Failing,
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Request {
    mode: Mode,
    path: String,
    key: Option<String>,
    content_type: Option<String>,
    schema: Option<String>,
    body: String,
}

#[derive(Default)]
struct Log {
    /// Every request, in arrival order.
    requests: Vec<Request>,
    /// Idempotency keys of the records stored (before dedupe), in order.
    stored: Vec<String>,
}

struct State {
    mode: Mutex<Mode>,
    /// Switch to this mode once this many requests have arrived.
    then: Mutex<Option<(usize, Mode)>>,
    log: Mutex<Log>,
    stop: AtomicBool,
}

struct Receiver {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Receiver {
    /// A receiver that is down: its port is reserved but nothing listens on it yet.
    fn down() -> Receiver {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let addr = probe.local_addr().expect("local addr");
        drop(probe);
        Receiver {
            addr,
            state: Arc::new(State {
                mode: Mutex::new(Mode::Up),
                then: Mutex::new(None),
                log: Mutex::new(Log::default()),
                stop: AtomicBool::new(false),
            }),
            accept: None,
        }
    }

    /// A receiver listening in `mode`.
    fn up(mode: Mode) -> Receiver {
        let mut receiver = Receiver::down();
        receiver.listen(mode);
        receiver
    }

    /// Starts listening on the reserved port.
    fn listen(&mut self, mode: Mode) {
        self.set(mode);
        let listener = TcpListener::bind(self.addr).expect("bind the reserved port");
        let state = self.state.clone();
        self.accept = Some(std::thread::spawn(move || {
            for conn in listener.incoming() {
                if state.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let state = state.clone();
                std::thread::spawn(move || serve(conn, &state));
            }
        }));
    }

    fn set(&self, mode: Mode) {
        *lock(&self.state.mode) = mode;
    }

    fn then_after(&self, requests: usize, mode: Mode) {
        *lock(&self.state.then) = Some((requests, mode));
    }

    fn requests(&self) -> Vec<Request> {
        lock(&self.state.log).requests.clone()
    }

    fn count(&self, mode: Mode) -> usize {
        lock(&self.state.log)
            .requests
            .iter()
            .filter(|r| r.mode == mode)
            .count()
    }

    fn stored(&self) -> Vec<String> {
        lock(&self.state.log).stored.clone()
    }

    /// The stored keys after dedupe, in first-arrival order.
    fn deduped(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.stored()
            .into_iter()
            .filter(|k| seen.insert(k.clone()))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = TcpStream::connect(self.addr);
            let _ = accept.join();
        }
    }
}

/// Reads one request, logs it, answers as the mode says, closes.
fn serve(conn: TcpStream, state: &State) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return; // the accept loop's wake-up connection, or a client that gave up
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    assert_eq!(method, "POST", "request line {line:?}");
    let (mut key, mut content_type, mut schema, mut length) = (None, None, None, 0usize);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return;
        };
        let value = value.trim().to_string();
        match name.to_ascii_lowercase().as_str() {
            "idempotency-key" => key = Some(value),
            "content-type" => content_type = Some(value),
            "x-hotline-schema" => schema = Some(value),
            "content-length" => length = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mode = {
        let mut log = lock(&state.log);
        let mut mode = lock(&state.mode);
        let mut then = lock(&state.then);
        if let Some((after, next)) = *then {
            if log.requests.len() >= after {
                *mode = next;
                *then = None;
            }
        }
        let request = Request {
            mode: *mode,
            path: path.to_string(),
            key: key.clone(),
            content_type,
            schema,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        log.requests.push(request);
        if *mode != Mode::Failing {
            log.stored.push(key.unwrap_or_default());
        }
        *mode
    };
    let answer = match mode {
        Mode::Up => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        Mode::Slow(delay) => {
            std::thread::sleep(delay); // the scripted behaviour, not synchronisation
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        }
        Mode::Failing => {
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 13\r\nConnection: close\r\n\r\ndatabase down"
        }
    };
    let mut conn = conn;
    let _ = conn.write_all(answer.as_bytes());
}

/// Every request carried the headers, and a body that is the record its key names.
fn check_requests(receiver: &Receiver) {
    for request in receiver.requests() {
        assert_eq!(request.path, "/records");
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        let schema = hotline::tickets::SCHEMA_VERSION.to_string();
        assert_eq!(request.schema.as_deref(), Some(schema.as_str()));
        let record: CallRecord = serde_json::from_str(&request.body).expect("body is a record");
        assert_eq!(Some(record.id), request.key);
    }
}

fn oldest(backlog: &[Backlog], endpoint: &str) -> Option<i64> {
    backlog
        .iter()
        .find(|b| b.endpoint == endpoint)
        .and_then(|b| b.oldest_ms)
}

// ---------------------------------------------------------------------------------------------

#[test]
fn down_then_slow_then_failing_then_up_delivers_every_record_once_in_order() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = setup(dir.path());
    let mut ids = insert(&path, 40, &["ticket"]);
    let mut receiver = Receiver::down();
    let exporter = Exporter::start(config(&path, vec![endpoint("ticket", &receiver, 250)]))
        .expect("start the exporter");

    // Down: connection refused, retried with backoff, nothing sent past the head.
    wait_until(Duration::from_secs(10), "three refused attempts", || {
        head(&path, "ticket").is_some_and(|(attempts, _)| attempts >= 3)
    });
    let down = backlog(&path).expect("backlog");
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].endpoint, "ticket");
    assert_eq!(down[0].pending, 40);
    assert!(down[0].oldest_ms.is_some());
    let error = down[0].last_error.clone().unwrap_or_default();
    assert!(error.to_lowercase().contains("refused"), "{error}");

    // Slow: the receiver stores the record but answers after the exporter's timeout.
    receiver.listen(Mode::Slow(Duration::from_millis(600)));
    wait_until(Duration::from_secs(10), "two slow answers", || {
        receiver.count(Mode::Slow(Duration::from_millis(600))) >= 2
    });
    wait_until(Duration::from_secs(10), "a recorded timeout", || {
        head(&path, "ticket").is_some_and(|(_, e)| e.is_some_and(|e| !e.contains("refused")))
    });

    // Failing: 500s; more records arrive meanwhile (the store nudges).
    receiver.set(Mode::Failing);
    ids.extend(insert(&path, 10, &["ticket"]));
    exporter.nudge();
    wait_until(Duration::from_secs(10), "three 500s", || {
        receiver.count(Mode::Failing) >= 3
    });
    wait_until(Duration::from_secs(10), "a recorded 500", || {
        head(&path, "ticket").is_some_and(|(_, e)| e.is_some_and(|e| e.contains("500")))
    });
    assert_eq!(pending(&path, "ticket"), 50);
    let last = backlog(&path).expect("backlog")[0].last_error.clone();
    assert!(
        last.as_deref().is_some_and(|e| e.contains("database down")),
        "{last:?}"
    );

    // Up: everything drains.
    receiver.set(Mode::Up);
    let drain = wait_until(Duration::from_secs(20), "an empty backlog", || {
        backlog(&path).expect("backlog").is_empty()
    });
    let stopping = Instant::now();
    exporter.stop();
    let stop = stopping.elapsed();

    check_requests(&receiver);
    assert_eq!(receiver.deduped(), ids, "each id once, in outbox order");
    let stored = receiver.stored();
    assert!(stored.len() >= ids.len());
    // Copies can only be of the record at the head while the receiver was slow.
    assert!(stored[..stored.len() - (ids.len() - 1)]
        .iter()
        .all(|k| *k == ids[0]));
    let conn = Connection::open(&path).expect("open");
    let undelivered: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE delivered_ms IS NULL",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(undelivered, 0);
    let first_attempts: i64 = conn
        .query_row(
            "SELECT attempts FROM outbox ORDER BY seq LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("attempts");
    // 3 refused, 2 timed out, 3 answered 500, and the 200.
    assert!(first_attempts >= 9, "{first_attempts}");
    assert!(stop < Duration::from_secs(1), "stop took {stop:?}");
    eprintln!(
        "down/slow/failing/up: {} requests for {} records ({} stored before dedupe), \
         drained in {drain:?} once up, stop {stop:?}, total {:?}",
        receiver.requests().len(),
        ids.len(),
        stored.len(),
        started.elapsed()
    );
}

#[test]
fn an_engine_restart_mid_way_loses_nothing_and_delivery_resumes() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = setup(dir.path());
    let mut ids = insert(&path, 40, &["ticket"]);
    let receiver = Receiver::up(Mode::Up);
    // The 16th request is stored, but its answer comes too late: the engine stops meanwhile.
    let slow = Mode::Slow(Duration::from_millis(1500));
    receiver.then_after(15, slow);
    let exporter = Exporter::start(config(&path, vec![endpoint("ticket", &receiver, 300)]))
        .expect("start the exporter");
    wait_until(Duration::from_secs(10), "the 16th request", || {
        receiver.requests().len() >= 16
    });
    let stopping = Instant::now();
    exporter.stop();
    let stop = stopping.elapsed();
    assert!(
        stop < Duration::from_millis(300 + 1000),
        "stop took {stop:?} (bounded by the request timeout)"
    );
    assert_eq!(receiver.count(Mode::Up), 15);
    let left = backlog(&path).expect("backlog");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].pending, 25, "{left:?}");
    assert!(oldest(&left, "ticket").is_some());

    // While the engine is down, calls end and their records wait in the outbox.
    ids.extend(insert(&path, 10, &["ticket"]));
    assert_eq!(pending(&path, "ticket"), 35);
    receiver.set(Mode::Up);
    let restarted = Instant::now();
    let exporter = Exporter::start(config(&path, vec![endpoint("ticket", &receiver, 300)]))
        .expect("restart the exporter");
    let drain = wait_until(Duration::from_secs(20), "an empty backlog", || {
        backlog(&path).expect("backlog").is_empty()
    });
    exporter.stop();

    check_requests(&receiver);
    assert_eq!(receiver.deduped(), ids, "each id once, in outbox order");
    let stored = receiver.stored();
    let copies: Vec<&String> = stored[15..stored.len() - (ids.len() - 16)].iter().collect();
    assert!(
        copies.len() >= 2 && copies.iter().all(|k| **k == ids[15]),
        "only the record in flight at the stop is sent again: {copies:?}"
    );
    eprintln!(
        "restart: stop {stop:?} with a request in flight, {} records drained in {drain:?} \
         after the restart ({:?} since), {} stored before dedupe, total {:?}",
        35,
        restarted.elapsed(),
        stored.len(),
        started.elapsed()
    );
}

#[test]
fn a_hanging_endpoint_does_not_delay_another() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = setup(dir.path());
    let ids = insert(&path, 30, &["ticket", "province"]);
    // The ticket system accepts connections but never answers within the timeout.
    let ticket = Receiver::up(Mode::Slow(Duration::from_secs(5)));
    let province = Receiver::up(Mode::Up);
    let timeout = 2000;
    let exporter = Exporter::start(config(
        &path,
        vec![
            endpoint("ticket", &ticket, timeout),
            endpoint("province", &province, timeout),
        ],
    ))
    .expect("start the exporter");
    let province_done = wait_until(Duration::from_secs(20), "the province backlog", || {
        pending(&path, "province") == 0
    });
    // All 30 went through while the ticket system's first request was still hanging.
    assert!(
        province_done < Duration::from_millis(timeout),
        "province took {province_done:?}"
    );
    assert_eq!(province.deduped(), ids);
    assert_eq!(
        province.stored().len(),
        ids.len(),
        "no copies when all is well"
    );
    let left = backlog(&path).expect("backlog");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!((left[0].endpoint.as_str(), left[0].pending), ("ticket", 30));
    wait_until(
        Duration::from_secs(10),
        "the ticket system's request",
        || !ticket.requests().is_empty(),
    );

    // The ticket system comes back and catches up, in order.
    ticket.set(Mode::Up);
    let ticket_done = wait_until(Duration::from_secs(20), "the ticket backlog", || {
        pending(&path, "ticket") == 0
    });
    exporter.stop();
    check_requests(&ticket);
    check_requests(&province);
    assert_eq!(ticket.deduped(), ids);
    assert!(backlog(&path).expect("backlog").is_empty());
    eprintln!(
        "independence: province drained 30 in {province_done:?} while the ticket system hung, \
         ticket caught up {ticket_done:?} later, total {:?}",
        started.elapsed()
    );
}

#[test]
fn a_nudge_sends_new_records_without_waiting_for_the_poll() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = setup(dir.path());
    let receiver = Receiver::up(Mode::Up);
    let mut config = config(&path, vec![endpoint("ticket", &receiver, 1000)]);
    config.poll = Duration::from_secs(60);
    let exporter = Exporter::start(config).expect("start the exporter");
    let ids = insert(&path, 5, &["ticket"]);
    exporter.nudge();
    let took = wait_until(Duration::from_secs(10), "delivery after a nudge", || {
        backlog(&path).expect("backlog").is_empty()
    });
    let stopping = Instant::now();
    exporter.stop();
    let stop = stopping.elapsed();
    assert_eq!(receiver.deduped(), ids);
    assert!(
        stop < Duration::from_secs(1),
        "stop took {stop:?} with a 60 s poll"
    );
    eprintln!("nudge: 5 records in {took:?} with a 60 s poll, stop {stop:?}");
}

#[test]
fn an_unsendable_row_is_parked_and_does_not_block_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = setup(dir.path());
    let mut ids = insert(&path, 2, &["ticket"]);
    let conn = Connection::open(&path).expect("open");
    conn.execute(
        "INSERT INTO outbox(endpoint, record_id, created_ms, next_attempt_ms)
         VALUES ('ticket', 'no-such-record', ?1, ?1)",
        params![now_ms()],
    )
    .expect("insert a dangling row");
    ids.extend(insert(&path, 2, &["ticket"]));
    let receiver = Receiver::up(Mode::Up);
    let exporter = Exporter::start(config(&path, vec![endpoint("ticket", &receiver, 1000)]))
        .expect("start the exporter");
    wait_until(Duration::from_secs(10), "the sendable records", || {
        receiver.deduped().len() == 4
    });
    wait_until(Duration::from_secs(10), "the parked row", || {
        backlog(&path).expect("backlog").first().is_some_and(|b| {
            b.pending == 1
                && b.last_error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("parked:") && e.contains("no-such-record"))
        })
    });
    exporter.stop();
    assert_eq!(receiver.deduped(), ids);
}
