//! Loopback tests of three-party conferences (three-way transfers): a real media plane, three
//! legs of one call streaming to three UDP sockets on 127.0.0.1, each far end talking its own
//! tone, and what each far end hears.
//!
//! The far ends keep pace with the engine instead of a clock: each round, every far end takes
//! the next packet its leg sent (one per 20 ms) and answers with one 20 ms frame of its tone.
//! Waits are bounded by deadlines that only guard against hangs.

use std::f64::consts::PI;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hotline::media::codec::Codec;
use hotline::media::control::{LegId, MediaCommand, MediaEvent, StreamParams};
use hotline::media::plane::{worker_index, MediaPlane, MediaPlaneConfig};
use hotline::rtp::{write_header, RtpPacket};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Failure guard for anything awaited.
const GUARD: Duration = Duration::from_secs(10);
const RATE: f64 = 8000.0;
const FRAME: usize = 160;
/// Amplitude of each far end's tone.
const LOUD: f64 = 6000.0;
/// A tone heard is at least this loud (the amplitude sent, less a few lost frames).
const HEARD: f64 = 3000.0;
/// A tone not heard is below this (G.711 noise and leakage only).
const NOT_HEARD: f64 = 300.0;
/// The caller's, the seat's and the third party's tones.
const TONES: [f64; 3] = [500.0, 1000.0, 1500.0];

/// The plane, its event channel and a runtime to wait on that channel.
struct Harness {
    plane: MediaPlane,
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
        Harness { plane, events, rt }
    }

    fn cmd(&self, cmd: MediaCommand) {
        self.plane.command(cmd).unwrap();
    }

    fn event(&mut self) -> MediaEvent {
        let events = &mut self.events;
        self.rt
            .block_on(async { tokio::time::timeout(GUARD, events.recv()).await })
            .ok()
            .flatten()
            .expect("no media event before the guard deadline")
    }

    fn open(&mut self, leg: LegId) -> SocketAddr {
        self.cmd(MediaCommand::Open { leg });
        match self.event() {
            MediaEvent::Opened { leg: l, local } if l == leg => local,
            other => panic!("expected Opened for {leg:?}, got {other:?}"),
        }
    }

    /// Waits until the worker of `leg` has applied every earlier command (opening an open leg
    /// is answered again); no other event may come first.
    fn barrier(&mut self, leg: LegId) {
        self.cmd(MediaCommand::Open { leg });
        match self.event() {
            MediaEvent::Opened { leg: l, .. } if l == leg => {}
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
                telephone_event: None,
                send: true,
                receive: true,
            },
        });
    }
}

/// A far end: its socket, the leg it talks to, its codec and tone, and what it heard.
struct FarEnd {
    sock: UdpSocket,
    to: SocketAddr,
    codec: Codec,
    freq: f64,
    talking: bool,
    /// Samples of the tone sent so far.
    n: usize,
    seq: u16,
    /// Every packet's audio received, decoded, in order.
    heard: Vec<i16>,
}

impl FarEnd {
    fn new(codec: Codec, freq: f64) -> FarEnd {
        let sock = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        sock.set_read_timeout(Some(GUARD)).unwrap();
        FarEnd {
            sock,
            to: SocketAddr::from((LOCALHOST, 9)),
            codec,
            freq,
            talking: true,
            n: 0,
            seq: 1,
            heard: Vec::new(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// Takes the leg's next packet (it must be in the leg's codec) and keeps its audio.
    fn listen(&mut self) {
        let mut buf = [0u8; 2048];
        let n = self
            .sock
            .recv(&mut buf)
            .expect("no RTP before the guard deadline");
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p.payload_type, self.codec.payload_type(), "{}", self.freq);
        let mut pcm = vec![0i16; p.payload.len()];
        self.codec.decode(p.payload, &mut pcm);
        self.heard.extend(pcm);
    }

    /// Sends the next 20 ms of the tone, if talking.
    fn talk(&mut self) {
        if !self.talking {
            return;
        }
        let pcm: Vec<i16> = (self.n..self.n + FRAME)
            .map(|i| (LOUD * (2.0 * PI * self.freq * i as f64 / RATE).sin()) as i16)
            .collect();
        let mut pkt = vec![0u8; 12 + FRAME];
        let ssrc = 0x5EA7_0000 | self.freq as u32;
        write_header(
            &mut pkt,
            self.n == 0,
            self.codec.payload_type(),
            self.seq,
            self.n as u32,
            ssrc,
        );
        self.codec.encode(&pcm, &mut pkt[12..]);
        self.sock.send_to(&pkt, self.to).unwrap();
        self.n += FRAME;
        self.seq = self.seq.wrapping_add(1);
    }

    /// Drops what is already queued and forgets what was heard.
    fn forget(&mut self) {
        self.sock.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 2048];
        while self.sock.recv(&mut buf).is_ok() {}
        self.sock.set_nonblocking(false).unwrap();
        self.heard.clear();
    }
}

/// `rounds` rounds of every far end listening to one packet, then talking one frame; the
/// rounds keep a phone's 20 ms pace (a bridge relays each packet on arrival, so answering what
/// it heard at once would run faster than the calls' clocks and the recording).
fn converse(ends: &mut [&mut FarEnd], rounds: usize) {
    let start = Instant::now();
    for round in 0..rounds {
        for end in ends.iter_mut() {
            end.listen();
        }
        let due = start + Duration::from_millis(20) * round as u32;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        for end in ends.iter_mut() {
            end.talk();
        }
    }
}

/// Lets the audio settle (the latency is a few frames), then forgets it and converses for one
/// second, whose audio each far end keeps.
fn converse_one_second(ends: &mut [&mut FarEnd]) {
    converse(ends, 15);
    for end in ends.iter_mut() {
        end.heard.clear();
    }
    converse(ends, 50);
}

/// Amplitude of the `freq` component of `x` (Goertzel).
fn amplitude(x: &[i16], freq: f64) -> f64 {
    let coeff = 2.0 * (2.0 * PI * freq / RATE).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let n = x.len().max(1) as f64;
    (4.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2))
        .max(0.0)
        .sqrt()
        / n
}

