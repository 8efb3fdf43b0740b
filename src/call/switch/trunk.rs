//! The call's second leg toward a sub-centre's SIP trunk (分中心), for the sub-centre's number
//! or an external number its `dial_out` allows: INVITE with our offer, the sub-centre's ring
//! timeout with CANCEL, and once answered both legs' media bridged in the engine. A trunk that
//! fails or does not answer sends the caller on to the dialplan's fallback (or, after a seat's
//! transfer, back to a queue or to the seat).

use std::time::Instant;

use tracing::{info, warn};

use super::{answer_far_reinvite, stream_params, Switch, Wake};
use crate::call::caller::{CallId, Caller, Ending, Phase};
use crate::call::trunk_leg::{FarEnd, TrunkLeg, TrunkState};
use crate::dialplan::model::{SubCentreId, TrunkTransport};
use crate::media::control::{LegId, MediaCommand};
use crate::sdp::{SdpSession, SessionDescription};
use crate::sip::dialog::Dialog;
use crate::sip::digest::Challenge;
use crate::sip::endpoint::{ClientTxnId, ServerTxnId};
use crate::sip::fields::Fields;
use crate::sip::message::{HeaderName, Method, Request, Response};
use crate::sip::peer::Peer;
use crate::sip::uri::Uri;

impl Switch {
    /// Starts passing the call to a sub-centre; false when that cannot even start (the
    /// dialplan's fallback runs then).
    /// `transfer` is the record's transfer entry when a seat started it (else one is noted).
    pub(super) fn start_trunk(
        &mut self,
        now: Instant,
        id: CallId,
        subcentre: SubCentreId,
        transfer: Option<usize>,
    ) -> bool {
        self.start_trunk_to(now, id, subcentre, None, transfer)
    }

