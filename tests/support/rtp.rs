//! A test-side RTP peer: hears what the engine sends and sends keys back.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hotline::rtp::{write_header, DtmfSender, RtpPacket};

/// What one stream delivered.
#[derive(Debug, Default)]
pub struct Heard {
    /// Audio payload bytes in arrival order (G.711 codes).
    pub payload: Vec<u8>,
    /// RTP sequence numbers in arrival order.
    pub sequences: Vec<u16>,
    /// RTP timestamps in arrival order.
    pub timestamps: Vec<u32>,
    /// SSRCs seen.
    pub ssrcs: Vec<u32>,
    /// Payload type of the first packet.
    pub payload_type: Option<u8>,
    /// Marker bits in arrival order.
    pub markers: Vec<bool>,
}

impl Heard {
    /// Whether `prompt` (G.711 codes) arrived whole and in order, starting on a frame boundary.
    pub fn contains(&self, prompt: &[u8]) -> bool {
        position(&self.payload, prompt).is_some()
    }

    /// Where `prompt` starts in what arrived, in bytes.
    pub fn find(&self, prompt: &[u8]) -> Option<usize> {
        position(&self.payload, prompt)
    }
}

fn position(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    // Prompts are sent whole-frame aligned, so only frame starts need checking.
    (0..=haystack.len() - needle.len())
        .step_by(160)
        .find(|&at| &haystack[at..at + needle.len()] == needle)
}

/// A UDP socket acting as a caller's RTP endpoint.
pub struct RtpPeer {
    /// The socket.
    pub socket: UdpSocket,
    seq: u16,
    ts: u32,
}

impl RtpPeer {
    /// Binds on 127.0.0.1.
    pub fn bind() -> RtpPeer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind RTP");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        RtpPeer {
            socket,
            seq: 1000,
            ts: 50_000,
        }
    }

    /// The local port (for the SDP the test's caller sends).
    pub fn port(&self) -> u16 {
        self.socket.local_addr().expect("local").port()
    }

    /// Receives for up to `limit`, stopping early once `until` says the stream is enough.
    /// Returns what was heard and the engine's RTP address.
    pub fn listen(
        &self,
        limit: Duration,
        until: impl Fn(&Heard) -> bool,
    ) -> (Heard, Option<SocketAddr>) {
        let mut heard = Heard::default();
        let mut from = None;
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline && !until(&heard) {
            let Ok((n, source)) = self.socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(packet) = RtpPacket::parse(&buf[..n]) else {
                continue;
            };
            from = Some(source);
            heard.payload_type.get_or_insert(packet.payload_type);
            heard.sequences.push(packet.sequence);
            heard.timestamps.push(packet.timestamp);
            heard.markers.push(packet.marker);
            if !heard.ssrcs.contains(&packet.ssrc) {
                heard.ssrcs.push(packet.ssrc);
            }
            heard.payload.extend_from_slice(packet.payload);
        }
        (heard, from)
    }

    /// Sends one 20 ms frame of A-law silence to `to` (keeps the NAT latch and media timer fed).
    pub fn send_silence(&mut self, to: SocketAddr) {
        let mut buf = [0xD5u8; 12 + 160];
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        write_header(&mut buf, false, 8, self.seq, self.ts, 0x1234_5678);
        let _ = self.socket.send_to(&buf, to);
    }

    /// Sends one 20 ms frame of `samples` (160 of them) encoded with `codec` to `to`.
    pub fn send_audio(
        &mut self,
        samples: &[i16],
        codec: hotline::media::codec::Codec,
        to: SocketAddr,
    ) {
        let mut buf = [0u8; 12 + 160];
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        let pt = codec.payload_type();
        write_header(&mut buf, false, pt, self.seq, self.ts, 0x1234_5678);
        codec.encode(samples, &mut buf[12..]);
        let _ = self.socket.send_to(&buf, to);
    }

    /// Sends an RFC 4733 press of `key` (payload type `pt`) to `to`: start, updates, 3 ends.
    pub fn send_key(&mut self, key: char, pt: u8, to: SocketAddr) {
        let start_ts = self.ts.wrapping_add(160);
        let Some(sender) = DtmfSender::new(key, 800, 160) else {
            panic!("not a key: {key}");
        };
        for packet in sender {
            let mut buf = [0u8; 16];
            self.seq = self.seq.wrapping_add(1);
            write_header(&mut buf, packet.marker, pt, self.seq, start_ts, 0x1234_5678);
            buf[12..16].copy_from_slice(&packet.payload());
            let _ = self.socket.send_to(&buf, to);
        }
        self.ts = start_ts.wrapping_add(800);
    }
}
