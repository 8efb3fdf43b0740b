//! The checks a UAS makes on a parsed request before any processing (RFC 3261 §8.2, RFC 4475).
//!
//! Framing problems (Content-Length against the body, start-line syntax, the SIP version, an
//! unreadable Request-URI) are found by [`crate::sip::parse`]; these checks take a [`Request`]
//! that parsed. ACK is never answered: a [`Rejection`] of an ACK means "drop it".

use super::fields::Fields;
use super::message::{HeaderName, Method, Request, Response};

/// The option tags (RFC 3261 §19.2) this engine supports in a Require header field.
pub const SUPPORTED: &[&str] = &[];

/// Header fields that may appear at most once in a request.
const SINGLE_VALUE: [HeaderName; 7] = [
    HeaderName::To,
    HeaderName::From,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::MaxForwards,
    HeaderName::ContentLength,
    HeaderName::ContentType,
];

/// Why a request is refused, and the answer: status, reason phrase, headers to add.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {reason}")]
pub struct Rejection {
    /// The status code (400, 416, 420, 483).
    pub status: u16,
    /// The reason phrase, naming the defect.
    pub reason: String,
    /// Headers the answer must carry (e.g. `Unsupported` with a 420).
    pub extra_headers: Vec<(HeaderName, String)>,
}

impl Rejection {
    /// A rejection without extra headers.
    fn new(status: u16, reason: impl Into<String>) -> Rejection {
        Rejection {
            status,
            reason: reason.into(),
            extra_headers: Vec::new(),
        }
    }

    /// The answer to `request`: [`Response::to`] with this status, reason and extra headers.
    /// The caller adds the To tag.
    pub fn to_response(&self, request: &Request) -> Response {
        let mut response = Response::to(request, self.status);
        response.reason = self.reason.clone();
        for (name, value) in &self.extra_headers {
            response.headers.push(name.clone(), value.clone());
        }
        response
    }
}

/// [`check_request_with`] against the option tags in [`SUPPORTED`].
pub fn check_request(request: &Request) -> Result<(), Rejection> {
    check_request_with(request, SUPPORTED)
}

