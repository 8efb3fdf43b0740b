//! Loopback tests of the media plane: real UDP sockets on 127.0.0.1, the engine's worker threads,
//! and what a peer would see (packets) and the controller would hear (events).
//!
//! Waits are bounded by deadlines that only guard against hangs; no assertion depends on timing
//! except the media-timeout test, which by nature waits for silence to last.

use std::collections::HashMap;
use std::f64::consts::PI;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline::media::codec::Codec;
use hotline::media::control::{DigitSource, LegId, MediaCommand, MediaEvent, StreamParams};
use hotline::media::plane::{worker_index, InbandDtmf, MediaPlane, MediaPlaneConfig};
use hotline::media::prompt::Prompt;
use hotline::rtp::{write_header, DtmfSender, RtpPacket};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Failure guard for anything awaited.
const GUARD: Duration = Duration::from_secs(10);
const TE_PT: u8 = 101;

/// The plane, its event channel and a runtime to wait on that channel.
struct Harness {
    plane: MediaPlane,
    events: UnboundedReceiver<MediaEvent>,
    rt: tokio::runtime::Runtime,
}

impl Harness {
    fn start(ports: (u16, u16), workers: usize, timeout: Option<Duration>) -> Harness {
        let mut config = MediaPlaneConfig::new(LOCALHOST, ports.0, ports.1);
        config.workers = workers;
        config.media_timeout = timeout;
        config.inband_dtmf = InbandDtmf::Auto;
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

    /// The next event, or `None` after `wait`.
    fn event_within(&mut self, wait: Duration) -> Option<MediaEvent> {
        let events = &mut self.events;
        self.rt.block_on(async {
            tokio::time::timeout(wait, events.recv())
                .await
                .ok()
                .flatten()
        })
    }

    fn event(&mut self) -> MediaEvent {
        self.event_within(GUARD)
            .expect("no media event before the guard deadline")
    }

    fn open(&mut self, leg: u64) -> SocketAddr {
        self.cmd(MediaCommand::Open { leg: LegId(leg) });
        match self.event() {
            MediaEvent::Opened { leg: l, local } if l == LegId(leg) => local,
            other => panic!("expected Opened for leg {leg}, got {other:?}"),
        }
    }

    /// Waits until the worker of `leg` has applied every earlier command for it (opening an
    /// open leg is answered again); returns the other events that came first.
    fn barrier(&mut self, leg: LegId) -> Vec<MediaEvent> {
        self.cmd(MediaCommand::Open { leg });
        let mut others = Vec::new();
        loop {
            match self.event() {
                MediaEvent::Opened { leg: l, .. } if l == leg => return others,
                other => others.push(other),
            }
        }
    }

    fn stream(&self, leg: u64, remote: SocketAddr, codec: Codec, te: Option<u8>, receive: bool) {
        self.cmd(MediaCommand::Stream {
            leg: LegId(leg),
            params: StreamParams {
                remote,
                codec,
                payload_type: codec.payload_type(),
                telephone_event: te,
                send: true,
                receive,
            },
        });
    }
}

/// A received RTP packet, owned.
#[derive(Debug, Clone)]
struct Rx {
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

fn peer_socket() -> UdpSocket {
    let s = UdpSocket::bind((LOCALHOST, 0)).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    s
}

fn recv_rtp(sock: &UdpSocket) -> Rx {
    let mut buf = [0u8; 2048];
    let (n, _) = sock
        .recv_from(&mut buf)
        .expect("no RTP before the guard deadline");
    let p = RtpPacket::parse(&buf[..n]).unwrap();
    Rx {
        marker: p.marker,
        pt: p.payload_type,
        seq: p.sequence,
        ts: p.timestamp,
        ssrc: p.ssrc,
        payload: p.payload.to_vec(),
    }
}

/// An RTP datagram with a plain 12-byte header.
fn rtp(marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 12 + payload.len()];
    write_header(&mut buf, marker, pt, seq, ts, ssrc);
    buf[12..].copy_from_slice(payload);
    buf
}

/// `ms` milliseconds of a sine sum at 8 kHz, starting at sample `offset`.
fn tones(freqs: &[f64], amp: f64, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|n| {
            let t = n as f64 / 8000.0;
            freqs
                .iter()
                .map(|f| amp * (2.0 * PI * f * t).sin())
                .sum::<f64>() as i16
        })
        .collect()
}

