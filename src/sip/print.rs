//! [`Message`] to wire bytes: start line, headers in order under their long names, a
//! Content-Length computed from the body (any stored Content-Length entry is ignored), CRLF line
//! endings, then the body.
//!
//! A CR or LF inside a header value or reason phrase is printed as a space, so no value can
//! inject a header or end the header section early.

use std::io::Write;

use super::message::{HeaderName, Headers, Message, Request, Response};

impl Request {
    /// Appends the request's wire form to `buf`.
    pub fn write_to(&self, buf: &mut Vec<u8>) {
        buf.reserve(256 + self.body.len());
        buf.extend_from_slice(self.method.as_str().as_bytes());
        buf.push(b' ');
        // Writing to a Vec cannot fail.
        let _ = write!(buf, "{}", self.uri);
        buf.extend_from_slice(b" SIP/2.0\r\n");
        write_headers(buf, &self.headers, &self.body);
    }

    /// The request's wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        self.write_to(&mut buf);
        buf
    }
}

impl Response {
    /// Appends the response's wire form to `buf`.
    pub fn write_to(&self, buf: &mut Vec<u8>) {
        buf.reserve(256 + self.body.len());
        // Writing to a Vec cannot fail.
        let _ = write!(buf, "SIP/2.0 {:03} ", self.status);
        push_clean(buf, &self.reason);
        buf.extend_from_slice(b"\r\n");
        write_headers(buf, &self.headers, &self.body);
    }

    /// The response's wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        self.write_to(&mut buf);
        buf
    }
}

impl Message {
    /// Appends the message's wire form to `buf`.
    pub fn write_to(&self, buf: &mut Vec<u8>) {
        match self {
            Message::Request(request) => request.write_to(buf),
            Message::Response(response) => response.write_to(buf),
        }
    }

    /// The message's wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        self.write_to(&mut buf);
        buf
    }
}

/// Writes the header fields, the computed Content-Length, the empty line and the body.
fn write_headers(buf: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for (name, value) in headers.iter() {
        if *name == HeaderName::ContentLength {
            continue;
        }
        push_clean(buf, name.as_str());
        buf.extend_from_slice(b": ");
        push_clean(buf, value);
        buf.extend_from_slice(b"\r\n");
    }
    // Writing to a Vec cannot fail.
    let _ = write!(buf, "Content-Length: {}\r\n\r\n", body.len());
    buf.extend_from_slice(body);
}

/// Appends `text` with every CR and LF replaced by a space.
fn push_clean(buf: &mut Vec<u8>, text: &str) {
    buf.extend(
        text.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

#[cfg(test)]
mod tests {
    use crate::sip::message::{HeaderName, Headers, Message, Method, Request, Response};
    use crate::sip::parse::parse;
    use crate::sip::uri::Uri;

    fn invite() -> Request {
        let mut headers = Headers::new();
        headers.push(
            HeaderName::Via,
            "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport",
        );
        headers.push(HeaderName::Via, "SIP/2.0/TCP 192.0.2.9;branch=z9hG4bK1");
        headers.push(HeaderName::MaxForwards, "70");
        headers.push(HeaderName::To, "<sip:12345@hotline.example.gov>");
        headers.push(
            HeaderName::From,
            "\"Caller, A\" <sip:13800000000@carrier.example.net>;tag=1928301774",
        );
        headers.push(HeaderName::CallId, "a84b4c76e66710@192.0.2.10");
        headers.push(HeaderName::CSeq, "314159 INVITE");
        headers.push(HeaderName::Contact, "<sip:13800000000@192.0.2.10:5060>");
        headers.push(
            HeaderName::Other("P-Asserted-Identity".into()),
            "<tel:+8613800000000>",
        );
        headers.push(HeaderName::ContentType, "application/sdp");
        Request {
            method: Method::Invite,
            uri: Uri::parse("sip:12345@hotline.example.gov;user=phone").unwrap(),
            headers,
            body: b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\n".to_vec(),
        }
    }

    #[test]
    fn prints_start_line_headers_and_computed_length() {
        let mut request = invite();
        request.headers.push(HeaderName::ContentLength, "999");
        let text = String::from_utf8(request.to_bytes()).unwrap();
        assert!(
            text.starts_with("INVITE sip:12345@hotline.example.gov;user=phone SIP/2.0\r\nVia: ")
        );
        assert!(text.contains("\r\nCall-ID: a84b4c76e66710@192.0.2.10\r\n"));
        assert!(!text.contains("999"));
        assert!(
            text.ends_with("Content-Length: 37\r\n\r\nv=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\n")
        );
    }

    #[test]
    fn round_trips_requests_and_responses() {
        let request = invite();
        let message = Message::Request(request.clone());
        assert_eq!(parse(&message.to_bytes()).unwrap(), message);

        let mut ok = Response::to(&request, 200);
        ok.headers
            .push(HeaderName::Contact, "<sip:ivr@192.0.2.1:5060>");
        ok.body = b"v=0\r\n".to_vec();
        let message = Message::Response(ok);
        assert_eq!(parse(&message.to_bytes()).unwrap(), message);

        let mut bye = Request {
            method: Method::Bye,
            uri: Uri::parse("sip:13800000000@192.0.2.10:5060;transport=tcp").unwrap(),
            headers: Headers::new(),
            body: Vec::new(),
        };
        for (name, value) in request.headers.iter().take(7) {
            bye.headers.push(name.clone(), value);
        }
        bye.headers.set(HeaderName::CSeq, "314160 BYE");
        bye.headers.push(
            HeaderName::Reason,
            "Q.850;cause=16;text=\"Normal call clearing\"",
        );
        let message = Message::Request(bye);
        assert_eq!(parse(&message.to_bytes()).unwrap(), message);

        let trying = Message::Response(Response {
            status: 100,
            reason: String::new(),
            headers: Response::to(&request, 100).headers,
            body: Vec::new(),
        });
        assert_eq!(parse(&trying.to_bytes()).unwrap(), trying);
    }

    #[test]
    fn neutralises_line_breaks_in_values() {
        let mut request = invite();
        request
            .headers
            .push(HeaderName::Other("X-Note".into()), "a\r\nVia: injected");
        let mut response = Response::to(&request, 400);
        response.reason = "Bad\r\nRequest".into();
        let text = String::from_utf8(request.to_bytes()).unwrap();
        assert!(text.contains("X-Note: a  Via: injected\r\n"));
        let text = String::from_utf8(response.to_bytes()).unwrap();
        assert!(text.starts_with("SIP/2.0 400 Bad  Request\r\n"));
    }
}
