//! The parsed session description (RFC 4566) and its printer.
//!
//! Only what the engine needs is modelled: origin, session name, connection addresses, media
//! descriptions and attributes. Other lines (`i=`, `b=`, `t=`, `k=`, ...) are dropped by the
//! parser; the printer always writes `t=0 0`.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use super::codec::{Codec, PayloadFormat};
use super::direction::Direction;

/// A session description: the body of an offer or an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// The `o=` line.
    pub origin: Origin,
    /// The `s=` line (`-` is printed when empty).
    pub session_name: String,
    /// The session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Session-level attributes in their order.
    pub attributes: Vec<Attribute>,
    /// The media descriptions (`m=` sections) in their order.
    pub media: Vec<MediaDescription>,
}

/// The `o=` line: who made the description and which version of it this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The user name (`-` when there is none).
    pub username: String,
    /// The session id; stays the same for the whole session.
    pub session_id: u64,
    /// The session version; increases whenever the description changes (RFC 3264 §8).
    pub session_version: u64,
    /// Whether the address is IPv4 or IPv6.
    pub address_type: AddressType,
    /// The originating address (an IP address or a host name, kept verbatim).
    pub address: String,
}

/// The address type of an `o=` or `c=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressType {
    /// `IP4`.
    Ip4,
    /// `IP6`.
    Ip6,
}

impl AddressType {
    /// The address type of an IP address.
    pub const fn of(addr: &IpAddr) -> AddressType {
        match addr {
            IpAddr::V4(_) => AddressType::Ip4,
            IpAddr::V6(_) => AddressType::Ip6,
        }
    }

    /// The token used on the wire, `IP4` or `IP6`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AddressType::Ip4 => "IP4",
            AddressType::Ip6 => "IP6",
        }
    }
}

/// One `m=` section with its `c=` line and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// The media type, e.g. `audio`, `video`, `image`.
    pub media: String,
    /// The transport port; 0 means the stream is rejected or disabled.
    pub port: u16,
    /// The optional port count (`m=audio 6000/2 ...`).
    pub port_count: Option<u16>,
    /// The transport protocol, e.g. `RTP/AVP`.
    pub proto: String,
    /// The format list; for RTP protocols these are payload type numbers (checked by the parser).
    pub formats: Vec<String>,
    /// The media-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Media-level attributes in their order.
    pub attributes: Vec<Attribute>,
}

/// An `a=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
    RtpMap(RtpMap),
    /// `a=fmtp:<pt> <parameters>`.
    Fmtp(Fmtp),
    /// `a=ptime:<milliseconds>`.
    Ptime(u32),
    /// `a=sendrecv`, `a=sendonly`, `a=recvonly` or `a=inactive`.
    Direction(Direction),
    /// Any other attribute (or a malformed one of the above), kept verbatim.
    Other {
        /// The attribute name.
        name: String,
        /// The value after `:`, if any.
        value: Option<String>,
    },
}

/// An `a=rtpmap` attribute: what a payload type number stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// The payload type number (0..=127).
    pub payload_type: u8,
    /// The encoding name as written, e.g. `PCMA` or `telephone-event`.
    pub encoding: String,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// The channel count, if given.
    pub channels: Option<u8>,
}

/// An `a=fmtp` attribute: format parameters of a payload type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// The payload type number (0..=127).
    pub payload_type: u8,
    /// The parameters, verbatim (e.g. `0-15`).
    pub params: String,
}

/// Finds the first direction attribute in a list.
fn direction_in(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().find_map(|a| match a {
        Attribute::Direction(d) => Some(*d),
        _ => None,
    })
}

/// Whether an address is the "unspecified" address used for RFC 2543 hold.
fn is_hold_address(addr: &IpAddr) -> bool {
    addr.is_unspecified()
}

impl SessionDescription {
    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// The connection address of a media description: its own `c=`, else the session's.
    pub fn connection_of(&self, media: &MediaDescription) -> Option<IpAddr> {
        media.connection.or(self.connection)
    }

