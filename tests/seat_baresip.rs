//! A real softphone (baresip) as a seat: it registers with digest authentication, is logged in
//! ready through the desk API and answers by itself the call the engine offers it. The caller
//! (SIPp, with its RTP at the test's own socket) says 440 Hz, the seat's phone says 1000 Hz
//! from a WAV; each side must hear the other through the bridge, and the call record must name
//! the seat that answered.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hotline::media::codec::Codec;
use hotline::rtp::RtpPacket;
use support::baresip::{write_tone, Baresip, CALL_OVER, ESTABLISHED, RATE};
use support::records::records;
use support::rtp::RtpPeer;
use support::seats::{desk_get, log_in_all, seats_config, write_seats, TestSeat};
use support::sipp::Sipp;
use support::Engine;

/// What the caller says.
const CALLER_HZ: f64 = 440.0;
/// What the seat's phone says.
const SEAT_HZ: f64 = 1000.0;
/// Samples per analysis block: 50 ms, a whole number of periods of both tones.
const BLOCK: usize = 400;
/// How much of a tone each side must hear before the seat hangs up.
const ENOUGH_S: f64 = 1.0;

/// The power of `samples` at `hz` (Goertzel).
fn power_at(samples: &[i16], hz: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * hz / f64::from(RATE)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - k * s1 * s2
}

/// The share of a block's energy that is at `hz` (1.0 for a pure tone at `hz`, about 0 for a
/// tone elsewhere or for noise).
fn share_at(block: &[i16], hz: f64) -> f64 {
    let energy: f64 = block.iter().map(|&x| f64::from(x).powi(2)).sum();
    if energy == 0.0 {
        return 0.0;
    }
    2.0 * power_at(block, hz) / (block.len() as f64 * energy)
}

/// Seconds of `samples` that are clearly the tone `hz`: 50 ms blocks louder than -30 dBFS with
/// nine tenths of their energy at `hz`.
fn seconds_of(samples: &[i16], hz: f64) -> f64 {
    let loud = |b: &[i16]| {
        let mean: f64 = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / b.len() as f64;
        mean.sqrt() > 1000.0
    };
    let blocks = samples
        .chunks_exact(BLOCK)
        .filter(|b| loud(b) && share_at(b, hz) > 0.9)
        .count();
    blocks as f64 * BLOCK as f64 / f64::from(RATE)
}

/// 20 ms of the caller's tone, starting at sample `n`.
fn caller_frame(n: usize) -> Vec<i16> {
    let step = 2.0 * std::f64::consts::PI * CALLER_HZ / f64::from(RATE);
    (n..n + 160)
        .map(|i| (8000.0 * (step * i as f64).sin()) as i16)
        .collect()
}

/// Polls `condition` every 50 ms until it holds or `limit` passes.
fn poll(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Audio one side received: decoded samples with their arrival time, and the payload types.
#[derive(Default)]
struct Received {
    frames: Vec<(Instant, Vec<i16>)>,
    payload_types: Vec<u8>,
}

impl Received {
    /// The samples of the frames that arrived after `since`, in order.
    fn since(&self, since: Instant) -> Vec<i16> {
        self.frames
            .iter()
            .filter(|(at, _)| *at >= since)
            .flat_map(|(_, samples)| samples.iter().copied())
            .collect()
    }
}

/// The caller's phone on the test's RTP socket: it listens all the time and, once it knows the
/// engine's address (from the first packet the engine sends it), says its tone in real time.
struct CallerPhone {
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<Received>>,
    thread: Option<JoinHandle<()>>,
}

impl CallerPhone {
    fn start(mut peer: RtpPeer) -> CallerPhone {
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(Mutex::new(Received::default()));
        let thread = {
            let (stop, received) = (stop.clone(), received.clone());
            thread::spawn(move || {
                let mut engine: Option<SocketAddr> = None;
                let mut next = Instant::now();
                let mut sent = 0usize;
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::SeqCst) {
                    let now = Instant::now();
                    if now >= next {
                        if let Some(to) = engine {
                            peer.send_audio(&caller_frame(sent * 160), Codec::Pcma, to);
                            sent += 1;
                        }
                        next += Duration::from_millis(20);
                        continue;
                    }
                    // Listen until the next frame is due.
                    let _ = peer.socket.set_read_timeout(Some(next - now));
                    let Ok((n, from)) = peer.socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let Ok(packet) = RtpPacket::parse(&buf[..n]) else {
                        continue;
                    };
                    engine.get_or_insert(from);
                    let mut received = received.lock().unwrap_or_else(|e| e.into_inner());
                    received.payload_types.push(packet.payload_type);
                    if let Some(codec) = Codec::from_payload_type(packet.payload_type) {
                        let samples = packet
                            .payload
                            .iter()
                            .map(|&c| codec.decode_sample(c))
                            .collect();
                        received.frames.push((Instant::now(), samples));
                    }
                }
            })
        };
        CallerPhone {
            stop,
            received,
            thread: Some(thread),
        }
    }

    /// What it heard after `since`.
    fn heard_since(&self, since: Instant) -> Vec<i16> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .since(since)
    }

    /// Stops talking and listening; returns everything it received.
    fn stop(mut self) -> Received {
        self.halt();
        std::mem::take(&mut *self.received.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            // It only loops on a socket; should it have panicked, the test says what is missing.
            let _ = thread.join();
        }
    }
}