/// Asserts that `x` carries each tone of `heard` and none of `not_heard`.
fn assert_hears(x: &[i16], heard: &[f64], not_heard: &[f64], who: &str) {
    let all: Vec<String> = TONES
        .iter()
        .map(|&f| format!("{f} Hz: {:.0}", amplitude(x, f)))
        .collect();
    for &f in heard {
        assert!(amplitude(x, f) > HEARD, "{who} must hear {f} Hz ({all:?})");
    }
    for &f in not_heard {
        assert!(
            amplitude(x, f) < NOT_HEARD,
            "{who} must not hear {f} Hz ({all:?})"
        );
    }
}

/// Asserts that audio kept coming: at least 80% of the 20 ms frames of `x` are loud.
fn assert_unbroken(x: &[i16], who: &str) {
    let loud = x
        .chunks(FRAME)
        .filter(|f| f.iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0) > 1000)
        .count();
    let frames = x.len() / FRAME;
    assert!(
        loud * 5 >= frames * 4,
        "{who}: only {loud} of {frames} frames carry audio"
    );
}

/// The call's three legs on their far ends: caller A (PCMA, 500 Hz), seat B (PCMU, 1000 Hz),
/// third party C (PCMA, 1500 Hz), all opened and streaming, on one worker.
struct ThreeWay {
    a: LegId,
    ends: [FarEnd; 3],
}

impl ThreeWay {
    fn open(h: &mut Harness, call: u64) -> ThreeWay {
        let a = LegId(call);
        let legs = [a, a.partner(), a.third()];
        let mut ends = [
            FarEnd::new(Codec::Pcma, TONES[0]),
            FarEnd::new(Codec::Pcmu, TONES[1]),
            FarEnd::new(Codec::Pcma, TONES[2]),
        ];
        let workers = h.plane.workers();
        for (&leg, end) in legs.iter().zip(&mut ends) {
            end.to = h.open(leg);
            assert_eq!(
                usize::from(end.to.port() / 2) % workers,
                worker_index(a, workers),
                "the three legs take ports of one worker's pool"
            );
            h.stream(leg, end.addr(), end.codec);
        }
        ThreeWay { a, ends }
    }

    fn legs(&self) -> Vec<LegId> {
        vec![self.a, self.a.partner(), self.a.third()]
    }
}

#[test]
fn each_party_hears_the_other_two_then_the_two_who_stay() {
    let mut h = Harness::start((23400, 23429), 2);
    let mut call = ThreeWay::open(&mut h, 7);
    let a = call.a;
    let (b, c) = (a.partner(), a.third());
    h.cmd(MediaCommand::Conference { legs: call.legs() });
    h.barrier(a);
    let [x, y, z] = &mut call.ends;
    for end in [&mut *x, &mut *y, &mut *z] {
        end.forget();
    }

    // All three talk: each hears the other two, never itself, in its own codec.
    converse_one_second(&mut [&mut *x, &mut *y, &mut *z]);
    assert_hears(&x.heard, &[1000.0, 1500.0], &[500.0], "caller");
    assert_hears(&y.heard, &[500.0, 1500.0], &[1000.0], "seat");
    assert_hears(&z.heard, &[500.0, 1000.0], &[1500.0], "third party");

    // The seat goes quiet: it contributes silence, the others still hear each other.
    y.talking = false;
    converse_one_second(&mut [&mut *x, &mut *y, &mut *z]);
    assert_hears(&x.heard, &[1500.0], &[500.0, 1000.0], "caller");
    assert_hears(&z.heard, &[500.0], &[1000.0, 1500.0], "third party");
    assert_hears(&y.heard, &[500.0, 1500.0], &[1000.0], "seat");
    assert_unbroken(&x.heard, "caller");
    assert_unbroken(&z.heard, "third party");

    // The seat leaves the transfer: the mixer ends and the two who stay are bridged.
    h.cmd(MediaCommand::EndConference { leg: a });
    h.cmd(MediaCommand::Close { leg: b });
    h.cmd(MediaCommand::Bridge { leg: a, peer: c });
    h.barrier(a);
    converse_one_second(&mut [&mut *x, &mut *z]);
    assert_hears(&x.heard, &[1500.0], &[500.0, 1000.0], "caller, bridged");
    assert_hears(
        &z.heard,
        &[500.0],
        &[1000.0, 1500.0],
        "third party, bridged",
    );
    assert_unbroken(&x.heard, "caller, bridged");
    assert_unbroken(&z.heard, "third party, bridged");
}

