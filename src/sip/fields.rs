//! Typed views of the header values the engine acts on: Via, From/To/Contact/Route, CSeq.

use std::fmt;

use super::message::{HeaderName, Headers, Method, Request, Response};
use super::uri::{split_host_port, split_params, write_params, Uri, UriError};

/// Why a header value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// A mandatory header is absent.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// A header value does not follow its grammar.
    #[error("malformed {0} header")]
    Malformed(&'static str),
    /// A URI inside a header is malformed.
    #[error("bad URI in {0} header: {1}")]
    Uri(&'static str, UriError),
}

/// The transport named in a Via header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS.
    Tls,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket.
    Wss,
}

impl Transport {
    /// The token used in Via (`UDP`, `TCP`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// Whether the transport is reliable (no retransmissions of requests: Timers A and E off).
    pub fn is_reliable(self) -> bool {
        self != Transport::Udp
    }
}

/// One Via header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// The transport token.
    pub transport: Transport,
    /// The sent-by host.
    pub host: String,
    /// The sent-by port.
    pub port: Option<u16>,
    /// Parameters (branch, rport, received, ...), in order.
    pub params: Vec<(String, Option<String>)>,
}

/// The RFC 3261 magic cookie that starts every compliant branch.
pub const BRANCH_COOKIE: &str = "z9hG4bK";

impl Via {
    /// Reads `SIP/2.0/UDP host:port;branch=...`.
    pub fn parse(text: &str) -> Result<Via, FieldError> {
        const NAME: &str = "Via";
        let bad = FieldError::Malformed(NAME);
        let text = text.trim();
        // sent-protocol = name SLASH version SLASH transport, where SLASH allows LWS around the
        // '/' (RFC 3261 §25.1; RFC 4475 wsinv): the protocol ends at the first whitespace after
        // the second slash and the transport token.
        let (protocol, rest) = split_sent_protocol(text).ok_or(bad.clone())?;
        let mut parts = protocol.split('/').map(str::trim);
        let (name, version, transport) = (parts.next(), parts.next(), parts.next());
        if name != Some("SIP") || version != Some("2.0") || parts.next().is_some() {
            return Err(bad);
        }
        let transport = match transport.map(str::to_ascii_uppercase).as_deref() {
            Some("UDP") => Transport::Udp,
            Some("TCP") => Transport::Tcp,
            Some("TLS") => Transport::Tls,
            Some("WS") => Transport::Ws,
            Some("WSS") => Transport::Wss,
            _ => return Err(bad),
        };
        let (sent_by, params) = split_params(rest);
        let (host, port) = split_host_port(sent_by).map_err(|e| FieldError::Uri(NAME, e))?;
        Ok(Via {
            transport,
            host,
            port,
            params,
        })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// A parameter's value (`Some(None)` for a flag such as a bare `rport`).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// Sets (or adds) a parameter.
    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        match self
            .params
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.params.push((name.to_string(), value)),
        }
    }
}

/// Splits a Via value into its sent-protocol (with any LWS around the slashes) and the rest.
fn split_sent_protocol(text: &str) -> Option<(&str, &str)> {
    let second_slash = text.match_indices('/').nth(1)?.0;
    let after = &text[second_slash + 1..];
    let transport_start = after.len() - after.trim_start().len();
    let transport_len = after[transport_start..]
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(after.len() - transport_start);
    let end = second_slash + 1 + transport_start + transport_len;
    let rest = text[end..].trim_start();
    if rest.is_empty() {
        return None;
    }
    Some((&text[..end], rest))
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport.as_str(), self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write_params(f, &self.params)
    }
}

/// A name-addr or addr-spec with parameters: the value of From, To, Contact, Route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, without quotes.
    pub display: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters after the URI (tag, expires, ...).
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    /// Reads `"Name" <sip:...>;tag=x` or `sip:...;tag=x`; `header` names the header in errors.
    pub fn parse(text: &str, header: &'static str) -> Result<NameAddr, FieldError> {
        let text = text.trim();
        let bad = FieldError::Malformed(header);
        if let Some(open) = find_unquoted(text, '<') {
            let close = text[open..].find('>').ok_or(bad.clone())? + open;
            let display = text[..open].trim();
            let display = match display.strip_prefix('"') {
                Some(quoted) => Some(quoted.strip_suffix('"').ok_or(bad.clone())?.to_string()),
                None if display.is_empty() => None,
                // An unquoted display name is a series of tokens: separators such as ',' must
                // be quoted (RFC 4475 baddn). Non-ASCII text is tolerated: trunks send it.
                None if display.contains(|c: char| "()<>@,;:\\\"/[]?={}".contains(c)) => {
                    return Err(bad);
                }
                None => Some(display.to_string()),
            };
            let uri = Uri::parse(&text[open + 1..close]).map_err(|e| FieldError::Uri(header, e))?;
            let (_, params) = split_params(&text[close + 1..]);
            Ok(NameAddr {
                display,
                uri,
                params,
            })
        } else {
            // addr-spec form: parameters after the URI belong to the header, not the URI.
            let (uri, params) = match text.find(';') {
                Some(at) => (&text[..at], split_params(&text[at..]).1),
                None => (text, Vec::new()),
            };
            let uri = Uri::parse(uri).map_err(|e| FieldError::Uri(header, e))?;
            Ok(NameAddr {
                display: None,
                uri,
                params,
            })
        }
    }

    /// The tag parameter.
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
}

