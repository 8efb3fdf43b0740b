//! The SIP message model: requests, responses and their header fields.
//!
//! These are the engine's own types; the wire parser (`parse`) and printer (`print`) are the only
//! code that knows how the bytes look, so the parser behind them can be replaced.

use std::fmt;

/// A SIP request method.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE: start or modify a session.
    Invite,
    /// ACK: confirm a final response to INVITE.
    Ack,
    /// BYE: end a dialog.
    Bye,
    /// CANCEL: cancel a pending INVITE.
    Cancel,
    /// OPTIONS: capability query, used by trunks as keep-alive.
    Options,
    /// REGISTER: bind a contact to an address of record.
    Register,
    /// INFO: mid-dialog information (DTMF relay).
    Info,
    /// REFER: transfer request (RFC 3515).
    Refer,
    /// NOTIFY: event notification.
    Notify,
    /// SUBSCRIBE: event subscription.
    Subscribe,
    /// UPDATE: session update (RFC 3311).
    Update,
    /// PRACK: provisional response ACK (RFC 3262).
    Prack,
    /// MESSAGE: instant message (RFC 3428).
    Message,
    /// PUBLISH: event state publication (RFC 3903).
    Publish,
    /// Any other token.
    Other(String),
}

impl Method {
    /// Maps a method token (case-sensitive, as RFC 3261 requires) to a method.
    pub fn from_token(token: &str) -> Method {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_string()),
        }
    }

    /// The method token as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A header field name, with compact forms folded into their long names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HeaderName {
    /// Via (compact `v`).
    Via,
    /// From (compact `f`).
    From,
    /// To (compact `t`).
    To,
    /// Call-ID (compact `i`).
    CallId,
    /// CSeq.
    CSeq,
    /// Contact (compact `m`).
    Contact,
    /// Max-Forwards.
    MaxForwards,
    /// Route.
    Route,
    /// Record-Route.
    RecordRoute,
    /// Content-Type (compact `c`).
    ContentType,
    /// Content-Length (compact `l`).
    ContentLength,
    /// Require.
    Require,
    /// Proxy-Require.
    ProxyRequire,
    /// Supported (compact `k`).
    Supported,
    /// Unsupported.
    Unsupported,
    /// Allow.
    Allow,
    /// Expires.
    Expires,
    /// User-Agent.
    UserAgent,
    /// Server.
    Server,
    /// Reason (RFC 3326).
    Reason,
    /// Any other header, kept as written.
    Other(String),
}

impl HeaderName {
    /// Maps a header name as written (any case, compact or long) to a header name.
    pub fn from_wire(name: &str) -> HeaderName {
        // Lower-case into a stack buffer: this runs for every header of every message.
        let mut buf = [0u8; 16];
        let Some(lower) = buf.get_mut(..name.len()) else {
            return HeaderName::Other(name.to_string());
        };
        lower.copy_from_slice(name.as_bytes());
        lower.make_ascii_lowercase();
        match &*lower {
            b"via" | b"v" => HeaderName::Via,
            b"from" | b"f" => HeaderName::From,
            b"to" | b"t" => HeaderName::To,
            b"call-id" | b"i" => HeaderName::CallId,
            b"cseq" => HeaderName::CSeq,
            b"contact" | b"m" => HeaderName::Contact,
            b"max-forwards" => HeaderName::MaxForwards,
            b"route" => HeaderName::Route,
            b"record-route" => HeaderName::RecordRoute,
            b"content-type" | b"c" => HeaderName::ContentType,
            b"content-length" | b"l" => HeaderName::ContentLength,
            b"require" => HeaderName::Require,
            b"proxy-require" => HeaderName::ProxyRequire,
            b"supported" | b"k" => HeaderName::Supported,
            b"unsupported" => HeaderName::Unsupported,
            b"allow" => HeaderName::Allow,
            b"expires" => HeaderName::Expires,
            b"user-agent" => HeaderName::UserAgent,
            b"server" => HeaderName::Server,
            b"reason" => HeaderName::Reason,
            _ => HeaderName::Other(name.to_string()),
        }
    }

    /// The long name as the engine prints it.
    pub fn as_str(&self) -> &str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::Contact => "Contact",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::Route => "Route",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::ContentType => "Content-Type",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::Require => "Require",
            HeaderName::ProxyRequire => "Proxy-Require",
            HeaderName::Supported => "Supported",
            HeaderName::Unsupported => "Unsupported",
            HeaderName::Allow => "Allow",
            HeaderName::Expires => "Expires",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Server => "Server",
            HeaderName::Reason => "Reason",
            HeaderName::Other(s) => s,
        }
    }

    /// Whether two names denote the same header (other names compare case-insensitively).
    pub fn matches(&self, other: &HeaderName) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }
}

