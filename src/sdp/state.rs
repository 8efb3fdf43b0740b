//! Per-leg offer/answer state: the `o=` version rule and the outstanding offer.

use super::direction::Direction;
use super::error::NegotiationError;
use super::local::{Answer, LocalMedia, MediaParams};
use super::negotiate;
use super::session::SessionDescription;

/// The offer/answer state of one call leg.
///
/// Wraps [`LocalMedia`] and remembers the last description we sent, so that each new one keeps
/// the session id and m-line layout and carries a version that is incremented exactly when the
/// content changed (RFC 3264 §8). It also remembers our outstanding offer for
/// [`SdpSession::accept_answer`].
#[derive(Debug, Clone)]
pub struct SdpSession {
    /// Our side, including the version of the last description we sent.
    local: LocalMedia,
    /// The last description we sent (offer or answer).
    last_sent: Option<SessionDescription>,
    /// Our offer still waiting for an answer.
    pending_offer: Option<SessionDescription>,
}

impl SdpSession {
    /// Starts a leg with nothing sent yet.
    pub fn new(local: LocalMedia) -> SdpSession {
        SdpSession {
            local,
            last_sent: None,
            pending_offer: None,
        }
    }

    /// Our side of the leg.
    pub fn local(&self) -> &LocalMedia {
        &self.local
    }

    /// Changes our wanted direction (`SendOnly` to hold the peer, `SendRecv` to resume); it
    /// applies to the next description we produce.
    pub fn set_direction(&mut self, direction: Direction) {
        self.local.direction = direction;
    }

    /// The last description we sent, if any.
    pub fn last_sent(&self) -> Option<&SessionDescription> {
        self.last_sent.as_ref()
    }

    /// Our offer waiting for an answer, if any.
    pub fn pending_offer(&self) -> Option<&SessionDescription> {
        self.pending_offer.as_ref()
    }

    /// Answers a peer's offer (see [`negotiate::answer`]); on success the answer counts as sent.
    ///
    /// Any offer of ours still outstanding is dropped (the engine resolves glare before this).
    pub fn answer(&mut self, offer: &SessionDescription) -> Result<Answer, NegotiationError> {
        let mut answer = negotiate::answer(offer, &self.local)?;
        self.stamp(&mut answer.sdp);
        self.pending_offer = None;
        Ok(answer)
    }

    /// Produces our offer: a fresh one, or one keeping the layout of what we sent before
    /// (see [`negotiate::reoffer`]). It counts as sent and becomes the outstanding offer.
    pub fn offer(&mut self) -> SessionDescription {
        let mut sdp = match &self.last_sent {
            Some(previous) => negotiate::reoffer(previous, &self.local),
            None => negotiate::offer(&self.local),
        };
        self.stamp(&mut sdp);
        self.pending_offer = Some(sdp.clone());
        sdp
    }

    /// Reads the peer's answer to our outstanding offer (see [`negotiate::accept_answer`]).
    ///
    /// The offer stays outstanding if the answer is unacceptable, so the engine can decide to
    /// retry; it is cleared on success.
    pub fn accept_answer(
        &mut self,
        answer: &SessionDescription,
    ) -> Result<MediaParams, NegotiationError> {
        let offer = self
            .pending_offer
            .as_ref()
            .ok_or(NegotiationError::NoOfferPending)?;
        let params = negotiate::accept_answer(offer, answer)?;
        self.pending_offer = None;
        Ok(params)
    }

    /// Forgets our outstanding offer (the peer rejected it, e.g. with 488 or 491).
    ///
    /// The version is not rolled back: a changed next description gets a higher one than the
    /// cancelled offer, an identical retry keeps its version.
    pub fn cancel_offer(&mut self) {
        self.pending_offer = None;
    }

