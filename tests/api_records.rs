//! The HTTP API for call records: a store written through the store API, served by
//! `api::serve_on` on 127.0.0.1:0 and queried with a real HTTP client.

#[path = "support/record_fixtures.rs"]
mod record_fixtures;

use record_fixtures::{at, record, visit};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hotline::api::{self, ApiConfig};
use hotline::tickets::record::Callback;
use hotline::tickets::store::{self, Store};
use serde_json::Value;

/// The token of the tests.
const TOKEN: &str = "t0ken-for-tests";

/// UTC offset of the tests: +08:00.
const OFFSET: i32 = 8 * 3600;

/// Writes the test records (ids a..e) into a store under `dir`; returns the store file.
fn write_store(dir: &Path) -> PathBuf {
    // Answered 10 s after queueing; survey 5.
    let mut a = record(
        "a",
        "13800000001",
        "2025-03-01T01:00:00Z",
        Some(("caller", "bye")),
    );
    a.times.queued = Some(at("2025-03-01T01:00:10Z"));
    a.times.person_answered = Some(at("2025-03-01T01:00:20Z"));
    a.wait_s = 20.0;
    a.talk_s = 100.0;
    a.survey = Some(5);
    a.queues.push(visit(
        "general",
        "2025-03-01T01:00:10Z",
        Some(("2025-03-01T01:00:20Z", "answered")),
        &[(
            "a1001",
            "2025-03-01T01:00:10Z",
            Some(("2025-03-01T01:00:20Z", "answered")),
        )],
    ));
    // Abandoned in the queue; survey 2; callback.
    let mut b = record(
        "b",
        "13800000002",
        "2025-03-01T02:00:00Z",
        Some(("caller", "bye")),
    );
    b.times.queued = Some(at("2025-03-01T02:00:10Z"));
    b.wait_s = 45.0;
    b.survey = Some(2);
    b.callback = Some(Callback {
        number: "13800000002".to_owned(),
        requested: at("2025-03-01T02:00:30Z"),
    });
    // a1001 lets it ring out; the caller hangs up 35 s after queueing while a1002 rings.
    b.queues.push(visit(
        "general",
        "2025-03-01T02:00:10Z",
        Some(("2025-03-01T02:00:45Z", "abandoned")),
        &[
            (
                "a1001",
                "2025-03-01T02:00:10Z",
                Some(("2025-03-01T02:00:30Z", "no-answer")),
            ),
            (
                "a1002",
                "2025-03-01T02:00:30Z",
                Some(("2025-03-01T02:00:45Z", "caller-gone")),
            ),
        ],
    ));
    // Answered 30 s after queueing, ended by the seat.
    let mut c = record(
        "c",
        "13800000001",
        "2025-03-01T03:00:00Z",
        Some(("seat", "bye")),
    );
    c.times.queued = Some(at("2025-03-01T03:00:10Z"));
    c.times.person_answered = Some(at("2025-03-01T03:00:40Z"));
    c.wait_s = 40.0;
    c.talk_s = 60.0;
    // a1001 declines, a1002 answers.
    c.queues.push(visit(
        "general",
        "2025-03-01T03:00:10Z",
        Some(("2025-03-01T03:00:40Z", "answered")),
        &[
            (
                "a1001",
                "2025-03-01T03:00:10Z",
                Some(("2025-03-01T03:00:12Z", "declined")),
            ),
            (
                "a1002",
                "2025-03-01T03:00:12Z",
                Some(("2025-03-01T03:00:40Z", "answered")),
            ),
        ],
    ));
    // Still running, the next local day.
    let d = record("d", "13900000004", "2025-03-02T01:00:00Z", None);
    // Refused, no hotline; 01:00 local on 1 March (the previous day in UTC).
    let mut e = record(
        "e",
        "13700000005",
        "2025-02-28T17:00:00Z",
        Some(("engine", "refused")),
    );
    e.dialled = "99999".to_owned();
    e.hotline = None;
    let path = store::path_in(dir);
    let mut store = Store::open(&path).expect("open store");
    store
        .put_all([&a, &b, &c, &d, &e], &[])
        .expect("write records");
    path
}

