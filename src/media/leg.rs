//! One RTP leg as a worker holds it: socket, outgoing stream state, playback, DTMF detection,
//! symmetric-RTP latching and the media timeout.
//!
//! Nothing here allocates per packet: the worker lends its send and receive buffers, and the
//! detectors are plain fixed-size values inside the leg.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;

use super::codec::Codec;
use super::control::{DigitSource, LegId, MediaEvent, StreamParams};
use super::dtmf_tone::DtmfToneDetector;
use super::plane::InbandDtmf;
use super::prompt::Prompt;
use crate::rtp::{is_rtcp, write_header, DtmfReceiver, RtpPacket, RTP_HEADER_LEN};

/// Samples (and RTP timestamp units) in one 20 ms G.711 frame.
pub const FRAME_SAMPLES: usize = 160;

/// Bytes of the send buffer a worker lends to [`Leg::send_tick`]: header plus one frame.
pub const SEND_BUF_LEN: usize = RTP_HEADER_LEN + FRAME_SAMPLES;

/// Receive errors in one drain after which a socket is left alone until it is readable again.
const MAX_RECV_ERRORS: u32 = 4;

/// Packets in a row from a new source (other address and SSRC) before the leg re-latches to it.
pub const RELATCH_PACKETS: u8 = 5;

/// A playback in progress: prompts in order and the position of the next frame.
#[derive(Debug)]
struct Playback {
    /// The controller's number for it.
    play: u64,
    /// The prompts, played one after the other.
    prompts: Vec<Arc<Prompt>>,
    /// Index of the current prompt.
    prompt: usize,
    /// Index of the next frame within the current prompt.
    frame: usize,
    /// Whether a digit stops it.
    barge_in: bool,
}

impl Playback {
    /// Copies the next frame into `out` (padding a short frame with silence) and advances.
    /// Returns false when the playback has no frame left.
    fn next_frame(&mut self, codec: Codec, out: &mut [u8]) -> bool {
        while let Some(prompt) = self.prompts.get(self.prompt) {
            if let Some(frame) = prompt.frame(codec, self.frame) {
                let n = frame.len().min(out.len());
                out[..n].copy_from_slice(&frame[..n]);
                out[n..].fill(codec.silence_byte());
                self.frame += 1;
                return true;
            }
            self.prompt += 1;
            self.frame = 0;
        }
        false
    }

    /// True when no frame is left (skips over exhausted and empty prompts).
    fn is_finished(&mut self, codec: Codec) -> bool {
        while let Some(prompt) = self.prompts.get(self.prompt) {
            if prompt.frame(codec, self.frame).is_some() {
                return false;
            }
            self.prompt += 1;
            self.frame = 0;
        }
        true
    }
}

/// Who the leg believes its peer is (symmetric RTP).
#[derive(Debug, Default)]
struct PeerLatch {
    /// SSRC of the peer's stream, once a packet was accepted.
    ssrc: Option<u32>,
    /// A different source seen lately, and how many packets in a row came from it.
    candidate: Option<(SocketAddr, u32, u8)>,
}

/// One leg's state inside its worker.
#[derive(Debug)]
pub struct Leg {
    /// The leg's id.
    pub id: LegId,
    /// The bound RTP socket (registered with the worker's poll).
    pub socket: UdpSocket,
    /// The pool port the socket is bound on.
    pub port: u16,
    /// The local RTP address.
    pub local: SocketAddr,
    /// What was negotiated; `None` until the first `Stream` command.
    params: Option<StreamParams>,
    /// Where packets go: the SDP address until the peer's RTP shows where it really is.
    remote: SocketAddr,
    peer: PeerLatch,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    /// Set the marker bit on the next packet sent.
    marker: bool,
    playback: Option<Playback>,
    rfc4733: DtmfReceiver,
    /// The Goertzel detector, when in-band detection is on for this leg.
    tones: Option<DtmfToneDetector>,
    /// When RTP last arrived from the peer (or the stream started or resumed).
    last_rx: Instant,
    /// The media timeout was reported; it is not reported again.
    timed_out: bool,
}

