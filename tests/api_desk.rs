//! The desk endpoints of the HTTP API: `api::serve_on` on 127.0.0.1:0 with a small task playing
//! the switch (seat tokens, seat states), queried with a real HTTP client, and the event stream
//! read back per seat.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hotline::api::{self, ApiConfig};
use hotline::desk::{Credential, DeskCommand, DeskError, DeskEvent, DeskHandle, DeskRequest};
use serde_json::{json, Value};

/// The admin token of the tests.
const ADMIN: &str = "admin-t0ken";

/// Seat tokens the test switch knows, and whose they are (None: a supervisor, sees all).
const TOKENS: [(&str, Option<&str>); 3] = [
    ("tok-a1", Some("a1")),
    ("tok-a2", Some("a2")),
    ("tok-sup", None),
];

/// Seats the test switch has; `a3` is idle (409s), the switch drops requests for `gone`.
const SEATS: [&str; 4] = ["a1", "a2", "a3", "gone"];

/// `GET /stats?interval=` of this value blocks the test switch (and its runtime) on the gate.
const GATE_INTERVAL: u64 = 4242;

/// Events each event stream may fall behind by (more than the streams test publishes at once).
const EVENT_CAPACITY: usize = 8;

/// Lets a test hold the switch's runtime still: the switch says it entered, then waits.
struct Gate {
    /// The switch reports it is blocked.
    entered: mpsc::Sender<()>,
    /// The test lets it go on.
    release: mpsc::Receiver<()>,
}

