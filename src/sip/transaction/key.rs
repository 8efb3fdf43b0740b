//! Transaction matching keys: RFC 3261 §17.1.3 (client) and §17.2.3 (server).

use crate::sip::fields::{FieldError, Fields, Transport, Via, BRANCH_COOKIE};
use crate::sip::message::{Method, Request, Response};
use crate::sip::uri::Uri;

/// Identifies a client transaction: top Via branch plus CSeq method (§17.1.3).
///
/// The method keeps a CANCEL (same branch as its INVITE) apart from the INVITE. No client
/// transaction is ever created for ACK, so a response with CSeq method ACK matches nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey {
    branch: String,
    method: Method,
}

impl ClientKey {
    /// The key of the client transaction that sends `request` (its top Via must carry a branch).
    pub fn for_request(request: &Request) -> Result<ClientKey, FieldError> {
        Ok(ClientKey {
            branch: branch_of(&request.top_via()?)?,
            method: request.method.clone(),
        })
    }

    /// The key of the client transaction `response` belongs to.
    pub fn for_response(response: &Response) -> Result<ClientKey, FieldError> {
        Ok(ClientKey {
            branch: branch_of(&response.top_via()?)?,
            method: response.cseq()?.method,
        })
    }

    /// The branch parameter.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The method of the transaction's request.
    pub fn method(&self) -> &Method {
        &self.method
    }
}

/// The branch of a Via, which a client transaction needs to be matched.
fn branch_of(via: &Via) -> Result<String, FieldError> {
    via.branch()
        .map(str::to_string)
        .ok_or(FieldError::Missing("Via branch"))
}

/// Identifies a server transaction (§17.2.3).
///
/// For a top Via branch starting with the magic cookie `z9hG4bK`: branch, sent-by (host
/// compared case-insensitively, port as written: `host` and `host:5060` differ) and method,
/// where ACK takes INVITE's place so the ACK of a non-2xx final finds its INVITE transaction.
///
/// Otherwise (RFC 2543 peers) the key falls back to Request-URI, From tag, To tag, Call-ID,
/// CSeq number, method and top Via (transport, sent-by, branch). For INVITE and ACK the To
/// tag is left out: the INVITE carries none while its ACK carries the tag of our response,
/// and a UAS sends a single final per transaction, so nothing is lost. An ACK for a 2xx
/// normally goes to the peer's Contact, so its Request-URI differs and it matches nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerKey(ServerKeyKind);

/// The two forms of server key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ServerKeyKind {
    /// RFC 3261 branch-based key.
    Branch {
        branch: String,
        host: String,
        port: Option<u16>,
        method: Method,
    },
    /// RFC 2543 fallback key.
    Legacy {
        request_uri: String,
        from_tag: Option<String>,
        to_tag: Option<String>,
        call_id: String,
        cseq: u32,
        method: Method,
        via: (Transport, String, Option<u16>, Option<String>),
    },
}

impl ServerKey {
    /// The key of the server transaction `request` belongs to (ACK maps to its INVITE).
    pub fn for_request(request: &Request) -> Result<ServerKey, FieldError> {
        let via = request.top_via()?;
        let method = match &request.method {
            Method::Ack => Method::Invite,
            other => other.clone(),
        };
        let host = via.host.to_ascii_lowercase();
        if let Some(branch) = via.branch().filter(|b| b.starts_with(BRANCH_COOKIE)) {
            return Ok(ServerKey(ServerKeyKind::Branch {
                branch: branch.to_string(),
                host,
                port: via.port,
                method,
            }));
        }
        let to_tag = match method {
            Method::Invite => None,
            _ => request.to_header()?.tag().map(str::to_string),
        };
        Ok(ServerKey(ServerKeyKind::Legacy {
            request_uri: canonical_uri(&request.uri),
            from_tag: request.from_header()?.tag().map(str::to_string),
            to_tag,
            call_id: request.call_id()?.to_string(),
            cseq: request.cseq()?.seq,
            method,
            via: (
                via.transport,
                host,
                via.port,
                via.branch().map(str::to_string),
            ),
        }))
    }

    /// For a CANCEL's key, the key of the INVITE transaction it targets (§9.2); else `None`.
    pub fn invite_key_for_cancel(&self) -> Option<ServerKey> {
        let mut kind = self.0.clone();
        match &mut kind {
            ServerKeyKind::Branch { method, .. } if *method == Method::Cancel => {
                *method = Method::Invite;
            }
            ServerKeyKind::Legacy { method, to_tag, .. } if *method == Method::Cancel => {
                *method = Method::Invite;
                *to_tag = None;
            }
            _ => return None,
        }
        Some(ServerKey(kind))
    }

    /// The method of the transaction's request (INVITE for an ACK's key).
    pub fn method(&self) -> &Method {
        match &self.0 {
            ServerKeyKind::Branch { method, .. } | ServerKeyKind::Legacy { method, .. } => method,
        }
    }

    /// Whether the key is the RFC 3261 branch form (not the RFC 2543 fallback).
    pub fn is_rfc3261(&self) -> bool {
        matches!(self.0, ServerKeyKind::Branch { .. })
    }
}

