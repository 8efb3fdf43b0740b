//! Loopback tests of call recording: real UDP sockets on 127.0.0.1, the engine's worker and
//! recorder threads, peers talking in real time, and the WAV files read back with hound.
//!
//! Peers send tones on their own 10 ms schedule; the checks look at windows of the WAV well
//! inside each phase of that schedule (100 ms and more from any change), so ordinary scheduling
//! jitter cannot move a change into a window. Waits are bounded by a guard deadline.

use std::f64::consts::PI;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hotline::media::codec::Codec;
use hotline::media::control::{LegId, MediaCommand, MediaEvent, StreamParams};
use hotline::media::plane::{MediaPlane, MediaPlaneConfig};
use hotline::rtp::{write_header, RtpPacket};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Failure guard for anything awaited.
const GUARD: Duration = Duration::from_secs(10);
const RATE: f64 = 8000.0;

/// The plane, its event channel and a runtime to wait on that channel.
struct Harness {
    plane: Option<MediaPlane>,
    events: UnboundedReceiver<MediaEvent>,
    rt: tokio::runtime::Runtime,
}

impl Harness {
    fn start(ports: (u16, u16), workers: usize) -> Harness {
        let mut config = MediaPlaneConfig::new(LOCALHOST, ports.0, ports.1);
        config.workers = workers;
        config.media_timeout = None;
        let (tx, events) = unbounded_channel();
        let plane = MediaPlane::start(config, tx).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        Harness {
            plane: Some(plane),
            events,
            rt,
        }
    }

    fn cmd(&self, cmd: MediaCommand) {
        self.plane.as_ref().unwrap().command(cmd).unwrap();
    }

    fn event(&mut self) -> MediaEvent {
        let events = &mut self.events;
        self.rt
            .block_on(async { tokio::time::timeout(GUARD, events.recv()).await })
            .expect("no media event before the guard deadline")
            .expect("event channel closed")
    }

    fn open(&mut self, leg: LegId) -> SocketAddr {
        self.cmd(MediaCommand::Open { leg });
        match self.event() {
            MediaEvent::Opened { leg: l, local } if l == leg => local,
            other => panic!("expected Opened for {leg:?}, got {other:?}"),
        }
    }

    fn stream(&self, leg: LegId, remote: SocketAddr, codec: Codec) {
        self.cmd(MediaCommand::Stream {
            leg,
            params: StreamParams {
                remote,
                codec,
                payload_type: codec.payload_type(),
                telephone_event: Some(101),
                send: true,
                receive: true,
            },
        });
    }

    /// Waits for the `RecordingDone` of `leg` (no other event is expected meanwhile).
    fn done(&mut self, leg: LegId) -> (PathBuf, f64, Option<String>) {
        match self.event() {
            MediaEvent::RecordingDone {
                leg: l,
                path,
                seconds,
                error,
            } if l == leg => (path, seconds, error),
            other => panic!("expected RecordingDone for {leg:?}, got {other:?}"),
        }
    }
}

fn peer_socket() -> UdpSocket {
    let s = UdpSocket::bind((LOCALHOST, 0)).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    s
}

/// One far end talking: a sine of `freq` in packets of `ptime_ms`, while `talking(ms)` says so
/// (`ms` since the talkers started).
struct Talker {
    sock: UdpSocket,
    to: SocketAddr,
    codec: Codec,
    ptime_ms: u64,
    freq: f64,
    talking: fn(u64) -> bool,
    /// Samples of the sine sent so far.
    n: usize,
    seq: u16,
    ssrc: u32,
}

impl Talker {
    fn new(sock: &UdpSocket, to: SocketAddr, codec: Codec, ptime_ms: u64, freq: f64) -> Talker {
        Talker {
            sock: sock.try_clone().unwrap(),
            to,
            codec,
            ptime_ms,
            freq,
            talking: |_| true,
            n: 0,
            seq: 1,
            ssrc: 0x7A1C_0000 | freq as u32,
        }
    }

    fn when(mut self, talking: fn(u64) -> bool) -> Talker {
        self.talking = talking;
        self
    }

    fn send(&mut self) {
        let samples = (self.ptime_ms * 8) as usize;
        let pcm: Vec<i16> = (self.n..self.n + samples)
            .map(|i| (8000.0 * (2.0 * PI * self.freq * i as f64 / RATE).sin()) as i16)
            .collect();
        let mut pkt = vec![0u8; 12 + samples];
        let ts = self.n as u32;
        write_header(
            &mut pkt,
            self.n == 0,
            self.codec.payload_type(),
            self.seq,
            ts,
            self.ssrc,
        );
        self.codec.encode(&pcm, &mut pkt[12..]);
        // A refused datagram (the leg is not open yet) is what a real peer would see too.
        let _ = self.sock.send_to(&pkt, self.to);
        self.n += samples;
        self.seq = self.seq.wrapping_add(1);
    }
}