/// Checks a request as a UAS must before processing it; `supported` lists the option tags the
/// caller understands in Require (compared case-insensitively).
///
/// In order: a single-value header field present more than once (400); the top Via, From, To,
/// Call-ID and CSeq present and readable (400); the CSeq method equal to the request method
/// (400); the Request-URI's scheme sip, sips or tel (416) and without `?headers` (400);
/// Max-Forwards a number in 0..=255 (400) and not 0 (483; OPTIONS excepted, which the UAS answers
/// itself: RFC 4475 §3.3.11); Require listing only supported tags (420 with `Unsupported`, not
/// checked for ACK and CANCEL, RFC 3261 §8.2.2.3).
pub fn check_request_with(request: &Request, supported: &[&str]) -> Result<(), Rejection> {
    let headers = &request.headers;
    for name in &SINGLE_VALUE {
        if headers.get_all(name).nth(1).is_some() {
            return Err(Rejection::new(
                400,
                format!("Multiple {} header fields", name.as_str()),
            ));
        }
    }

    let bad = |what: &str| Rejection::new(400, format!("Missing or malformed {what}"));
    request.top_via().map_err(|_| bad("Via"))?;
    request.from_header().map_err(|_| bad("From"))?;
    request.to_header().map_err(|_| bad("To"))?;
    request.call_id().map_err(|_| bad("Call-ID"))?;
    let cseq = request.cseq().map_err(|_| bad("CSeq"))?;
    if cseq.method != request.method {
        return Err(Rejection::new(
            400,
            "CSeq method does not match request method",
        ));
    }

    let scheme = request.uri.scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "sip" | "sips" | "tel") {
        return Err(Rejection::new(416, "Unsupported URI Scheme"));
    }
    if request.uri.headers.is_some() {
        return Err(Rejection::new(400, "Headers not allowed in Request-URI"));
    }

    if let Some(value) = headers.get(&HeaderName::MaxForwards) {
        let hops = Some(value.trim())
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|&hops| hops <= 255)
            .ok_or_else(|| bad("Max-Forwards"))?;
        if hops == 0 && request.method != Method::Options {
            return Err(Rejection::new(483, "Too Many Hops"));
        }
    }

    if !matches!(request.method, Method::Ack | Method::Cancel) {
        let unsupported: Vec<&str> = headers
            .get_all(&HeaderName::Require)
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|tag| !tag.is_empty())
            .filter(|tag| !supported.iter().any(|s| s.eq_ignore_ascii_case(tag)))
            .collect();
        if !unsupported.is_empty() {
            return Err(Rejection {
                status: 420,
                reason: "Bad Extension".to_string(),
                extra_headers: vec![(HeaderName::Unsupported, unsupported.join(", "))],
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Headers;
    use crate::sip::uri::Uri;

    fn options() -> Request {
        let mut headers = Headers::new();
        headers.push(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1");
        headers.push(HeaderName::From, "<sip:a@example.net>;tag=1");
        headers.push(HeaderName::To, "<sip:12345@example.gov>");
        headers.push(HeaderName::CallId, "c1");
        headers.push(HeaderName::CSeq, "1 OPTIONS");
        headers.push(HeaderName::MaxForwards, "70");
        Request {
            method: Method::Options,
            uri: Uri::parse("sip:12345@example.gov").unwrap(),
            headers,
            body: Vec::new(),
        }
    }

    fn status(request: &Request) -> Option<u16> {
        check_request(request).err().map(|r| r.status)
    }

    #[test]
    fn accepts_a_well_formed_request() {
        assert_eq!(check_request(&options()), Ok(()));
    }

    #[test]
    fn rejects_missing_duplicate_and_mismatched_fields() {
        for name in [
            HeaderName::Via,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            let mut request = options();
            request.headers.remove(&name);
            assert_eq!(status(&request), Some(400), "{name:?}");
        }
        let mut request = options();
        request.headers.push(HeaderName::To, "<sip:b@example.gov>");
        assert_eq!(status(&request), Some(400));
        let mut request = options();
        request.headers.push(HeaderName::ContentLength, "0");
        request.headers.push(HeaderName::ContentLength, "0");
        assert_eq!(status(&request), Some(400));
        let mut request = options();
        request.headers.set(HeaderName::CSeq, "1 INVITE");
        assert_eq!(status(&request), Some(400));
    }

    #[test]
    fn checks_request_uri() {
        let mut request = options();
        request.uri.scheme = "im".into();
        assert_eq!(status(&request), Some(416));
        let mut request = options();
        request.uri.headers = Some("Route=%3Csip:x%3E".into());
        assert_eq!(status(&request), Some(400));
    }

    #[test]
    fn checks_max_forwards() {
        let mut request = options();
        request.headers.set(HeaderName::MaxForwards, "0");
        assert_eq!(status(&request), None);
        request.method = Method::Invite;
        request.headers.set(HeaderName::CSeq, "1 INVITE");
        assert_eq!(status(&request), Some(483));
        for bad in ["x", "", "256", "-1", "99999999999"] {
            request.headers.set(HeaderName::MaxForwards, bad);
            assert_eq!(status(&request), Some(400), "{bad}");
        }
    }

    #[test]
    fn rejects_unsupported_extensions() {
        let mut request = options();
        request.headers.push(HeaderName::Require, "100rel, Timer");
        request.headers.push(HeaderName::ProxyRequire, "whatever");
        let rejection = check_request(&request).unwrap_err();
        assert_eq!(rejection.status, 420);
        assert_eq!(
            rejection.extra_headers,
            vec![(HeaderName::Unsupported, "100rel, Timer".to_string())]
        );
        assert_eq!(check_request_with(&request, &["timer", "100REL"]), Ok(()));
        assert_eq!(
            check_request_with(&request, &["timer"])
                .unwrap_err()
                .extra_headers[0]
                .1,
            "100rel"
        );
        let response = rejection.to_response(&request);
        assert_eq!(response.status, 420);
        assert_eq!(
            response.headers.get(&HeaderName::Unsupported),
            Some("100rel, Timer")
        );
        request.method = Method::Ack;
        request.headers.set(HeaderName::CSeq, "1 ACK");
        assert_eq!(check_request(&request), Ok(()));
    }
}