/// Who a credential is, for the test switch.
enum Who {
    /// The admin or a supervisor.
    All(&'static str),
    /// A seat's own token.
    Seat(&'static str),
}

/// The test switch's identification of `credential`.
fn who(credential: &Credential) -> Result<Who, DeskError> {
    let token = match credential {
        Credential::Admin => return Ok(Who::All("admin")),
        Credential::SeatToken(token) => token,
    };
    match TOKENS.iter().find(|(t, _)| t == token) {
        Some((_, Some(seat))) => Ok(Who::Seat(seat)),
        Some((_, None)) => Ok(Who::All("supervisor")),
        None => Err(DeskError::new(401, "unknown token")),
    }
}

/// The test switch's answer to `request`; None drops the request unanswered.
fn answer(request: &DeskRequest, gate: &Option<Gate>) -> Option<Result<Value, DeskError>> {
    let by = match who(&request.credential) {
        Ok(Who::All(name)) => name,
        Ok(Who::Seat(seat)) => seat,
        Err(refused) => return Some(Err(refused)),
    };
    let command = &request.command;
    let mut echo = json!({ "command": command.name(), "by": by });
    match command {
        DeskCommand::WhoAmI => {
            return Some(Ok(match who(&request.credential) {
                Ok(Who::Seat(seat)) => json!({ "seat": seat }),
                _ => json!({ "admin": true }),
            }));
        }
        DeskCommand::Queues | DeskCommand::Seats => return Some(Ok(echo)),
        DeskCommand::Stats { interval_s } => {
            if *interval_s == Some(GATE_INTERVAL) {
                if let Some(gate) = gate {
                    // Blocks the server's whole runtime on purpose: its event streams stop.
                    let _ = gate.entered.send(());
                    let _ = gate.release.recv_timeout(Duration::from_secs(10));
                }
            }
            echo["interval_s"] = json!(interval_s);
            return Some(Ok(echo));
        }
        DeskCommand::LogIn { ready } => echo["ready"] = json!(ready),
        DeskCommand::NotReady { reason } => echo["reason"] = json!(reason),
        _ => {}
    }
    let Some(seat) = request.seat.as_deref() else {
        return Some(Err(DeskError::new(500, "a seat command without a seat")));
    };
    if !SEATS.contains(&seat) {
        return Some(Err(DeskError::new(404, format!("no seat {seat}"))));
    }
    if let Ok(Who::Seat(own)) = who(&request.credential) {
        if own != seat {
            return Some(Err(DeskError::new(403, "not your seat")));
        }
    }
    match (seat, command) {
        ("gone", _) => None,
        ("a3", DeskCommand::Answer) => Some(Err(DeskError::new(409, "not ringing"))),
        ("a3", DeskCommand::EndWrapUp) => Some(Err(DeskError::new(409, "not in wrap-up"))),
        _ => {
            echo["seat"] = json!(seat);
            Some(Ok(echo))
        }
    }
}

/// Serves the switch's end of the desk channel until the API drops it.
async fn play_switch(mut requests: tokio::sync::mpsc::Receiver<DeskRequest>, gate: Option<Gate>) {
    while let Some(request) = requests.recv().await {
        if let Some(reply) = answer(&request, &gate) {
            let _ = request.reply.send(reply);
        }
    }
}

/// A server running on its own thread (a current-thread runtime, like the engine's), with the
/// test switch on the same runtime.
struct Server {
    /// Where it listens.
    addr: SocketAddr,
    /// The API's channels, to publish events.
    desk: Option<DeskHandle>,
    /// Resolves the stop future.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// `serve_on`'s result.
    done: mpsc::Receiver<std::io::Result<()>>,
    /// The thread.
    thread: Option<JoinHandle<()>>,
    /// Keeps the (never created) record store's directory.
    _dir: tempfile::TempDir,
}

impl Server {
    /// Start serving, with seats (the test switch) or without.
    fn start(with_desk: bool, gate: Option<Gate>) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let (desk, requests) = if with_desk {
            let (handle, requests) = DeskHandle::channel(8, EVENT_CAPACITY);
            (Some(handle), Some(requests))
        } else {
            (None, None)
        };
        let config = ApiConfig {
            listen: addr,
            admin_token: ADMIN.to_owned(),
            store: dir.path().join("records.sqlite"),
            utc_offset_s: 8 * 3600,
            desk: desk.clone(),
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let result = runtime.block_on(async move {
                if let Some(requests) = requests {
                    tokio::spawn(play_switch(requests, gate));
                }
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
            desk,
            stop: Some(stop_tx),
            done,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// `method path` with `token` (None: no Authorization) and `body`; status and JSON body.
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(10))
            .build();
        let mut request = agent.request(method, &format!("http://{}{path}", self.addr));
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let result = if body.is_empty() {
            request.call()
        } else {
            request
                .set("Content-Type", "application/json")
                .send_string(body)
        };
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = response.status();
        let text = response.into_string().expect("body");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: {status}: {e}: {text}"));
        (status, json)
    }

    /// POST `path` with `token` and `body`.
    fn post(&self, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        self.call("POST", path, token, body)
    }

    /// GET `path` with `token`.
    fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.call("GET", path, token, "")
    }

    /// Publish an event for `seat` (None: everyone) with `body`.
    fn publish(&self, seat: Option<&str>, body: Value) {
        let desk = self.desk.as_ref().expect("a server with seats");
        desk.publish(DeskEvent {
            seat: seat.map(str::to_owned),
            body,
        });
    }

    /// Open `GET /events` with `token`.
    fn events(&self, token: &str) -> Events {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout_read(Duration::from_secs(10))
            .build();
        let response = agent
            .get(&format!("http://{}/events", self.addr))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Accept", "text/event-stream")
            .call()
            .expect("GET /events");
        assert_eq!(response.status(), 200);
        assert_eq!(response.content_type(), "text/event-stream");
        Events {
            lines: BufReader::new(response.into_reader()),
        }
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

/// A Server-Sent Events stream being read (each read bounded by the agent's read timeout).
struct Events {
    /// The response body.
    lines: BufReader<Box<dyn Read + Send + Sync + 'static>>,
}

impl Events {
    /// The next event's name and JSON data, skipping comments; None at the end of the stream.
    fn next(&mut self) -> Option<(String, Value)> {
        let mut name = String::new();
        let mut data = String::new();
        loop {
            let mut line = String::new();
            let read = self
                .lines
                .read_line(&mut line)
                .expect("read the event stream");
            if read == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if data.is_empty() {
                    continue;
                }
                let json = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"));
                return Some((name, json));
            }
            if let Some(value) = line.strip_prefix("event:") {
                name = value.trim().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim_start());
            }
        }
    }

    /// The next event, which must exist.
    fn expect(&mut self) -> (String, Value) {
        self.next().expect("an event before the end of the stream")
    }
}

/// An event body of `kind` numbered `n`.
fn body(kind: &str, n: u64) -> Value {
    json!({ "type": kind, "n": n })
}

#[test]
fn tokens_decide_who_may_act_on_which_seat() {
    let server = Server::start(true, None);

    // No token, an empty one, and one the switch does not know.
    for token in [None, Some(""), Some("wrong")] {
        let (status, body) = server.post("/seats/a1/login", token, "");
        assert_eq!(status, 401, "{token:?}: {body}");
        assert!(body["error"].is_string());
        assert_eq!(server.get("/seats", token).0, 401, "{token:?}");
    }
    // Another seat's token: the switch refuses.
    let (status, body) = server.post("/seats/a1/ready", Some("tok-a2"), "");
    assert_eq!((status, body), (403, json!({ "error": "not your seat" })));
    // The seat itself, a supervisor and the admin may.
    for (token, by) in [
        ("tok-a1", "a1"),
        ("tok-sup", "supervisor"),
        (ADMIN, "admin"),
    ] {
        let (status, body) = server.post("/seats/a1/ready", Some(token), "");
        assert_eq!(status, 200, "{token}: {body}");
        assert_eq!(body, json!({ "command": "ready", "by": by, "seat": "a1" }));
    }
    // Seat tokens get nothing of the records.
    assert_eq!(server.get("/health", Some("tok-a1")).0, 401);
    assert_eq!(server.get("/records", Some("tok-sup")).0, 401);
    assert_eq!(
        server.get("/health", Some(ADMIN)),
        (200, json!({ "ok": true }))
    );
    // Who am I.
    assert_eq!(
        server.get("/whoami", Some("tok-a2")),
        (200, json!({ "seat": "a2" }))
    );
    assert_eq!(
        server.get("/whoami", Some(ADMIN)),
        (200, json!({ "admin": true }))
    );
    server.stop();
}

#[test]
fn routes_forward_their_commands_and_map_refusals() {
    let server = Server::start(true, None);
    let a1 = Some("tok-a1");

    // Each seat action, with its body, as the switch received it.
    let cases = [
        ("login", "", json!({ "command": "login", "ready": false })),
        ("login", "{}", json!({ "command": "login", "ready": false })),
        (
            "login",
            r#"{"ready": true}"#,
            json!({ "command": "login", "ready": true }),
        ),
        ("logout", "", json!({ "command": "logout" })),
        ("ready", "{}", json!({ "command": "ready" })),
        (
            "not-ready",
            r#"{"reason": "training-2"}"#,
            json!({ "command": "not-ready", "reason": "training-2" }),
        ),
        ("end-wrap-up", "", json!({ "command": "end-wrap-up" })),
        ("answer", "", json!({ "command": "answer" })),
        ("hangup", "", json!({ "command": "hangup" })),
    ];
    for (action, request, mut expected) in cases {
        expected["by"] = json!("a1");
        expected["seat"] = json!("a1");
        let path = format!("/seats/a1/{action}");
        assert_eq!(server.post(&path, a1, request), (200, expected), "{path}");
    }

    // The listings and statistics.
    let sup = Some("tok-sup");
    let by = |mut v: Value| {
        v["by"] = json!("supervisor");
        v
    };
    assert_eq!(
        server.get("/seats", sup),
        (200, by(json!({ "command": "seats" })))
    );
    assert_eq!(
        server.get("/queues", sup),
        (200, by(json!({ "command": "queues" })))
    );
    assert_eq!(
        server.get("/stats?interval=900", sup),
        (200, by(json!({ "command": "stats", "interval_s": 900 })))
    );
    assert_eq!(
        server.get("/stats", sup),
        (200, by(json!({ "command": "stats", "interval_s": null })))
    );

    // The switch's refusals keep their status and message.
    assert_eq!(
        server.post("/seats/a3/answer", Some(ADMIN), ""),
        (409, json!({ "error": "not ringing" }))
    );
    assert_eq!(
        server.post("/seats/a3/end-wrap-up", Some(ADMIN), ""),
        (409, json!({ "error": "not in wrap-up" }))
    );
    assert_eq!(
        server.post("/seats/zz/login", Some(ADMIN), ""),
        (404, json!({ "error": "no seat zz" }))
    );
    // A request the switch drops: it is stopping.
    assert_eq!(
        server.post("/seats/gone/login", Some(ADMIN), ""),
        (503, json!({ "error": "engine stopping" }))
    );

    // Bad bodies and parameters, refused before the switch sees them.
    for (path, request, word) in [
        ("/seats/a1/login", "{", "JSON"),
        ("/seats/a1/login", r#"{"ready": "yes"}"#, "ready"),
        ("/seats/a1/login", r#"{"redy": true}"#, "redy"),
        ("/seats/a1/login", "[true]", "object"),
        ("/seats/a1/logout", r#"{"now": true}"#, "now"),
        ("/seats/a1/not-ready", "", "reason"),
        ("/seats/a1/not-ready", "{}", "reason"),
        ("/seats/a1/not-ready", r#"{"reason": 5}"#, "reason"),
        (
            "/seats/a1/not-ready",
            r#"{"reason": "Coffee break"}"#,
            "reason",
        ),
    ] {
        let (status, body) = server.post(path, a1, request);
        assert_eq!(status, 400, "{path} {request}: {body}");
        let error = body["error"].as_str().expect("error");
        assert!(error.contains(word), "{path} {request}: {error}");
    }
    for (path, word) in [
        ("/stats?interval=abc", "interval"),
        ("/stats?interval=0", "interval"),
        ("/stats?interval=1&interval=2", "interval"),
        ("/stats?since=2025-01-01", "since"),
        ("/seats?all=1", "all"),
    ] {
        let (status, body) = server.get(path, sup);
        assert_eq!(status, 400, "{path}: {body}");
        let error = body["error"].as_str().expect("error");
        assert!(error.contains(word), "{path}: {error}");
    }
    let big = format!(r#"{{"reason": "{}"}}"#, "x".repeat(16 * 1024));
    assert_eq!(server.post("/seats/a1/not-ready", a1, &big).0, 413);

    // Unknown routes.
    assert_eq!(
        server.get("/nope", Some(ADMIN)),
        (404, json!({ "error": "no such endpoint" }))
    );
    assert_eq!(server.post("/seats/a1/dance", a1, "").0, 404);
    server.stop();
}

#[test]
fn an_oversized_body_is_answered_413_on_a_connection_that_goes_on() {
    let server = Server::start(true, None);
    let mut connection = std::net::TcpStream::connect(server.addr).expect("connect");
    connection
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut reader = BufReader::new(connection.try_clone().expect("clone"));

    // Half the body, then a pause: the engine must wait for the rest, not answer and close while
    // the client is still sending (which the client sees as a broken pipe).
    let big = format!(r#"{{"reason": "{}"}}"#, "x".repeat(16 * 1024));
    let (first, rest) = big.as_bytes().split_at(8 * 1024);
    let head = format!(
        "POST /seats/a1/not-ready HTTP/1.1\r\nHost: hotline\r\nAuthorization: Bearer tok-a1\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        big.len()
    );
    connection
        .write_all(head.as_bytes())
        .expect("send the head");
    connection.write_all(first).expect("send half the body");
    connection
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("read timeout");
    match connection.peek(&mut [0]) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        early => panic!("answered before the body was in: {early:?}"),
    }
    connection
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    connection
        .write_all(rest)
        .expect("send the rest of the body");
    let (status, body) = read_response(&mut reader);
    assert_eq!(status, 413, "{body}");
    assert!(body["error"]
        .as_str()
        .expect("error")
        .contains("4096 bytes"));

    // The body was read to its end, so the same connection takes the next request.
    let next = "GET /nope HTTP/1.1\r\nHost: hotline\r\nAuthorization: Bearer tok-a1\r\n\r\n";
    connection.write_all(next.as_bytes()).expect("send again");
    assert_eq!(
        read_response(&mut reader),
        (404, json!({ "error": "no such endpoint" }))
    );
    drop((reader, connection));

    // A declared length too large to read is refused at once, before any of it is sent.
    let mut connection = std::net::TcpStream::connect(server.addr).expect("connect");
    connection
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let huge =
        "POST /seats/a1/not-ready HTTP/1.1\r\nHost: hotline\r\nAuthorization: Bearer tok-a1\r\n\
                Content-Length: 10000000\r\n\r\n";
    connection
        .write_all(huge.as_bytes())
        .expect("send the head");
    let (status, body) = read_response(&mut BufReader::new(&connection));
    assert_eq!(status, 413, "{body}");
    drop(connection);
    server.stop();
}

/// One HTTP/1.1 response with a Content-Length from `reader`: status and JSON body.
fn read_response(reader: &mut impl BufRead) -> (u16, Value) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line: {line:?}"));
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header");
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("content-length");
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    (status, serde_json::from_slice(&body).expect("JSON body"))
}

#[test]
fn without_seats_the_desk_routes_answer_503() {
    let server = Server::start(false, None);
    let unavailable = (503, json!({ "error": "no seats configured" }));
    for token in [ADMIN, "tok-a1"] {
        assert_eq!(server.post("/seats/a1/login", Some(token), ""), unavailable);
        assert_eq!(server.get("/seats", Some(token)), unavailable);
        assert_eq!(server.get("/queues", Some(token)), unavailable);
        assert_eq!(server.get("/stats?interval=60", Some(token)), unavailable);
        assert_eq!(server.get("/events", Some(token)), unavailable);
    }
    assert_eq!(server.get("/seats", None).0, 401);
    assert_eq!(
        server.get("/health", Some(ADMIN)),
        (200, json!({ "ok": true }))
    );
    server.stop();
}

#[test]
fn event_streams_show_each_seat_its_own_events() {
    let server = Server::start(true, None);
    let mut a1 = server.events("tok-a1");
    let mut admin = server.events(ADMIN);
    let mut supervisor = server.events("tok-sup");
    // The first event says whose stream it is, and that it is subscribed.
    assert_eq!(
        a1.expect(),
        (
            "subscribed".to_owned(),
            json!({ "type": "subscribed", "seat": "a1" })
        )
    );
    for stream in [&mut admin, &mut supervisor] {
        assert_eq!(
            stream.expect(),
            (
                "subscribed".to_owned(),
                json!({ "type": "subscribed", "admin": true })
            )
        );
    }
    // A stranger's token gets no stream.
    let (status, _) = server.get("/events", Some("wrong"));
    assert_eq!(status, 401);

    server.publish(Some("a2"), body("offer", 1));
    server.publish(Some("a1"), body("offer", 2));
    server.publish(None, body("queue", 3));
    server.publish(
        Some("a1"),
        json!({ "type": "call-ended", "n": 4, "note": "two\nlines" }),
    );
    // An event without a plain type is sent unnamed.
    server.publish(None, json!({ "type": "not a name", "n": 5 }));

    let seen = |events: &mut Events, count: usize| -> Vec<(String, u64)> {
        (0..count)
            .map(|_| {
                let (name, data) = events.expect();
                (name, data["n"].as_u64().expect("n"))
            })
            .collect()
    };
    let named = |list: &[(&str, u64)]| -> Vec<(String, u64)> {
        list.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    };
    assert_eq!(
        seen(&mut a1, 4),
        named(&[("offer", 2), ("queue", 3), ("call-ended", 4), ("", 5)])
    );
    let everything = named(&[
        ("offer", 1),
        ("offer", 2),
        ("queue", 3),
        ("call-ended", 4),
        ("", 5),
    ]);
    assert_eq!(seen(&mut admin, 5), everything);
    assert_eq!(seen(&mut supervisor, 5), everything);

    // Stopping the server ends the streams.
    server.stop();
    assert_eq!(a1.next(), None);
    assert_eq!(admin.next(), None);
}

#[test]
fn a_lagging_stream_says_so_and_goes_on() {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let gate = Gate {
        entered: entered_tx,
        release: release_rx,
    };
    let server = Server::start(true, Some(gate));
    let mut a1 = server.events("tok-a1");
    assert_eq!(a1.expect().0, "subscribed");

    // Hold the server's runtime still while more events than the stream keeps are published.
    let addr = server.addr;
    let held = std::thread::spawn(move || {
        ureq::get(&format!("http://{addr}/stats?interval={GATE_INTERVAL}"))
            .set("Authorization", &format!("Bearer {ADMIN}"))
            .timeout(Duration::from_secs(10))
            .call()
            .map(|response| response.status())
            .map_err(|e| e.to_string())
    });
    entered
        .recv_timeout(Duration::from_secs(10))
        .expect("the switch blocked");
    let published = EVENT_CAPACITY as u64 + 3;
    for n in 1..=published {
        server.publish(Some("a1"), body("seat", n));
    }
    release.send(()).expect("release the switch");
    assert_eq!(held.join().expect("stats thread").expect("stats"), 200);

    let (name, data) = a1.expect();
    assert_eq!(name, "lagged");
    assert_eq!(data, json!({ "type": "lagged", "missed": 3 }));
    let rest: Vec<u64> = (0..EVENT_CAPACITY)
        .map(|_| a1.expect().1["n"].as_u64().expect("n"))
        .collect();
    assert_eq!(rest, (4..=published).collect::<Vec<_>>());

    // And it goes on.
    server.publish(None, body("queue", 99));
    assert_eq!(a1.expect(), ("queue".to_owned(), body("queue", 99)));
    server.stop();
    assert_eq!(a1.next(), None);
}
