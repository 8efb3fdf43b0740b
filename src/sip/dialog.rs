//! Dialogs (RFC 3261 §12): the state two user agents share for the life of a call leg.
//!
//! The B2BUA needs both sides: a UAS dialog for the caller's leg and, later, UAC dialogs for
//! the legs it places to seats and sub-centres.

use super::fields::{FieldError, Fields, NameAddr};
use super::message::{HeaderName, Headers, Method, Request, Response};
use super::uri::Uri;

/// What identifies a dialog: Call-ID and both tags, seen from this side.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// The Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The id of the dialog an incoming in-dialog request belongs to (our tag is in To).
    pub fn for_incoming(request: &Request) -> Result<Option<DialogId>, FieldError> {
        let to = request.to_header()?;
        let Some(local_tag) = to.tag() else {
            return Ok(None);
        };
        let from = request.from_header()?;
        Ok(Some(DialogId {
            call_id: request.call_id()?.to_string(),
            local_tag: local_tag.to_string(),
            remote_tag: from.tag().unwrap_or("").to_string(),
        }))
    }

    /// The id of the dialog a response to one of our requests belongs to (our tag is in From).
    pub fn for_response(response: &Response) -> Result<Option<DialogId>, FieldError> {
        let to = response.to_header()?;
        let Some(remote_tag) = to.tag() else {
            return Ok(None);
        };
        let from = response.from_header()?;
        Ok(Some(DialogId {
            call_id: response.call_id()?.to_string(),
            local_tag: from.tag().unwrap_or("").to_string(),
            remote_tag: remote_tag.to_string(),
        }))
    }
}

/// A confirmed or early dialog.
#[derive(Clone, Debug)]
pub struct Dialog {
    /// Call-ID and tags.
    pub id: DialogId,
    /// Our URI (From of our requests).
    pub local_uri: NameAddr,
    /// The peer's URI (To of our requests).
    pub remote_uri: NameAddr,
    /// Where in-dialog requests go (the peer's Contact).
    pub remote_target: Uri,
    /// Route set, in the order our requests carry it.
    pub route_set: Vec<String>,
    /// Our CSeq counter.
    pub local_seq: u32,
    /// The highest CSeq seen from the peer.
    pub remote_seq: Option<u32>,
    /// Our Contact.
    pub local_contact: Uri,
}

/// How an in-dialog request's CSeq compares with what we have seen (§12.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// A new request.
    New,
    /// Lower than the last one seen: answer 500.
    OutOfOrder,
}

impl Dialog {
    /// The dialog a UAS creates when it answers `invite` with a tagged response (§12.1.1).
    pub fn as_uas(
        invite: &Request,
        local_tag: &str,
        local_contact: Uri,
    ) -> Result<Dialog, FieldError> {
        let from = invite.from_header()?;
        let mut to = invite.to_header()?;
        to.params.retain(|(n, _)| !n.eq_ignore_ascii_case("tag"));
        to.params
            .push(("tag".to_string(), Some(local_tag.to_string())));
        let remote_target = match invite.contact() {
            Some(contact) => contact?.uri,
            None => from.uri.clone(),
        };
        Ok(Dialog {
            id: DialogId {
                call_id: invite.call_id()?.to_string(),
                local_tag: local_tag.to_string(),
                remote_tag: from.tag().unwrap_or("").to_string(),
            },
            local_uri: to,
            remote_uri: from,
            remote_target,
            route_set: invite
                .headers
                .get_all(&HeaderName::RecordRoute)
                .map(str::to_string)
                .collect(),
            local_seq: 0,
            remote_seq: Some(invite.cseq()?.seq),
            local_contact,
        })
    }