impl Leg {
    /// A fresh leg with random SSRC, sequence and timestamp starts (`random` from the worker).
    pub fn new(
        id: LegId,
        socket: UdpSocket,
        port: u16,
        local: SocketAddr,
        random: u64,
        now: Instant,
    ) -> Leg {
        Leg {
            id,
            socket,
            port,
            local,
            params: None,
            remote: local,
            peer: PeerLatch::default(),
            ssrc: (random >> 32) as u32,
            seq: (random >> 16) as u16,
            timestamp: random as u32 ^ (random >> 40) as u32,
            marker: true,
            playback: None,
            rfc4733: DtmfReceiver::new(),
            tones: None,
            last_rx: now,
            timed_out: false,
        }
    }

    /// Where the leg sends RTP now.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Applies a `Stream` command: start, re-negotiation, hold or resume.
    pub fn apply_stream(&mut self, params: StreamParams, inband: InbandDtmf, now: Instant) {
        let old = self.params.replace(params);
        match old {
            None => {
                self.remote = params.remote;
                self.last_rx = now;
                self.marker = true;
            }
            Some(old) => {
                // An unspecified address (old-style hold, c=0.0.0.0) keeps the latched peer.
                if old.remote != params.remote && is_usable(params.remote) {
                    // A new address in SDP: a new peer, latch afresh.
                    self.remote = params.remote;
                    self.peer = PeerLatch::default();
                }
                if params.send && !old.send {
                    self.marker = true;
                }
                if params.receive && !old.receive {
                    self.last_rx = now;
                }
            }
        }
        let want_tones = match inband {
            InbandDtmf::On => true,
            InbandDtmf::Off => false,
            InbandDtmf::Auto => params.telephone_event.is_none(),
        };
        match (want_tones, self.tones.is_some()) {
            (true, false) => self.tones = Some(DtmfToneDetector::new()),
            (false, true) => self.tones = None,
            _ => {}
        }
    }

    /// Replaces the playback (an empty list finishes with the leg's next packet).
    pub fn play(&mut self, play: u64, prompts: Vec<Arc<Prompt>>, barge_in: bool) {
        self.playback = Some(Playback {
            play,
            prompts,
            prompt: 0,
            frame: 0,
            barge_in,
        });
    }

    /// Stops the playback without a `PlayFinished`.
    pub fn stop_play(&mut self) {
        self.playback = None;
    }

    /// Whether the leg is playing a prompt.
    pub fn is_playing(&self) -> bool {
        self.playback.is_some()
    }

    /// One pacing tick: sends one packet (prompt frame or silence) when the stream is started
    /// and may send, after `skipped` whole 20 ms cycles were missed (their timestamps are
    /// skipped too).
    ///
    /// Playback advances only with packets actually sent, so a held leg resumes its prompt
    /// where it stopped. Returns whether a packet was handed to the kernel.
    pub fn send_tick(
        &mut self,
        skipped: u32,
        buf: &mut [u8; SEND_BUF_LEN],
        emit: &mut impl FnMut(MediaEvent),
    ) -> bool {
        let Some(params) = self.params else {
            return false;
        };
        let frame_ts = FRAME_SAMPLES as u32;
        if skipped > 0 {
            self.timestamp = self.timestamp.wrapping_add(frame_ts.wrapping_mul(skipped));
            self.marker = true;
        }
        if !params.send || !is_usable(self.remote) {
            self.timestamp = self.timestamp.wrapping_add(frame_ts);
            return false;
        }
        let (header, payload) = buf.split_at_mut(RTP_HEADER_LEN);
        let mut playing = false;
        if let Some(pb) = self.playback.as_mut() {
            playing = pb.next_frame(params.codec, payload);
        }
        if !playing {
            payload.fill(params.codec.silence_byte());
        }
        write_header(
            header,
            self.marker,
            params.payload_type,
            self.seq,
            self.timestamp,
            self.ssrc,
        );
        let sent = match self.socket.send_to(&buf[..], self.remote) {
            Ok(_) => true,
            Err(e) => {
                // WouldBlock (socket buffer full) or a transient route error: this frame is lost,
                // the stream goes on at the next tick.
                tracing::trace!(leg = self.id.0, error = %e, "RTP send failed");
                false
            }
        };
        self.marker = false;
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(frame_ts);
        self.finish_playback_if_done(params.codec, emit);
        sent
    }

