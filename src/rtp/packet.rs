//! RTP fixed header (RFC 3550 §5.1): zero-copy parsing and header writing.
//!
//! [`RtpPacket::parse`] borrows the datagram and never allocates; every length field is checked
//! against the buffer so malformed or truncated input yields an [`RtpError`], never a panic.

use thiserror::Error;

/// Length of the fixed RTP header (no CSRCs, no extension).
pub const RTP_HEADER_LEN: usize = 12;

/// The only RTP version in use (RFC 3550).
pub const RTP_VERSION: u8 = 2;

/// Why a datagram could not be parsed as RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("RTP packet too short: {len} bytes, need at least 12")]
    TooShort {
        /// Datagram length.
        len: usize,
    },
    /// Version field is not 2.
    #[error("unsupported RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The CSRC list runs past the end of the datagram.
    #[error("RTP CSRC list truncated: {csrc_count} CSRCs need {need} bytes, packet has {len}")]
    CsrcTruncated {
        /// CC field.
        csrc_count: u8,
        /// Bytes needed up to the end of the CSRC list.
        need: usize,
        /// Datagram length.
        len: usize,
    },
    /// The header extension runs past the end of the datagram.
    #[error("RTP header extension truncated: need {need} bytes, packet has {len}")]
    ExtensionTruncated {
        /// Bytes needed up to the end of the extension.
        need: usize,
        /// Datagram length.
        len: usize,
    },
    /// The padding count is zero or larger than the payload.
    #[error("invalid RTP padding: count {count}, only {available} bytes after the header")]
    BadPadding {
        /// Last octet of the packet (padding count).
        count: u8,
        /// Bytes available after the header (payload plus padding).
        available: usize,
    },
}

/// The header extension of an RTP packet (RFC 3550 §5.3.1), borrowed from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    /// The 16-bit profile-defined identifier (e.g. 0xBEDE for RFC 8285 one-byte headers).
    pub profile: u16,
    /// The extension data (length field × 4 bytes), without the 4-byte extension header.
    pub data: &'a [u8],
}

/// A parsed RTP packet: header fields plus borrowed CSRC list, extension and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// P bit: the packet carried padding (already removed from `payload`).
    pub padding: bool,
    /// Number of CSRC identifiers (CC field).
    pub csrc_count: u8,
    /// M bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Raw CSRC list (`csrc_count` × 4 bytes, big-endian); see [`RtpPacket::csrcs`].
    pub csrc_bytes: &'a [u8],
    /// Header extension, present when the X bit is set.
    pub extension: Option<RtpExtension<'a>>,
    /// Payload with any padding removed.
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses an RTP datagram without allocating; rejects malformed or truncated input.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        let Some(fixed) = buf.first_chunk::<RTP_HEADER_LEN>() else {
            return Err(RtpError::TooShort { len: buf.len() });
        };
        let b0 = fixed[0];
        let version = b0 >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::BadVersion(version));
        }
        let padding = b0 & 0x20 != 0;
        let has_extension = b0 & 0x10 != 0;
        let csrc_count = b0 & 0x0F;
        let b1 = fixed[1];
        let sequence = u16::from_be_bytes([fixed[2], fixed[3]]);
        let timestamp = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let ssrc = u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);

        let csrc_end = RTP_HEADER_LEN + 4 * usize::from(csrc_count);
        let Some(csrc_bytes) = buf.get(RTP_HEADER_LEN..csrc_end) else {
            return Err(RtpError::CsrcTruncated {
                csrc_count,
                need: csrc_end,
                len: buf.len(),
            });
        };

        let mut offset = csrc_end;
        let extension = if has_extension {
            let Some(ext_hdr) = buf.get(offset..offset + 4) else {
                return Err(RtpError::ExtensionTruncated {
                    need: offset + 4,
                    len: buf.len(),
                });
            };
            let profile = u16::from_be_bytes([ext_hdr[0], ext_hdr[1]]);
            let words = usize::from(u16::from_be_bytes([ext_hdr[2], ext_hdr[3]]));
            let start = offset + 4;
            let end = start + 4 * words;
            let Some(data) = buf.get(start..end) else {
                return Err(RtpError::ExtensionTruncated {
                    need: end,
                    len: buf.len(),
                });
            };
            offset = end;
            Some(RtpExtension { profile, data })
        } else {
            None
        };

        // `offset <= buf.len()` holds here: every step above was bounds-checked with `get`.
        let rest = &buf[offset..];
        let payload = if padding {
            let count = rest.last().copied().unwrap_or(0);
            if count == 0 || usize::from(count) > rest.len() {
                return Err(RtpError::BadPadding {
                    count,
                    available: rest.len(),
                });
            }
            &rest[..rest.len() - usize::from(count)]
        } else {
            rest
        };

        Ok(RtpPacket {
            padding,
            csrc_count,
            marker: b1 & 0x80 != 0,
            payload_type: b1 & 0x7F,
            sequence,
            timestamp,
            ssrc,
            csrc_bytes,
            extension,
            payload,
        })
    }

    /// Iterates over the CSRC identifiers.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.csrc_bytes
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// Writes a 12-byte RTP header (V=2, no padding/extension/CSRC) into `buf` and returns 12.
///
/// `pt` is masked to 7 bits.
///
/// # Panics
/// If `buf` is shorter than [`RTP_HEADER_LEN`] (a caller bug: size send buffers for the header).
pub fn write_header(buf: &mut [u8], marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32) -> usize {
    let hdr = &mut buf[..RTP_HEADER_LEN];
    hdr[0] = RTP_VERSION << 6;
    hdr[1] = (u8::from(marker) << 7) | (pt & 0x7F);
    hdr[2..4].copy_from_slice(&seq.to_be_bytes());
    hdr[4..8].copy_from_slice(&ts.to_be_bytes());
    hdr[8..12].copy_from_slice(&ssrc.to_be_bytes());
    RTP_HEADER_LEN
}