/// A URI printed with scheme and host lower-cased (a simplified §19.1.4 comparison).
fn canonical_uri(uri: &Uri) -> String {
    let mut uri = uri.clone();
    uri.scheme.make_ascii_lowercase();
    uri.host.make_ascii_lowercase();
    uri.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::HeaderName;
    use crate::sip::transaction::test_support::{invite, request, response, with_to_tag};

    fn set_via(mut req: Request, via: &str) -> Request {
        req.headers.set(HeaderName::Via, via);
        req
    }

    fn ack_for(invite: &Request) -> Request {
        let mut ack = invite.clone();
        ack.method = Method::Ack;
        ack.headers.set(HeaderName::CSeq, "1 ACK");
        with_to_tag(ack, "uas1")
    }

    #[test]
    fn ack_matches_invite_server_key() {
        let inv = invite(Transport::Udp);
        let key = ServerKey::for_request(&inv).unwrap();
        assert!(key.is_rfc3261());
        assert_eq!(ServerKey::for_request(&ack_for(&inv)).unwrap(), key);
        assert_eq!(ServerKey::for_request(&inv.clone()).unwrap(), key);
    }

    #[test]
    fn cancel_has_own_key_and_finds_its_invite() {
        let inv = invite(Transport::Udp);
        let mut cancel = inv.clone();
        cancel.method = Method::Cancel;
        cancel.headers.set(HeaderName::CSeq, "1 CANCEL");
        let invite_key = ServerKey::for_request(&inv).unwrap();
        let cancel_key = ServerKey::for_request(&cancel).unwrap();
        assert_ne!(cancel_key, invite_key);
        assert_eq!(cancel_key.method(), &Method::Cancel);
        assert_eq!(cancel_key.invite_key_for_cancel(), Some(invite_key.clone()));
        assert_eq!(invite_key.invite_key_for_cancel(), None);
    }

    #[test]
    fn sent_by_and_branch_separate_transactions() {
        let inv = invite(Transport::Udp);
        let key = ServerKey::for_request(&inv).unwrap();
        let other_host = set_via(
            inv.clone(),
            "SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKinv1",
        );
        assert_ne!(ServerKey::for_request(&other_host).unwrap(), key);
        let other_port = set_via(
            inv.clone(),
            "SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bKinv1",
        );
        assert_ne!(ServerKey::for_request(&other_port).unwrap(), key);
        let other_branch = set_via(
            inv.clone(),
            "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv2",
        );
        assert_ne!(ServerKey::for_request(&other_branch).unwrap(), key);
        let upper_host = set_via(inv, "SIP/2.0/UDP PBX.Example:5060;branch=z9hG4bKinv1");
        let lower_host = set_via(
            upper_host.clone(),
            "SIP/2.0/UDP pbx.example:5060;branch=z9hG4bKinv1",
        );
        assert_eq!(
            ServerKey::for_request(&upper_host).unwrap(),
            ServerKey::for_request(&lower_host).unwrap()
        );
    }

    #[test]
    fn rfc2543_fallback_without_magic_cookie() {
        let inv = set_via(invite(Transport::Udp), "SIP/2.0/UDP 192.0.2.10:5060");
        let key = ServerKey::for_request(&inv).unwrap();
        assert!(!key.is_rfc3261());
        assert_eq!(ServerKey::for_request(&inv.clone()).unwrap(), key);
        assert_eq!(ServerKey::for_request(&ack_for(&inv)).unwrap(), key);
        let mut next = inv.clone();
        next.headers.set(HeaderName::CSeq, "2 INVITE");
        assert_ne!(ServerKey::for_request(&next).unwrap(), key);
        let mut cancel = inv.clone();
        cancel.method = Method::Cancel;
        cancel.headers.set(HeaderName::CSeq, "1 CANCEL");
        let cancel_key = ServerKey::for_request(&cancel).unwrap();
        assert_ne!(cancel_key, key);
        assert_eq!(cancel_key.invite_key_for_cancel(), Some(key.clone()));
        // A branch without the cookie is compared as part of the top Via.
        let old_branch = set_via(inv, "SIP/2.0/UDP 192.0.2.10:5060;branch=1234");
        let old_key = ServerKey::for_request(&old_branch).unwrap();
        assert!(!old_key.is_rfc3261());
        assert_ne!(old_key, key);
    }

    #[test]
    fn client_key_matches_responses_and_separates_cancel() {
        let inv = invite(Transport::Udp);
        let key = ClientKey::for_request(&inv).unwrap();
        assert_eq!(key.branch(), "z9hG4bKinv1");
        assert_eq!(key.method(), &Method::Invite);
        let ringing = response(&inv, 180, Some("uas1"));
        assert_eq!(ClientKey::for_response(&ringing).unwrap(), key);
        let bye = request(Method::Bye, Transport::Udp);
        let cancel_ok = {
            let mut r = response(&inv, 200, None);
            r.headers.set(HeaderName::CSeq, "1 CANCEL");
            r
        };
        assert_ne!(ClientKey::for_response(&cancel_ok).unwrap(), key);
        assert_ne!(ClientKey::for_request(&bye).unwrap(), key);
    }

    #[test]
    fn missing_via_or_branch_is_an_error() {
        let mut inv = invite(Transport::Udp);
        inv.headers.remove(&HeaderName::Via);
        assert_eq!(
            ServerKey::for_request(&inv),
            Err(FieldError::Missing("Via"))
        );
        let no_branch = set_via(invite(Transport::Udp), "SIP/2.0/UDP 192.0.2.10");
        assert_eq!(
            ClientKey::for_request(&no_branch),
            Err(FieldError::Missing("Via branch"))
        );
    }
}