    /// [`Switch::start_trunk`], calling `number` over the sub-centre's trunk when given (an
    /// external number its `dial_out` allows) instead of the sub-centre's own number. The
    /// sub-centre's schedule applies either way.
    pub(super) fn start_trunk_to(
        &mut self,
        now: Instant,
        id: CallId,
        subcentre: SubCentreId,
        number: Option<String>,
        transfer: Option<usize>,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        let Some(centre) = call.plan.dialplan.subcentres.get(subcentre.0 as usize) else {
            return false;
        };
        let name = centre.name.clone();
        let wall = self.clock.local(now, call.plan.dialplan.utc_offset_s);
        let dialplan = &call.plan.dialplan;
        let open = centre.always_open
            || centre
                .schedule
                .and_then(|s| dialplan.schedules.get(s.0 as usize))
                .is_some_and(|s| s.is_open(&dialplan.calendars, wall));
        let refusal = match (open, centre.transport) {
            (false, _) => Some("closed"),
            (_, TrunkTransport::Tcp) => Some("no-outbound-tcp"),
            _ => None,
        };
        let leg = third_party_leg(call);
        let peer = Peer::udp(centre.trunk);
        let transfer = match transfer {
            Some(index) => index,
            None => self.note_transfer(now, id, "subcentre", &name, None),
        };
        if let Some(why) = refusal {
            info!(call = id.0, subcentre = %name, why, "sub-centre not tried");
            self.note_transfer_outcome(now, id, transfer, why);
            return false;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        call.trunk = Some(TrunkLeg {
            far: FarEnd::SubCentre {
                subcentre,
                dialled: number,
            },
            leg,
            peer,
            state: TrunkState::Opening,
            invite: None,
            txn: None,
            sdp: None,
            dialog: None,
            reinvite: None,
            authenticated: false,
            transfer,
        });
        info!(call = id.0, subcentre = %name, "passing the call to the sub-centre's trunk");
        self.media.push_back(MediaCommand::Open { leg });
        true
    }

    /// The trunk leg's RTP port is bound: INVITE the sub-centre (or the seat) with our offer.
    pub(super) fn trunk_opened(&mut self, now: Instant, id: CallId, port: u16) {
        let far = self.calls.get(&id).and_then(|c| c.trunk.as_ref());
        if far.is_some_and(|t| matches!(t.far, FarEnd::Seat(_))) {
            return self.seat_leg_opened(now, id, port);
        }
        let local = self.local_media(port, id.0 | LegId::PARTNER);
        let contact = self.config.contact.clone();
        let from_tag = self.endpoint.new_token();
        let call_id = format!("{}@{}", self.endpoint.new_token(), contact.host);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(dialled) = call.dialled() else {
            return;
        };
        let Some(trunk) = call.trunk.as_mut() else {
            return;
        };
        if trunk.state != TrunkState::Opening {
            return;
        }
        let FarEnd::SubCentre {
            subcentre,
            dialled: number,
        } = &trunk.far
        else {
            return;
        };
        let Some(centre) = call.plan.dialplan.subcentres.get(subcentre.0 as usize) else {
            return;
        };
        let ring = centre.ring_timeout;
        let number = number
            .clone()
            .or_else(|| centre.number.clone())
            .unwrap_or(dialled);
        let target = Uri::sip(
            Some(&number),
            &centre.trunk.ip().to_string(),
            Some(centre.trunk.port()),
        );
        let caller = &call.caller;
        let mut session = SdpSession::new(local);
        let mut invite = Request {
            method: Method::Invite,
            uri: target.clone(),
            headers: Default::default(),
            body: Vec::new(),
        };
        let headers = &mut invite.headers;
        headers.push(HeaderName::MaxForwards, "70");
        headers.push(
            HeaderName::From,
            format!(
                "\"{caller}\" <sip:{caller}@{}>;tag={from_tag}",
                contact.host
            ),
        );
        headers.push(HeaderName::To, format!("<{target}>"));
        headers.push(HeaderName::CallId, call_id);
        headers.push(HeaderName::CSeq, "1 INVITE");
        headers.push(HeaderName::Contact, format!("<{contact}>"));
        headers.push(HeaderName::Allow, super::ALLOW);
        headers.push(HeaderName::ContentType, "application/sdp");
        invite.body = session.offer().to_bytes();
        let peer = trunk.peer;
        trunk.sdp = Some(session);
        trunk.invite = Some(invite.clone());
        trunk.state = TrunkState::Inviting;
        match self.endpoint.send_request(now, invite, peer) {
            Some(txn) => {
                if let Some(trunk) = self.calls.get_mut(&id).and_then(|c| c.trunk.as_mut()) {
                    trunk.txn = Some(txn);
                }
                self.by_trunk_invite.insert(txn, id);
                self.wakes.set(Wake::Trunk(id), now + ring);
            }
            None => self.trunk_failed(now, id, "unsendable"),
        }
    }

    /// A response to our INVITE toward the trunk (or one of a seat's phones, `txn`).
    pub(super) fn trunk_response(
        &mut self,
        now: Instant,
        id: CallId,
        txn: ClientTxnId,
        response: Response,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(trunk) = call.trunk.as_mut() else {
            return;
        };
        if matches!(trunk.far, FarEnd::Seat(_)) {
            return self.seat_leg_response(now, id, txn, &response);
        }
        let status = response.status;
        match (status, trunk.state) {
            (100..=199, TrunkState::Abandoned) => {
                if let Some(txn) = trunk.txn {
                    self.endpoint.cancel(now, txn);
                }
            }
            (100..=199, _) => {}
            (200..=299, TrunkState::Inviting) => self.trunk_answered(now, id, &response),
            (200..=299, TrunkState::Bridged) => {
                // A retransmitted 2xx: our ACK was lost.
                if let Some(dialog) = &trunk.dialog {
                    let seq = response.cseq().map(|c| c.seq).unwrap_or(1);
                    self.endpoint.send_ack(dialog.ack(seq), trunk.peer);
                }
            }
            (200..=299, _) => {
                // Answered after we gave up: ACK, then BYE (§15).
                let (Some(invite), peer) = (trunk.invite.as_ref(), trunk.peer) else {
                    return;
                };
                if let Ok(mut dialog) =
                    Dialog::as_uac(invite, &response, self.config.contact.clone())
                {
                    let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
                    self.endpoint.send_ack(dialog.ack(seq), peer);
                    let bye = dialog.request(Method::Bye);
                    self.endpoint.send_request(now, bye, peer);
                }
                self.drop_trunk(now, id);
            }
            (_, TrunkState::Abandoned) => self.drop_trunk(now, id),
            (401 | 407, TrunkState::Inviting) if !trunk.authenticated => {
                if !self.trunk_authenticate(now, id, &response) {
                    self.trunk_failed(now, id, &status.to_string());
                }
            }
            _ => self.trunk_failed(now, id, &status.to_string()),
        }
    }

    /// Answers the trunk's digest challenge with the sub-centre's credentials: the INVITE goes
    /// again with the next CSeq. False when there are no credentials or the challenge is not
    /// one we can answer.
    fn trunk_authenticate(&mut self, now: Instant, id: CallId, challenge: &Response) -> bool {
        let cnonce = self.endpoint.new_token();
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        let Some(trunk) = call.trunk.as_mut() else {
            return false;
        };
        let FarEnd::SubCentre { subcentre, .. } = &trunk.far else {
            return false;
        };
        let Some(centre) = call.plan.dialplan.subcentres.get(subcentre.0 as usize) else {
            return false;
        };
        let (asked, answer_in) = match challenge.status {
            401 => (
                HeaderName::Other("WWW-Authenticate".into()),
                "Authorization",
            ),
            _ => (
                HeaderName::Other("Proxy-Authenticate".into()),
                "Proxy-Authorization",
            ),
        };
        let parsed = challenge.headers.get_all(&asked).find_map(Challenge::parse);
        let (Some(parsed), Some(invite)) = (parsed, trunk.invite.as_mut()) else {
            return false;
        };
        if centre.username.is_empty() {
            return false;
        }
        let uri = invite.uri.to_string();
        let authorization =
            parsed.answer(&centre.username, &centre.password, "INVITE", &uri, &cnonce);
        let seq = invite.cseq().map(|c| c.seq).unwrap_or(1) + 1;
        invite
            .headers
            .set(HeaderName::CSeq, format!("{seq} INVITE"));
        invite
            .headers
            .push(HeaderName::Other(answer_in.into()), authorization);
        let invite = invite.clone();
        let peer = trunk.peer;
        trunk.authenticated = true;
        if let Some(old) = trunk.txn.take() {
            self.by_trunk_invite.remove(&old);
        }
        let Some(txn) = self.endpoint.send_request(now, invite, peer) else {
            return false;
        };
        if let Some(trunk) = self.calls.get_mut(&id).and_then(|c| c.trunk.as_mut()) {
            trunk.txn = Some(txn);
        }
        self.by_trunk_invite.insert(txn, id);
        true
    }

    /// The far end answered: ACK, and its media joins the call (bridged, mixed, or with the
    /// seat alone during a consult).
    pub(super) fn trunk_answered(&mut self, now: Instant, id: CallId, response: &Response) {
        let contact = self.config.contact.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let caller_leg = call.leg;
        let Some(trunk) = call.trunk.as_mut() else {
            return;
        };
        let Some(invite) = trunk.invite.as_ref() else {
            return;
        };
        let dialog = match Dialog::as_uac(invite, response, contact) {
            Ok(dialog) => dialog,
            Err(_) => return self.trunk_failed(now, id, "bad-2xx"),
        };
        let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
        self.endpoint.send_ack(dialog.ack(seq), trunk.peer);
        let answer = SessionDescription::parse(&response.body).ok();
        let params = match (trunk.sdp.as_mut(), answer) {
            (Some(session), Some(answer)) => session.accept_answer(&answer).ok(),
            _ => None,
        };
        let Some(params) = params else {
            // Answered without a usable SDP answer: end that leg again.
            let mut dialog = dialog;
            let bye = dialog.request(Method::Bye);
            let peer = trunk.peer;
            self.endpoint.send_request(now, bye, peer);
            return self.trunk_failed(now, id, "no-answer-sdp");
        };
        trunk.state = TrunkState::Bridged;
        call.returns_to = None;
        let leg = trunk.leg;
        let transfer = trunk.transfer;
        self.by_dialog.insert(dialog.id.clone(), id);
        trunk.dialog = Some(dialog);
        let consulting = call.consulting;
        if !consulting {
            call.current_play = None;
        }
        let seat_leg = call
            .seats
            .as_ref()
            .filter(|s| s.link.is_some())
            .map(|s| s.leg);
        self.note_transfer_outcome(now, id, transfer, "answered");
        self.wakes.clear(&Wake::Trunk(id));
        info!(call = id.0, "the third party answered: bridged");
        self.media.push_back(MediaCommand::Stream {
            leg,
            params: stream_params(&params),
        });
        if self.consult_line_answered(now, id, leg) {
            return;
        }
        match seat_leg {
            // Consult: the seat talks to the sub-centre; the caller keeps its music.
            Some(seat_leg) if consulting => self.media.push_back(MediaCommand::Bridge {
                leg: seat_leg,
                peer: leg,
            }),
            // Three-way: caller, seat and sub-centre each hear the other two.
            Some(seat_leg) => self.media.push_back(MediaCommand::Conference {
                legs: vec![caller_leg, seat_leg, leg],
            }),
            None => {
                // The music while it rang stops; a consult's caller keeps theirs.
                if let Some(call) = self.calls.get_mut(&id) {
                    call.hold_play = None;
                }
                self.media
                    .push_back(MediaCommand::StopPlay { leg: caller_leg });
                self.media.push_back(MediaCommand::Bridge {
                    leg: caller_leg,
                    peer: leg,
                });
            }
        }
        self.start_recording(now, id);
    }

    /// The sub-centre did not take the call: the caller goes on from the dialplan's fallback.
    pub(super) fn trunk_failed(&mut self, now: Instant, id: CallId, why: &str) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(transfer) = call.trunk.as_ref().map(|t| t.transfer) {
            self.note_transfer_outcome(now, id, transfer, why);
        }
        warn!(call = id.0, why, "the third party did not take the call");
        self.drop_trunk(now, id);
        if self.consult_line_failed(now, id, why.parse().unwrap_or(480)) {
            return;
        }
        if self.back_from_transfer(now, id) {
            return;
        }
        if self.calls.get(&id).is_some_and(|c| c.consulting) {
            return self.back_from_consult(id);
        }
        let actions = match self.calls.get_mut(&id).and_then(|c| c.nav.as_mut()) {
            Some(nav) => nav.on_transfer_failed(now),
            None => return,
        };
        self.run_flow(now, id, actions);
    }

