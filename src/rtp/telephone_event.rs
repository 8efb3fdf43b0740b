//! RFC 4733 telephone-event payloads (DTMF over RTP): parse/write, a de-duplicating receiver
//! and a sender that produces the packet sequence of one key press.

use thiserror::Error;

/// Length of one telephone-event payload block.
pub const TELEPHONE_EVENT_LEN: usize = 4;

/// Default volume for generated events: 10 means -10 dBm0.
pub const DEFAULT_VOLUME: u8 = 10;

/// Number of times the final (end) packet of an event is sent (RFC 4733 §2.5.1.4).
pub const END_PACKET_REPEATS: usize = 3;

/// Why a telephone-event payload could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TelephoneEventError {
    /// Fewer than 4 bytes.
    #[error("telephone-event payload too short: {0} bytes, need 4")]
    TooShort(usize),
}

/// One RFC 4733 event block: event code, end bit, volume and duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0-9 digits, 10 `*`, 11 `#`, 12-15 `A`-`D`, others non-DTMF).
    pub event: u8,
    /// E bit: this is (a repetition of) the final packet of the event.
    pub end: bool,
    /// Power level in -dBm0 (0..=63); 6 bits.
    pub volume: u8,
    /// Duration so far, in RTP timestamp units, counted from the event's RTP timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event block of a payload (extra trailing bytes are ignored).
    pub fn parse(payload: &[u8]) -> Result<Self, TelephoneEventError> {
        let Some(b) = payload.first_chunk::<TELEPHONE_EVENT_LEN>() else {
            return Err(TelephoneEventError::TooShort(payload.len()));
        };
        Ok(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// Encodes the event as the 4-byte payload (the reserved bit is zero, volume masked).
    pub fn to_bytes(&self) -> [u8; TELEPHONE_EVENT_LEN] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }

    /// Writes the 4-byte payload into `buf` and returns 4.
    ///
    /// # Panics
    /// If `buf` is shorter than 4 bytes (a caller bug).
    pub fn write(&self, buf: &mut [u8]) -> usize {
        buf[..TELEPHONE_EVENT_LEN].copy_from_slice(&self.to_bytes());
        TELEPHONE_EVENT_LEN
    }

    /// The DTMF key of this event, if it is one (events 0-15).
    pub fn digit(&self) -> Option<char> {
        event_to_char(self.event)
    }
}

const DTMF_CHARS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// Maps an event code to its key: 0-9 → '0'-'9', 10 → '*', 11 → '#', 12-15 → 'A'-'D'.
pub fn event_to_char(event: u8) -> Option<char> {
    DTMF_CHARS.get(usize::from(event)).copied()
}

/// Maps a key ('0'-'9', '*', '#', 'A'-'D', lowercase accepted) to its event code.
pub fn char_to_event(c: char) -> Option<u8> {
    let c = c.to_ascii_uppercase();
    DTMF_CHARS
        .iter()
        .position(|&d| d == c)
        .and_then(|i| u8::try_from(i).ok())
}

/// Number of recent presses remembered to drop late duplicates.
const HISTORY: usize = 8;

/// Sequence-number span beyond which a packet is considered unrelated to a remembered press.
const SEQ_WINDOW: u16 = 0x8000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Press {
    ssrc: u32,
    timestamp: u32,
    event: u8,
    /// An end packet of this press has been seen.
    ended: bool,
    /// Highest (serial-number order) sequence number seen for this press.
    max_seq: u16,
    /// Highest duration seen for this press.
    max_duration: u16,
}

/// Per-stream telephone-event de-duplicator: reports each key press exactly once.
///
/// A press is identified by its RTP timestamp and SSRC (plus event code). It is reported on the
/// first packet seen for it (start, continuation or end, whichever arrives first), so senders
/// that lose the start, repeat the end packet (even with an identical sequence number) or
/// retransmit packets never produce a second report. A small fixed history (no allocation)
/// also drops stragglers of earlier presses that arrive after the next press has begun.
///
/// Two heuristics cover non-conforming senders: a new segment of a long event (RFC 4733
/// §2.5.2.1: new timestamp after a 0xFFFF duration without end bit) is not a new press, and a
/// fresh non-end packet with a *newer* sequence number and shorter duration that reuses the
/// timestamp of an already ended press of the same key is a new press.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    history: [Option<Press>; HISTORY],
    /// Index of the most recently recorded press in `history`.
    newest: usize,
}