    /// Reports `PlayFinished` and drops the playback once its last frame has gone out.
    fn finish_playback_if_done(&mut self, codec: Codec, emit: &mut impl FnMut(MediaEvent)) {
        if let Some(pb) = self.playback.as_mut() {
            if pb.is_finished(codec) {
                let play = pb.play;
                self.playback = None;
                emit(MediaEvent::PlayFinished { leg: self.id, play });
            }
        }
    }

    /// Handles one datagram from `src`: latching, DTMF (RFC 4733 and in-band), liveness.
    ///
    /// RTCP, garbage, packets before the stream started and packets from a source the leg has
    /// not latched to are dropped silently.
    pub fn on_datagram(
        &mut self,
        data: &[u8],
        src: SocketAddr,
        now: Instant,
        emit: &mut impl FnMut(MediaEvent),
    ) {
        let Some(params) = self.params else {
            return;
        };
        if is_rtcp(data) {
            return;
        }
        let Ok(pkt) = RtpPacket::parse(data) else {
            return;
        };
        if !self.accept_source(src, pkt.ssrc) {
            return;
        }
        self.last_rx = now;
        if Some(pkt.payload_type) == params.telephone_event {
            if let Some(digit) =
                self.rfc4733
                    .on_packet(pkt.timestamp, pkt.ssrc, pkt.sequence, pkt.payload)
            {
                self.on_digit(digit, DigitSource::Rfc4733, emit);
            }
        } else if pkt.payload_type == params.payload_type {
            self.detect_tones(params.codec, pkt.payload, emit);
        } else if let Some(codec) = Codec::from_payload_type(pkt.payload_type) {
            // The other G.711 law under its static payload type (some peers switch).
            self.detect_tones(codec, pkt.payload, emit);
        }
    }

    /// Feeds an audio payload of any length to the in-band detector, 160 samples at a time.
    fn detect_tones(&mut self, codec: Codec, payload: &[u8], emit: &mut impl FnMut(MediaEvent)) {
        let Some(detector) = self.tones.as_mut() else {
            return;
        };
        let mut pcm = [0i16; FRAME_SAMPLES];
        let mut found = None;
        for chunk in payload.chunks(FRAME_SAMPLES) {
            let n = codec.decode(chunk, &mut pcm);
            if let Some(digit) = detector.process(&pcm[..n]) {
                found = Some(digit);
            }
        }
        if let Some(digit) = found {
            self.on_digit(digit, DigitSource::InBand, emit);
        }
    }

    /// Reports a digit and applies barge-in.
    fn on_digit(&mut self, digit: char, source: DigitSource, emit: &mut impl FnMut(MediaEvent)) {
        if self.playback.as_ref().is_some_and(|pb| pb.barge_in) {
            self.playback = None;
        }
        emit(MediaEvent::Digit {
            leg: self.id,
            digit,
            source,
        });
    }

    /// Symmetric RTP: decides whether a packet comes from the peer, latching `remote` to it.
    ///
    /// The first packet latches; later packets with the latched SSRC move the latch (NAT
    /// rebinding); a new SSRC from the latched address is the peer restarting its stream; a
    /// new address with a new SSRC takes over only after [`RELATCH_PACKETS`] in a row.
    fn accept_source(&mut self, src: SocketAddr, ssrc: u32) -> bool {
        let peer = &mut self.peer;
        match peer.ssrc {
            Some(known) if known == ssrc => {}
            None => {}
            Some(_) if src == self.remote => {}
            Some(_) => {
                let count = match peer.candidate {
                    Some((addr, s, n)) if addr == src && s == ssrc => n.saturating_add(1),
                    _ => 1,
                };
                if count < RELATCH_PACKETS {
                    peer.candidate = Some((src, ssrc, count));
                    return false;
                }
            }
        }
        peer.ssrc = Some(ssrc);
        peer.candidate = None;
        self.remote = src;
        true
    }

    /// Reports `Timeout` once when the started, receiving leg heard nothing for `timeout`.
    pub fn check_timeout(
        &mut self,
        now: Instant,
        timeout: Duration,
        emit: &mut impl FnMut(MediaEvent),
    ) {
        let receiving = self.params.is_some_and(|p| p.receive);
        if receiving && !self.timed_out && now.saturating_duration_since(self.last_rx) >= timeout {
            self.timed_out = true;
            emit(MediaEvent::Timeout { leg: self.id });
        }
    }