/// A server running on its own thread (a current-thread runtime, like the engine's).
struct Server {
    /// Where it listens.
    addr: SocketAddr,
    /// Resolves the stop future.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// `serve_on`'s result.
    done: mpsc::Receiver<std::io::Result<()>>,
    /// The thread.
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Start serving `store` with `token`.
    fn start(store: PathBuf, token: &str) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let config = ApiConfig {
            listen: addr,
            admin_token: token.to_owned(),
            store,
            utc_offset_s: OFFSET,
            desk: None,
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let result = runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                api::serve_on(listener, config, async move {
                    let _ = stop_rx.await;
                })
                .await
            });
            let _ = done_tx.send(result);
        });
        Server {
            addr,
            stop: Some(stop_tx),
            done,
            thread: Some(thread),
        }
    }

    /// GET `path` with `authorization` (a whole header value); returns status and JSON body.
    fn get_with(&self, path: &str, authorization: Option<&str>) -> (u16, Value) {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(10))
            .build();
        let mut request = agent.get(&format!("http://{}{path}", self.addr));
        if let Some(value) = authorization {
            request = request.set("Authorization", value);
        }
        let response = match request.call() {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(e) => panic!("GET {path}: {e}"),
        };
        let status = response.status();
        let body = response.into_string().expect("body");
        let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        (status, json)
    }

    /// GET `path` with the right token.
    fn get(&self, path: &str) -> (u16, Value) {
        self.get_with(path, Some(&format!("Bearer {TOKEN}")))
    }

    /// The ids of the array `GET path` returns (asserting 200).
    fn ids(&self, path: &str) -> Vec<String> {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        body.as_array()
            .expect("array")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_owned())
            .collect()
    }

    /// Resolve the stop future and check `serve_on` returns Ok promptly.
    fn stop(mut self) {
        let started = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = self
            .done
            .recv_timeout(Duration::from_secs(10))
            .expect("serve_on returned after stop");
        result.expect("serve_on ok");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "stopped gracefully"
        );
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[test]
fn api_serves_records_and_figures_behind_the_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(write_store(dir.path()), TOKEN);

    // The token.
    for auth in [None, Some("Bearer wrong"), Some("Bearer "), Some(TOKEN)] {
        let (status, body) = server.get_with("/records", auth);
        assert_eq!(status, 401, "{auth:?}");
        assert!(body["error"].is_string());
    }
    assert_eq!(server.get_with("/health", None).0, 401);
    assert_eq!(
        server.get("/health"),
        (200, serde_json::json!({"ok": true}))
    );

    // Filters.
    assert_eq!(server.ids("/records"), ["d", "c", "b", "a", "e"]);
    assert_eq!(server.ids("/records?number=13800000001"), ["c", "a"]);
    assert_eq!(server.ids("/records?number=99999"), ["e"]);
    assert_eq!(
        server.ids("/records?since=2025-03-01%2010:00"),
        ["d", "c", "b"]
    );
    assert_eq!(
        server.ids("/records?since=2025-03-01+10:00&limit=2"),
        ["d", "c"]
    );
    assert_eq!(server.ids("/records?limit=1"), ["d"]);
    assert_eq!(
        server.ids("/records?until=2025-03-01"),
        ["c", "b", "a", "e"]
    );
    assert_eq!(
        server.ids("/records?hotline=12345&until=2025-03-01"),
        ["c", "b", "a"]
    );

    // One record.
    let (status, body) = server.get("/records/a");
    assert_eq!(status, 200);
    assert_eq!(body["id"], "a");
    assert_eq!(body["caller"]["number"], "13800000001");
    assert_eq!(body["survey"], 5);
    let (status, body) = server.get("/records/nope");
    assert_eq!(status, 404);
    assert!(body["error"].as_str().expect("error").contains("nope"));

    // Bad parameters name themselves.
    for (path, name) in [
        ("/records?since=yesterday", "since"),
        ("/records?until=2025-13-01", "until"),
        ("/records?limit=many", "limit"),
        ("/records?from=2025-03-01", "from"),
        ("/records?limit=1&limit=2", "limit"),
        ("/figures?number=13800000001", "number"),
        ("/figures?since=soon", "since"),
        ("/figures?by=agent", "by"),
        ("/figures?by=seat&by=queue", "by"),
        ("/records?by=seat", "by"),
    ] {
        let (status, body) = server.get(path);
        assert_eq!(status, 400, "{path}");
        let error = body["error"].as_str().expect("error");
        assert!(error.contains(name), "{path}: {error}");
    }

    // Figures of local 1 March: e alone under "", a b c under 12345.
    let (status, body) = server.get("/figures?since=2025-03-01&until=2025-03-01");
    assert_eq!(status, 200, "{body}");
    let expected = serde_json::json!([
        {
            "day": "2025-03-01", "hotline": "", "offered": 1, "answered": 0, "abandoned": 0,
            "answered_within_15s": 0, "connection_rate": 0.0, "average_wait_s": 0.0,
            "average_talk_s": 0.0, "satisfaction_rate": null, "callbacks_pending": 0
        },
        {
            "day": "2025-03-01", "hotline": "12345", "offered": 3, "answered": 2, "abandoned": 1,
            "answered_within_15s": 1, "connection_rate": 2.0 / 3.0, "average_wait_s": 30.0,
            "average_talk_s": 80.0, "satisfaction_rate": 0.5, "callbacks_pending": 1
        }
    ]);
    assert_eq!(body, expected);
    let (_, all) = server.get("/figures");
    let days: Vec<(&str, &str, u64)> = all
        .as_array()
        .expect("array")
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().expect("text");
            (
                text("day"),
                text("hotline"),
                f["offered"].as_u64().expect("n"),
            )
        })
        .collect();
    assert_eq!(
        days,
        [
            ("2025-03-01", "", 1),
            ("2025-03-01", "12345", 3),
            ("2025-03-02", "12345", 1)
        ]
    );
    let (_, only) = server.get("/figures?hotline=12345&since=2025-03-02");
    assert_eq!(only.as_array().expect("array").len(), 1);
    assert_eq!(only[0]["day"], "2025-03-02");
    let (_, by_hotline) = server.get("/figures?by=hotline");
    assert_eq!(by_hotline, all, "per hotline is the default");

    // Per seat: a1001 answered a in 10 s, let b ring out, declined c; a1002 answered c.
    let (status, body) = server.get("/figures?by=seat&since=2025-03-01&until=2025-03-01");
    assert_eq!(status, 200, "{body}");
    let expected = serde_json::json!([
        {
            "day": "2025-03-01", "seat": "a1001", "offered": 3, "answered": 1, "no_answer": 1,
            "declined": 1, "answered_within_15s": 1, "average_wait_s": 20.0,
            "average_talk_s": 100.0, "satisfaction_rate": 1.0
        },
        {
            "day": "2025-03-01", "seat": "a1002", "offered": 2, "answered": 1, "no_answer": 0,
            "declined": 0, "answered_within_15s": 0, "average_wait_s": 40.0,
            "average_talk_s": 60.0, "satisfaction_rate": null
        }
    ]);
    assert_eq!(body, expected);

    // Per queue: a and c answered after 10 s and 30 s, b gone after 35 s.
    let (status, body) = server.get("/figures?by=queue&hotline=12345");
    assert_eq!(status, 200, "{body}");
    let expected = serde_json::json!([{
        "day": "2025-03-01", "queue": "general", "offered": 3, "answered": 2, "abandoned": 1,
        "answered_within_15s": 1, "connection_rate": 2.0 / 3.0, "average_wait_s": 20.0,
        "longest_wait_s": 35.0
    }]);
    assert_eq!(body, expected);
    assert_eq!(
        server.get("/figures?by=queue&hotline="),
        (200, serde_json::json!([])),
        "the calls to no hotline were never queued"
    );

    server.stop();
}

#[test]
fn empty_token_refuses_everything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(write_store(dir.path()), "");
    for auth in [None, Some("Bearer "), Some("Bearer"), Some("Bearer x")] {
        assert_eq!(server.get_with("/health", auth).0, 401, "{auth:?}");
        assert_eq!(server.get_with("/records", auth).0, 401, "{auth:?}");
    }
    server.stop();
}

#[test]
fn missing_store_gives_empty_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(store::path_in(&dir.path().join("not-yet")), TOKEN);
    assert_eq!(server.get("/records"), (200, serde_json::json!([])));
    assert_eq!(
        server.get("/figures?since=2025-03-01"),
        (200, serde_json::json!([]))
    );
    assert_eq!(server.get("/figures?by=seat"), (200, serde_json::json!([])));
    assert_eq!(server.get("/records/a").0, 404);
    assert!(
        !dir.path().join("not-yet").exists(),
        "the API never creates the store"
    );
    server.stop();
}