/// `a` is strictly newer than `b` in RFC 3550 serial-number order.
fn seq_newer(a: u16, b: u16) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < SEQ_WINDOW
}

impl DtmfReceiver {
    /// Creates a receiver with empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets all presses (e.g. after a re-INVITE changed the stream).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Feeds one telephone-event packet; returns the key if this packet starts a new press.
    ///
    /// Malformed payloads and non-DTMF events (codes above 15) are ignored (return `None`).
    pub fn on_packet(
        &mut self,
        timestamp: u32,
        ssrc: u32,
        seq: u16,
        payload: &[u8],
    ) -> Option<char> {
        let ev = TelephoneEvent::parse(payload).ok()?;
        let digit = ev.digit()?;

        if let Some(p) = self
            .history
            .iter_mut()
            .flatten()
            .find(|p| p.ssrc == ssrc && p.timestamp == timestamp && p.event == ev.event)
        {
            let new_press_same_ts =
                p.ended && !ev.end && seq_newer(seq, p.max_seq) && ev.duration < p.max_duration;
            if !new_press_same_ts {
                if seq_newer(seq, p.max_seq) {
                    p.max_seq = seq;
                }
                p.ended |= ev.end;
                p.max_duration = p.max_duration.max(ev.duration);
                return None;
            }
            *p = Press {
                ssrc,
                timestamp,
                event: ev.event,
                ended: false,
                max_seq: seq,
                max_duration: ev.duration,
            };
            return Some(digit);
        }

        // Continuation segment of a long event: the previous segment of the same key reached
        // the maximum duration without ending, and this one starts exactly where it stopped.
        if let Some(prev) = self.history[self.newest] {
            let delta = timestamp.wrapping_sub(prev.timestamp);
            if prev.ssrc == ssrc
                && prev.event == ev.event
                && !prev.ended
                && prev.max_duration == u16::MAX
                && (u32::from(u16::MAX)..=u32::from(u16::MAX) + 1).contains(&delta)
            {
                self.record(ssrc, timestamp, seq, ev);
                return None;
            }
        }

        self.record(ssrc, timestamp, seq, ev);
        Some(digit)
    }

    fn record(&mut self, ssrc: u32, timestamp: u32, seq: u16, ev: TelephoneEvent) {
        self.newest = (self.newest + 1) % HISTORY;
        self.history[self.newest] = Some(Press {
            ssrc,
            timestamp,
            event: ev.event,
            ended: ev.end,
            max_seq: seq,
            max_duration: ev.duration,
        });
    }
}

/// One packet of a generated key press: the payload plus whether the RTP marker bit is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// Set on the first packet of the press only.
    pub marker: bool,
    /// The telephone-event block to send.
    pub event: TelephoneEvent,
}

impl DtmfPacket {
    /// The 4-byte RTP payload.
    pub fn payload(&self) -> [u8; TELEPHONE_EVENT_LEN] {
        self.event.to_bytes()
    }
}

/// Generates the RFC 4733 packet sequence of one key press: start (marker set), continuations
/// every packet interval, then the end packet three times.
///
/// All packets of a press share one RTP timestamp (the press start) and take consecutive
/// sequence numbers; the caller supplies both. Durations grow by `packet_samples` per packet
/// up to the total duration, which the three end packets repeat.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    event: u8,
    volume: u8,
    total: u16,
    step: u16,
    elapsed: u16,
    ends_sent: usize,
    started: bool,
}

impl DtmfSender {
    /// A press of `key` lasting `duration_samples` with one packet every `packet_samples`
    /// (e.g. 800 and 160 for 100 ms at 20 ms per packet, 8 kHz); `None` for an unknown key.
    pub fn new(key: char, duration_samples: u16, packet_samples: u16) -> Option<Self> {
        let event = char_to_event(key)?;
        Some(DtmfSender {
            event,
            volume: DEFAULT_VOLUME,
            total: duration_samples.max(1),
            step: packet_samples.max(1),
            elapsed: 0,
            ends_sent: 0,
            started: false,
        })
    }