impl Drop for CallerPhone {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Whether the desk shows seat `id`'s phone registered.
fn registered(api: SocketAddr, id: &str) -> bool {
    let (status, body) = desk_get(api, "/seats");
    assert_eq!(status, 200, "GET /seats: {body}");
    let seats: serde_json::Value = serde_json::from_str(&body).expect("GET /seats is JSON");
    seats
        .as_array()
        .expect("GET /seats is a list")
        .iter()
        .any(|s| s["id"] == id && s["registered"] == true)
}

#[test]
fn a_baresip_seat_answers_the_caller_and_they_hear_each_other() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let seat = TestSeat::new(1001, 5);
    let seats_file = write_seats(scratch.path(), std::slice::from_ref(&seat));
    let (toml, api) = seats_config(&seats_file);
    let dialplans = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialplans/seats");
    let mut engine = Engine::start_on(&dialplans, &toml, 50);

    // The seat's phone says 1000 Hz for longer than the test runs (it hangs up at the end).
    let voice = scratch.path().join("seat-1000hz.wav");
    write_tone(&voice, SEAT_HZ, 40);
    let mut phone = Baresip::seat(engine.sip, &seat.username, &seat.password, &voice, 45);
    assert!(
        poll(Duration::from_secs(10), || registered(api, &seat.id)),
        "the desk never showed {}'s baresip registered: {}",
        seat.id,
        desk_get(api, "/seats").1
    );
    log_in_all(api, std::slice::from_ref(&seat));

    // The caller dials 12345 and waits for the engine's BYE; its RTP is the test's.
    let rtp = RtpPeer::bind();
    let caller = Sipp::new("uac_wait_bye.xml", engine.sip)
        .service("12345")
        .set("rtp_port", &rtp.port().to_string())
        .spawn_in(engine.dir());
    let caller_phone = CallerPhone::start(rtp);

    assert!(
        phone.wait_output(ESTABLISHED, Duration::from_secs(15)),
        "baresip never answered the engine's call"
    );
    // The bridge was up before baresip logged its call established (it answers, then the ACK
    // comes): what the caller hears from now on comes through it.
    let established = Instant::now();

    // Talk until each side has clearly heard the other, bounded.
    let heard_both = poll(Duration::from_secs(10), || {
        seconds_of(&phone.heard_so_far(), CALLER_HZ) >= ENOUGH_S
            && seconds_of(&caller_phone.heard_since(established), SEAT_HZ) >= ENOUGH_S
    });
    let seat_heard = phone.heard_so_far();
    let caller_heard = caller_phone.heard_since(established);
    assert!(
        heard_both,
        "within 10 s the seat heard {:.2} s of the caller's {CALLER_HZ} Hz ({:.2} s recorded), \
         the caller {:.2} s of the seat's {SEAT_HZ} Hz ({:.2} s received)",
        seconds_of(&seat_heard, CALLER_HZ),
        seat_heard.len() as f64 / f64::from(RATE),
        seconds_of(&caller_heard, SEAT_HZ),
        caller_heard.len() as f64 / f64::from(RATE),
    );

