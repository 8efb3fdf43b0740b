//! The SDP parser: lenient about unknown lines and line ends, strict about what the engine uses.
//!
//! Accepted: CRLF or LF line ends, trailing whitespace, blank lines, unknown line types and
//! attributes (kept as [`Attribute::Other`]), a missing `v=`, `s=` or `t=`. A malformed `rtpmap`,
//! `fmtp` or `ptime` is kept as [`Attribute::Other`] (so the payload type counts as unknown).
//! Rejected: a missing or malformed `o=`, a malformed `c=` (including host names, which a sans-IO
//! engine cannot resolve), a media description with a non-zero port and no address, a malformed
//! `m=` line, and input over the size limits below. For duplicate `o=`, `s=` or `c=` lines at the
//! same level, the first one wins.

use std::net::IpAddr;

use super::direction::Direction;
use super::error::SdpError;
use super::session::{
    AddressType, Attribute, Fmtp, MediaDescription, Origin, RtpMap, SessionDescription,
};

/// The longest SDP body the parser accepts, in bytes.
pub const MAX_SDP_LEN: usize = 64 * 1024;

/// The most media descriptions (`m=` lines) the parser accepts.
pub const MAX_MEDIA: usize = 64;

/// The most attributes (`a=` lines, all levels together) the parser accepts.
pub const MAX_ATTRIBUTES: usize = 256;

/// The most formats on one `m=` line the parser accepts.
pub const MAX_FORMATS: usize = 128;

/// The highest RTP payload type number.
const MAX_PAYLOAD_TYPE: u8 = 127;

impl SessionDescription {
    /// Parses an SDP body (see the module documentation for what is accepted).
    pub fn parse(input: &[u8]) -> Result<SessionDescription, SdpError> {
        if input.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge {
                len: input.len(),
                max: MAX_SDP_LEN,
            });
        }
        let text = String::from_utf8_lossy(input);
        let mut origin = None;
        let mut session_name = None;
        let mut connection = None;
        let mut attributes = Vec::new();
        let mut media: Vec<MediaDescription> = Vec::new();
        let mut attribute_count = 0usize;

        for (index, raw) in text.split('\n').enumerate() {
            let line_no = index + 1;
            let Some((kind, value)) = raw.trim_end().split_once('=') else {
                continue;
            };
            match (kind, media.last_mut()) {
                ("v", _) if value.trim() != "0" => {
                    return Err(SdpError::UnsupportedVersion(line_no));
                }
                ("o", None) if origin.is_none() => {
                    let parsed = parse_origin(value).ok_or(SdpError::InvalidOrigin(line_no))?;
                    origin = Some(parsed);
                }
                ("s", None) => {
                    session_name.get_or_insert_with(|| value.to_owned());
                }
                ("c", current) => {
                    let addr =
                        parse_connection(value).ok_or(SdpError::InvalidConnection(line_no))?;
                    let slot = match current {
                        Some(m) => &mut m.connection,
                        None => &mut connection,
                    };
                    slot.get_or_insert(addr);
                }
                ("m", _) => {
                    if media.len() >= MAX_MEDIA {
                        return Err(SdpError::TooManyMedia(MAX_MEDIA));
                    }
                    media.push(parse_media(value, line_no)?);
                }
                ("a", current) => {
                    attribute_count += 1;
                    if attribute_count > MAX_ATTRIBUTES {
                        return Err(SdpError::TooManyAttributes(MAX_ATTRIBUTES));
                    }
                    let attribute = parse_attribute(value);
                    match current {
                        Some(m) => m.attributes.push(attribute),
                        None => attributes.push(attribute),
                    }
                }
                _ => {}
            }
        }

        let origin = origin.ok_or(SdpError::MissingOrigin)?;
        for (i, m) in media.iter().enumerate() {
            if m.port != 0 && m.connection.or(connection).is_none() {
                return Err(SdpError::MissingConnection(i));
            }
        }
        Ok(SessionDescription {
            origin,
            session_name: session_name.unwrap_or_default(),
            connection,
            attributes,
            media,
        })
    }
}

impl std::str::FromStr for SessionDescription {
    type Err = SdpError;