/// The talkers' thread: every 10 ms of its absolute schedule, each talker due sends a packet.
struct Talking {
    start: Instant,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Talking {
    fn start(mut talkers: Vec<Talker>) -> Talking {
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut ms = 0u64;
            while !flag.load(Ordering::Relaxed) {
                for t in &mut talkers {
                    if ms.is_multiple_of(t.ptime_ms) && (t.talking)(ms) {
                        t.send();
                    }
                }
                ms += 10;
                let next = start + Duration::from_millis(ms);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
        Talking {
            start,
            stop,
            thread: Some(thread),
        }
    }

    /// Sleeps until `ms` after the talkers started.
    fn until(&self, ms: u64) {
        let at = self.start + Duration::from_millis(ms);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
    }
}

impl Drop for Talking {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A recording read back: both channels, per-channel sample counts equal.
struct Wav {
    left: Vec<i16>,
    right: Vec<i16>,
}

impl Wav {
    fn read(path: &Path) -> Wav {
        let mut reader = hound::WavReader::open(path).expect("a readable WAV");
        let spec = reader.spec();
        assert_eq!(spec.channels, 2, "stereo");
        assert_eq!(spec.sample_rate, 8000);
        assert_eq!(spec.bits_per_sample, 16);
        assert_eq!(spec.sample_format, hound::SampleFormat::Int);
        let all: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        Wav {
            left: all.iter().step_by(2).copied().collect(),
            right: all.iter().skip(1).step_by(2).copied().collect(),
        }
    }

    fn seconds(&self) -> f64 {
        self.left.len() as f64 / RATE
    }
}

/// The samples of `x` between `from` and `to` seconds.
fn window(x: &[i16], from: f64, to: f64) -> &[i16] {
    let a = ((from * RATE) as usize).min(x.len());
    let b = ((to * RATE) as usize).min(x.len());
    &x[a..b]
}

/// Mean power of `x` at `freq` (Goertzel), as the squared amplitude of that component.
fn tone_power(x: &[i16], freq: f64) -> f64 {
    let coeff = 2.0 * (2.0 * PI * freq / RATE).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let n = x.len().max(1) as f64;
    4.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n)
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// Asserts that `x` between `from` and `to` s carries `freq` (amplitude near the 8000 sent) and
/// hardly anything at `other`.
fn assert_tone(x: &[i16], from: f64, to: f64, freq: f64, other: f64, what: &str) {
    let w = window(x, from, to);
    assert!(!w.is_empty(), "{what}: the WAV ends before {from} s");
    let (p, q) = (tone_power(w, freq), tone_power(w, other));
    assert!(
        p > 4000.0f64.powi(2) && p > 100.0 * q,
        "{what}, {from}-{to} s: {freq} Hz amplitude {:.0}, {other} Hz {:.0}, rms {:.0}",
        p.sqrt(),
        q.sqrt(),
        rms(w)
    );
}

/// Asserts that `x` between `from` and `to` s is silent.
fn assert_silent(x: &[i16], from: f64, to: f64, what: &str) {
    let w = window(x, from, to);
    assert!(!w.is_empty(), "{what}: the WAV ends before {from} s");
    assert!(rms(w) < 50.0, "{what}, {from}-{to} s: rms {:.0}", rms(w));
}

/// Opens A and its partner B, streams A toward X (PCMA) and B toward Y (PCMU), bridges them.
fn bridged_call(
    h: &mut Harness,
    a: LegId,
    x: &UdpSocket,
    y: &UdpSocket,
) -> (SocketAddr, SocketAddr) {
    let b = a.partner();
    let la = h.open(a);
    let lb = h.open(b);
    h.stream(a, x.local_addr().unwrap(), Codec::Pcma);
    h.stream(b, y.local_addr().unwrap(), Codec::Pcmu);
    h.cmd(MediaCommand::Bridge { leg: a, peer: b });
    (la, lb)
}

#[test]
fn records_caller_left_and_far_party_right_aligned() {
    let mut h = Harness::start((23000, 23019), 2);
    let (x, y) = (peer_socket(), peer_socket());
    let a = LegId(4);
    let (la, lb) = bridged_call(&mut h, a, &x, &y);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("2024/06/01/call-4.wav");

    // X talks all along (440 Hz, PCMA, 20 ms); Y (1000 Hz, PCMU, 30 ms) pauses 700-1100 ms.
    let talking = Talking::start(vec![
        Talker::new(&x, la, Codec::Pcma, 20, 440.0),
        Talker::new(&y, lb, Codec::Pcmu, 30, 1000.0).when(|ms| !(700..1100).contains(&ms)),
    ]);
    let recorded = Instant::now();
    h.cmd(MediaCommand::Record {
        leg: a,
        path: path.clone(),
    });
    talking.until(1600);
    let stopped = Instant::now();
    h.cmd(MediaCommand::StopRecording { leg: a });
    let (done_path, seconds, error) = h.done(a);
    drop(talking);
    let wall = stopped.duration_since(recorded).as_secs_f64();

    assert_eq!(done_path, path);
    assert_eq!(error, None);
    let wav = Wav::read(&path);
    assert_eq!(wav.left.len(), wav.right.len());
    assert!(
        (wav.seconds() - seconds).abs() < 1e-9,
        "RecordingDone says {seconds} s, the WAV holds {} s",
        wav.seconds()
    );
    assert!(
        (wav.seconds() - wall).abs() <= 0.1,
        "the WAV holds {} s for {wall} s of wall-clock time",
        wav.seconds()
    );
    // Caller left, far party right, each without the other.
    assert_tone(&wav.left, 0.1, 1.5, 440.0, 1000.0, "left");
    assert_tone(
        &wav.right,
        0.15,
        0.6,
        1000.0,
        440.0,
        "right before the pause",
    );
    assert_tone(
        &wav.right,
        1.25,
        1.5,
        1000.0,
        440.0,
        "right after the pause",
    );
    // Y's pause is silence on the right while the left goes on, at the same time.
    assert_silent(&wav.right, 0.82, 1.0, "right during the pause");
    assert_tone(&wav.left, 0.82, 1.0, 440.0, 1000.0, "left during the pause");
    // The bridge relayed meanwhile: X heard Y (recording takes nothing from the call).
    assert!(hears_audio(&x, 200));
}

/// Reads what X receives from A until a packet carries audio (Y's); at most `max` packets.
fn hears_audio(x: &UdpSocket, max: usize) -> bool {
    let mut buf = [0u8; 2048];
    for _ in 0..max {
        let (n, _) = x.recv_from(&mut buf).expect("A stopped sending to X");
        let pkt = RtpPacket::parse(&buf[..n]).unwrap();
        if pkt.payload.iter().any(|&b| b != Codec::Pcma.silence_byte()) {
            return true;
        }
    }
    false
}

/// Drops what is already queued on `sock`.
fn drain(sock: &UdpSocket) {
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    while sock.recv_from(&mut buf).is_ok() {}
    sock.set_nonblocking(false).unwrap();
}

#[test]
fn an_unwritable_path_fails_the_recording_not_the_call() {
    let mut h = Harness::start((23100, 23119), 1);
    let (x, y) = (peer_socket(), peer_socket());
    let a = LegId(7);
    let (la, lb) = bridged_call(&mut h, a, &x, &y);
    let _talking = Talking::start(vec![
        Talker::new(&x, la, Codec::Pcma, 20, 440.0),
        Talker::new(&y, lb, Codec::Pcmu, 30, 1000.0),
    ]);
    assert!(hears_audio(&x, 100), "the bridge relays before");

    // A path under a plain file cannot be created, not even by root.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let path = file.join("call.wav");
    h.cmd(MediaCommand::Record {
        leg: a,
        path: path.clone(),
    });
    let (done_path, seconds, error) = h.done(a);
    assert_eq!((done_path, seconds), (path, 0.0));
    let error = error.expect("the recording failed");
    assert!(error.contains("not-a-dir"), "{error}");
    drain(&x);
    assert!(
        hears_audio(&x, 50),
        "the bridge relays after a failed recording"
    );

    // A device that is always full: the file opens, writing fails mid-call.
    let full = Path::new("/dev/full");
    if std::fs::OpenOptions::new().write(true).open(full).is_ok() {
        h.cmd(MediaCommand::Record {
            leg: a,
            path: full.to_path_buf(),
        });
        let (_, _, error) = h.done(a);
        let error = error.expect("writing to a full disk fails");
        assert!(error.contains("No space left"), "{error}");
        drain(&x);
        assert!(hears_audio(&x, 50), "the bridge relays after a write error");
        // And a good recording works on the same call afterwards.
        let good = dir.path().join("good.wav");
        h.cmd(MediaCommand::Record {
            leg: a,
            path: good.clone(),
        });
        std::thread::sleep(Duration::from_millis(300));
        h.cmd(MediaCommand::StopRecording { leg: a });
        assert_eq!(h.done(a).2, None);
        assert_tone(&Wav::read(&good).right, 0.1, 0.25, 1000.0, 440.0, "right");
    }
}

#[test]
fn recording_follows_the_partner_and_ends_with_the_caller() {
    let mut h = Harness::start((23200, 23219), 2);
    let (x, y1, y2) = (peer_socket(), peer_socket(), peer_socket());
    let a = LegId(10);
    let b = a.partner();
    let la = h.open(a);
    h.stream(a, x.local_addr().unwrap(), Codec::Pcma);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("call-10.wav");
    // Recording starts before there is a partner; two partners come and go (the first one
    // never bridged: recording needs no bridge).
    h.cmd(MediaCommand::Record {
        leg: a,
        path: path.clone(),
    });
    let talking = Talking::start(vec![Talker::new(&x, la, Codec::Pcma, 20, 440.0)]);
    talking.until(400);
    let lb = h.open(b);
    h.stream(b, y1.local_addr().unwrap(), Codec::Pcmu);
    let first = Talking::start(vec![Talker::new(&y1, lb, Codec::Pcmu, 20, 1000.0)]);
    talking.until(800);
    h.cmd(MediaCommand::Close { leg: b });
    drop(first);
    talking.until(1100);
    let lb2 = h.open(b);
    h.stream(b, y2.local_addr().unwrap(), Codec::Pcmu);
    h.cmd(MediaCommand::Bridge { leg: a, peer: b });
    // The new far end even uses the other G.711 law (its static payload type).
    let second = Talking::start(vec![Talker::new(&y2, lb2, Codec::Pcma, 30, 1300.0)]);
    talking.until(1500);
    h.cmd(MediaCommand::Close { leg: a });
    let (_, seconds, error) = h.done(a);
    drop((second, talking));
    assert_eq!(error, None);

    let wav = Wav::read(&path);
    assert!((wav.seconds() - seconds).abs() < 1e-9);
    assert!((1.4..1.6).contains(&seconds), "{seconds} s");
    assert_tone(&wav.left, 0.1, 1.4, 440.0, 1000.0, "left");
    assert_silent(&wav.right, 0.0, 0.3, "right before any partner");
    assert_tone(&wav.right, 0.5, 0.7, 1000.0, 1300.0, "right, first partner");
    assert_silent(&wav.right, 0.9, 1.0, "right between partners");
    assert_tone(
        &wav.right,
        1.2,
        1.4,
        1300.0,
        1000.0,
        "right, second partner",
    );
}

#[test]
fn shutdown_finishes_open_recordings_and_bad_records_are_answered() {
    let mut h = Harness::start((23300, 23319), 2);
    let dir = tempfile::tempdir().unwrap();
    // A leg that is not open, and a partner leg, are answered with an error at once.
    let nowhere = dir.path().join("nowhere.wav");
    h.cmd(MediaCommand::Record {
        leg: LegId(1),
        path: nowhere.clone(),
    });
    let (_, _, error) = h.done(LegId(1));
    assert!(error.is_some_and(|e| e.contains("not open")));
    h.open(LegId(2).partner());
    h.cmd(MediaCommand::Record {
        leg: LegId(2).partner(),
        path: nowhere.clone(),
    });
    let (_, _, error) = h.done(LegId(2).partner());
    assert!(error.is_some());
    assert!(!nowhere.exists());

    // Two recordings open at shutdown, on two workers: both finished and reported.
    let paths: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("{i}.wav")))
        .collect();
    for (i, path) in paths.iter().enumerate() {
        let leg = LegId(20 + i as u64);
        h.open(leg);
        h.cmd(MediaCommand::Record {
            leg,
            path: path.clone(),
        });
    }
    std::thread::sleep(Duration::from_millis(200));
    h.plane.take().unwrap().shutdown();
    let mut done: Vec<(LegId, f64, Option<String>)> = (0..2)
        .map(|_| match h.event() {
            MediaEvent::RecordingDone {
                leg,
                seconds,
                error,
                ..
            } => (leg, seconds, error),
            other => panic!("{other:?}"),
        })
        .collect();
    done.sort_by_key(|d| d.0);
    for (i, (leg, seconds, error)) in done.into_iter().enumerate() {
        assert_eq!(leg, LegId(20 + i as u64));
        assert_eq!(error, None);
        assert!(seconds >= 0.1, "{seconds}");
        let wav = Wav::read(&paths[i]);
        assert!((wav.seconds() - seconds).abs() < 1e-9);
        assert_silent(&wav.left, 0.0, seconds, "nobody talked");
    }
}