    /// Whether a media description is on RFC 2543 hold (`c=IN IP4 0.0.0.0`).
    pub fn is_old_style_hold(&self, media: &MediaDescription) -> bool {
        self.connection_of(media)
            .is_some_and(|a| is_hold_address(&a))
    }

    /// The author's effective direction for a media description.
    ///
    /// The media attribute wins over the session attribute; the default is sendrecv. A `0.0.0.0`
    /// address means the author does not receive, so it turns sendrecv into sendonly and recvonly
    /// into inactive.
    pub fn effective_direction(&self, media: &MediaDescription) -> Direction {
        let d = media
            .direction()
            .or_else(|| self.direction())
            .unwrap_or_default();
        if self.is_old_style_hold(media) {
            d.without_receive()
        } else {
            d
        }
    }

    /// Index of the first non-rejected `audio` m-line over plain RTP/AVP.
    pub fn first_rtp_audio(&self) -> Option<usize> {
        self.media
            .iter()
            .position(|m| m.is_audio() && m.is_rtp_avp() && m.port != 0)
    }

    /// Prints the description (CRLF line ends) and appends it to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_string().as_bytes());
    }

    /// Prints the description (CRLF line ends) into a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl MediaDescription {
    /// Whether the media type is `audio` (case-insensitive).
    pub fn is_audio(&self) -> bool {
        self.media.eq_ignore_ascii_case("audio")
    }

    /// Whether the transport is plain `RTP/AVP` (case-insensitive).
    pub fn is_rtp_avp(&self) -> bool {
        self.proto.eq_ignore_ascii_case("RTP/AVP")
    }

    /// The payload type numbers of the format list (entries that are not numbers are skipped).
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }

    /// The `a=rtpmap` for a payload type, if any.
    pub fn rtpmap(&self, payload_type: u8) -> Option<&RtpMap> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::RtpMap(m) if m.payload_type == payload_type => Some(m),
            _ => None,
        })
    }

    /// The `a=fmtp` for a payload type, if any.
    pub fn fmtp(&self, payload_type: u8) -> Option<&Fmtp> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp(f) if f.payload_type == payload_type => Some(f),
            _ => None,
        })
    }

    /// The media-level direction attribute, if any (the first one wins).
    pub fn direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// The `a=ptime` value, if any.
    pub fn ptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Ptime(p) => Some(*p),
            _ => None,
        })
    }

    /// What a payload type stands for: its rtpmap if present, else the static assignment.
    pub fn payload_format(&self, payload_type: u8) -> PayloadFormat {
        match self.rtpmap(payload_type) {
            Some(map) => PayloadFormat::from_rtpmap(map),
            None => Codec::from_static_payload_type(payload_type)
                .map_or(PayloadFormat::Unknown, PayloadFormat::Audio),
        }
    }

    /// A copy with port 0 and no attributes: how an answer rejects a stream (RFC 3264 §6).
    pub fn rejected(&self) -> MediaDescription {
        MediaDescription {
            media: self.media.clone(),
            port: 0,
            port_count: None,
            proto: self.proto.clone(),
            formats: self.formats.clone(),
            connection: None,
            attributes: Vec::new(),
        }
    }
}

/// Writes text with CR, LF and NUL replaced so that a value cannot break the line structure.
fn clean(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        f.write_char(if matches!(c, '\r' | '\n' | '\0') {
            ' '
        } else {
            c
        })?;
    }
    Ok(())
}