/// A recording read back, channel by channel.
fn read_wav(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).expect("a readable WAV");
    assert_eq!(reader.spec().channels, 2, "stereo");
    let all: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let left = all.iter().step_by(2).copied().collect();
    let right = all.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

/// The samples of `x` between `from` and `to` seconds.
fn window(x: &[i16], from: f64, to: f64) -> &[i16] {
    let at = |t: f64| ((t * RATE) as usize).min(x.len());
    &x[at(from)..at(to)]
}

#[test]
fn the_recording_has_the_caller_left_and_what_it_hears_right() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("three-way.wav");
    let mut h = Harness::start((23440, 23469), 2);
    let mut call = ThreeWay::open(&mut h, 12);
    let a = call.a;
    let (b, c) = (a.partner(), a.third());
    h.cmd(MediaCommand::Record {
        leg: a,
        path: path.clone(),
    });
    h.cmd(MediaCommand::Conference { legs: call.legs() });
    h.barrier(a);
    let [x, y, z] = &mut call.ends;
    for end in [&mut *x, &mut *y, &mut *z] {
        end.forget();
    }

    // About 1.3 s in conference, then the seat leaves and the caller is bridged to the third
    // party for about 1.3 s more.
    converse_one_second(&mut [&mut *x, &mut *y, &mut *z]);
    h.cmd(MediaCommand::Close { leg: b });
    h.cmd(MediaCommand::Bridge { leg: a, peer: c });
    h.barrier(a);
    converse_one_second(&mut [&mut *x, &mut *z]);
    h.cmd(MediaCommand::StopRecording { leg: a });
    match h.event() {
        MediaEvent::RecordingDone {
            leg,
            seconds,
            error: None,
            ..
        } => {
            assert_eq!(leg, a);
            assert!(seconds > 2.0, "{seconds} s recorded");
        }
        other => panic!("expected RecordingDone, got {other:?}"),
    }

    let (left, right) = read_wav(&path);
    let end = left.len() as f64 / RATE;
    // In conference: the caller left, the mix it hears (seat and third party) right.
    assert_hears(
        window(&left, 0.4, 1.0),
        &[500.0],
        &[1000.0, 1500.0],
        "left in conference",
    );
    assert_hears(
        window(&right, 0.4, 1.0),
        &[1000.0, 1500.0],
        &[500.0],
        "right in conference",
    );
    // Bridged to the third party: it is on the right, the seat is gone.
    let last = |x| window(x, end - 0.8, end - 0.2);
    assert_hears(
        last(&left),
        &[500.0],
        &[1000.0, 1500.0],
        "left after the transfer",
    );
    assert_hears(
        last(&right),
        &[1500.0],
        &[500.0, 1000.0],
        "right after the transfer",
    );
}

#[test]
fn a_bad_conference_is_ignored_and_the_bridge_goes_on() {
    let mut h = Harness::start((23480, 23499), 1);
    let mut call = ThreeWay::open(&mut h, 3);
    let a = call.a;
    let (b, c) = (a.partner(), a.third());
    h.cmd(MediaCommand::Bridge { leg: a, peer: b });
    h.cmd(MediaCommand::Close { leg: c });
    // One leg, a leg twice, a leg of another call, a leg not open, four legs, no leg.
    let other = LegId(4);
    h.open(other);
    for legs in [
        vec![a],
        vec![a, a],
        vec![a, other],
        vec![a, b, c],
        vec![a, b, c, a],
        vec![],
    ] {
        h.cmd(MediaCommand::Conference { legs });
    }
    h.cmd(MediaCommand::EndConference { leg: a });
    h.barrier(a);
    let [x, y, _] = &mut call.ends;
    x.forget();
    y.forget();
    converse_one_second(&mut [&mut *x, &mut *y]);
    assert_hears(&x.heard, &[1000.0], &[500.0, 1500.0], "caller");
    assert_hears(&y.heard, &[500.0], &[1000.0, 1500.0], "seat");
}