/// True if the datagram looks like RTCP rather than RTP on an RTP/RTCP-muxed port (RFC 5761 §4).
///
/// Checks version 2 and a second octet in 192..=223, the range RFC 5761 reserves for RTCP
/// packet types; it covers SR/RR/SDES/BYE/APP (200-204) as well as RTPFB/PSFB/XR (205-207).
/// RTP payload types 64-95 are never negotiated on a muxed port for exactly this reason.
pub fn is_rtcp(buf: &[u8]) -> bool {
    match buf {
        [b0, b1, ..] => b0 >> 6 == RTP_VERSION && (192..=223).contains(b1),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32) -> [u8; 12] {
        let mut b = [0u8; 12];
        assert_eq!(write_header(&mut b, marker, pt, seq, ts, ssrc), 12);
        b
    }

    #[test]
    fn roundtrip_basic() {
        let mut pkt = header(true, 8, 0xBEEF, 0xDEAD_BEEF, 0x1234_5678).to_vec();
        pkt.extend_from_slice(&[1, 2, 3, 4]);
        let p = RtpPacket::parse(&pkt).unwrap();
        assert!(p.marker);
        assert!(!p.padding);
        assert_eq!(p.payload_type, 8);
        assert_eq!(p.sequence, 0xBEEF);
        assert_eq!(p.timestamp, 0xDEAD_BEEF);
        assert_eq!(p.ssrc, 0x1234_5678);
        assert_eq!(p.csrc_count, 0);
        assert_eq!(p.extension, None);
        assert_eq!(p.payload, &[1, 2, 3, 4]);
    }

    #[test]
    fn known_bytes() {
        // V=2, M=0, PT=0, seq=1, ts=160, ssrc=0xAABBCCDD, 2-byte payload.
        let pkt = [
            0x80, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xA0, 0xAA, 0xBB, 0xCC, 0xDD, 0xFF, 0x7F,
        ];
        let p = RtpPacket::parse(&pkt).unwrap();
        assert_eq!((p.payload_type, p.sequence, p.timestamp), (0, 1, 160));
        assert_eq!(p.ssrc, 0xAABB_CCDD);
        assert!(!p.marker);
        assert_eq!(p.payload, &[0xFF, 0x7F]);
        assert_eq!(&header(false, 0, 1, 160, 0xAABB_CCDD)[..], &pkt[..12]);
    }

    #[test]
    fn pt_is_masked() {
        let b = header(false, 0xFF, 0, 0, 0);
        assert_eq!(b[1], 0x7F);
    }

    #[test]
    fn empty_payload_ok() {
        let b = header(false, 0, 0, 0, 0);
        assert_eq!(RtpPacket::parse(&b).unwrap().payload, &[] as &[u8]);
    }

    #[test]
    fn csrc_extension_padding() {
        let mut pkt = header(false, 101, 7, 8, 9).to_vec();
        pkt[0] |= 0x20 | 0x10 | 2; // P, X, CC=2
        pkt.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]); // CSRCs
        pkt.extend_from_slice(&[0xBE, 0xDE, 0x00, 0x02]); // ext header: 2 words
        pkt.extend_from_slice(&[0x10, 0xAA, 0, 0, 0x21, 0xBB, 0xCC, 0]); // ext data
        pkt.extend_from_slice(&[5, 6, 7]); // payload
        pkt.extend_from_slice(&[0, 0, 3]); // padding, count 3
        let p = RtpPacket::parse(&pkt).unwrap();
        assert!(p.padding);
        assert_eq!(p.csrc_count, 2);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![1, 2]);
        let ext = p.extension.unwrap();
        assert_eq!(ext.profile, 0xBEDE);
        assert_eq!(ext.data, &[0x10, 0xAA, 0, 0, 0x21, 0xBB, 0xCC, 0]);
        assert_eq!(p.payload, &[5, 6, 7]);
    }

    #[test]
    fn empty_extension() {
        let mut pkt = header(false, 0, 0, 0, 0).to_vec();
        pkt[0] |= 0x10;
        pkt.extend_from_slice(&[0x10, 0x00, 0x00, 0x00, 9]);
        let p = RtpPacket::parse(&pkt).unwrap();
        assert_eq!(p.extension.unwrap().data, &[] as &[u8]);
        assert_eq!(p.payload, &[9]);
    }

    #[test]
    fn padding_consuming_all() {
        let mut pkt = header(false, 0, 0, 0, 0).to_vec();
        pkt[0] |= 0x20;
        pkt.extend_from_slice(&[0, 0, 0, 4]);
        assert_eq!(RtpPacket::parse(&pkt).unwrap().payload, &[] as &[u8]);
    }

    #[test]
    fn errors() {
        assert_eq!(RtpPacket::parse(&[]), Err(RtpError::TooShort { len: 0 }));
        assert_eq!(
            RtpPacket::parse(&[0x80; 11]),
            Err(RtpError::TooShort { len: 11 })
        );
        let mut v1 = header(false, 0, 0, 0, 0);
        v1[0] = 0x40;
        assert_eq!(RtpPacket::parse(&v1), Err(RtpError::BadVersion(1)));

        let mut cc = header(false, 0, 0, 0, 0).to_vec();
        cc[0] |= 3;
        cc.extend_from_slice(&[0; 11]);
        assert!(matches!(
            RtpPacket::parse(&cc),
            Err(RtpError::CsrcTruncated { need: 24, .. })
        ));

        let mut x = header(false, 0, 0, 0, 0).to_vec();
        x[0] |= 0x10;
        x.extend_from_slice(&[0xBE, 0xDE]);
        assert!(matches!(
            RtpPacket::parse(&x),
            Err(RtpError::ExtensionTruncated { .. })
        ));
        x.extend_from_slice(&[0xFF, 0xFF, 1, 2, 3, 4]);
        assert!(matches!(
            RtpPacket::parse(&x),
            Err(RtpError::ExtensionTruncated { .. })
        ));

        let mut p = header(false, 0, 0, 0, 0).to_vec();
        p[0] |= 0x20;
        assert!(matches!(
            RtpPacket::parse(&p),
            Err(RtpError::BadPadding { count: 0, .. })
        ));
        p.extend_from_slice(&[1, 0]);
        assert!(matches!(
            RtpPacket::parse(&p),
            Err(RtpError::BadPadding { count: 0, .. })
        ));
        p.push(4);
        assert!(matches!(
            RtpPacket::parse(&p),
            Err(RtpError::BadPadding {
                count: 4,
                available: 3
            })
        ));
    }

    #[test]
    fn never_panics_on_garbage() {
        // Exhaustive over short prefixes with all flag combinations, plus a xorshift fuzz.
        let mut buf = [0u8; 64];
        let mut s: u32 = 0x9E37_79B9;
        for _ in 0..200_000 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let len = (s % 65) as usize;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (s.rotate_left(i as u32 * 7) >> (i % 24)) as u8;
            }
            buf[0] = (buf[0] & 0x3F) | 0x80;
            let _ = RtpPacket::parse(&buf[..len]);
        }
    }

    #[test]
    fn rtcp_detection() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 201, 0, 7]));
        assert!(is_rtcp(&[0x81, 203, 0, 1]));
        assert!(is_rtcp(&[0x80, 204]));
        assert!(!is_rtcp(&[0x80, 0]));
        assert!(!is_rtcp(&[0x80, 0x80 | 8])); // PCMA with marker
        assert!(!is_rtcp(&[0x80, 101]));
        assert!(!is_rtcp(&[0x80, 0x80 | 101])); // telephone-event with marker
        assert!(!is_rtcp(&[0x00, 200])); // wrong version (e.g. STUN starts with 0x00/0x01)
        assert!(!is_rtcp(&[0x80]));
        assert!(!is_rtcp(&[]));
    }
}