/// A prompt whose every frame is loud (never codec silence).
fn loud_prompt(name: &str, frames: usize) -> Arc<Prompt> {
    Arc::new(Prompt::from_pcm(
        name,
        tones(&[400.0], 6000.0, frames * 160),
    ))
}

/// Asserts the stream invariants between two consecutive packets of one stream.
fn assert_continues(prev: &Rx, next: &Rx) {
    assert_eq!(next.ssrc, prev.ssrc, "SSRC must stay constant");
    assert_eq!(
        next.seq,
        prev.seq.wrapping_add(1),
        "sequence numbers must be consecutive"
    );
    let dts = next.ts.wrapping_sub(prev.ts);
    if next.marker {
        // After a late tick the timestamp jumps by whole frames, flagged by the marker.
        assert!(
            dts >= 160 && dts.is_multiple_of(160),
            "timestamp step {dts}"
        );
    } else {
        assert_eq!(dts, 160, "timestamp must advance 160 per packet");
    }
}

#[test]
fn plays_prompt_frames_in_order_then_silence() {
    let mut h = Harness::start((20000, 20019), 2, None);
    let peer = peer_socket();
    h.open(1);
    let prompt = loud_prompt("short", 6);
    h.cmd(MediaCommand::Play {
        leg: LegId(1),
        play: 77,
        prompts: vec![Arc::clone(&prompt)],
        barge_in: false,
    });
    h.stream(
        1,
        peer.local_addr().unwrap(),
        Codec::Pcma,
        Some(TE_PT),
        true,
    );

    let packets: Vec<Rx> = (0..10).map(|_| recv_rtp(&peer)).collect();
    assert!(
        packets[0].marker,
        "first packet of the stream carries the marker"
    );
    for w in packets.windows(2) {
        assert_continues(&w[0], &w[1]);
    }
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p.pt, 8);
        assert_eq!(p.payload.len(), 160);
        match prompt.frame(Codec::Pcma, i) {
            Some(frame) => assert_eq!(p.payload, frame, "frame {i}"),
            None => assert!(
                p.payload.iter().all(|&b| b == 0xD5),
                "packet {i} is silence"
            ),
        }
    }
    assert_eq!(
        h.event(),
        MediaEvent::PlayFinished {
            leg: LegId(1),
            play: 77
        }
    );
}

#[test]
fn symmetric_rtp_follows_the_real_source() {
    let mut h = Harness::start((20100, 20119), 2, None);
    let sdp_peer = peer_socket();
    let nat_peer = peer_socket();
    let local = h.open(3);
    h.stream(3, sdp_peer.local_addr().unwrap(), Codec::Pcmu, None, true);
    let first = recv_rtp(&sdp_peer);
    assert_eq!(first.pt, 0);
    for i in 0..3 {
        let ts = 1000 + 160 * u32::from(i);
        let pkt = rtp(i == 0, 0, 100 + i, ts, 0xABCD, &[0xFF; 160]);
        nat_peer.send_to(&pkt, local).unwrap();
    }
    let got = recv_rtp(&nat_peer);
    assert_eq!(
        got.ssrc, first.ssrc,
        "the leg's stream moved to where the peer's RTP comes from"
    );
}