    /// Sets the volume (-dBm0, masked to 6 bits) used for the generated packets.
    pub fn with_volume(mut self, volume: u8) -> Self {
        self.volume = volume & 0x3F;
        self
    }
}

impl Iterator for DtmfSender {
    type Item = DtmfPacket;

    fn next(&mut self) -> Option<DtmfPacket> {
        if self.ends_sent >= END_PACKET_REPEATS {
            return None;
        }
        let marker = !self.started;
        self.started = true;
        self.elapsed = self.elapsed.saturating_add(self.step).min(self.total);
        let end = self.elapsed >= self.total;
        if end {
            self.ends_sent += 1;
        }
        Some(DtmfPacket {
            marker,
            event: TelephoneEvent {
                event: self.event,
                end,
                volume: self.volume,
                duration: self.elapsed,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_write_roundtrip() {
        let ev = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 1600,
        };
        let b = ev.to_bytes();
        assert_eq!(b, [11, 0x8A, 0x06, 0x40]);
        assert_eq!(TelephoneEvent::parse(&b), Ok(ev));
        let mut buf = [0u8; 8];
        assert_eq!(ev.write(&mut buf), 4);
        assert_eq!(&buf[..4], &b);
        // Reserved bit ignored on parse.
        assert_eq!(
            TelephoneEvent::parse(&[5, 0x4A, 0, 160]).unwrap().volume,
            10
        );
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(TelephoneEventError::TooShort(3))
        );
    }

    #[test]
    fn char_mapping() {
        let keys = "0123456789*#ABCD";
        for (i, c) in keys.chars().enumerate() {
            assert_eq!(event_to_char(i as u8), Some(c));
            assert_eq!(char_to_event(c), Some(i as u8));
        }
        assert_eq!(char_to_event('a'), Some(12));
        assert_eq!(event_to_char(16), None);
        assert_eq!(char_to_event('E'), None);
    }

    #[test]
    fn sender_sequence() {
        let pkts: Vec<_> = DtmfSender::new('5', 800, 160).unwrap().collect();
        assert_eq!(pkts.len(), 4 + 3);
        assert!(pkts[0].marker);
        assert!(pkts[1..].iter().all(|p| !p.marker));
        let durs: Vec<u16> = pkts.iter().map(|p| p.event.duration).collect();
        assert_eq!(durs, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = pkts.iter().map(|p| p.event.end).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        assert!(pkts
            .iter()
            .all(|p| p.event.event == 5 && p.event.volume == 10));
        // Non-multiple duration: last step is clamped.
        let durs: Vec<u16> = DtmfSender::new('#', 500, 160)
            .unwrap()
            .map(|p| p.event.duration)
            .collect();
        assert_eq!(durs, [160, 320, 480, 500, 500, 500]);
        assert!(DtmfSender::new('x', 800, 160).is_none());
    }

    /// Feeds a generated press starting at `ts` with sequence numbers from `*seq`.
    fn press(rx: &mut DtmfReceiver, key: char, ts: u32, ssrc: u32, seq: &mut u16) -> String {
        let mut out = String::new();
        for p in DtmfSender::new(key, 800, 160).unwrap() {
            if let Some(c) = rx.on_packet(ts, ssrc, *seq, &p.payload()) {
                out.push(c);
            }
            *seq = seq.wrapping_add(1);
        }
        out
    }

    #[test]
    fn each_press_once() {
        let mut rx = DtmfReceiver::new();
        let mut seq = 65530; // exercise wrap-around
        let mut got = String::new();
        for (i, k) in "1234567890*#ABCD".chars().enumerate() {
            got += &press(&mut rx, k, 1000 + i as u32 * 1600, 42, &mut seq);
        }
        assert_eq!(got, "1234567890*#ABCD");
    }

    #[test]
    fn same_key_twice() {
        let mut rx = DtmfReceiver::new();
        let mut seq = 0;
        let got = press(&mut rx, '7', 0, 1, &mut seq) + &press(&mut rx, '7', 1600, 1, &mut seq);
        assert_eq!(got, "77");
    }

    #[test]
    fn end_repeated_with_same_seq_and_only_ends() {
        // SIPp's pcaps: end packet repeated with identical sequence number.
        let mut rx = DtmfReceiver::new();
        let end = TelephoneEvent {
            event: 1,
            end: true,
            volume: 10,
            duration: 800,
        }
        .to_bytes();
        let start = TelephoneEvent {
            event: 1,
            end: false,
            volume: 10,
            duration: 160,
        }
        .to_bytes();
        assert_eq!(rx.on_packet(500, 9, 10, &start), Some('1'));
        assert_eq!(rx.on_packet(500, 9, 10, &start), None); // retransmission
        for _ in 0..3 {
            assert_eq!(rx.on_packet(500, 9, 11, &end), None);
        }
        // Only the (repeated, same-seq) end packets of the next press reach us.
        let hits: Vec<_> = (0..3)
            .filter_map(|_| rx.on_packet(2100, 9, 20, &[2, 0x8A, 3, 32]))
            .collect();
        assert_eq!(hits, vec!['2']);
    }

    #[test]
    fn late_straggler_of_previous_press_ignored() {
        let mut rx = DtmfReceiver::new();
        let a_end = [3, 0x8A, 3, 32];
        assert_eq!(rx.on_packet(1000, 5, 1, &[3, 0x0A, 0, 160]), Some('3'));
        assert_eq!(rx.on_packet(1000, 5, 2, &a_end), None);
        assert_eq!(rx.on_packet(3000, 5, 6, &[4, 0x0A, 0, 160]), Some('4'));
        // Reordered end of the first press arrives after the second press started.
        assert_eq!(rx.on_packet(1000, 5, 3, &a_end), None);
        assert_eq!(rx.on_packet(1000, 5, 2, &[3, 0x0A, 0, 160]), None);
        assert_eq!(rx.on_packet(3000, 5, 7, &[4, 0x0A, 1, 64]), None);
    }

    #[test]
    fn ssrc_distinguishes_presses() {
        let mut rx = DtmfReceiver::new();
        assert_eq!(rx.on_packet(1000, 1, 1, &[9, 0x0A, 0, 160]), Some('9'));
        assert_eq!(rx.on_packet(1000, 2, 1, &[9, 0x0A, 0, 160]), Some('9'));
    }

    #[test]
    fn reused_timestamp_after_end_is_new_press() {
        // A sender whose timestamp did not advance between two presses of the same key.
        let mut rx = DtmfReceiver::new();
        let mut seq = 100;
        assert_eq!(press(&mut rx, '8', 4000, 3, &mut seq), "8");
        assert_eq!(press(&mut rx, '8', 4000, 3, &mut seq), "8");
        // But a replay of the whole old press (old sequence numbers) is not.
        let mut old = 100;
        assert_eq!(press(&mut rx, '8', 4000, 3, &mut old), "");
    }

    #[test]
    fn long_event_segments_are_one_press() {
        let mut rx = DtmfReceiver::new();
        assert_eq!(rx.on_packet(0, 1, 1, &[0, 0x0A, 0x80, 0]), Some('0'));
        assert_eq!(rx.on_packet(0, 1, 2, &[0, 0x0A, 0xFF, 0xFF]), None);
        assert_eq!(rx.on_packet(65535, 1, 3, &[0, 0x0A, 0, 160]), None);
        assert_eq!(rx.on_packet(65535, 1, 4, &[0, 0x8A, 1, 0]), None);
        // A new press later is reported.
        assert_eq!(rx.on_packet(90000, 1, 10, &[0, 0x0A, 0, 160]), Some('0'));
    }

    #[test]
    fn ignores_garbage_and_non_dtmf() {
        let mut rx = DtmfReceiver::new();
        assert_eq!(rx.on_packet(0, 0, 0, &[]), None);
        assert_eq!(rx.on_packet(0, 0, 0, &[1, 2]), None);
        assert_eq!(rx.on_packet(0, 0, 0, &[16, 0x0A, 0, 160]), None); // flash
        assert_eq!(rx.on_packet(0, 0, 1, &[1, 0x0A, 0, 160]), Some('1'));
    }

    #[test]
    fn history_overflow_still_reports_new_presses() {
        let mut rx = DtmfReceiver::new();
        let mut seq = 0;
        let keys = "0123456789*#ABCD0123456789";
        let mut got = String::new();
        for (i, k) in keys.chars().enumerate() {
            got += &press(&mut rx, k, i as u32 * 2000, 77, &mut seq);
        }
        assert_eq!(got, keys);
    }
}