    /// Sets the `o=` id and version of a description we are about to send and records it.
    ///
    /// The version is incremented when the content differs from the last description sent
    /// and stays the same when it is identical.
    fn stamp(&mut self, sdp: &mut SessionDescription) {
        if let Some(previous) = &self.last_sent {
            sdp.origin.session_version = previous.origin.session_version;
            if sdp != previous {
                self.local.bump_version();
            }
        }
        sdp.origin.session_id = self.local.session_id;
        sdp.origin.session_version = self.local.session_version;
        self.last_sent = Some(sdp.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::codec::Codec;
    use crate::sdp::fixtures;

    fn parse(text: &str) -> SessionDescription {
        match SessionDescription::parse(text.as_bytes()) {
            Ok(sdp) => sdp,
            Err(e) => panic!("{e}\n{text}"),
        }
    }

    fn session() -> SdpSession {
        let ip = std::net::IpAddr::from([192, 0, 2, 10]);
        SdpSession::new(LocalMedia::new(ip, 20000, 777))
    }

    fn versions(sdp: &SessionDescription) -> (u64, u64) {
        (sdp.origin.session_id, sdp.origin.session_version)
    }

    #[test]
    fn version_changes_only_with_content() {
        let mut s = session();
        let offer = parse(fixtures::CARRIER_TRUNK);
        let first = s.answer(&offer).map(|a| a.sdp);
        assert_eq!(first.as_ref().map(versions), Ok((777, 1)));
        // Session refresh re-INVITE with the same offer: identical answer, same version.
        let again = s.answer(&offer).map(|a| a.sdp);
        assert_eq!(again, first);
        // The peer holds us: our answer changes (recvonly), version goes up by one.
        let held = s.answer(&parse(
            fixtures::LINPHONE_HOLD
                .replace("7078 RTP/AVP 0 8", "30000 RTP/AVP 8 0")
                .as_str(),
        ));
        let Ok(held) = held else { panic!("{held:?}") };
        assert_eq!(versions(&held.sdp), (777, 2));
        assert_eq!(held.sdp.media[0].direction(), Some(Direction::RecvOnly));
        assert_eq!(s.local().session_version, 2);
    }

    #[test]
    fn failed_answer_changes_nothing() {
        let mut s = session();
        let ok = s.answer(&parse(fixtures::SIPP_PCMU)).map(|a| a.sdp);
        assert!(s.answer(&parse(fixtures::G729_ONLY)).is_err());
        assert_eq!(s.last_sent(), ok.as_ref().ok());
    }

    #[test]
    fn we_hold_and_resume() {
        let mut s = session();
        let Ok(first) = s.answer(&parse(fixtures::LINPHONE_VIDEO)) else {
            panic!()
        };
        assert_eq!(first.sdp.origin.session_version, 1);

        s.set_direction(Direction::SendOnly);
        let hold = s.offer();
        assert_eq!(hold.origin.session_version, 2);
        assert_eq!(hold.media.len(), 2, "m-lines must not decrease");
        assert_eq!(hold.media[0].direction(), Some(Direction::SendOnly));
        assert_eq!(s.pending_offer(), Some(&hold));

        let peer = parse(
            "v=0\r\no=alice 3423 2362 IN IP4 192.168.0.42\r\ns=Talk\r\n\
             c=IN IP4 192.168.0.42\r\nt=0 0\r\n\
             m=audio 7078 RTP/AVP 0 100\r\na=rtpmap:100 telephone-event/8000\r\na=recvonly\r\n\
             m=video 0 RTP/AVP 96\r\n",
        );
        let Ok(p) = s.accept_answer(&peer) else {
            panic!()
        };
        assert_eq!((p.codec, p.telephone_event), (Codec::Pcmu, Some(100)));
        assert_eq!(p.local_direction, Direction::SendOnly);
        assert!(!p.held_by_remote());
        assert_eq!(s.pending_offer(), None);
        assert_eq!(
            s.accept_answer(&peer),
            Err(NegotiationError::NoOfferPending)
        );

        s.set_direction(Direction::SendRecv);
        let resume = s.offer();
        assert_eq!(resume.origin.session_version, 3);
        assert_eq!(resume.media[0].direction(), Some(Direction::SendRecv));
        // Rejected by the peer (491): the retry is identical, so it keeps version 3.
        s.cancel_offer();
        assert_eq!(s.pending_offer(), None);
        let retry = s.offer();
        assert_eq!(
            retry.origin.session_version, 3,
            "identical content keeps the version"
        );
    }

    #[test]
    fn late_offer() {
        let mut s = session();
        let ours = s.offer();
        assert_eq!(ours.origin.session_version, 1);
        let peer = parse(fixtures::SIPP_PCMU);
        let Ok(p) = s.accept_answer(&peer) else {
            panic!()
        };
        assert_eq!((p.codec, p.payload_type), (Codec::Pcmu, 0));
        assert_eq!(p.remote_rtp.port(), 6000);
    }
}