    // The seat hangs up: the engine sends the caller BYE.
    let talked = established.elapsed();
    phone.hang_up();
    let caller = caller.wait();
    caller.assert_all_succeeded(1);
    assert!(
        phone.wait_output(CALL_OVER, Duration::from_secs(10)),
        "baresip's call did not end"
    );
    let received = caller_phone.stop();
    let status = phone.quit();
    assert!(
        status.is_some_and(|s| s.success()),
        "baresip did not quit cleanly: {status:?}"
    );

    // Everything each side heard: the other's tone, never its own.
    let recording = phone.recording();
    let seat_heard_caller = seconds_of(&recording, CALLER_HZ);
    let seat_heard_itself = seconds_of(&recording, SEAT_HZ);
    let bridged = received.since(established);
    let caller_heard_seat = seconds_of(&bridged, SEAT_HZ);
    let caller_heard_itself = seconds_of(&bridged, CALLER_HZ);
    eprintln!(
        "seat recorded {:.2} s: {seat_heard_caller:.2} s of {CALLER_HZ} Hz, \
         {seat_heard_itself:.2} s of {SEAT_HZ} Hz; caller received {:.2} s after the answer: \
         {caller_heard_seat:.2} s of {SEAT_HZ} Hz, {caller_heard_itself:.2} s of {CALLER_HZ} Hz",
        recording.len() as f64 / f64::from(RATE),
        bridged.len() as f64 / f64::from(RATE),
    );
    assert!(
        seat_heard_caller >= ENOUGH_S,
        "the seat's recording has the caller"
    );
    assert_eq!(seat_heard_itself, 0.0, "the seat must not hear itself");
    assert!(caller_heard_seat >= ENOUGH_S, "the caller heard the seat");
    assert_eq!(caller_heard_itself, 0.0, "the caller must not hear itself");
    let payload_types = &received.payload_types;
    assert!(
        !payload_types.is_empty() && payload_types.iter().all(|&pt| pt == 8),
        "the caller got PCMA, as it offered first: {:?}",
        payload_types
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
    );

    // The call record: answered in `general` by this seat, which ended the call.
    let config = engine.config_path();
    assert!(
        engine.terminate().is_some_and(|s| s.success()),
        "the engine did not stop cleanly"
    );
    let records = records(&config);
    assert_eq!(records.len(), 1, "{records:#?}");
    let record = &records[0];
    assert_eq!(record.dialled, "12345", "{record:#?}");
    assert_eq!(record.queues.len(), 1, "{record:#?}");
    let visit = &record.queues[0];
    assert_eq!(visit.queue, "general", "{record:#?}");
    assert_eq!(visit.outcome.as_deref(), Some("answered"), "{record:#?}");
    assert_eq!(visit.seat.as_deref(), Some(seat.id.as_str()), "{record:#?}");
    let offers: Vec<(&str, Option<&str>)> = visit
        .offers
        .iter()
        .map(|o| (o.seat.as_str(), o.outcome.as_deref()))
        .collect();
    assert_eq!(
        offers,
        [(seat.id.as_str(), Some("answered"))],
        "{record:#?}"
    );
    assert!(
        record.times.person_answered.is_some(),
        "a person answered: {record:#?}"
    );
    // The talk began before baresip logged it and ended after its hang-up was asked for; the
    // record's times are in whole milliseconds.
    assert!(
        record.talk_s >= talked.as_secs_f64() - 0.002,
        "they talked at least {:.3} s: {record:#?}",
        talked.as_secs_f64()
    );
    let end = record.end.as_ref().expect("the call ended");
    assert_eq!(
        (end.by.as_str(), end.cause.as_str()),
        ("seat", "bye"),
        "{record:#?}"
    );
}