    /// The dialog a UAC creates from its `request` and a tagged response to it (§12.1.2).
    pub fn as_uac(
        request: &Request,
        response: &Response,
        local_contact: Uri,
    ) -> Result<Dialog, FieldError> {
        let from = request.from_header()?;
        let to = response.to_header()?;
        let remote_target = match response.contact() {
            Some(contact) => contact?.uri,
            None => request.uri.clone(),
        };
        let mut route_set: Vec<String> = response
            .headers
            .get_all(&HeaderName::RecordRoute)
            .map(str::to_string)
            .collect();
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id: request.call_id()?.to_string(),
                local_tag: from.tag().unwrap_or("").to_string(),
                remote_tag: to.tag().unwrap_or("").to_string(),
            },
            local_uri: from,
            remote_uri: to,
            remote_target,
            route_set,
            local_seq: request.cseq()?.seq,
            remote_seq: None,
            local_contact,
        })
    }

    /// Checks and records the CSeq of an incoming in-dialog request.
    pub fn check_sequence(&mut self, request: &Request) -> Result<SequenceCheck, FieldError> {
        let seq = request.cseq()?.seq;
        // ACK and CANCEL reuse the INVITE's number.
        if matches!(request.method, Method::Ack | Method::Cancel) {
            return Ok(SequenceCheck::New);
        }
        match self.remote_seq {
            Some(last) if seq <= last => Ok(SequenceCheck::OutOfOrder),
            _ => {
                self.remote_seq = Some(seq);
                Ok(SequenceCheck::New)
            }
        }
    }

    /// Builds a new in-dialog request (§12.2.1.1); the transaction layer adds the Via.
    pub fn request(&mut self, method: Method) -> Request {
        self.local_seq += 1;
        self.request_with_seq(method, self.local_seq)
    }

    /// The ACK for a 2xx to our INVITE with CSeq `seq` (§13.2.2.4).
    pub fn ack(&self, seq: u32) -> Request {
        self.request_with_seq(Method::Ack, seq)
    }

    fn request_with_seq(&self, method: Method, seq: u32) -> Request {
        let mut headers = Headers::new();
        // Loose routing only: the first route is an lr proxy, the target stays the R-URI.
        for route in &self.route_set {
            headers.push(HeaderName::Route, route.clone());
        }
        headers.push(HeaderName::MaxForwards, "70");
        headers.push(HeaderName::From, self.local_uri.to_string());
        headers.push(HeaderName::To, self.remote_uri.to_string());
        headers.push(HeaderName::CallId, self.id.call_id.clone());
        headers.push(HeaderName::CSeq, format!("{seq} {method}"));
        headers.push(HeaderName::Contact, format!("<{}>", self.local_contact));
        Request {
            method,
            uri: self.remote_target.clone(),
            headers,
            body: Vec::new(),
        }
    }

    /// Updates the remote target from a target-refresh request or response (re-INVITE, UPDATE).
    pub fn refresh_target(&mut self, contact: Option<Result<NameAddr, FieldError>>) {
        if let Some(Ok(contact)) = contact {
            self.remote_target = contact.uri;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite() -> Request {
        let mut headers = Headers::new();
        headers.push(HeaderName::Via, "SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKa");
        headers.push(HeaderName::RecordRoute, "<sip:p1.example;lr>");
        headers.push(HeaderName::RecordRoute, "<sip:p2.example;lr>");
        headers.push(
            HeaderName::From,
            "\"Caller\" <sip:13800000000@10.0.0.9>;tag=c1",
        );
        headers.push(HeaderName::To, "<sip:12345@127.0.0.1>");
        headers.push(HeaderName::CallId, "call-1");
        headers.push(HeaderName::CSeq, "7 INVITE");
        headers.push(HeaderName::Contact, "<sip:caller@10.0.0.9:5070>");
        Request {
            method: Method::Invite,
            uri: Uri::sip(Some("12345"), "127.0.0.1", None),
            headers,
            body: Vec::new(),
        }
    }

    #[test]
    fn uas_dialog_builds_bye_to_the_callers_contact_through_the_route_set() {
        let contact = Uri::sip(Some("hotline"), "127.0.0.1", Some(5060));
        let mut dialog = Dialog::as_uas(&invite(), "s1", contact).unwrap();
        let bye = dialog.request(Method::Bye);
        assert_eq!(bye.uri.to_string(), "sip:caller@10.0.0.9:5070");
        let routes: Vec<_> = bye.headers.get_all(&HeaderName::Route).collect();
        assert_eq!(routes, ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]);
        assert_eq!(bye.from_header().unwrap().tag(), Some("s1"));
        assert_eq!(bye.to_header().unwrap().tag(), Some("c1"));
        assert_eq!(bye.cseq().unwrap().seq, 1);
        assert_eq!(dialog.request(Method::Bye).cseq().unwrap().seq, 2);
    }

    #[test]
    fn uas_dialog_rejects_old_cseq() {
        let contact = Uri::sip(None, "127.0.0.1", None);
        let mut dialog = Dialog::as_uas(&invite(), "s1", contact).unwrap();
        let mut reinvite = invite();
        reinvite.headers.set(HeaderName::CSeq, "7 INVITE");
        assert_eq!(
            dialog.check_sequence(&reinvite).unwrap(),
            SequenceCheck::OutOfOrder
        );
        reinvite.headers.set(HeaderName::CSeq, "8 INVITE");
        assert_eq!(
            dialog.check_sequence(&reinvite).unwrap(),
            SequenceCheck::New
        );
    }

    #[test]
    fn uac_dialog_reverses_record_route_and_takes_remote_tag() {
        let request = invite();
        let mut response = Response::to(&request, 200);
        response
            .headers
            .set(HeaderName::To, "<sip:12345@127.0.0.1>;tag=r9");
        response
            .headers
            .push(HeaderName::Contact, "<sip:seat@10.0.0.5>");
        response.headers.push(HeaderName::RecordRoute, "<sip:a;lr>");
        response.headers.push(HeaderName::RecordRoute, "<sip:b;lr>");
        let dialog = Dialog::as_uac(&request, &response, Uri::sip(None, "h", None)).unwrap();
        assert_eq!(dialog.id.remote_tag, "r9");
        assert_eq!(dialog.id.local_tag, "c1");
        assert_eq!(dialog.route_set, ["<sip:b;lr>", "<sip:a;lr>"]);
        assert_eq!(dialog.remote_target.to_string(), "sip:seat@10.0.0.5");
        let ack = dialog.ack(7);
        assert_eq!(ack.cseq().unwrap().to_string(), "7 ACK");
    }
}