/// The header fields of a message, in order. Comma-separated lists of Via, Route,
/// Record-Route and Contact are split into one entry per value by the parser.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(HeaderName, String)>,
}

impl Headers {
    /// An empty header list.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Appends a header value.
    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.entries.push((name, value.into()));
    }

    /// Inserts a header value before all others (e.g. a new top Via).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<String>) {
        self.entries.insert(0, (name, value.into()));
    }

    /// Replaces every value of `name` with one value, keeping the first one's position.
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        match self.entries.iter().position(|(n, _)| n.matches(&name)) {
            Some(at) => {
                self.entries[at].1 = value;
                let mut index = 0;
                self.entries.retain(|(n, _)| {
                    let keep = index <= at || !n.matches(&name);
                    index += 1;
                    keep
                });
            }
            None => self.entries.push((name, value)),
        }
    }

    /// Replaces the first value of `name` (e.g. the top Via), keeping the others.
    pub fn replace_first(&mut self, name: &HeaderName, value: impl Into<String>) {
        if let Some(slot) = self.entries.iter_mut().find(|(n, _)| n.matches(name)) {
            slot.1 = value.into();
        }
    }

    /// Removes every value of `name`.
    pub fn remove(&mut self, name: &HeaderName) {
        self.entries.retain(|(n, _)| !n.matches(name));
    }

    /// The first value of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.matches(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.matches(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header in order.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &str)> {
        self.entries.iter().map(|(n, v)| (n, v.as_str()))
    }

    /// Number of header entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Copies every value of `name` from `other`, appended in order.
    pub fn copy_from(&mut self, other: &Headers, name: &HeaderName) {
        for value in other.get_all(name) {
            self.entries.push((name.clone(), value.to_string()));
        }
    }
}

/// A SIP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI.
    pub uri: crate::sip::uri::Uri,
    /// Header fields.
    pub headers: Headers,
    /// Message body (Content-Length is computed when printing).
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code (100-699).
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Header fields.
    pub headers: Headers,
    /// Message body (Content-Length is computed when printing).
    pub body: Vec<u8>,
}

/// A SIP request or response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The header fields.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
}

/// The standard reason phrase for a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        513 => "Message Too Large",
        505 => "Version Not Supported",
        603 => "Decline",
        _ => "Unknown",
    }
}

impl Response {
    /// A response to `request` per RFC 3261 §8.2.6: Via, From, To, Call-ID and CSeq copied.
    /// The caller adds the To tag where the response creates or belongs to a dialog.
    pub fn to(request: &Request, status: u16) -> Response {
        let mut headers = Headers::new();
        headers.copy_from(&request.headers, &HeaderName::Via);
        for name in [
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            headers.copy_from(&request.headers, &name);
        }
        Response {
            status,
            reason: reason_phrase(status).to_string(),
            headers,
            body: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_fold_case_and_compact_forms() {
        assert_eq!(HeaderName::from_wire("v"), HeaderName::Via);
        assert_eq!(HeaderName::from_wire("CALL-ID"), HeaderName::CallId);
        assert_eq!(HeaderName::from_wire("i"), HeaderName::CallId);
        assert_eq!(
            HeaderName::from_wire("Content-length"),
            HeaderName::ContentLength
        );
        let long = "X-A-Very-Long-Vendor-Header";
        assert_eq!(HeaderName::from_wire(long), HeaderName::Other(long.into()));
        assert!(HeaderName::from_wire("x-foo").matches(&HeaderName::Other("X-Foo".into())));
    }

    #[test]
    fn set_keeps_first_position_and_drops_the_rest() {
        let mut headers = Headers::new();
        headers.push(HeaderName::Via, "a");
        headers.push(HeaderName::To, "t");
        headers.push(HeaderName::Via, "b");
        headers.set(HeaderName::Via, "c");
        let all: Vec<_> = headers.iter().map(|(n, v)| (n.as_str(), v)).collect();
        assert_eq!(all, [("Via", "c"), ("To", "t")]);
        headers.replace_first(&HeaderName::To, "u");
        assert_eq!(headers.get(&HeaderName::To), Some("u"));
    }
}