    /// Parses an SDP body given as text (same rules as [`SessionDescription::parse`]).
    fn from_str(text: &str) -> Result<SessionDescription, SdpError> {
        SessionDescription::parse(text.as_bytes())
    }
}

/// Parses an address type token (`IP4`/`IP6`, case-insensitive).
fn parse_address_type(token: &str) -> Option<AddressType> {
    if token.eq_ignore_ascii_case("IP4") {
        Some(AddressType::Ip4)
    } else if token.eq_ignore_ascii_case("IP6") {
        Some(AddressType::Ip6)
    } else {
        None
    }
}

/// Parses the value of an `o=` line: `<user> <sess-id> <sess-version> IN <IP4|IP6> <address>`.
fn parse_origin(value: &str) -> Option<Origin> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [username, id, version, net, addr_type, address] = fields.as_slice() else {
        return None;
    };
    if !net.eq_ignore_ascii_case("IN") {
        return None;
    }
    Some(Origin {
        username: (*username).to_owned(),
        session_id: id.parse().ok()?,
        session_version: version.parse().ok()?,
        address_type: parse_address_type(addr_type)?,
        address: (*address).to_owned(),
    })
}

/// Parses the value of a `c=` line: `IN <IP4|IP6> <address>[/<ttl>[/<count>]]`.
///
/// The multicast TTL and count are dropped; the address must be an IP literal of the stated type.
fn parse_connection(value: &str) -> Option<IpAddr> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [net, addr_type, address] = fields.as_slice() else {
        return None;
    };
    if !net.eq_ignore_ascii_case("IN") {
        return None;
    }
    let address_type = parse_address_type(addr_type)?;
    let host = address.split('/').next()?;
    let ip: IpAddr = host.parse().ok()?;
    (AddressType::of(&ip) == address_type).then_some(ip)
}

/// Parses the value of an `m=` line: `<media> <port>[/<count>] <proto> <fmt> ...`.
fn parse_media(value: &str, line: usize) -> Result<MediaDescription, SdpError> {
    let invalid = |reason| SdpError::InvalidMedia { line, reason };
    let mut fields = value.split_whitespace();
    let media = fields.next().ok_or(invalid("no media type"))?;
    let port_field = fields.next().ok_or(invalid("no port"))?;
    let proto = fields.next().ok_or(invalid("no transport protocol"))?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((p, n)) => (p, Some(n)),
        None => (port_field, None),
    };
    let port: u16 = port.parse().map_err(|_| SdpError::InvalidPort(line))?;
    let port_count = port_count
        .map(|n| n.parse::<u16>())
        .transpose()
        .map_err(|_| SdpError::InvalidPort(line))?;

    let mut formats = Vec::new();
    for fmt in fields {
        if formats.len() >= MAX_FORMATS {
            return Err(SdpError::TooManyFormats {
                line,
                max: MAX_FORMATS,
            });
        }
        formats.push(fmt.to_owned());
    }
    if formats.is_empty() && port != 0 {
        return Err(invalid("no formats"));
    }
    let is_rtp = proto
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("RTP/"));
    if is_rtp && !formats.iter().all(|f| parse_payload_type(f).is_some()) {
        return Err(invalid("payload type is not a number in 0..=127"));
    }
    Ok(MediaDescription {
        media: media.to_owned(),
        port,
        port_count,
        proto: proto.to_owned(),
        formats,
        connection: None,
        attributes: Vec::new(),
    })
}

/// Parses an RTP payload type number (0..=127).
fn parse_payload_type(text: &str) -> Option<u8> {
    text.parse().ok().filter(|pt| *pt <= MAX_PAYLOAD_TYPE)
}

/// Parses the value of an `a=` line; unknown or malformed attributes become [`Attribute::Other`].
fn parse_attribute(value: &str) -> Attribute {
    let (name, arg) = match value.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (value, None),
    };
    let known = match arg {
        None => Direction::from_attribute(name).map(Attribute::Direction),
        Some(arg) if name.eq_ignore_ascii_case("rtpmap") => {
            parse_rtpmap(arg).map(Attribute::RtpMap)
        }
        Some(arg) if name.eq_ignore_ascii_case("fmtp") => parse_fmtp(arg).map(Attribute::Fmtp),
        Some(arg) if name.eq_ignore_ascii_case("ptime") => arg
            .trim()
            .parse()
            .ok()
            .filter(|p| (1..=1000).contains(p))
            .map(Attribute::Ptime),
        Some(_) => None,
    };
    known.unwrap_or_else(|| Attribute::Other {
        name: name.to_owned(),
        value: arg.map(str::to_owned),
    })
}