    /// Drains the socket into `buf` (at most `budget` datagrams); returns false when the budget
    /// ran out before the socket said `WouldBlock` (more may be waiting).
    pub fn receive(
        &mut self,
        buf: &mut [u8],
        budget: usize,
        now: Instant,
        emit: &mut impl FnMut(MediaEvent),
    ) -> bool {
        let mut errors = 0;
        for _ in 0..budget {
            match self.socket.recv_from(buf) {
                Ok((len, src)) => {
                    let data = buf.get(..len).unwrap_or_default();
                    self.on_datagram(data, src, now, emit);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) => {
                    // A queued ICMP error or an interrupt: datagrams may still wait behind it,
                    // but a socket that keeps failing is left until its next readiness event.
                    tracing::debug!(leg = self.id.0, error = %e, "RTP receive error");
                    errors += 1;
                    if errors >= MAX_RECV_ERRORS {
                        return true;
                    }
                }
            }
        }
        false
    }
}

/// Whether packets can be sent to `addr` (not 0.0.0.0 / :: and not port 0).
fn is_usable(addr: SocketAddr) -> bool {
    !addr.ip().is_unspecified() && addr.port() != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg() -> Leg {
        let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let local = socket.local_addr().unwrap();
        let mut leg = Leg::new(
            LegId(1),
            socket,
            local.port(),
            local,
            0x1234_5678_9abc_def0,
            Instant::now(),
        );
        let params = StreamParams {
            remote: "127.0.0.1:5000".parse().unwrap(),
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event: Some(101),
            send: true,
            receive: true,
        };
        leg.apply_stream(params, InbandDtmf::Auto, Instant::now());
        leg
    }

    fn feed(leg: &mut Leg, from: &str, ssrc: u32) {
        let mut pkt = [0xFFu8; 172];
        write_header(&mut pkt, false, 0, 1, 160, ssrc);
        leg.on_datagram(&pkt, from.parse().unwrap(), Instant::now(), &mut |_| {});
    }

    #[test]
    fn latches_to_the_first_source_and_follows_its_ssrc() {
        let mut leg = leg();
        feed(&mut leg, "10.0.0.1:4000", 7);
        assert_eq!(leg.remote(), "10.0.0.1:4000".parse().unwrap());
        // NAT rebinding: same SSRC, new port.
        feed(&mut leg, "10.0.0.1:4002", 7);
        assert_eq!(leg.remote(), "10.0.0.1:4002".parse().unwrap());
        // The peer restarts its stream from the same address.
        feed(&mut leg, "10.0.0.1:4002", 8);
        assert_eq!(leg.peer.ssrc, Some(8));
    }

    #[test]
    fn a_stranger_takes_over_only_when_it_persists() {
        let mut leg = leg();
        feed(&mut leg, "10.0.0.1:4000", 7);
        for _ in 1..RELATCH_PACKETS {
            feed(&mut leg, "10.9.9.9:6666", 99);
        }
        assert_eq!(leg.remote(), "10.0.0.1:4000".parse().unwrap());
        feed(&mut leg, "10.0.0.1:4000", 7);
        feed(&mut leg, "10.9.9.9:6666", 99);
        assert_eq!(leg.remote(), "10.0.0.1:4000".parse().unwrap());
        for _ in 1..RELATCH_PACKETS {
            feed(&mut leg, "10.9.9.9:6666", 99);
        }
        assert_eq!(leg.remote(), "10.9.9.9:6666".parse().unwrap());
    }

    #[test]
    fn garbage_and_rtcp_are_ignored() {
        let mut leg = leg();
        let from = "10.0.0.1:4000".parse().unwrap();
        leg.on_datagram(&[1, 2, 3], from, Instant::now(), &mut |_| {});
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0];
        leg.on_datagram(&rtcp, from, Instant::now(), &mut |_| {});
        assert_eq!(leg.peer.ssrc, None);
        assert_eq!(leg.remote(), "127.0.0.1:5000".parse().unwrap());
    }

    #[test]
    fn unspecified_sdp_address_keeps_the_latch() {
        let mut leg = leg();
        feed(&mut leg, "10.0.0.1:4000", 7);
        let mut params = leg.params.unwrap();
        params.remote = "0.0.0.0:5000".parse().unwrap();
        leg.apply_stream(params, InbandDtmf::Auto, Instant::now());
        assert_eq!(leg.remote(), "10.0.0.1:4000".parse().unwrap());
    }
}