/// Position of `needle` outside double quotes.
fn find_unquoted(text: &str, needle: char) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == needle && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(display) = &self.display {
            write!(f, "\"{display}\" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

/// The CSeq header: sequence number and method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number (below 2^31 per RFC 3261).
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    /// Reads `314159 INVITE`.
    pub fn parse(text: &str) -> Result<CSeq, FieldError> {
        let bad = FieldError::Malformed("CSeq");
        let mut parts = text.split_ascii_whitespace();
        let seq = parts.next().ok_or(bad.clone())?;
        let method = parts.next().ok_or(bad.clone())?;
        if parts.next().is_some() {
            return Err(bad);
        }
        let seq: u32 = seq.parse().map_err(|_| bad.clone())?;
        if seq >= 1 << 31 {
            return Err(bad);
        }
        Ok(CSeq {
            seq,
            method: Method::from_token(method),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Typed access to the headers every request and response carries.
pub trait Fields {
    /// The header list.
    fn header_list(&self) -> &Headers;

    /// The topmost Via.
    fn top_via(&self) -> Result<Via, FieldError> {
        Via::parse(
            self.header_list()
                .get(&HeaderName::Via)
                .ok_or(FieldError::Missing("Via"))?,
        )
    }

    /// The From header.
    #[allow(clippy::wrong_self_convention)] // named after the header, not a conversion
    fn from_header(&self) -> Result<NameAddr, FieldError> {
        let value = self
            .header_list()
            .get(&HeaderName::From)
            .ok_or(FieldError::Missing("From"))?;
        NameAddr::parse(value, "From")
    }

    /// The To header.
    fn to_header(&self) -> Result<NameAddr, FieldError> {
        let value = self
            .header_list()
            .get(&HeaderName::To)
            .ok_or(FieldError::Missing("To"))?;
        NameAddr::parse(value, "To")
    }

    /// The Call-ID.
    fn call_id(&self) -> Result<&str, FieldError> {
        self.header_list()
            .get(&HeaderName::CallId)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(FieldError::Missing("Call-ID"))
    }

    /// The CSeq.
    fn cseq(&self) -> Result<CSeq, FieldError> {
        CSeq::parse(
            self.header_list()
                .get(&HeaderName::CSeq)
                .ok_or(FieldError::Missing("CSeq"))?,
        )
    }

    /// The first Contact.
    fn contact(&self) -> Option<Result<NameAddr, FieldError>> {
        self.header_list()
            .get(&HeaderName::Contact)
            .map(|v| NameAddr::parse(v, "Contact"))
    }

    /// The Content-Type, lower-cased, without parameters.
    fn content_type(&self) -> Option<String> {
        self.header_list().get(&HeaderName::ContentType).map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// The option tags of every value of `name` (Require, Supported, ...).
    fn option_tags(&self, name: &HeaderName) -> Vec<String> {
        self.header_list()
            .get_all(name)
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    }
}

impl Fields for Request {
    fn header_list(&self) -> &Headers {
        &self.headers
    }
}

impl Fields for Response {
    fn header_list(&self) -> &Headers {
        &self.headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_via_with_branch_and_rport() {
        let via = Via::parse("SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK776;rport").unwrap();
        assert_eq!(via.transport, Transport::Udp);
        assert_eq!(via.host, "10.0.0.1");
        assert_eq!(via.port, Some(5062));
        assert_eq!(via.branch(), Some("z9hG4bK776"));
        assert_eq!(via.param("rport"), Some(None));
        assert_eq!(
            via.to_string(),
            "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK776;rport"
        );
    }

    #[test]
    fn reads_via_with_lws_around_slashes() {
        // RFC 4475 wsinv, after unfolding.
        let via = Via::parse("SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(via.transport, Transport::Udp);
        assert_eq!(via.host, "192.0.2.2");
        let via =
            Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(via.transport, Transport::Tcp);
        assert_eq!(via.host, "spindle.example.com");
        assert_eq!(via.branch(), Some("z9hG4bK9ikj8"));
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("SIP/2.0/UDP ").is_err());
    }

    #[test]
    fn rejects_unquoted_display_name_with_separators() {
        // RFC 4475 baddn.
        assert!(
            NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43", "From").is_err()
        );
        let utf8 = NameAddr::parse("张三 <sip:1001@example.com>", "From").unwrap();
        assert_eq!(utf8.display.as_deref(), Some("张三"));
    }

    #[test]
    fn rejects_bad_via() {
        assert!(Via::parse("SIP/2.0/XYZ host").is_err());
        assert!(Via::parse("SIP/1.0/UDP host").is_err());
        assert!(Via::parse("garbage").is_err());
    }

    #[test]
    fn reads_name_addr_forms() {
        let to = NameAddr::parse("\"12345 <hot>\" <sip:12345@h>;tag=abc", "To").unwrap();
        assert_eq!(to.display.as_deref(), Some("12345 <hot>"));
        assert_eq!(to.uri.user.as_deref(), Some("12345"));
        assert_eq!(to.tag(), Some("abc"));
        let bare = NameAddr::parse("sip:caller@h:5070;tag=9", "From").unwrap();
        assert_eq!(bare.uri.port, Some(5070));
        assert_eq!(bare.tag(), Some("9"));
        assert!(bare.uri.params.is_empty());
    }

    #[test]
    fn reads_cseq() {
        let cseq = CSeq::parse("314159 INVITE").unwrap();
        assert_eq!(cseq.seq, 314159);
        assert_eq!(cseq.method, Method::Invite);
        assert!(CSeq::parse("x INVITE").is_err());
        assert!(CSeq::parse("4294967296 INVITE").is_err());
        assert!(CSeq::parse("1").is_err());
    }
}
