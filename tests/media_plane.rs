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
use hotline::media::plane::{InbandDtmf, MediaPlane, MediaPlaneConfig};
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
