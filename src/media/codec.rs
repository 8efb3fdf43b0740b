//! The G.711 codecs the media path speaks, with payload types and encode/decode dispatch.

use super::g711;

/// A G.711 codec (8 kHz, one byte per sample, 160 bytes per 20 ms frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// Sampling rate (and RTP clock rate) of both codecs.
    pub const CLOCK_RATE: u32 = 8000;

    /// The static RTP payload type (RFC 3551): 0 for PCMU, 8 for PCMA.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec for a static payload type, if it is 0 or 8.
    pub fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The SDP encoding name ("PCMU" / "PCMA").
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The code for digital silence: 0xFF for µ-law, 0xD5 for A-law.
    pub fn silence_byte(self) -> u8 {
        match self {
            Codec::Pcmu => g711::ULAW_SILENCE,
            Codec::Pcma => g711::ALAW_SILENCE,
        }
    }

    /// Encodes one linear sample.
    #[inline]
    pub fn encode_sample(self, x: i16) -> u8 {
        match self {
            Codec::Pcmu => g711::ulaw_encode(x),
            Codec::Pcma => g711::alaw_encode(x),
        }
    }

    /// Decodes one code to a linear sample.
    #[inline]
    pub fn decode_sample(self, code: u8) -> i16 {
        match self {
            Codec::Pcmu => g711::ulaw_decode(code),
            Codec::Pcma => g711::alaw_decode(code),
        }
    }

    /// Encodes `min(pcm.len(), out.len())` samples; returns that count.
    #[inline]
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) -> usize {
        match self {
            Codec::Pcmu => g711::encode_ulaw(pcm, out),
            Codec::Pcma => g711::encode_alaw(pcm, out),
        }
    }

    /// Decodes `min(codes.len(), out.len())` codes; returns that count.
    #[inline]
    pub fn decode(self, codes: &[u8], out: &mut [i16]) -> usize {
        match self {
            Codec::Pcmu => g711::decode_ulaw(codes, out),
            Codec::Pcma => g711::decode_alaw(codes, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::from_payload_type(0), Some(Codec::Pcmu));
        assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_payload_type(101), None);
        assert_eq!(Codec::Pcmu.silence_byte(), 0xFF);
        assert_eq!(Codec::Pcma.silence_byte(), 0xD5);
        assert_eq!(Codec::Pcma.name(), "PCMA");
        for c in [Codec::Pcmu, Codec::Pcma] {
            assert_eq!(c.encode_sample(0), c.silence_byte());
            assert!(c.decode_sample(c.silence_byte()).abs() <= 8);
        }
    }

    #[test]
    fn dispatch() {
        let pcm = [0i16, 1000, -1000, 32767];
        let mut out = [0u8; 4];
        let mut back = [0i16; 4];
        assert_eq!(Codec::Pcma.encode(&pcm, &mut out), 4);
        assert_eq!(out, [0xD5, 0xFA, 0x7A, 0xAA]);
        assert_eq!(Codec::Pcma.decode(&out, &mut back), 4);
        assert_eq!(back, [8, 1008, -1008, 32256]);
        assert_eq!(Codec::Pcmu.encode(&pcm, &mut out), 4);
        assert_eq!(out, [0xFF, 0xCE, 0x4E, 0x80]);
        assert_eq!(Codec::Pcmu.decode(&out, &mut back), 4);
        assert_eq!(back, [0, 988, -988, 32124]);
    }
}
