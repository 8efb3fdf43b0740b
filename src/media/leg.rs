//! One RTP leg as a worker holds it: socket, outgoing stream state, playback, relayed audio
//! from a bridged peer, its side of a conference, capture for a recording, DTMF detection,
//! symmetric-RTP latching and the media timeout.
//!
//! Nothing here allocates per packet: the worker lends its send and receive buffers, the
//! detectors are plain fixed-size values inside the leg, and a bridged leg's relay FIFO (a
//! conferenced leg's [`Party`], a recorded leg's capture FIFO) is allocated once when it is
//! bridged (conferenced, recorded).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;

use super::codec::Codec;
use super::control::{DigitSource, LegId, MediaEvent, StreamParams};
use super::dtmf_tone::DtmfToneDetector;
use super::mixer::Party;
use super::plane::InbandDtmf;
use super::prompt::Prompt;
use super::recorder::CaptureFifo;
use super::relay::{Relay, SampleFifo, CARRY_TICKS};
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
    /// The bridge to a peer leg and the audio from it waiting to be sent, when bridged.
    relay: Option<Relay>,
    /// Its side of a conference, when conferenced (never while bridged: the worker sees to it).
    party: Option<Box<Party>>,
    /// The Goertzel detector, when in-band detection is on for this leg.
    tones: Option<DtmfToneDetector>,
    /// Received audio waiting for the next recording cycle, while the call is recorded.
    capture: Option<Box<CaptureFifo>>,
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
            relay: None,
            party: None,
            tones: None,
            capture: None,
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
    ///
    /// A prompt wins over relayed audio: what was waiting is dropped, and what arrives while
    /// it plays is discarded.
    pub fn play(&mut self, play: u64, prompts: Vec<Arc<Prompt>>, barge_in: bool) {
        if let Some(relay) = self.relay.as_mut() {
            relay.fifo.clear();
        }
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

    /// Bridges the leg to `peer` (in slot `peer_slot` of the same worker): audio received on
    /// the peer will be sent on this leg. Allocates the relay FIFO.
    pub fn bridge(&mut self, peer: LegId, peer_slot: usize) {
        self.relay = Some(Relay::new(peer, peer_slot));
    }

    /// Dissolves this leg's side of its bridge; returns the peer it had.
    pub fn unbridge(&mut self) -> Option<LegId> {
        self.relay.take().map(|r| r.peer)
    }

    /// The peer leg and its slot, when bridged.
    pub fn bridged_to(&self) -> Option<(LegId, usize)> {
        self.relay.as_ref().map(|r| (r.peer, r.peer_slot))
    }

    /// Joins a conference with nothing said and nothing to hear yet (allocates the [`Party`]).
    pub fn join_conference(&mut self) {
        self.party = Some(Box::default());
    }

    /// Leaves its conference, if any (silence follows unless it is bridged).
    pub fn leave_conference(&mut self) {
        self.party = None;
    }

    /// Whether the leg is in a conference.
    pub fn in_conference(&self) -> bool {
        self.party.is_some()
    }

    /// Its side of its conference, when conferenced.
    pub fn party_mut(&mut self) -> Option<&mut Party> {
        self.party.as_deref_mut()
    }

    /// Starts (allocating the FIFO, empty) or stops capturing received audio for a recording.
    pub fn set_capture(&mut self, on: bool) {
        match (on, self.capture.is_some()) {
            (true, false) => self.capture = Some(Box::new(CaptureFifo::with_slack())),
            (false, true) => self.capture = None,
            _ => {}
        }
    }

    /// Whether received audio is captured for a recording.
    pub fn is_capturing(&self) -> bool {
        self.capture.is_some()
    }

    /// The recording cycle's frame of received audio: a whole frame from the capture FIFO, or
    /// silence (see [`CaptureFifo::take_frame`]).
    pub fn take_captured(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> bool {
        match self.capture.as_deref_mut() {
            Some(fifo) => fifo.take_frame(out),
            None => {
                out.fill(0);
                false
            }
        }
    }

    /// Where the peer's received audio goes: this leg's relay FIFO, when the leg is bridged
    /// and will send it (stream started, may send, no prompt playing). Otherwise the FIFO is
    /// emptied, so held or prompted legs never accumulate stale audio.
    pub fn relay_sink(&mut self) -> Option<&mut SampleFifo> {
        let accepting = self.params.is_some_and(|p| p.send)
            && is_usable(self.remote)
            && self.playback.is_none();
        let relay = self.relay.as_mut()?;
        if accepting {
            Some(&mut relay.fifo)
        } else {
            relay.fifo.clear();
            None
        }
    }

    /// One pacing tick: sends one packet (prompt frame, else a relayed frame from the bridged
    /// peer or the conference's mix of the others, else silence) when the stream is started and
    /// may send, after `skipped` whole 20 ms cycles were missed (their timestamps are skipped
    /// too). A bridged leg whose peer's audio carries its stream (see [`super::relay`]) sends
    /// nothing on its ticks.
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
        if let Some(relay) = self.relay.as_mut().filter(|_| self.playback.is_none()) {
            let quiet = relay.quiet_ticks;
            relay.quiet_ticks = quiet.saturating_add(skipped.saturating_add(1));
            if relay.quiet_ticks <= CARRY_TICKS {
                return false;
            }
            if quiet <= CARRY_TICKS {
                // The relayed stream stopped: the silence that follows tells the time it has been.
                self.timestamp = self.timestamp.wrapping_add(frame_ts.wrapping_mul(quiet));
                self.marker = true;
            }
        }
        if skipped > 0 {
            self.timestamp = self.timestamp.wrapping_add(frame_ts.wrapping_mul(skipped));
            self.marker = true;
        }
        if !params.send || !is_usable(self.remote) {
            self.timestamp = self.timestamp.wrapping_add(frame_ts);
            return false;
        }
        let payload = &mut buf[RTP_HEADER_LEN..];
        let mut playing = false;
        if let Some(pb) = self.playback.as_mut() {
            playing = pb.next_frame(params.codec, payload);
        }
        if !playing {
            let relayed = self
                .relay
                .as_mut()
                .is_some_and(|r| r.fifo.pop_encoded(params.codec, payload))
                || self
                    .party
                    .as_mut()
                    .is_some_and(|p| p.pop_mix_encoded(params.codec, payload));
            if !relayed {
                payload.fill(params.codec.silence_byte());
            }
        }
        let sent = self.send_packet(params, buf);
        self.finish_playback_if_done(params.codec, emit);
        sent
    }

    /// Sends at once every whole frame of the peer's audio waiting in the relay FIFO (called
    /// right after the peer received a packet); returns how many packets were handed to the
    /// kernel.
    pub fn send_relayed(&mut self, buf: &mut [u8; SEND_BUF_LEN]) -> usize {
        let Some(params) = self.params else {
            return 0;
        };
        let mut sent = 0;
        while let Some(relay) = self.relay.as_mut() {
            if !relay
                .fifo
                .pop_encoded(params.codec, &mut buf[RTP_HEADER_LEN..])
            {
                break;
            }
            relay.quiet_ticks = 0;
            sent += usize::from(self.send_packet(params, buf));
        }
        sent
    }

    /// Writes the RTP header in front of the payload already in `buf` and sends the packet;
    /// the sequence number and timestamp move on whether or not the kernel took it.
    fn send_packet(&mut self, params: StreamParams, buf: &mut [u8; SEND_BUF_LEN]) -> bool {
        write_header(
            &mut buf[..RTP_HEADER_LEN],
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
                // the stream goes on with the next one.
                tracing::trace!(leg = self.id.0, error = %e, "RTP send failed");
                false
            }
        };
        self.marker = false;
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
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

    /// Handles one datagram from `src`: latching, DTMF (RFC 4733 and in-band), liveness, and
    /// relaying its audio (decoded to linear) into `relay`, the bridged peer's FIFO, or into the
    /// leg's conference party.
    ///
    /// RTCP, garbage, packets before the stream started and packets from a source the leg has
    /// not latched to are dropped silently. Telephone events are reported, never relayed.
    pub fn on_datagram(
        &mut self,
        data: &[u8],
        src: SocketAddr,
        now: Instant,
        relay: Option<&mut SampleFifo>,
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
        if !self.accept_source(src, pkt.ssrc, params.remote) {
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
            self.on_audio(params.codec, pkt.payload, relay, emit);
        } else if let Some(codec) = Codec::from_payload_type(pkt.payload_type) {
            // The other G.711 law under its static payload type (some peers switch).
            self.on_audio(codec, pkt.payload, relay, emit);
        }
    }

    /// Decodes an audio payload of any length, 160 samples at a time, for the in-band detector,
    /// the bridged peer's FIFO, the conference and the recording's capture (skipped when none
    /// wants it).
    fn on_audio(
        &mut self,
        codec: Codec,
        payload: &[u8],
        mut relay: Option<&mut SampleFifo>,
        emit: &mut impl FnMut(MediaEvent),
    ) {
        if self.tones.is_none() && relay.is_none() && self.party.is_none() && self.capture.is_none()
        {
            return;
        }
        let mut pcm = [0i16; FRAME_SAMPLES];
        let mut found = None;
        for chunk in payload.chunks(FRAME_SAMPLES) {
            let n = codec.decode(chunk, &mut pcm);
            if let Some(fifo) = relay.as_deref_mut() {
                fifo.push(&pcm[..n]);
            }
            if let Some(party) = self.party.as_deref_mut() {
                party.push_received(&pcm[..n]);
            }
            if let Some(fifo) = self.capture.as_deref_mut() {
                fifo.push(&pcm[..n]);
            }
            if let Some(digit) = self.tones.as_mut().and_then(|d| d.process(&pcm[..n])) {
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
    /// rebinding); a new SSRC from the latched address is the peer restarting its stream; the
    /// address the SDP signalled takes over at once (a stranger that got in first is not kept:
    /// RTP bleed); any other new address with a new SSRC takes over only after
    /// [`RELATCH_PACKETS`] in a row.
    fn accept_source(&mut self, src: SocketAddr, ssrc: u32, signalled: SocketAddr) -> bool {
        let peer = &mut self.peer;
        match peer.ssrc {
            Some(known) if known == ssrc => {}
            None => {}
            Some(_) if src == self.remote || src == signalled => {}
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

    /// Drains the socket into `recv_buf` (at most `budget` datagrams), relaying each packet's
    /// audio to the bridged `peer` (see [`Leg::relay_sink`]), which sends it on at once from
    /// `send_buf`; returns false when the budget ran out before the socket said `WouldBlock`
    /// (more may be waiting).
    pub fn receive(
        &mut self,
        recv_buf: &mut [u8],
        send_buf: &mut [u8; SEND_BUF_LEN],
        budget: usize,
        now: Instant,
        mut peer: Option<&mut Leg>,
        emit: &mut impl FnMut(MediaEvent),
    ) -> bool {
        let mut errors = 0;
        for _ in 0..budget {
            match self.socket.recv_from(recv_buf) {
                Ok((len, src)) => {
                    let data = recv_buf.get(..len).unwrap_or_default();
                    let sink = peer.as_deref_mut().and_then(Leg::relay_sink);
                    self.on_datagram(data, src, now, sink, emit);
                    if let Some(peer) = peer.as_deref_mut() {
                        peer.send_relayed(send_buf);
                    }
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
        leg.on_datagram(
            &pkt,
            from.parse().unwrap(),
            Instant::now(),
            None,
            &mut |_| {},
        );
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
    fn the_signalled_address_wins_over_a_stranger_that_came_first() {
        let mut leg = leg();
        // A stranger's packets reach the port before the peer's (RTP bleed).
        feed(&mut leg, "10.9.9.9:6666", 99);
        assert_eq!(leg.remote(), "10.9.9.9:6666".parse().unwrap());
        // The first packet from the address in the SDP takes the stream back, and the
        // stranger, interleaving, never gets it again.
        feed(&mut leg, "127.0.0.1:5000", 7);
        assert_eq!(leg.remote(), "127.0.0.1:5000".parse().unwrap());
        for _ in 0..2 * RELATCH_PACKETS {
            feed(&mut leg, "10.9.9.9:6666", 99);
            feed(&mut leg, "127.0.0.1:5000", 7);
        }
        assert_eq!(leg.remote(), "127.0.0.1:5000".parse().unwrap());
    }

    #[test]
    fn garbage_and_rtcp_are_ignored() {
        let mut leg = leg();
        let from = "10.0.0.1:4000".parse().unwrap();
        leg.on_datagram(&[1, 2, 3], from, Instant::now(), None, &mut |_| {});
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0];
        leg.on_datagram(&rtcp, from, Instant::now(), None, &mut |_| {});
        assert_eq!(leg.peer.ssrc, None);
        assert_eq!(leg.remote(), "127.0.0.1:5000".parse().unwrap());
    }

    /// A PCMU leg sending to a fresh local socket, bridged to leg 2 in slot 1.
    fn bridged_leg() -> (Leg, std::net::UdpSocket) {
        let far = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        far.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut leg = leg();
        let mut params = leg.params.unwrap();
        params.remote = far.local_addr().unwrap();
        leg.apply_stream(params, InbandDtmf::Auto, Instant::now());
        leg.bridge(LegId(2), 1);
        (leg, far)
    }

    fn payload_of(far: &std::net::UdpSocket) -> Vec<u8> {
        let mut buf = [0u8; 512];
        let n = far.recv(&mut buf).unwrap();
        RtpPacket::parse(&buf[..n]).unwrap().payload.to_vec()
    }

    #[test]
    fn relayed_frame_goes_out_once_a_whole_one_is_there() {
        let (mut leg, far) = bridged_leg();
        assert_eq!(leg.bridged_to(), Some((LegId(2), 1)));
        let mut buf = [0u8; SEND_BUF_LEN];
        leg.relay_sink().unwrap().push(&[2000; 100]);
        assert!(leg.send_tick(0, &mut buf, &mut |_| {}));
        assert_eq!(
            payload_of(&far),
            vec![0xFF; 160],
            "not a whole frame yet: silence"
        );
        leg.relay_sink().unwrap().push(&[2000; 100]);
        assert!(leg.send_tick(0, &mut buf, &mut |_| {}));
        assert_eq!(payload_of(&far), vec![Codec::Pcmu.encode_sample(2000); 160]);
        assert_eq!(leg.relay_sink().unwrap().len(), 40);
        assert_eq!(leg.unbridge(), Some(LegId(2)));
        assert!(leg.relay_sink().is_none());
    }

    /// The RTP header fields (marker, sequence, timestamp) and payload of the next packet.
    fn packet_of(far: &std::net::UdpSocket) -> (bool, u16, u32, Vec<u8>) {
        let mut buf = [0u8; 512];
        let n = far.recv(&mut buf).unwrap();
        let pkt = RtpPacket::parse(&buf[..n]).unwrap();
        (
            pkt.marker,
            pkt.sequence,
            pkt.timestamp,
            pkt.payload.to_vec(),
        )
    }

    #[test]
    fn relayed_audio_goes_out_on_arrival_and_carries_the_stream() {
        let (mut leg, far) = bridged_leg();
        let mut buf = [0u8; SEND_BUF_LEN];
        // Before the peer's first frame the clock sends silence.
        assert!(leg.send_tick(0, &mut buf, &mut |_| {}));
        let (_, seq0, ts0, payload) = packet_of(&far);
        assert_eq!(payload, vec![0xFF; 160]);
        // A 20 ms frame is sent at once, next in sequence and time.
        leg.relay_sink().unwrap().push(&[2000; 160]);
        assert_eq!(leg.send_relayed(&mut buf), 1);
        let (_, seq, ts, payload) = packet_of(&far);
        assert_eq!((seq, ts), (seq0 + 1, ts0 + 160));
        assert_eq!(payload, vec![Codec::Pcmu.encode_sample(2000); 160]);
        assert!(leg.relay_sink().unwrap().is_empty());
        // While it flows, the leg's own ticks send nothing.
        for _ in 0..CARRY_TICKS {
            assert!(!leg.send_tick(0, &mut buf, &mut |_| {}));
        }
        // Ptime 30: a frame goes out with each packet, the rest waits for the next one.
        leg.relay_sink().unwrap().push(&[-2000; 240]);
        assert_eq!(leg.send_relayed(&mut buf), 1);
        assert_eq!(leg.relay_sink().unwrap().len(), 80);
        leg.relay_sink().unwrap().push(&[-2000; 240]);
        assert_eq!(leg.send_relayed(&mut buf), 2);
        for expected in [seq0 + 2, seq0 + 3, seq0 + 4] {
            let (marker, seq, _, payload) = packet_of(&far);
            assert!(!marker);
            assert_eq!(seq, expected);
            assert_eq!(payload, vec![Codec::Pcmu.encode_sample(-2000); 160]);
        }
        // The peer goes quiet: after CARRY_TICKS silent ticks the clock fills with silence,
        // marked, its timestamp telling the time that passed.
        for _ in 0..CARRY_TICKS {
            assert!(!leg.send_tick(0, &mut buf, &mut |_| {}));
        }
        assert!(leg.send_tick(0, &mut buf, &mut |_| {}));
        let (marker, seq, ts, payload) = packet_of(&far);
        assert!(marker);
        assert_eq!(seq, seq0 + 5);
        assert_eq!(ts, ts0 + 160 * (5 + CARRY_TICKS));
        assert_eq!(payload, vec![0xFF; 160]);
    }

    #[test]
    fn a_packet_received_on_one_leg_leaves_on_its_peer_at_once() {
        let (mut seat, seat_phone) = bridged_leg();
        let (mut caller, caller_phone) = bridged_leg();
        // The caller's phone sends one PCMA packet to the caller leg's socket.
        let mut pkt = [0u8; 12 + 160];
        write_header(&mut pkt, true, 8, 1, 160, 7);
        pkt[12..].fill(Codec::Pcma.encode_sample(1234));
        caller_phone.send_to(&pkt, caller.local).unwrap();
        let mut recv_buf = [0u8; 2048];
        let mut send_buf = [0u8; SEND_BUF_LEN];
        // Wait for the datagram to be readable (loopback delivers it before send_to returns).
        let mut drained = false;
        for _ in 0..1000 {
            caller.receive(
                &mut recv_buf,
                &mut send_buf,
                8,
                Instant::now(),
                Some(&mut seat),
                &mut |_| {},
            );
            if caller.peer.ssrc.is_some() {
                drained = true;
                break;
            }
        }
        assert!(drained, "the caller leg never received the packet");
        // The seat's phone has it, in the seat leg's law (PCMU), without a tick.
        let (_, _, _, payload) = packet_of(&seat_phone);
        let back = Codec::Pcmu.decode_sample(payload[0]);
        assert!((i32::from(back) - 1234).abs() < 40, "{back}");
        assert_eq!(payload.len(), 160);
    }

    #[test]
    fn a_prompt_wins_and_held_legs_take_nothing() {
        let (mut leg, far) = bridged_leg();
        leg.relay_sink().unwrap().push(&[2000; 400]);
        let prompt = Arc::new(Prompt::from_pcm("p", vec![5000; 160]));
        leg.play(1, vec![Arc::clone(&prompt)], false);
        // What waited is dropped and what arrives while the prompt plays is not kept.
        assert!(leg.relay_sink().is_none());
        let mut buf = [0u8; SEND_BUF_LEN];
        leg.send_tick(0, &mut buf, &mut |_| {});
        assert_eq!(payload_of(&far), prompt.frame(Codec::Pcmu, 0).unwrap());
        // The prompt finished with that packet: relayed audio is taken again, from empty.
        assert!(leg.relay_sink().is_some_and(|f| f.is_empty()));
        // On hold (may not send): nothing is kept either.
        leg.relay_sink().unwrap().push(&[2000; 400]);
        let mut params = leg.params.unwrap();
        params.send = false;
        leg.apply_stream(params, InbandDtmf::Auto, Instant::now());
        assert!(leg.relay_sink().is_none());
        params.send = true;
        leg.apply_stream(params, InbandDtmf::Auto, Instant::now());
        assert!(leg.relay_sink().is_some_and(|f| f.is_empty()));
    }

    #[test]
    fn audio_is_relayed_decoded_and_telephone_events_are_not() {
        let mut leg = leg();
        let mut fifo = SampleFifo::new();
        let from = "10.0.0.1:4000".parse().unwrap();
        let mut digits = Vec::new();
        // Two RFC 4733 packets (the end one reports the digit): nothing relayed.
        for (end, seq) in [(false, 1), (true, 2)] {
            let mut pkt = [0u8; 16];
            write_header(&mut pkt, seq == 1, 101, seq, 800, 7);
            pkt[12..].copy_from_slice(&[5, if end { 0x8A } else { 0x0A }, 0x03, 0x20]);
            leg.on_datagram(&pkt, from, Instant::now(), Some(&mut fifo), &mut |e| {
                digits.push(e)
            });
        }
        assert!(fifo.is_empty());
        assert_eq!(digits.len(), 1, "{digits:?}");
        // A ptime-30 PCMU packet, then a PCMA one under its static type: both decoded.
        let mut pkt = [0u8; 12 + 240];
        write_header(&mut pkt, false, 0, 3, 960, 7);
        pkt[12..].fill(Codec::Pcmu.encode_sample(-3000));
        leg.on_datagram(&pkt, from, Instant::now(), Some(&mut fifo), &mut |_| {});
        let mut pkt = [0u8; 12 + 160];
        write_header(&mut pkt, false, 8, 4, 1200, 7);
        pkt[12..].fill(Codec::Pcma.encode_sample(3000));
        leg.on_datagram(&pkt, from, Instant::now(), Some(&mut fifo), &mut |_| {});
        assert_eq!(fifo.len(), 400);
        let mut out = [0u8; 240];
        assert!(fifo.pop_encoded(Codec::Pcmu, &mut out));
        let back = Codec::Pcmu.decode_sample(out[0]);
        assert!((back + 3000).abs() < 100, "{back}");
    }

    #[test]
    fn capture_keeps_received_audio_only_while_recording() {
        let (mut leg, _far) = bridged_leg();
        let from = "10.0.0.1:4000".parse().unwrap();
        let send = |leg: &mut Leg, pt: u8, codec: Codec, x: i16, n: usize, seq: u16| {
            let mut pkt = vec![0u8; 12 + n];
            write_header(&mut pkt, false, pt, seq, 160 * u32::from(seq), 7);
            pkt[12..].fill(codec.encode_sample(x));
            leg.on_datagram(&pkt, from, Instant::now(), None, &mut |_| {});
        };
        let mut frame = [1i16; FRAME_SAMPLES];
        // Not recording: nothing is kept, the frame is silence.
        send(&mut leg, 0, Codec::Pcmu, 3000, 160, 1);
        assert!(!leg.is_capturing());
        assert!(!leg.take_captured(&mut frame));
        assert_eq!(frame, [0; FRAME_SAMPLES]);
        leg.set_capture(true);
        // A prompt the leg plays is not captured; a telephone event is not audio.
        leg.play(
            1,
            vec![Arc::new(Prompt::from_pcm("p", vec![5000; 160]))],
            false,
        );
        let mut buf = [0u8; SEND_BUF_LEN];
        leg.send_tick(0, &mut buf, &mut |_| {});
        let mut te = [0u8; 16];
        write_header(&mut te, true, 101, 2, 320, 7);
        te[12..].copy_from_slice(&[5, 0x0A, 0x03, 0x20]);
        leg.on_datagram(&te, from, Instant::now(), None, &mut |_| {});
        assert!(!leg.take_captured(&mut frame));
        // Received audio is, decoded, in any ptime and either law.
        send(&mut leg, 0, Codec::Pcmu, 3000, 240, 3);
        send(&mut leg, 8, Codec::Pcma, -2000, 80, 4);
        assert!(leg.take_captured(&mut frame));
        let near = |a: i16, b: i16| (i32::from(a) - i32::from(b)).abs() < 100;
        assert!(frame.iter().all(|&s| near(s, 3000)));
        assert!(leg.take_captured(&mut frame));
        assert!(frame[..80].iter().all(|&s| near(s, 3000)));
        assert!(frame[80..].iter().all(|&s| near(s, -2000)));
        assert!(!leg.take_captured(&mut frame));
        leg.set_capture(false);
        assert!(!leg.is_capturing());
    }

    #[test]
    fn a_conferenced_leg_feeds_its_party_and_sends_the_mix_in_its_law() {
        let (mut leg, far) = bridged_leg();
        leg.unbridge();
        leg.join_conference();
        assert!(leg.in_conference());
        // From the far end's own address, so the leg stays latched to it.
        let from = far.local_addr().unwrap();
        let mut pkt = [0u8; 12 + 160];
        write_header(&mut pkt, false, 8, 1, 160, 7);
        pkt[12..].fill(Codec::Pcma.encode_sample(3000));
        leg.on_datagram(&pkt, from, Instant::now(), None, &mut |_| {});
        let mut said = [0i16; FRAME_SAMPLES];
        assert!(leg.party_mut().unwrap().take_received(&mut said));
        assert!(said.iter().all(|&s| (s - 3000).abs() < 100), "{said:?}");
        // No mix yet: silence; then the mix of the others, in the leg's own law (PCMU).
        let mut buf = [0u8; SEND_BUF_LEN];
        leg.send_tick(0, &mut buf, &mut |_| {});
        assert_eq!(payload_of(&far), vec![0xFF; 160]);
        leg.party_mut().unwrap().set_mix(&[-1500; FRAME_SAMPLES]);
        leg.send_tick(0, &mut buf, &mut |_| {});
        assert_eq!(
            payload_of(&far),
            vec![Codec::Pcmu.encode_sample(-1500); 160]
        );
        leg.leave_conference();
        assert!(leg.party_mut().is_none());
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
