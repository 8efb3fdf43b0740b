//! The codecs the engine speaks (G.711 only) and telephone-event (RFC 4733).

use super::session::{Fmtp, RtpMap};

/// The RTP clock rate of G.711 and of the telephone-event we accept.
pub const CLOCK_RATE: u32 = 8000;

/// The payload type we use for telephone-event in our own offers.
pub const TELEPHONE_EVENT_PAYLOAD_TYPE: u8 = 101;

/// The encoding name of RFC 4733 events.
pub const TELEPHONE_EVENT_ENCODING: &str = "telephone-event";

/// The events we declare in `a=fmtp` for telephone-event: DTMF 0-9, `*`, `#`, A-D.
pub const TELEPHONE_EVENT_EVENTS: &str = "0-15";

/// An audio codec the engine can send and receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// Our default preference: PCMA first (the norm on Chinese networks), then PCMU.
    pub const DEFAULT_PREFERENCE: [Codec; 2] = [Codec::Pcma, Codec::Pcmu];

    /// The static payload type number (RFC 3551).
    pub const fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name used in `a=rtpmap`.
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The codec of a static payload type number, if it is one of ours.
    pub const fn from_static_payload_type(payload_type: u8) -> Option<Codec> {
        match payload_type {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The codec an rtpmap names (encoding case-insensitive, 8000 Hz, mono), if it is one of ours.
    pub fn from_rtpmap(map: &RtpMap) -> Option<Codec> {
        if map.clock_rate != CLOCK_RATE || map.channels.is_some_and(|c| c != 1) {
            return None;
        }
        [Codec::Pcmu, Codec::Pcma]
            .into_iter()
            .find(|c| c.encoding_name().eq_ignore_ascii_case(&map.encoding))
    }

    /// The rtpmap attribute for this codec at a payload type number.
    pub fn rtpmap(self, payload_type: u8) -> RtpMap {
        RtpMap {
            payload_type,
            encoding: self.encoding_name().to_owned(),
            clock_rate: CLOCK_RATE,
            channels: None,
        }
    }
}

/// What a payload type number of a media description stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    /// One of our audio codecs.
    Audio(Codec),
    /// telephone-event at 8000 Hz.
    TelephoneEvent,
    /// Anything else (G.729, Opus, telephone-event at other clock rates, ...).
    Unknown,
}

impl PayloadFormat {
    /// What an rtpmap names.
    pub fn from_rtpmap(map: &RtpMap) -> PayloadFormat {
        if let Some(codec) = Codec::from_rtpmap(map) {
            PayloadFormat::Audio(codec)
        } else if map.encoding.eq_ignore_ascii_case(TELEPHONE_EVENT_ENCODING)
            && map.clock_rate == CLOCK_RATE
        {
            PayloadFormat::TelephoneEvent
        } else {
            PayloadFormat::Unknown
        }
    }
}

/// The rtpmap attribute for telephone-event at a payload type number.
pub fn telephone_event_rtpmap(payload_type: u8) -> RtpMap {
    RtpMap {
        payload_type,
        encoding: TELEPHONE_EVENT_ENCODING.to_owned(),
        clock_rate: CLOCK_RATE,
        channels: None,
    }
}

/// The fmtp attribute declaring the events we support, at a payload type number.
pub fn telephone_event_fmtp(payload_type: u8) -> Fmtp {
    Fmtp {
        payload_type,
        params: TELEPHONE_EVENT_EVENTS.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pt: u8, enc: &str, clock: u32, ch: Option<u8>) -> RtpMap {
        RtpMap {
            payload_type: pt,
            encoding: enc.to_owned(),
            clock_rate: clock,
            channels: ch,
        }
    }

    #[test]
    fn static_types() {
        assert_eq!(Codec::from_static_payload_type(0), Some(Codec::Pcmu));
        assert_eq!(Codec::from_static_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_static_payload_type(18), None);
        for c in Codec::DEFAULT_PREFERENCE {
            assert_eq!(
                Codec::from_static_payload_type(c.static_payload_type()),
                Some(c)
            );
            assert_eq!(Codec::from_rtpmap(&c.rtpmap(96)), Some(c));
        }
    }

    #[test]
    fn rtpmap_matching() {
        assert_eq!(
            Codec::from_rtpmap(&map(110, "pcmu", 8000, None)),
            Some(Codec::Pcmu)
        );
        assert_eq!(
            Codec::from_rtpmap(&map(8, "PCMA", 8000, Some(1))),
            Some(Codec::Pcma)
        );
        assert_eq!(Codec::from_rtpmap(&map(8, "PCMA", 16000, None)), None);
        assert_eq!(Codec::from_rtpmap(&map(8, "PCMA", 8000, Some(2))), None);
        assert_eq!(Codec::from_rtpmap(&map(18, "G729", 8000, None)), None);
        let te = PayloadFormat::from_rtpmap(&map(101, "Telephone-Event", 8000, None));
        assert_eq!(te, PayloadFormat::TelephoneEvent);
        let te48 = PayloadFormat::from_rtpmap(&map(101, "telephone-event", 48000, None));
        assert_eq!(te48, PayloadFormat::Unknown);
    }
}