/// Sends one RFC 4733 press of `key`; returns the next sequence number.
fn press(sock: &UdpSocket, to: SocketAddr, key: char, seq: u16, ts: u32) -> u16 {
    let mut seq = seq;
    for pkt in DtmfSender::new(key, 800, 160).unwrap() {
        let datagram = rtp(pkt.marker, TE_PT, seq, ts, 0x5EED, &pkt.payload());
        sock.send_to(&datagram, to).unwrap();
        seq = seq.wrapping_add(1);
    }
    seq
}

fn next_digit(h: &mut Harness) -> (char, DigitSource) {
    match h.event() {
        MediaEvent::Digit { digit, source, .. } => (digit, source),
        other => panic!("expected a digit, got {other:?}"),
    }
}

#[test]
fn rfc4733_each_press_reported_once() {
    let mut h = Harness::start((20200, 20219), 2, None);
    let peer = peer_socket();
    let local = h.open(5);
    h.stream(
        5,
        peer.local_addr().unwrap(),
        Codec::Pcmu,
        Some(TE_PT),
        true,
    );
    let mut seq = 10;
    seq = press(&peer, local, '5', seq, 8000);
    seq = press(&peer, local, '#', seq, 16000);
    // A third press closes the check: any duplicate of the first two would come before it.
    press(&peer, local, '2', seq, 24000);
    let digits: Vec<(char, DigitSource)> = (0..3).map(|_| next_digit(&mut h)).collect();
    assert_eq!(
        digits,
        vec![
            ('5', DigitSource::Rfc4733),
            ('#', DigitSource::Rfc4733),
            ('2', DigitSource::Rfc4733)
        ]
    );
}

#[test]
fn inband_tones_detected_without_telephone_event() {
    let mut h = Harness::start((20300, 20319), 2, None);
    let peer = peer_socket();
    let local = h.open(7);
    h.stream(7, peer.local_addr().unwrap(), Codec::Pcmu, None, true);
    // ptime 30 (240-byte payloads), as some trunks send: silence, '8' for 120 ms, silence, '3'.
    let mut pcm = vec![0i16; 240 * 3];
    pcm.extend(tones(&[852.0, 1336.0], 7000.0, 240 * 4));
    pcm.extend(vec![0i16; 240 * 4]);
    pcm.extend(tones(&[697.0, 1477.0], 7000.0, 240 * 4));
    pcm.extend(vec![0i16; 240 * 4]);
    for (i, chunk) in pcm.chunks(240).enumerate() {
        let mut payload = [0u8; 240];
        Codec::Pcmu.encode(chunk, &mut payload);
        let i = i as u16;
        let pkt = rtp(i == 0, 0, i, 240 * u32::from(i), 0x1234, &payload);
        peer.send_to(&pkt, local).unwrap();
    }
    assert_eq!(next_digit(&mut h), ('8', DigitSource::InBand));
    assert_eq!(next_digit(&mut h), ('3', DigitSource::InBand));
}

#[test]
fn barge_in_stops_the_prompt_at_the_first_digit() {
    let mut h = Harness::start((20400, 20419), 2, None);
    let peer = peer_socket();
    let local = h.open(9);
    let long = loud_prompt("long", 1000);
    h.cmd(MediaCommand::Play {
        leg: LegId(9),
        play: 1,
        prompts: vec![long],
        barge_in: true,
    });
    h.stream(
        9,
        peer.local_addr().unwrap(),
        Codec::Pcmu,
        Some(TE_PT),
        true,
    );
    let first = recv_rtp(&peer);
    assert_ne!(first.payload, vec![0xFF; 160], "the prompt is playing");
    press(&peer, local, '1', 1, 4000);
    assert_eq!(next_digit(&mut h), ('1', DigitSource::Rfc4733));
    // Packets already on their way may still carry the prompt; then only silence follows.
    let mut prev = first;
    let mut silent_run = 0;
    for _ in 0..200 {
        let p = recv_rtp(&peer);
        assert_continues(&prev, &p);
        if p.payload.iter().all(|&b| b == 0xFF) {
            silent_run += 1;
            if silent_run == 10 {
                break;
            }
        } else {
            assert_eq!(
                silent_run, 0,
                "prompt audio after silence: playback was not stopped"
            );
        }
        prev = p;
    }
    assert_eq!(silent_run, 10, "playback did not stop after the digit");
    // A new playback reports its own PlayFinished, and the stopped one never reported.
    h.cmd(MediaCommand::Play {
        leg: LegId(9),
        play: 2,
        prompts: vec![loud_prompt("beep", 2)],
        barge_in: false,
    });
    assert_eq!(
        h.event(),
        MediaEvent::PlayFinished {
            leg: LegId(9),
            play: 2
        }
    );
}

