//! Cutting SIP messages out of a byte stream (TCP, TLS): RFC 3261 §18.3 and the RFC 5626 §3.5.1
//! CRLF keep-alive.
//!
//! Push bytes as they arrive with [`StreamFramer::push`], then call [`StreamFramer::pop`] until it
//! returns `Ok(None)`. A message ends at its header section's empty line plus the Content-Length
//! that stream transports must carry; each one comes out as bytes for [`crate::sip::parse::parse`].
//! CRLFs between messages are keep-alives: a double CRLF is a ping, answered with [`PONG`]; a single
//! CRLF is a pong. A [`FramingError`] means the stream cannot be resynchronised: close the
//! connection (the framer keeps returning the error).
//!
//! The search for the end of the header section resumes where the previous one stopped, so a
//! message arriving one byte at a time costs linear time.

use super::parse::{find, scan_content_length};

/// The most bytes of header section (start line through the empty line) accepted by default.
pub const MAX_HEADER_SECTION: usize = 32 * 1024;
/// The largest body accepted by default.
pub const MAX_BODY: usize = 32 * 1024;
/// What the server sends back for a [`Frame::Ping`].
pub const PONG: &[u8] = b"\r\n";

/// Why a stream cannot be framed; the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// No empty line within the header-section limit.
    #[error("header section longer than {limit} bytes")]
    HeaderTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// A message without Content-Length: on a stream the body cannot be delimited.
    #[error("message without Content-Length on a stream")]
    MissingContentLength,
    /// Content-Length is not a number or appears more than once.
    #[error("bad Content-Length: {0}")]
    BadContentLength(&'static str),
    /// Content-Length over the body limit.
    #[error("body of {length} bytes over the {limit}-byte limit")]
    BodyTooLarge {
        /// The Content-Length announced.
        length: u64,
        /// The limit in force.
        limit: usize,
    },
}

/// What [`StreamFramer::pop`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One complete message: header section and exactly Content-Length bytes of body.
    Message(Vec<u8>),
    /// A double-CRLF keep-alive ping: answer with [`PONG`].
    Ping,
    /// A single-CRLF keep-alive pong (the answer to a ping we sent).
    Pong,
}

/// Splits a byte stream into SIP messages and keep-alives.
#[derive(Debug, Clone)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// Where the search for CRLFCRLF resumes (bytes before it were already searched).
    scanned: usize,
    /// Header section length (including CRLFCRLF) and body length, once known.
    framed: Option<(usize, usize)>,
    max_head: usize,
    max_body: usize,
    failed: Option<FramingError>,
}

impl Default for StreamFramer {
    fn default() -> Self {
        StreamFramer::new()
    }
}

impl StreamFramer {
    /// A framer with the default limits ([`MAX_HEADER_SECTION`], [`MAX_BODY`]).
    pub fn new() -> StreamFramer {
        StreamFramer::with_limits(MAX_HEADER_SECTION, MAX_BODY)
    }

    /// A framer with the given header-section and body limits, in bytes.
    pub fn with_limits(max_head: usize, max_body: usize) -> StreamFramer {
        StreamFramer {
            buf: Vec::new(),
            scanned: 0,
            framed: None,
            max_head,
            max_body,
            failed: None,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes held but not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message or keep-alive; `Ok(None)` when more bytes are needed.
    pub fn pop(&mut self) -> Result<Option<Frame>, FramingError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let (head, body) = match self.framed {
            Some(framed) => framed,
            None => {
                if self.buf.starts_with(b"\r\n") {
                    return Ok(self.keep_alive());
                }
                match self.find_head() {
                    Ok(Some(framed)) => framed,
                    Ok(None) => return Ok(None),
                    Err(error) => {
                        self.failed = Some(error.clone());
                        self.buf = Vec::new();
                        return Err(error);
                    }
                }
            }
        };
        if self.buf.len() < head + body {
            return Ok(None);
        }
        let rest = self.buf.split_off(head + body);
        let message = std::mem::replace(&mut self.buf, rest);
        self.framed = None;
        self.scanned = 0;
        Ok(Some(Frame::Message(message)))
    }

    /// Consumes a keep-alive at the start of the buffer (which starts with CRLF).
    fn keep_alive(&mut self) -> Option<Frame> {
        self.scanned = 0;
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.drain(..4);
            return Some(Frame::Ping);
        }
        if b"\r\n\r\n".starts_with(&self.buf) {
            // Maybe the first half of a ping: wait for the next bytes.
            return None;
        }
        self.buf.drain(..2);
        Some(Frame::Pong)
    }