    /// No answer within the sub-centre's ring timeout (its `ring_timeout_s`, else
    /// [`crate::dialplan::model::DEFAULT_SUBCENTRE_RING`]): CANCEL, and the caller goes on at
    /// once.
    pub(super) fn trunk_ring_timeout(&mut self, now: Instant, id: CallId) {
        let Some(trunk) = self.calls.get_mut(&id).and_then(|c| c.trunk.as_mut()) else {
            return;
        };
        if trunk.state != TrunkState::Inviting {
            return;
        }
        let transfer = trunk.transfer;
        self.abandon_trunk(now, id);
        self.note_transfer_outcome(now, id, transfer, "no-answer");
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        // The leg stays until the CANCEL is through; the caller does not wait for it.
        if call.returns_to.is_some() {
            self.back_from_transfer(now, id);
            return;
        }
        if call.consulting {
            return self.back_from_consult(id);
        }
        if call.consult_line.is_some() {
            self.consult_line_failed(now, id, 408);
            return;
        }
        let actions = match call.nav.as_mut() {
            Some(nav) => nav.on_transfer_failed(now),
            None => return,
        };
        self.run_flow(now, id, actions);
    }

    /// Ends the trunk leg because the caller's side is ending: BYE once answered, CANCEL
    /// while ringing.
    pub(super) fn end_trunk(&mut self, now: Instant, id: CallId) {
        let Some(trunk) = self.calls.get_mut(&id).and_then(|c| c.trunk.as_mut()) else {
            return;
        };
        if matches!(trunk.far, FarEnd::Seat(_)) && trunk.state != TrunkState::Bridged {
            let transfer = trunk.transfer;
            self.note_transfer_outcome(now, id, transfer, "caller-gone");
            return self.drop_trunk(now, id);
        }
        match trunk.state {
            TrunkState::Bridged => {
                if let Some(dialog) = trunk.dialog.as_mut() {
                    let bye = dialog.request(Method::Bye);
                    let peer = trunk.peer;
                    self.endpoint.send_request(now, bye, peer);
                }
                self.drop_trunk(now, id);
            }
            TrunkState::Inviting => self.abandon_trunk(now, id),
            TrunkState::Opening => self.drop_trunk(now, id),
            TrunkState::Abandoned => {}
        }
    }