/// Writes a `c=` line.
fn write_connection(f: &mut fmt::Formatter<'_>, addr: &IpAddr) -> fmt::Result {
    write!(f, "c=IN {} {}\r\n", AddressType::of(addr).as_str(), addr)
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::RtpMap(m) => {
                write!(f, "rtpmap:{} ", m.payload_type)?;
                clean(f, &m.encoding)?;
                write!(f, "/{}", m.clock_rate)?;
                match m.channels {
                    Some(ch) => write!(f, "/{ch}"),
                    None => Ok(()),
                }
            }
            Attribute::Fmtp(p) => {
                write!(f, "fmtp:{} ", p.payload_type)?;
                clean(f, &p.params)
            }
            Attribute::Ptime(p) => write!(f, "ptime:{p}"),
            Attribute::Direction(d) => f.write_str(d.as_str()),
            Attribute::Other { name, value } => {
                clean(f, name)?;
                match value {
                    Some(v) => {
                        f.write_char(':')?;
                        clean(f, v)
                    }
                    None => Ok(()),
                }
            }
        }
    }
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("m=")?;
        clean(f, &self.media)?;
        write!(f, " {}", self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        f.write_char(' ')?;
        clean(f, &self.proto)?;
        for fmt in &self.formats {
            f.write_char(' ')?;
            clean(f, fmt)?;
        }
        f.write_str("\r\n")?;
        if let Some(addr) = &self.connection {
            write_connection(f, addr)?;
        }
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        Ok(())
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        f.write_str("v=0\r\no=")?;
        clean(
            f,
            if o.username.is_empty() {
                "-"
            } else {
                &o.username
            },
        )?;
        write!(
            f,
            " {} {} IN {} ",
            o.session_id,
            o.session_version,
            o.address_type.as_str()
        )?;
        clean(f, &o.address)?;
        f.write_str("\r\ns=")?;
        clean(
            f,
            if self.session_name.is_empty() {
                "-"
            } else {
                &self.session_name
            },
        )?;
        f.write_str("\r\n")?;
        if let Some(addr) = &self.connection {
            write_connection(f, addr)?;
        }
        f.write_str("t=0 0\r\n")?;
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::fixtures;

    fn parse(text: &str) -> SessionDescription {
        match SessionDescription::parse(text.as_bytes()) {
            Ok(sdp) => sdp,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn round_trip_print_then_parse() {
        for text in fixtures::ALL {
            let sdp = parse(text);
            let printed = sdp.to_string();
            assert!(printed.ends_with("\r\n"));
            assert!(
                !printed.replace("\r\n", "").contains('\n'),
                "bare LF in\n{printed}"
            );
            assert_eq!(parse(&printed), sdp, "round trip of\n{printed}");
        }
    }

    #[test]
    fn prints_canonical_layout() {
        let sdp = parse(fixtures::DYNAMIC_PCMU);
        let expected = "v=0\r\n\
o=- 5 5 IN IP4 10.1.1.1\r\n\
s=-\r\n\
t=0 0\r\n\
m=audio 4000 RTP/AVP 110 111\r\n\
c=IN IP4 10.1.1.1\r\n\
a=rtpmap:110 pcmu/8000\r\n\
a=rtpmap:111 Telephone-Event/8000\r\n\
a=fmtp:111 0-15\r\n";
        assert_eq!(sdp.to_string(), expected);
        let mut out = b"prefix".to_vec();
        sdp.write_to(&mut out);
        assert_eq!(&out[6..], expected.as_bytes());
        assert_eq!(sdp.to_bytes(), expected.as_bytes());
    }

    #[test]
    fn printing_cannot_inject_lines() {
        let mut sdp = parse(fixtures::SIPP_PCMU);
        sdp.session_name = "evil\r\na=sendonly".to_owned();
        sdp.media[0].attributes.push(Attribute::Other {
            name: "x".to_owned(),
            value: Some("1\nc=IN IP4 6.6.6.6".to_owned()),
        });
        let printed = sdp.to_string();
        assert_eq!(
            printed.matches("\r\n").count(),
            printed.matches('\n').count()
        );
        let reparsed = parse(&printed);
        assert_eq!(reparsed.direction(), None);
        assert_eq!(reparsed.media[0].connection, None);
    }

    #[test]
    fn rejected_copy_keeps_identity() {
        let sdp = parse(fixtures::LINPHONE_VIDEO);
        let r = sdp.media[1].rejected();
        assert_eq!(
            (r.media.as_str(), r.port, r.proto.as_str()),
            ("video", 0, "RTP/AVP")
        );
        assert_eq!(r.formats, sdp.media[1].formats);
        assert!(r.attributes.is_empty());
    }
}