#[test]
fn media_timeout_once_and_not_on_hold() {
    let mut h = Harness::start((20500, 20519), 1, Some(Duration::from_millis(300)));
    let peer = peer_socket();
    h.open(1);
    h.open(2);
    h.stream(1, peer.local_addr().unwrap(), Codec::Pcmu, None, true);
    h.stream(2, peer.local_addr().unwrap(), Codec::Pcmu, None, false);
    assert_eq!(h.event(), MediaEvent::Timeout { leg: LegId(1) });
    // Leg 1 must not report again, leg 2 (on hold) never: one second of quiet.
    let until = Instant::now() + Duration::from_secs(1);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if let Some(e) = h.event_within(left) {
            panic!("unexpected event {e:?}");
        }
    }
}

#[test]
fn close_returns_the_port_to_the_pool() {
    let mut h = Harness::start((20600, 20619), 2, None);
    for leg in 0..1000 {
        h.open(leg);
        h.cmd(MediaCommand::Close { leg: LegId(leg) });
    }
    // One more leg on each worker: answered only after that worker's earlier closes.
    h.open(1000);
    h.open(1001);
    assert_eq!(h.plane.active_legs(), 2);
}

#[test]
fn legs_opened_after_a_peak_was_given_back_all_stream() {
    let mut h = Harness::start((22000, 22999), 1, None);
    // A peak of 200 legs on the one worker; then all but legs 0 and 100 close, which leaves
    // free slots both in the middle of the table and at its end.
    for leg in 0..200 {
        h.open(leg);
    }
    for leg in (1..200).filter(|&leg| leg != 100) {
        h.cmd(MediaCommand::Close { leg: LegId(leg) });
    }
    // Leg 100 plays 10 frames: when they are done, 200 ms of the worker's clock have passed,
    // and with them two of its housekeeping passes (every 100 ms), which trim the table.
    let peer = peer_socket();
    h.cmd(MediaCommand::Play {
        leg: LegId(100),
        play: 1,
        prompts: vec![loud_prompt("peak", 10)],
        barge_in: false,
    });
    h.stream(100, peer.local_addr().unwrap(), Codec::Pcma, None, false);
    assert_eq!(
        h.event(),
        MediaEvent::PlayFinished {
            leg: LegId(100),
            play: 1
        }
    );
    // 60 new legs take the free slots, in the middle and past the trimmed end.
    for leg in 200..260 {
        h.open(leg);
        h.stream(leg, peer.local_addr().unwrap(), Codec::Pcma, None, false);
    }
    assert_eq!(h.plane.active_legs(), 62);
    let mut ssrcs = std::collections::HashSet::new();
    let deadline = Instant::now() + GUARD;
    while ssrcs.len() < 61 {
        assert!(
            Instant::now() < deadline,
            "only {} legs streamed",
            ssrcs.len()
        );
        ssrcs.insert(recv_rtp(&peer).ssrc);
    }
}

#[test]
fn exhausted_pool_fails_the_open() {
    let mut h = Harness::start((20700, 20703), 1, None);
    h.open(1);
    h.open(2);
    h.cmd(MediaCommand::Open { leg: LegId(3) });
    assert_eq!(h.event(), MediaEvent::OpenFailed { leg: LegId(3) });
    assert_eq!(h.plane.active_legs(), 2);
    h.cmd(MediaCommand::Close { leg: LegId(1) });
    h.open(4);
}