    /// Gives up on a ringing trunk: CANCEL now, or at its first provisional response.
    fn abandon_trunk(&mut self, now: Instant, id: CallId) {
        let Some(trunk) = self.calls.get_mut(&id).and_then(|c| c.trunk.as_mut()) else {
            return;
        };
        if matches!(trunk.far, FarEnd::Seat(_)) {
            // Every ringing phone is withdrawn at once; the leg goes with them.
            return self.drop_trunk(now, id);
        }
        trunk.state = TrunkState::Abandoned;
        let leg = trunk.leg;
        if let Some(txn) = trunk.txn {
            self.endpoint.cancel(now, txn);
        }
        self.wakes.clear(&Wake::Trunk(id));
        self.media.push_back(MediaCommand::Close { leg });
    }

    /// Forgets the trunk leg (its transactions finish on their own); a seat's ringing phones
    /// are cancelled and the seat released (wrap-up).
    pub(super) fn drop_trunk(&mut self, now: Instant, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(mut trunk) = call.trunk.take() else {
            return;
        };
        if let FarEnd::Seat(far) = &mut trunk.far {
            for branch in std::mem::take(&mut far.branches) {
                self.by_trunk_invite.remove(&branch.txn);
                self.withdraw(now, id, far.seat, branch);
            }
            self.acd.transfer_ended(now, id, far.answered);
        }
        if let Some(txn) = trunk.txn {
            self.by_trunk_invite.remove(&txn);
        }
        if let Some(txn) = trunk.reinvite {
            self.by_invite.remove(&txn);
        }
        if let Some(dialog) = &trunk.dialog {
            self.by_dialog.remove(&dialog.id);
        }
        self.wakes.clear(&Wake::Trunk(id));
        if trunk.state != TrunkState::Abandoned {
            self.media.push_back(MediaCommand::Close { leg: trunk.leg });
        }
    }