    /// Looks for the end of the header section and reads Content-Length.
    fn find_head(&mut self) -> Result<Option<(usize, usize)>, FramingError> {
        let from = self.scanned.saturating_sub(3).min(self.buf.len());
        let Some(at) = find(&self.buf[from..], b"\r\n\r\n").map(|at| from + at) else {
            self.scanned = self.buf.len();
            if self.buf.len() > self.max_head {
                return Err(FramingError::HeaderTooLarge {
                    limit: self.max_head,
                });
            }
            return Ok(None);
        };
        let head = at + 4;
        if head > self.max_head {
            return Err(FramingError::HeaderTooLarge {
                limit: self.max_head,
            });
        }
        let length = scan_content_length(&self.buf[..at])
            .map_err(FramingError::BadContentLength)?
            .ok_or(FramingError::MissingContentLength)?;
        let body = usize::try_from(length)
            .ok()
            .filter(|&body| body <= self.max_body)
            .ok_or(FramingError::BodyTooLarge {
                length,
                limit: self.max_body,
            })?;
        self.framed = Some((head, body));
        Ok(Some((head, body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] =
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 3\r\n\r\nabc";

    fn drain(framer: &mut StreamFramer) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Ok(Some(frame)) = framer.pop() {
            frames.push(frame);
        }
        frames
    }

    #[test]
    fn frames_messages_and_keep_alives() {
        let mut framer = StreamFramer::new();
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(OPTIONS);
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(OPTIONS);
        framer.push(&stream);
        assert_eq!(
            drain(&mut framer),
            vec![
                Frame::Ping,
                Frame::Message(OPTIONS.to_vec()),
                Frame::Pong,
                Frame::Message(OPTIONS.to_vec())
            ]
        );
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn frames_byte_by_byte() {
        let mut framer = StreamFramer::new();
        let mut stream = OPTIONS.to_vec();
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(OPTIONS);
        let mut frames = Vec::new();
        for byte in &stream {
            framer.push(std::slice::from_ref(byte));
            frames.extend(drain(&mut framer));
        }
        assert_eq!(
            frames,
            vec![
                Frame::Message(OPTIONS.to_vec()),
                Frame::Ping,
                Frame::Message(OPTIONS.to_vec())
            ]
        );
    }

    #[test]
    fn byte_by_byte_is_not_quadratic() {
        // 60,000 header bytes pushed one at a time: each pop resumes the search. Rescanning from
        // the start each time would compare about 1.8e9 bytes.
        let mut framer = StreamFramer::with_limits(100_000, 1000);
        let mut stream = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
        while stream.len() < 60_000 {
            stream.extend_from_slice(b"X-Filler: 0123456789abcdef\r\n");
        }
        stream.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        let started = std::time::Instant::now();
        let mut frames = Vec::new();
        for byte in &stream {
            framer.push(std::slice::from_ref(byte));
            frames.extend(drain(&mut framer));
        }
        assert_eq!(frames, vec![Frame::Message(stream.clone())]);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn rejects_and_stays_failed() {
        let mut framer = StreamFramer::new();
        framer.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(framer.pop(), Err(FramingError::MissingContentLength));
        framer.push(OPTIONS);
        assert_eq!(framer.pop(), Err(FramingError::MissingContentLength));

        let mut framer = StreamFramer::with_limits(64, 10);
        framer.push(&[b'a'; 65]);
        assert_eq!(
            framer.pop(),
            Err(FramingError::HeaderTooLarge { limit: 64 })
        );

        for (length, error) in [
            (
                "11",
                FramingError::BodyTooLarge {
                    length: 11,
                    limit: 10,
                },
            ),
            (
                "4294967296",
                FramingError::BodyTooLarge {
                    length: 4294967296,
                    limit: 10,
                },
            ),
            ("x", FramingError::BadContentLength("bad Content-Length")),
        ] {
            let mut framer = StreamFramer::with_limits(64, 10);
            framer.push(format!("A b SIP/2.0\r\nl: {length}\r\n\r\n").as_bytes());
            assert_eq!(framer.pop(), Err(error));
        }
    }
}
