//! Test helpers: message builders and a virtual-time driver that records what a machine does.

use std::time::{Duration, Instant};

use super::{Transaction, TransactionOutput};
use crate::sip::fields::Transport;
use crate::sip::message::{HeaderName, Headers, Message, Method, Request, Response};
use crate::sip::uri::Uri;

/// A request from 192.0.2.10 to the hotline with two Route headers and Timestamp.
pub(crate) fn request(method: Method, transport: Transport) -> Request {
    let mut headers = Headers::new();
    let branch = match method {
        Method::Invite => "z9hG4bKinv1",
        _ => "z9hG4bKreq1",
    };
    headers.push(
        HeaderName::Via,
        format!(
            "SIP/2.0/{} 192.0.2.10:5060;branch={branch}",
            transport.as_str()
        ),
    );
    headers.push(
        HeaderName::Via,
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfar",
    );
    headers.push(HeaderName::Route, "<sip:edge1.example;lr>");
    headers.push(HeaderName::Route, "<sip:edge2.example;lr>");
    headers.push(HeaderName::MaxForwards, "70");
    headers.push(
        HeaderName::From,
        "<sip:13800000000@carrier.example>;tag=caller1",
    );
    headers.push(HeaderName::To, "<sip:12345@hotline.example>");
    headers.push(HeaderName::CallId, "call-1@192.0.2.10");
    headers.push(HeaderName::CSeq, format!("1 {method}"));
    headers.push(HeaderName::Contact, "<sip:13800000000@192.0.2.10:5060>");
    headers.push(HeaderName::Other("Timestamp".to_string()), "54");
    Request {
        method,
        uri: Uri::sip(Some("12345"), "hotline.example", None),
        headers,
        body: Vec::new(),
    }
}

/// An INVITE over `transport`.
pub(crate) fn invite(transport: Transport) -> Request {
    request(Method::Invite, transport)
}

/// `request` with a tag added to its To header.
pub(crate) fn with_to_tag(mut request: Request, tag: &str) -> Request {
    let to = request
        .headers
        .get(&HeaderName::To)
        .unwrap_or("")
        .to_string();
    request
        .headers
        .set(HeaderName::To, format!("{to};tag={tag}"));
    request
}

/// A response to `request`, with a To tag when given.
pub(crate) fn response(request: &Request, status: u16, to_tag: Option<&str>) -> Response {
    let mut response = Response::to(request, status);
    if let Some(tag) = to_tag {
        let to = response
            .headers
            .get(&HeaderName::To)
            .unwrap_or("")
            .to_string();
        response
            .headers
            .set(HeaderName::To, format!("{to};tag={tag}"));
    }
    response
}

/// A short label for an output: `send INVITE`, `send 200`, `up 180`, `ack up`, `timeout`, ...
pub(crate) fn label(output: &TransactionOutput) -> String {
    match output {
        TransactionOutput::Transmit(Message::Request(r)) => format!("send {}", r.method),
        TransactionOutput::Transmit(Message::Response(r)) => format!("send {}", r.status),
        TransactionOutput::Response(r) => format!("up {}", r.status),
        TransactionOutput::Ack(_) => "ack up".to_string(),
        TransactionOutput::Timeout => "timeout".to_string(),
        TransactionOutput::TransportError => "transport error".to_string(),
        TransactionOutput::Terminated => "terminated".to_string(),
    }
}

/// Turns `[(seconds, label)]` into the form [`Driver::schedule`] returns.
pub(crate) fn expect(rows: &[(f64, &str)]) -> Vec<(f64, String)> {
    rows.iter().map(|(t, l)| (*t, l.to_string())).collect()
}

/// Drives a machine in virtual time, recording (elapsed, output) pairs.
pub(crate) struct Driver<T> {
    /// The machine under test.
    pub(crate) txn: T,
    base: Instant,
    now: Instant,
    /// Every output so far, with its time since `base`.
    pub(crate) log: Vec<(Duration, TransactionOutput)>,
}

impl<T: Transaction> Driver<T> {
    /// Wraps a machine built at `base` and drains what construction queued.
    pub(crate) fn new(base: Instant, txn: T) -> Driver<T> {
        let mut driver = Driver {
            txn,
            base,
            now: base,
            log: Vec::new(),
        };
        driver.drain();
        driver
    }

    /// Drains outputs into the log at the current time.
    fn drain(&mut self) {
        while let Some(output) = self.txn.poll_output() {
            self.log.push((self.now - self.base, output));
        }
    }

    /// Fires every timer due up to `seconds` after base (jumping to each `poll_timeout`), then
    /// leaves the clock at that time.
    pub(crate) fn advance_to(&mut self, seconds: f64) {
        let until = self.base + Duration::from_secs_f64(seconds);
        while let Some(at) = self.txn.poll_timeout().filter(|at| *at <= until) {
            self.now = at.max(self.now);
            self.txn.handle_timeout(self.now);
            self.drain();
        }
        self.now = until.max(self.now);
    }

    /// Runs `input` at the current time and drains; returns what `input` returned.
    pub(crate) fn feed<R>(&mut self, input: impl FnOnce(&mut T, Instant) -> R) -> R {
        let result = input(&mut self.txn, self.now);
        self.drain();
        result
    }

    /// The log as (seconds since base, label) rows.
    pub(crate) fn schedule(&self) -> Vec<(f64, String)> {
        self.log
            .iter()
            .map(|(at, output)| (at.as_secs_f64(), label(output)))
            .collect()
    }

    /// The log entries from `seconds` on, as rows.
    pub(crate) fn schedule_from(&self, seconds: f64) -> Vec<(f64, String)> {
        self.schedule()
            .into_iter()
            .filter(|(t, _)| *t >= seconds)
            .collect()
    }

    /// The last message transmitted.
    pub(crate) fn last_sent(&self) -> Option<&Message> {
        self.log.iter().rev().find_map(|(_, output)| match output {
            TransactionOutput::Transmit(message) => Some(message),
            _ => None,
        })
    }
}