/// Parses an rtpmap value: `<pt> <encoding>/<clock>[/<channels>]`.
fn parse_rtpmap(arg: &str) -> Option<RtpMap> {
    let (pt, spec) = arg.trim().split_once(char::is_whitespace)?;
    let mut parts = spec.trim().split('/');
    let encoding = parts.next().filter(|e| !e.is_empty())?;
    let clock_rate = parts.next()?.parse().ok()?;
    let channels = parts.next().map(str::parse).transpose().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(RtpMap {
        payload_type: parse_payload_type(pt)?,
        encoding: encoding.to_owned(),
        clock_rate,
        channels,
    })
}

/// Parses an fmtp value: `<pt> <parameters>`.
fn parse_fmtp(arg: &str) -> Option<Fmtp> {
    let (pt, params) = arg.trim().split_once(char::is_whitespace)?;
    Some(Fmtp {
        payload_type: parse_payload_type(pt)?,
        params: params.trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::codec::{Codec, PayloadFormat};
    use crate::sdp::fixtures;

    fn parse(text: &str) -> Result<SessionDescription, SdpError> {
        text.parse()
    }

    fn ok(text: &str) -> SessionDescription {
        match parse(text) {
            Ok(sdp) => sdp,
            Err(e) => panic!("valid SDP rejected: {e}\n{text}"),
        }
    }

    /// A minimal valid SDP with the given media section appended.
    fn with_media(media: &str) -> String {
        format!("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n{media}")
    }

    #[test]
    fn all_fixtures_parse() {
        for text in fixtures::ALL {
            let sdp = ok(text);
            assert!(!sdp.media.is_empty());
        }
    }

    #[test]
    fn sipp_offer() {
        let sdp = ok(fixtures::SIPP_PCMU);
        assert_eq!(sdp.origin.username, "user1");
        assert_eq!(sdp.origin.session_id, 53_655_765);
        assert_eq!(sdp.origin.session_version, 2_353_687_637);
        assert_eq!(sdp.origin.address, "127.0.0.1");
        assert_eq!(sdp.connection, Some(IpAddr::from([127, 0, 0, 1])));
        let m = &sdp.media[0];
        assert_eq!(
            (m.media.as_str(), m.port, m.proto.as_str()),
            ("audio", 6000, "RTP/AVP")
        );
        assert_eq!(m.payload_types().collect::<Vec<_>>(), vec![0]);
        assert_eq!(m.payload_format(0), PayloadFormat::Audio(Codec::Pcmu));
        assert_eq!(m.direction(), None);
        assert_eq!(sdp.effective_direction(m), Direction::SendRecv);
    }

    #[test]
    fn static_types_without_rtpmap_and_lf_line_ends() {
        let sdp = ok(fixtures::BARE_0_8_101);
        let m = &sdp.media[0];
        assert_eq!(m.payload_types().collect::<Vec<_>>(), vec![0, 8, 101]);
        assert_eq!(m.payload_format(0), PayloadFormat::Audio(Codec::Pcmu));
        assert_eq!(m.payload_format(8), PayloadFormat::Audio(Codec::Pcma));
        assert_eq!(m.payload_format(101), PayloadFormat::TelephoneEvent);
        assert_eq!(m.fmtp(101).map(|f| f.params.as_str()), Some("0-16"));
        assert_eq!(sdp.session_name, "call");
    }

    #[test]
    fn baresip_attributes() {
        let sdp = ok(fixtures::BARESIP);
        let m = &sdp.media[0];
        assert_eq!(m.ptime(), Some(20));
        assert_eq!(m.direction(), Some(Direction::SendRecv));
        assert_eq!(m.payload_format(96), PayloadFormat::Unknown);
        assert_eq!(m.rtpmap(96).map(|r| r.channels), Some(Some(2)));
        assert!(m
            .attributes
            .iter()
            .any(|a| matches!(a, Attribute::Other { name, value: None } if name == "rtcp-rsize")));
        let ssrc = m.attributes.iter().find_map(|a| match a {
            Attribute::Other { name, value } if name == "ssrc" => value.as_deref(),
            _ => None,
        });
        assert!(ssrc.is_some_and(|v| v.starts_with("1937186183 cname:")));
    }

    #[test]
    fn linphone_with_video_and_session_attributes() {
        let sdp = ok(fixtures::LINPHONE_VIDEO);
        assert_eq!(sdp.media.len(), 2);
        assert_eq!(sdp.attributes.len(), 2);
        assert_eq!(sdp.media[1].media, "video");
        assert_eq!(sdp.media[1].port, 9078);
        assert_eq!(
            sdp.media[0].payload_format(100),
            PayloadFormat::TelephoneEvent
        );
        assert_eq!(sdp.media[0].payload_format(101), PayloadFormat::Unknown);
        assert_eq!(sdp.first_rtp_audio(), Some(0));
    }

    #[test]
    fn hold_forms() {
        let sdp = ok(fixtures::LINPHONE_HOLD);
        assert_eq!(sdp.effective_direction(&sdp.media[0]), Direction::SendOnly);
        assert!(!sdp.is_old_style_hold(&sdp.media[0]));

        let sdp = ok(fixtures::OLD_STYLE_HOLD);
        assert!(sdp.is_old_style_hold(&sdp.media[0]));
        assert_eq!(sdp.effective_direction(&sdp.media[0]), Direction::SendOnly);

        let sdp = ok(&with_media("a=inactive\r\nm=audio 5000 RTP/AVP 0\r\n"));
        assert_eq!(sdp.direction(), Some(Direction::Inactive));
        assert_eq!(sdp.effective_direction(&sdp.media[0]), Direction::Inactive);

        let sdp = ok(&with_media(
            "a=sendonly\r\nm=audio 5000 RTP/AVP 0\r\na=sendrecv\r\n",
        ));
        assert_eq!(sdp.effective_direction(&sdp.media[0]), Direction::SendRecv);
    }

    #[test]
    fn media_level_connection_and_ipv6() {
        let sdp = ok(fixtures::DYNAMIC_PCMU);
        assert_eq!(sdp.connection, None);
        assert_eq!(sdp.media[0].connection, Some(IpAddr::from([10, 1, 1, 1])));
        assert_eq!(
            sdp.media[0].payload_format(110),
            PayloadFormat::Audio(Codec::Pcmu)
        );

        let v6 = "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\n\
            c=IN IP6 2001:db8::1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 8\r\n";
        let sdp = ok(v6);
        assert_eq!(sdp.origin.address_type, AddressType::Ip6);
        assert_eq!(
            sdp.connection,
            Some(IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]))
        );
    }

    #[test]
    fn lenient_inputs() {
        // Unknown lines, blank lines, trailing spaces, a malformed rtpmap, multicast TTL.
        let text = "x-garbage\r\nv=0 \r\no=- 1 1 IN IP4 host.example.com\r\n\r\nz=0 0\r\n\
            c=IN IP4 224.2.1.1/127\r\nm=audio 5000 RTP/AVP 0 8\r\n\
            a=rtpmap:8 PCMA\r\na=ptime:abc\r\nb=AS:64\r\n";
        let sdp = ok(text);
        assert_eq!(sdp.origin.address, "host.example.com");
        assert_eq!(sdp.connection, Some(IpAddr::from([224, 2, 1, 1])));
        let m = &sdp.media[0];
        assert_eq!(m.ptime(), None);
        assert_eq!(m.payload_format(8), PayloadFormat::Audio(Codec::Pcma));
        assert_eq!(m.attributes.len(), 2);
        // A rejected stream may omit its formats and its address.
        let sdp = ok("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\nm=video 0 RTP/AVP\r\n");
        assert!(sdp.media[0].formats.is_empty());
        // Non-RTP protocols keep non-numeric formats.
        let sdp = ok(&with_media("m=image 0 udptl t38\r\n"));
        assert_eq!(sdp.media[0].formats, vec!["t38".to_owned()]);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        use SdpError::*;
        let cases: Vec<(String, SdpError)> = vec![
            (with_media("m=audio abc RTP/AVP 0\r\n"), InvalidPort(6)),
            (with_media("m=audio 70000 RTP/AVP 0\r\n"), InvalidPort(6)),
            (with_media("m=audio 6000/x RTP/AVP 0\r\n"), InvalidPort(6)),
            (
                with_media("m=audio 6000\r\n"),
                InvalidMedia {
                    line: 6,
                    reason: "no transport protocol",
                },
            ),
            (
                with_media("m=audio 6000 RTP/AVP\r\n"),
                InvalidMedia {
                    line: 6,
                    reason: "no formats",
                },
            ),
            (
                with_media("m=audio 6000 RTP/AVP 0 128\r\n"),
                InvalidMedia {
                    line: 6,
                    reason: "payload type is not a number in 0..=127",
                },
            ),
            (
                with_media("m=audio 6000 RTP/AVP PCMU\r\n"),
                InvalidMedia {
                    line: 6,
                    reason: "payload type is not a number in 0..=127",
                },
            ),
            (
                with_media("m=\r\n"),
                InvalidMedia {
                    line: 6,
                    reason: "no media type",
                },
            ),
            (
                with_media("m=audio 6000 RTP/AVP 0\r\nc=IN IP4 300.1.1.1\r\n"),
                InvalidConnection(7),
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 pbx.example.com\r\n".into(),
                InvalidConnection(3),
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP6 1.2.3.4\r\n".into(),
                InvalidConnection(3),
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4\r\n".into(),
                InvalidConnection(3),
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 6000 RTP/AVP 0\r\n".into(),
                MissingConnection(0),
            ),
            (
                "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 6000 RTP/AVP 0\r\n".into(),
                MissingOrigin,
            ),
            ("v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n".into(), InvalidOrigin(2)),
            ("v=0\r\no=- 1 1 IN IP4\r\n".into(), InvalidOrigin(2)),
            (
                "v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\n".into(),
                UnsupportedVersion(1),
            ),
            (String::new(), MissingOrigin),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(&text), Err(expected), "input:\n{text}");
        }
    }

    #[test]
    fn limits() {
        let big = vec![b'a'; MAX_SDP_LEN + 1];
        assert!(matches!(
            SessionDescription::parse(&big),
            Err(SdpError::TooLarge { .. })
        ));
        let many_media = with_media(&"m=audio 0 RTP/AVP 0\r\n".repeat(MAX_MEDIA + 1));
        assert_eq!(parse(&many_media), Err(SdpError::TooManyMedia(MAX_MEDIA)));
        let at_limit = with_media(&"m=audio 0 RTP/AVP 0\r\n".repeat(MAX_MEDIA));
        assert_eq!(ok(&at_limit).media.len(), MAX_MEDIA);
        let many_attrs = with_media(&"a=x\r\n".repeat(MAX_ATTRIBUTES + 1));
        assert_eq!(
            parse(&many_attrs),
            Err(SdpError::TooManyAttributes(MAX_ATTRIBUTES))
        );
        let fmts = vec!["0"; MAX_FORMATS + 1].join(" ");
        let many_fmts = with_media(&format!("m=audio 5000 RTP/AVP {fmts}\r\n"));
        assert!(matches!(
            parse(&many_fmts),
            Err(SdpError::TooManyFormats { .. })
        ));
    }

    #[test]
    fn every_truncation_and_mutation_is_handled_without_panic() {
        for text in fixtures::ALL {
            let bytes = text.as_bytes();
            for end in 0..=bytes.len() {
                let _ = SessionDescription::parse(&bytes[..end]);
                let _ = SessionDescription::parse(&bytes[end..]);
            }
            for i in 0..bytes.len() {
                for b in [b'\n', b'\r', b' ', b'=', b'/', b':', b'9', 0xff, 0xc3] {
                    let mut mutated = bytes.to_vec();
                    mutated[i] = b;
                    if let Ok(sdp) = SessionDescription::parse(&mutated) {
                        // Whatever parses must print to something that parses and prints the same.
                        let printed = sdp.to_string();
                        let reparsed = SessionDescription::parse(printed.as_bytes());
                        assert_eq!(reparsed.map(|r| r.to_string()), Ok(printed));
                    }
                }
            }
        }
    }
}