    /// A request inside the trunk's dialog.
    pub(super) fn trunk_request(
        &mut self,
        now: Instant,
        id: CallId,
        txn: ServerTxnId,
        request: Request,
    ) {
        match request.method {
            Method::Bye => {
                self.reply(now, txn, &request, 200);
                info!(call = id.0, "the third party hung up");
                self.drop_trunk(now, id);
                self.third_party_left(now, id);
            }
            Method::Invite => self.trunk_reinvite(now, id, txn, request),
            Method::Options => self.reply(now, txn, &request, 200),
            _ => self.reply_unsupported(now, txn, &request),
        }
    }

    /// The third party's leg is gone: in a three-way call or a consult the caller and the seat
    /// go on together; otherwise the call ends.
    pub(super) fn third_party_left(&mut self, now: Instant, id: CallId) {
        if self
            .calls
            .get(&id)
            .is_some_and(|c| c.seat_on_call().is_some())
        {
            return self.rejoin_seat(id);
        }
        let talking = self.calls.get(&id).map(|c| c.phase);
        if talking.is_some_and(|p| p != Phase::HangingUp) {
            self.hang_up(now, id, Ending::SubCentreHungUp);
        }
    }

    /// A re-INVITE from the trunk (hold, resume, new address): answered from the leg's session.
    fn trunk_reinvite(&mut self, now: Instant, id: CallId, txn: ServerTxnId, request: Request) {
        let contact = self.config.contact.clone();
        let Some(trunk) = self.calls.get_mut(&id).and_then(|c| c.trunk.as_mut()) else {
            return self.reply(now, txn, &request, 481);
        };
        // No offer (a session refresh without media change) is not needed on a trunk: 488.
        let (response, media) = match answer_far_reinvite(trunk.sdp.as_mut(), &request, &contact) {
            Ok(answered) => answered,
            Err(status) => return self.reply(now, txn, &request, status),
        };
        let leg = trunk.leg;
        trunk.reinvite = Some(txn);
        self.by_invite.insert(txn, id);
        self.endpoint.respond(now, txn, response);
        self.media.push_back(MediaCommand::Stream {
            leg,
            params: stream_params(&media),
        });
    }

    /// The ACK for our 2xx to the trunk's re-INVITE.
    pub(super) fn trunk_acked(&mut self, now: Instant, id: CallId) {
        let pending = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.trunk.as_mut())
            .and_then(|t| t.reinvite.take());
        if let Some(txn) = pending {
            self.by_invite.remove(&txn);
            self.endpoint.ack_received(now, txn);
        }
    }
}

/// The media leg for a third party: the call's second leg, or with a seat on the call, the one
/// of its second and third legs the seat is not on.
pub(super) fn third_party_leg(call: &Caller) -> LegId {
    let seat_leg = call
        .seats
        .as_ref()
        .filter(|s| s.link.is_some())
        .map(|s| s.leg);
    match seat_leg {
        Some(leg) if leg == call.leg.third() => call.leg.partner(),
        Some(_) => call.leg.third(),
        None => call.leg.partner(),
    }
}