#[test]
fn port_held_elsewhere_is_skipped() {
    let Ok(_squatter) = UdpSocket::bind((LOCALHOST, 20800)) else {
        return; // Something else holds it: the point is made either way.
    };
    let mut h = Harness::start((20800, 20803), 1, None);
    assert_eq!(h.open(1).port(), 20802);
}

#[test]
fn many_legs_all_stream() {
    const LEGS: u64 = 500;
    let mut h = Harness::start((21000, 21999), 2, None);
    let peers: Vec<UdpSocket> = (0..10).map(|_| peer_socket()).collect();
    for leg in 0..LEGS {
        h.cmd(MediaCommand::Open { leg: LegId(leg) });
    }
    let mut opened = 0;
    while opened < LEGS {
        match h.event() {
            MediaEvent::Opened { .. } => opened += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    let prompt = loud_prompt("menu", 10);
    for leg in 0..LEGS {
        let peer = &peers[(leg % 10) as usize];
        h.cmd(MediaCommand::Play {
            leg: LegId(leg),
            play: leg,
            prompts: vec![Arc::clone(&prompt)],
            barge_in: false,
        });
        h.stream(leg, peer.local_addr().unwrap(), Codec::Pcma, None, true);
    }
    assert_eq!(h.plane.active_legs(), LEGS as usize);

    // Read all peers until every stream delivered 45 packets (about a second of audio).
    let mut counts: HashMap<u32, u32> = HashMap::new();
    let deadline = Instant::now() + GUARD;
    let mut buf = [0u8; 2048];
    for p in &peers {
        p.set_nonblocking(true).unwrap();
    }
    while counts.len() < LEGS as usize || counts.values().any(|&c| c < 45) {
        assert!(
            Instant::now() < deadline,
            "only {} streams arrived",
            counts.len()
        );
        let mut got_any = false;
        for p in &peers {
            while let Ok((n, _)) = p.recv_from(&mut buf) {
                let pkt = RtpPacket::parse(&buf[..n]).unwrap();
                *counts.entry(pkt.ssrc).or_default() += 1;
                got_any = true;
            }
        }
        if !got_any {
            std::thread::yield_now();
        }
    }
    let mut finished = 0;
    while finished < LEGS {
        match h.event() {
            MediaEvent::PlayFinished { .. } => finished += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bridging two legs: X (PCMA) on leg A, Y (PCMU) on its partner B.

/// A far end sending known audio to the engine in packets of `ptime` samples, paced by the
/// engine's own clock: each packet it receives from its leg (one per 20 ms) lets it send 160
/// more samples' worth. Packets carry consecutive sequence numbers and timestamps.
struct FarEnd<'a> {
    sock: &'a UdpSocket,
    to: SocketAddr,
    pt: u8,
    ssrc: u32,
    /// The whole encoded signal.
    audio: Vec<u8>,
    ptime: usize,
    /// Samples sent so far.
    sent: usize,
    /// Samples the engine's clock allows beyond `sent`.
    owed: usize,
    seq: u16,
}

impl<'a> FarEnd<'a> {
    fn new(sock: &'a UdpSocket, to: SocketAddr, codec: Codec, ptime: usize, pcm: &[i16]) -> Self {
        let mut audio = vec![0u8; pcm.len()];
        codec.encode(pcm, &mut audio);
        FarEnd {
            sock,
            to,
            pt: codec.payload_type(),
            ssrc: 0xFA2E_0000 | u32::from(codec.payload_type()),
            audio,
            ptime,
            sent: 0,
            owed: 0,
            seq: 1,
        }
    }

    /// One 20 ms of the engine's clock went by: send what it allows.
    fn tick(&mut self) {
        self.owed += 160;
        while self.owed >= self.ptime && !self.done() {
            let chunk = &self.audio[self.sent..self.sent + self.ptime];
            let pkt = rtp(
                self.sent == 0,
                self.pt,
                self.seq,
                self.sent as u32,
                self.ssrc,
                chunk,
            );
            self.sock.send_to(&pkt, self.to).unwrap();
            self.seq = self.seq.wrapping_add(1);
            self.sent += self.ptime;
            self.owed -= self.ptime;
        }
    }

    fn done(&self) -> bool {
        self.sent + self.ptime > self.audio.len()
    }

    /// What the other leg's far end should receive of this audio: decoded and re-encoded with
    /// `codec`.
    fn transcoded(&self, from: Codec, to: Codec) -> Vec<u8> {
        self.audio
            .iter()
            .map(|&c| to.encode_sample(from.decode_sample(c)))
            .collect()
    }
}

fn is_silence(p: &Rx, codec: Codec) -> bool {
    p.payload.iter().all(|&b| b == codec.silence_byte())
}

/// Reads `sock` until audio was seen and then `quiet` silent packets in a row (at most `max`).
fn recv_until_quiet(sock: &UdpSocket, codec: Codec, quiet: usize, max: usize) -> Vec<Rx> {
    let mut got = Vec::new();
    let mut heard = false;
    let mut silent = 0;
    while got.len() < max {
        let p = recv_rtp(sock);
        if is_silence(&p, codec) {
            silent += 1;
        } else {
            heard = true;
            silent = 0;
        }
        got.push(p);
        if heard && silent >= quiet {
            break;
        }
    }
    got
}

/// Where each non-silent packet's payload lies in `expected` (sample offsets), searched
/// forward: every one must be found, each after the one before.
fn locate(packets: &[Rx], codec: Codec, expected: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut from = 0;
    for (i, p) in packets.iter().enumerate() {
        if is_silence(p, codec) {
            continue;
        }
        let n = p.payload.len();
        let at = (from..(expected.len() + 1).saturating_sub(n))
            .find(|&o| expected[o..o + n] == p.payload[..])
            .unwrap_or_else(|| panic!("packet {i} carries audio not found after sample {from}"));
        offsets.push(at);
        from = at + n;
    }
    offsets
}

/// Drops what is already queued on `sock`.
fn drain(sock: &UdpSocket) {
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    while sock.recv_from(&mut buf).is_ok() {}
    sock.set_nonblocking(false).unwrap();
}

/// Opens A = `LegId(n)` and B = A's partner, streams A toward X (PCMA) and B toward Y (PCMU),
/// with telephone-event, and bridges them; returns A's and B's local addresses.
fn bridged_pair(
    h: &mut Harness,
    a: LegId,
    x: &UdpSocket,
    y: &UdpSocket,
) -> (SocketAddr, SocketAddr) {
    let b = a.partner();
    let la = h.open(a.0);
    let lb = h.open(b.0);
    let workers = h.plane.workers();
    let w = worker_index(a, workers);
    for local in [la, lb] {
        assert_eq!(
            usize::from(local.port() / 2) % workers,
            w,
            "both legs take ports of their shared worker's pool"
        );
    }
    h.stream(a.0, x.local_addr().unwrap(), Codec::Pcma, Some(TE_PT), true);
    h.stream(b.0, y.local_addr().unwrap(), Codec::Pcmu, Some(TE_PT), true);
    h.cmd(MediaCommand::Bridge { leg: a, peer: b });
    assert_eq!(h.barrier(a), vec![]);
    (la, lb)
}

#[test]
fn bridge_relays_pcma_to_pcmu_on_the_sending_legs_own_stream() {
    let mut h = Harness::start((22000, 22029), 3, None);
    let (x, y) = (peer_socket(), peer_socket());
    let a = LegId(4);
    let (la, _) = bridged_pair(&mut h, a, &x, &y);

    // X sends 50 frames (1 s) of a 431 Hz tone, ptime 20, one per packet A sends it.
    let mut far_x = FarEnd::new(&x, la, Codec::Pcma, 160, &tones(&[431.0], 8000.0, 50 * 160));
    while !far_x.done() {
        let from_a = recv_rtp(&x);
        assert!(
            is_silence(&from_a, Codec::Pcma),
            "Y sends nothing: A is silent"
        );
        far_x.tick();
    }
    // A key press on X is A's digit and is not relayed as audio.
    press(&x, la, '5', far_x.seq, 9000);
    assert_eq!(
        h.event(),
        MediaEvent::Digit {
            leg: a,
            digit: '5',
            source: DigitSource::Rfc4733
        }
    );

    let at_y = recv_until_quiet(&y, Codec::Pcmu, 10, 500);
    for w in at_y.windows(2) {
        assert_continues(&w[0], &w[1]);
    }
    assert!(at_y.iter().all(|p| p.pt == 0 && p.payload.len() == 160));
    let heard = locate(
        &at_y,
        Codec::Pcmu,
        &far_x.transcoded(Codec::Pcma, Codec::Pcmu),
    );
    // Each 20 ms frame of X comes out whole, in order, from the start of the tone.
    assert_eq!(
        heard.first(),
        Some(&0),
        "the tone is relayed from its first sample"
    );
    assert!(
        heard.iter().all(|o| o % 160 == 0),
        "frames stay whole: {heard:?}"
    );
    assert!(
        heard.len() >= 45,
        "only {} of 50 frames relayed: {heard:?}",
        heard.len()
    );
}

#[test]
fn bridge_relays_ptime_30_prompt_wins_unbridge_and_close_silence() {
    let mut h = Harness::start((22100, 22129), 2, None);
    let (x, y) = (peer_socket(), peer_socket());
    let a = LegId(9);
    let b = a.partner();
    let (_, lb) = bridged_pair(&mut h, a, &x, &y);

    // Y sends 1.2 s of a 1123 Hz tone in 30 ms packets (240 bytes), paced by B's packets;
    // then the tone goes on, paced by A's packets to X.
    let pcm = tones(&[1123.0], 8000.0, 5 * 8000);
    let mut far_y = FarEnd::new(&y, lb, Codec::Pcmu, 240, &pcm);
    while far_y.sent < 40 * 240 {
        recv_rtp(&y);
        far_y.tick();
    }
    let expected = far_y.transcoded(Codec::Pcmu, Codec::Pcma);
    let at_x = recv_until_quiet(&x, Codec::Pcma, 10, 500);
    for w in at_x.windows(2) {
        assert_continues(&w[0], &w[1]);
    }
    assert!(at_x.iter().all(|p| p.pt == 8 && p.payload.len() == 160));
    let heard = locate(&at_x, Codec::Pcma, &expected[..40 * 240]);
    assert_eq!(
        heard.first(),
        Some(&0),
        "Y's audio is relayed from its first sample"
    );
    assert!(
        heard.len() >= 54,
        "only {} of 60 frames relayed: {heard:?}",
        heard.len()
    );
    assert!(
        heard.windows(2).all(|w| w[1] == w[0] + 160),
        "Y's audio is relayed without a gap: {heard:?}"
    );

    // A prompt on A wins over Y's audio; Y's audio comes back after it.
    let prompt = loud_prompt("menu", 10);
    h.cmd(MediaCommand::Play {
        leg: a,
        play: 5,
        prompts: vec![Arc::clone(&prompt)],
        barge_in: false,
    });
    let mut seen = Vec::new();
    let mut after_prompt = 0;
    while after_prompt < 5 {
        assert!(seen.len() < 200, "prompt or relayed audio missing");
        let p = recv_rtp(&x);
        far_y.tick();
        if prompt.frame(Codec::Pcma, 0) == Some(&p.payload[..]) || !seen.is_empty() {
            let k = seen.len();
            match prompt.frame(Codec::Pcma, k) {
                Some(frame) => assert_eq!(p.payload, frame, "prompt frame {k}"),
                None if !is_silence(&p, Codec::Pcma) => after_prompt += 1,
                None => {}
            }
            seen.push(p);
        }
    }
    assert_eq!(h.event(), MediaEvent::PlayFinished { leg: a, play: 5 });
    // In order, and Y's audio only (locate panics on anything else).
    let resumed = locate(&seen[10..], Codec::Pcma, &expected[40 * 240..]);
    assert!(resumed.len() >= 5);

    // Unbridged (from B's side): X hears silence while Y still talks.
    h.cmd(MediaCommand::Unbridge { leg: b });
    h.barrier(a);
    drain(&x);
    for _ in 0..20 {
        let p = recv_rtp(&x);
        far_y.tick();
        assert!(is_silence(&p, Codec::Pcma), "audio relayed after Unbridge");
    }

    // Bridged again, then B closes: A's bridge goes with it, even when a new leg with B's id
    // takes B's place and hears Y.
    h.cmd(MediaCommand::Bridge { leg: b, peer: a });
    h.barrier(a);
    let mut relayed = false;
    for _ in 0..50 {
        let p = recv_rtp(&x);
        far_y.tick();
        if !is_silence(&p, Codec::Pcma) {
            relayed = true;
            break;
        }
    }
    assert!(relayed, "no audio relayed after bridging again");
    h.cmd(MediaCommand::Close { leg: b });
    let lb2 = h.open(b.0);
    h.stream(b.0, y.local_addr().unwrap(), Codec::Pcmu, Some(TE_PT), true);
    h.barrier(a);
    far_y.to = lb2;
    drain(&x);
    for _ in 0..20 {
        let p = recv_rtp(&x);
        far_y.tick();
        assert!(
            is_silence(&p, Codec::Pcma),
            "audio relayed after the peer closed"
        );
    }
    // The new B bridges like any leg.
    h.cmd(MediaCommand::Bridge { leg: a, peer: b });
    h.barrier(a);
    let mut relayed = false;
    for _ in 0..50 {
        let p = recv_rtp(&x);
        far_y.tick();
        if !is_silence(&p, Codec::Pcma) {
            relayed = true;
            break;
        }
    }
    assert!(relayed, "no audio relayed from the new B");
}

#[test]
fn bridges_of_unknown_or_far_legs_are_ignored() {
    let mut h = Harness::start((22200, 22219), 2, None);
    let (x1, x2) = (peer_socket(), peer_socket());
    let l1 = h.open(1);
    h.open(2);
    h.stream(1, x1.local_addr().unwrap(), Codec::Pcma, None, true);
    h.stream(2, x2.local_addr().unwrap(), Codec::Pcma, None, true);
    // Legs 1 and 2 live on different workers; 99 was never opened; a leg cannot hear itself.
    for (leg, peer) in [(1, 2), (1, 99), (99, 1), (1, 1)] {
        let cmd = MediaCommand::Bridge {
            leg: LegId(leg),
            peer: LegId(peer),
        };
        h.plane.command(cmd).unwrap();
    }
    h.cmd(MediaCommand::Unbridge { leg: LegId(77) });
    h.cmd(MediaCommand::Unbridge { leg: LegId(1) });
    // Both workers are alive, and what X1 says to leg 1 goes nowhere.
    assert_eq!(h.barrier(LegId(1)), vec![]);
    assert_eq!(h.barrier(LegId(2)), vec![]);
    drain(&x2);
    let mut far = FarEnd::new(&x1, l1, Codec::Pcma, 160, &tones(&[700.0], 8000.0, 8000));
    for _ in 0..25 {
        assert!(is_silence(&recv_rtp(&x1), Codec::Pcma));
        assert!(is_silence(&recv_rtp(&x2), Codec::Pcma));
        far.tick();
    }
}
