//! Callers and seats: a `queue` action puts the caller in the call distribution (ACD) with
//! music and announcements; the ACD's offers ring the seats' registered phones; the seat that
//! answers is bridged to the caller with media anchored here. Hold from the seat's phone plays
//! music to the caller; either side hanging up ends the talk and the seat goes to wrap-up.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::{answer_far_reinvite, answer_in_ack, sdp_ok, stream_params, Switch};
use crate::acd::{AcdAction, AcdEvent, Enqueued, LeftBecause, SeatId, SeatState, NO_ANSWER};
use crate::call::caller::{CallId, Ending, Phase};
use crate::call::seat_leg::{Branch, Offer, SeatLink, SeatMedia, SeatSide, Waiting};
use crate::call::trunk_leg::TrunkState;
use crate::dialplan::model::QueueId;
use crate::dialplan::navigation::Action;
use crate::dialplan::spoken::queue_announcement;
use crate::media::control::{LegId, MediaCommand};
use crate::sdp::{MediaParams, SdpSession, SessionDescription};
use crate::sip::dialog::Dialog;
use crate::sip::endpoint::{ClientTxnId, ServerTxnId};
use crate::sip::fields::Fields;
use crate::sip::message::{HeaderName, Method, Request, Response};
use crate::sip::peer::Peer;
use crate::sip::uri::Uri;
use crate::tickets::record::SeatOffer;

/// A branch given up on (ring timeout, another seat won, the caller left): cancelled at its
/// first provisional response, and hung up should it answer anyway.
#[derive(Debug)]
pub(super) struct Withdrawn {
    invite: Request,
    peer: Peer,
    /// The caller's call it offered.
    call: CallId,
    /// The seat it rang.
    seat: SeatId,
}

impl Switch {
    /// A `queue` action: the caller waits for a seat of `queue`. Returns the dialplan's next
    /// actions when no seat can take the call (its fallback).
    pub(super) fn enter_queue(
        &mut self,
        now: Instant,
        id: CallId,
        queue: QueueId,
        priority: u8,
    ) -> Vec<Action> {
        let Some(call) = self.calls.get_mut(&id) else {
            return Vec::new();
        };
        let Some(decl) = call.plan.dialplan.queues.get(queue.0 as usize) else {
            return Vec::new();
        };
        let name = decl.name.clone();
        match self.acd.enqueue(now, id, &name, priority) {
            Enqueued::NoSeats => {
                info!(call = id.0, queue = %name, "no seat logged in: fallback");
                self.note_queue(now, id, &name, priority, "no-seat");
                let nav = self.calls.get_mut(&id).and_then(|c| c.nav.as_mut());
                nav.map(|nav| nav.on_queue_unavailable(now))
                    .unwrap_or_default()
            }
            Enqueued::Waiting => {
                info!(call = id.0, queue = %name, priority, "queued");
                let visit = self.open_queue_visit(now, id, &name, priority);
                if let Some(call) = self.calls.get_mut(&id) {
                    call.waiting = Some(Waiting {
                        queue: name,
                        visit,
                        play: None,
                    });
                }
                self.play_waiting(id, Vec::new());
                Vec::new()
            }
        }
    }

    /// Plays `first` (an announcement), then the queue's music, to a waiting caller.
    pub(super) fn play_waiting(&mut self, id: CallId, first: Vec<String>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(waiting) = call.waiting.as_mut() else {
            return;
        };
        let music = call
            .plan
            .dialplan
            .queues
            .iter()
            .find(|q| q.name == waiting.queue)
            .map(|q| q.music.clone())
            .unwrap_or_default();
        let prompts = first
            .iter()
            .chain(music.iter())
            .filter_map(|name| call.plan.prompts.get(name))
            .collect();
        self.next_play += 1;
        waiting.play = Some(self.next_play);
        self.media.push_back(MediaCommand::Play {
            leg: call.leg,
            play: self.next_play,
            prompts,
            barge_in: false,
        });
    }

    /// A playback ended: a waiting caller's music starts over. False when it was not theirs.
    pub(super) fn waiting_play_finished(&mut self, id: CallId, play: u64) -> bool {
        let waiting = self.calls.get(&id).and_then(|c| c.waiting.as_ref());
        if waiting.is_some_and(|w| w.play == Some(play)) {
            self.play_waiting(id, Vec::new());
            return true;
        }
        // Music on hold (the seat holds, or a transfer rings) loops until it is stopped.
        if self.calls.get(&id).and_then(|c| c.hold_play) == Some(play) {
            self.play_hold_music(id);
            return true;
        }
        false
    }

    /// "您前面还有 N 位，预计等待 M 分钟" (or "您是下一位"), then the music again.
    fn announce_position(&mut self, id: CallId, position: usize, wait: Duration) {
        let ahead = u32::try_from(position.saturating_sub(1)).unwrap_or(u32::MAX);
        self.play_waiting(id, queue_announcement(ahead, wait));
    }

    /// Carries out what the ACD decided, and notes what happened in it, until it is quiet.
    pub(super) fn run_acd(&mut self, now: Instant) {
        loop {
            self.note_acd_events();
            let Some(action) = self.acd.poll_action() else {
                break;
            };
            match action {
                AcdAction::Offer { call, seats } => {
                    for seat in seats {
                        self.offer(now, call, seat);
                    }
                }
                AcdAction::StopRinging { call, seat } => self.stop_ringing(now, call, seat),
                AcdAction::WaitedTooLong { call } => {
                    info!(call = call.0, "waited the queue's maximum");
                    self.leave_queue(call);
                    let nav = self.calls.get_mut(&call).and_then(|c| c.nav.as_mut());
                    if let Some(actions) = nav.map(|nav| nav.on_queue_max_wait(now)) {
                        self.run_flow(now, call, actions);
                    }
                }
                AcdAction::NoSeats { call } => {
                    info!(call = call.0, "no seat left for a waiting caller: fallback");
                    self.leave_queue(call);
                    let nav = self.calls.get_mut(&call).and_then(|c| c.nav.as_mut());
                    if let Some(actions) = nav.map(|nav| nav.on_queue_unavailable(now)) {
                        self.run_flow(now, call, actions);
                    }
                }
                AcdAction::NotTaken { call, why } => {
                    self.leave_queue(call);
                    self.seat_did_not_take(now, call, why);
                }
                AcdAction::Announce {
                    call,
                    position,
                    estimated_wait,
                } => self.announce_position(call, position, estimated_wait),
            }
        }
    }

    /// Notes what happened in the ACD in the records, statistics and desk events.
    fn note_acd_events(&mut self) {
        while let Some(event) = self.acd.poll_event() {
            self.acd_event(&event);
            self.stats.observe(&event);
        }
    }

    /// The caller is out of the queue (the ACD said so): stop the waiting music.
    fn leave_queue(&mut self, id: CallId) {
        if let Some(call) = self.calls.get_mut(&id) {
            if call.waiting.take().is_some() {
                call.current_play = None;
                self.media
                    .push_back(MediaCommand::StopPlay { leg: call.leg });
            }
        }
        self.close_idle_seat_side(id);
    }

    /// Rings `seat`'s registered phones for call `id`.
    fn offer(&mut self, now: Instant, id: CallId, seat: SeatId) {
        let Some(call) = self.calls.get_mut(&id) else {
            // The caller is gone already: the ACD hears of it from the caller's side.
            return;
        };
        if call.seats.is_none() {
            // One port toward the seats for as long as the caller waits: offers come and go
            // on it, and no late `Opened` of an earlier port can mix with a later one.
            let leg = call.leg.partner();
            call.seats = Some(SeatSide::opening(leg));
            self.media.push_back(MediaCommand::Open { leg });
        }
        let Some(side) = self.calls.get_mut(&id).and_then(|c| c.seats.as_mut()) else {
            return;
        };
        side.offers.push(Offer {
            seat,
            branches: Vec::new(),
        });
        if side.media == SeatMedia::Open {
            self.send_offer(now, id, seat);
        }
    }

    /// The seat side's RTP port is bound: the offers waiting for it go out.
    pub(super) fn seat_media_opened(&mut self, now: Instant, id: CallId, port: u16) {
        let local = self.local_media(port, id.0 | LegId::PARTNER);
        let Some(side) = self.calls.get_mut(&id).and_then(|c| c.seats.as_mut()) else {
            return;
        };
        if side.media != SeatMedia::Opening {
            return;
        }
        let mut session = SdpSession::new(local);
        side.offer = session.offer().to_bytes();
        side.sdp = Some(session);
        side.media = SeatMedia::Open;
        let seats: Vec<SeatId> = side.offers.iter().map(|o| o.seat).collect();
        for seat in seats {
            self.send_offer(now, id, seat);
        }
    }

    /// The seat side's RTP port could not be bound: every offer is declined.
    pub(super) fn seat_media_failed(&mut self, now: Instant, id: CallId) {
        warn!(call = id.0, "no RTP port toward the seats");
        let Some(side) = self.calls.get_mut(&id).and_then(|c| c.seats.take()) else {
            return;
        };
        for offer in side.offers {
            self.acd.declined(now, id, offer.seat);
        }
    }

    /// INVITEs every registered contact of `seat`, with the caller's details for its display.
    fn send_offer(&mut self, now: Instant, id: CallId, seat: SeatId) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let queue = call.waiting.as_ref().map(|w| w.queue.clone());
        let body = call
            .seats
            .as_ref()
            .map(|s| s.offer.clone())
            .unwrap_or_default();
        let invites = self.seat_invites(now, id, seat, body, queue.as_deref());
        let mut branches = Vec::new();
        for (invite, peer) in invites {
            if let Some(txn) = self.endpoint.send_request(now, invite.clone(), peer) {
                self.by_seat_invite.insert(txn, id);
                branches.push(Branch { invite, txn, peer });
            }
        }
        let seat_name = self.acd.seat_name(seat).to_string();
        let Some(side) = self.calls.get_mut(&id).and_then(|c| c.seats.as_mut()) else {
            return;
        };
        let Some(offer) = side.offers.iter_mut().find(|o| o.seat == seat) else {
            return;
        };
        if branches.is_empty() {
            // Registered a moment ago, gone now (or only contacts we cannot reach).
            debug!(call = id.0, seat = %seat_name, "no reachable contact");
            side.offers.retain(|o| o.seat != seat);
            self.acd.set_reachable(now, seat, false);
            self.acd.declined(now, id, seat);
            return;
        }
        info!(call = id.0, seat = %seat_name, phones = branches.len(), "offering the call");
        offer.branches = branches;
    }

    /// The INVITEs of call `id` to every registered contact of `seat`, offering `body`, with
    /// the caller's details (and `queue`) for its display; empty when none is reachable.
    pub(super) fn seat_invites(
        &mut self,
        now: Instant,
        id: CallId,
        seat: SeatId,
        body: Vec<u8>,
        queue: Option<&str>,
    ) -> Vec<(Request, Peer)> {
        let seat_name = self.acd.seat_name(seat).to_string();
        let username = self
            .seat_book
            .by_id(&seat_name)
            .map(|s| s.username.clone())
            .unwrap_or_default();
        let contacts: Vec<(Uri, Peer)> = self
            .registrations
            .contacts(&username, now)
            .into_iter()
            .filter_map(|uri| {
                if let Some(peer) = self.phone_peers.get(&uri.to_string()) {
                    return Some((uri, *peer));
                }
                let ip: IpAddr = uri.host.trim_matches(['[', ']']).parse().ok()?;
                let addr = SocketAddr::new(ip, uri.port.unwrap_or(5060));
                Some((uri, Peer::udp(addr)))
            })
            .collect();
        let contact = self.config.contact.clone();
        let Some(call) = self.calls.get(&id) else {
            return Vec::new();
        };
        let caller = call.caller.clone();
        let hotline = call.record.hotline.clone().unwrap_or_default();
        let topic = call
            .nav
            .as_ref()
            .and_then(|nav| nav.tags().iter().find(|(k, _)| k == "topic"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let record_id = call.record.id.clone();
        let display = format!("{caller} {hotline} {topic}");
        let display = display.trim().replace('"', "");
        let mut invites = Vec::new();
        for (target, addr) in contacts {
            let from_tag = format!("s{}", self.endpoint.new_token());
            let call_id = format!("{}@{}", self.endpoint.new_token(), contact.host);
            let mut invite = Request {
                method: Method::Invite,
                uri: target.clone(),
                headers: Default::default(),
                body: body.clone(),
            };
            let h = &mut invite.headers;
            let caller_uri = format!("sip:{caller}@{}", contact.host);
            h.push(HeaderName::MaxForwards, "70");
            h.push(
                HeaderName::From,
                format!("\"{display}\" <{caller_uri}>;tag={from_tag}"),
            );
            h.push(HeaderName::To, format!("<sip:{username}@{}>", contact.host));
            h.push(HeaderName::CallId, call_id);
            h.push(HeaderName::CSeq, "1 INVITE");
            h.push(HeaderName::Contact, format!("<{contact}>"));
            h.push(
                HeaderName::Other("P-Asserted-Identity".into()),
                format!("\"{display}\" <{caller_uri}>"),
            );
            h.push(HeaderName::Other("X-Hotline".into()), hotline.clone());
            if let Some(queue) = queue {
                h.push(HeaderName::Other("X-Hotline-Queue".into()), queue);
            }
            if !topic.is_empty() {
                h.push(HeaderName::Other("X-Hotline-Topic".into()), topic.clone());
            }
            h.push(
                HeaderName::Other("X-Hotline-Record".into()),
                record_id.clone(),
            );
            h.push(HeaderName::Allow, super::ALLOW);
            h.push(HeaderName::ContentType, "application/sdp");
            invites.push((invite, addr));
        }
        invites
    }

    /// Withdraws the offer of call `id` to `seat`.
    fn stop_ringing(&mut self, now: Instant, id: CallId, seat: SeatId) {
        let Some(side) = self.calls.get_mut(&id).and_then(|c| c.seats.as_mut()) else {
            return;
        };
        let Some(at) = side.offers.iter().position(|o| o.seat == seat) else {
            return;
        };
        let offer = side.offers.remove(at);
        for branch in offer.branches {
            self.withdraw(now, id, seat, branch);
        }
        self.close_idle_seat_side(id);
    }

    /// CANCELs a ringing branch and remembers it until it is over.
    pub(super) fn withdraw(&mut self, now: Instant, call: CallId, seat: SeatId, branch: Branch) {
        self.by_seat_invite.remove(&branch.txn);
        self.endpoint.cancel(now, branch.txn);
        self.withdrawn.insert(
            branch.txn,
            Withdrawn {
                invite: branch.invite,
                peer: branch.peer,
                call,
                seat,
            },
        );
    }

    /// No offer and no seat any more: the seat side's media leg goes.
    fn close_idle_seat_side(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let idle = call.waiting.is_none()
            && call
                .seats
                .as_ref()
                .is_some_and(|s| s.offers.is_empty() && s.link.is_none());
        if idle {
            if let Some(side) = call.seats.take() {
                self.media.push_back(MediaCommand::Close { leg: side.leg });
            }
        }
    }

    /// A response to one of our INVITEs to a seat's phone; true when it was one.
    pub(super) fn seat_response(
        &mut self,
        now: Instant,
        txn: ClientTxnId,
        response: &Response,
    ) -> bool {
        if let Some(withdrawn) = self.withdrawn.get(&txn) {
            match response.status {
                100..=199 => {
                    self.endpoint.cancel(now, txn);
                }
                200..=299 => {
                    // Answered as we gave up: ACK, then BYE (RFC 3261 §15).
                    let (invite, peer) = (withdrawn.invite.clone(), withdrawn.peer);
                    let (call, seat) = (withdrawn.call, withdrawn.seat);
                    self.withdrawn.remove(&txn);
                    self.hang_up_answer(now, &invite, response, peer);
                    // Picked up just after the ring timeout: the seat is at its desk after all,
                    // and the ACD makes it ready again.
                    let no_answer = SeatState::NotReady(NO_ANSWER.to_string());
                    if self.acd.seat_state(seat) == Some(&no_answer) {
                        self.acd.answered(now, call, seat);
                    }
                }
                _ => {
                    self.withdrawn.remove(&txn);
                }
            }
            return true;
        }
        let Some(&id) = self.by_seat_invite.get(&txn) else {
            return false;
        };
        match response.status {
            100..=199 => {}
            200..=299 => self.seat_answered(now, id, txn, response),
            _ => self.branch_failed(now, id, txn, &response.status.to_string()),
        }
        true
    }

    /// Our INVITE to a seat's phone got no final response.
    pub(super) fn seat_timeout(&mut self, now: Instant, txn: ClientTxnId) -> bool {
        if self.withdrawn.remove(&txn).is_some() {
            return true;
        }
        let Some(&id) = self.by_seat_invite.get(&txn) else {
            return false;
        };
        self.branch_failed(now, id, txn, "timeout");
        true
    }

    /// ACK and BYE for a 2xx we do not want.
    fn hang_up_answer(&mut self, now: Instant, invite: &Request, response: &Response, peer: Peer) {
        if let Ok(mut dialog) = Dialog::as_uac(invite, response, self.config.contact.clone()) {
            let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
            self.endpoint.send_ack(dialog.ack(seq), peer);
            let bye = dialog.request(Method::Bye);
            self.endpoint.send_request(now, bye, peer);
        }
    }

    /// One phone of a seat refused or failed; when all its phones did, the seat declined.
    fn branch_failed(&mut self, now: Instant, id: CallId, txn: ClientTxnId, why: &str) {
        self.by_seat_invite.remove(&txn);
        let Some(side) = self.calls.get_mut(&id).and_then(|c| c.seats.as_mut()) else {
            return;
        };
        let Some(at) = side.offer_of(txn) else {
            return;
        };
        let offer = &mut side.offers[at];
        offer.branches.retain(|b| b.txn != txn);
        if !offer.branches.is_empty() {
            return;
        }
        let seat = offer.seat;
        side.offers.remove(at);
        info!(call = id.0, seat = %self.acd.seat_name(seat), why, "seat did not take the call");
        self.acd.declined(now, id, seat);
        self.close_idle_seat_side(id);
    }

    /// A seat's phone answered: the first answer wins the call, later ones are hung up.
    fn seat_answered(&mut self, now: Instant, id: CallId, txn: ClientTxnId, response: &Response) {
        self.by_seat_invite.remove(&txn);
        let contact = self.config.contact.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(side) = call.seats.as_mut() else {
            return;
        };
        let Some(at) = side.offer_of(txn) else {
            return;
        };
        let offer = side.offers.remove(at);
        let seat = offer.seat;
        let mut others = Vec::new();
        let mut won = None;
        for branch in offer.branches {
            match branch.txn == txn {
                true => won = Some(branch),
                false => others.push(branch),
            }
        }
        let Some(branch) = won else {
            return;
        };
        // The seat's other phones stop ringing.
        for other in others {
            self.withdraw(now, id, seat, other);
        }
        let taken = self
            .calls
            .get(&id)
            .and_then(|c| c.seats.as_ref())
            .is_some_and(|s| s.link.is_some());
        if taken || !self.acd.answered(now, id, seat) {
            info!(call = id.0, seat = %self.acd.seat_name(seat), "answered too late: hung up");
            self.hang_up_answer(now, &branch.invite, response, branch.peer);
            return self.close_idle_seat_side(id);
        }
        let dialog = match Dialog::as_uac(&branch.invite, response, contact) {
            Ok(dialog) => dialog,
            Err(_) => return self.seat_gone(now, id, "bad-2xx"),
        };
        let seq = branch.invite.cseq().map(|c| c.seq).unwrap_or(1);
        self.endpoint.send_ack(dialog.ack(seq), branch.peer);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let caller_leg = call.leg;
        let Some(side) = call.seats.as_mut() else {
            return;
        };
        let answer = SessionDescription::parse(&response.body).ok();
        let params = match (side.sdp.as_mut(), answer) {
            (Some(session), Some(answer)) => session.accept_answer(&answer).ok(),
            _ => None,
        };
        self.by_dialog.insert(dialog.id.clone(), id);
        side.link = Some(SeatLink {
            seat,
            dialog,
            peer: branch.peer,
            reinvite: None,
            reinvite_offered: false,
            held: false,
            since: now,
        });
        let leg = side.leg;
        let Some(params) = params else {
            warn!(call = id.0, "seat answered without a usable SDP answer");
            return self.seat_gone(now, id, "no-answer-sdp");
        };
        call.waiting = None;
        call.current_play = None;
        let queue = call.record.queues.last().map(|v| v.queue.clone());
        let record = queue
            .and_then(|q| call.plan.dialplan.queues.iter().find(|d| d.name == q))
            .is_none_or(|d| d.record);
        info!(call = id.0, seat = %self.acd.seat_name(seat), "seat answered: bridged");
        self.media.push_back(MediaCommand::Stream {
            leg,
            params: stream_params(&params),
        });
        self.media
            .push_back(MediaCommand::StopPlay { leg: caller_leg });
        self.media.push_back(MediaCommand::Bridge {
            leg: caller_leg,
            peer: leg,
        });
        if record {
            self.start_recording(now, id);
        }
    }

    /// The talk with the seat is over from our side (bad answer): BYE the seat, and the
    /// caller goes on as if the seat had hung up.
    fn seat_gone(&mut self, now: Instant, id: CallId, why: &str) {
        warn!(call = id.0, why, "seat leg failed");
        self.end_seat_link(now, id, true);
        self.after_seat(now, id);
    }

    /// Whether the call is bridged to a sub-centre's trunk.
    pub(super) fn trunk_bridged(&self, id: CallId) -> bool {
        let trunk = self.calls.get(&id).and_then(|c| c.trunk.as_ref());
        trunk.is_some_and(|t| t.state == TrunkState::Bridged)
    }

    /// The desk hangs up the seat's call: the seat leaves, the caller goes on.
    pub(super) fn seat_hang_up(&mut self, now: Instant, id: CallId) {
        let three_way = self.trunk_bridged(id);
        self.end_seat_link(now, id, true);
        if !three_way {
            self.after_seat(now, id);
        }
    }

    /// A request inside the dialog with a seat's phone.
    pub(super) fn seat_request(
        &mut self,
        now: Instant,
        id: CallId,
        txn: ServerTxnId,
        request: Request,
    ) {
        match request.method {
            Method::Bye => {
                self.reply(now, txn, &request, 200);
                info!(call = id.0, "the seat hung up");
                let joined = self.trunk_bridged(id);
                let consulting = self.calls.get(&id).is_some_and(|c| c.consulting);
                self.end_seat_link(now, id, false);
                if joined {
                    // After a three-way call or an answered consult the caller stays with
                    // the sub-centre.
                } else if consulting {
                    self.abandoned_consult(now, id);
                } else {
                    self.after_seat(now, id);
                }
            }
            Method::Invite => self.seat_reinvite(now, id, txn, request),
            Method::Refer => self.seat_refer(now, id, txn, &request),
            Method::Options => self.reply(now, txn, &request, 200),
            Method::Info => self.reply(now, txn, &request, 200),
            _ => self.reply_unsupported(now, txn, &request),
        }
    }

    /// The caller goes on after the seat left: the queue node's `after` (a survey) or the end.
    fn after_seat(&mut self, now: Instant, id: CallId) {
        self.seat_left_before_answer(now, id);
        // Answering too: the caller's ACK may still be on its way.
        let live = self
            .calls
            .get(&id)
            .is_some_and(|c| matches!(c.phase, Phase::Answering | Phase::Talking));
        if !live {
            return;
        }
        let actions = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.nav.as_mut())
            .map(|nav| nav.on_seat_hung_up(now))
            .unwrap_or_default();
        // Nothing after the seat: the call ends because the seat hung up.
        if actions == [Action::Hangup] {
            return self.hang_up(now, id, Ending::SeatHungUp);
        }
        self.run_flow(now, id, actions);
    }

    /// Ends the talk with the seat: BYE it unless it hung up itself; the seat goes to wrap-up.
    pub(super) fn end_seat_link(&mut self, now: Instant, id: CallId, send_bye: bool) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(side) = call.seats.as_mut() else {
            return;
        };
        let Some(mut link) = side.link.take() else {
            return;
        };
        call.talk_ended = Some(now);
        call.hold_play = None;
        let caller_leg = call.leg;
        self.by_dialog.remove(&link.dialog.id);
        if let Some(txn) = link.reinvite.take() {
            self.by_invite.remove(&txn);
        }
        if send_bye {
            let bye = link.dialog.request(Method::Bye);
            self.endpoint.send_request(now, bye, link.peer);
        }
        // Leaving a three-way call: caller and sub-centre are joined directly, without the mixer.
        let trunk_leg = self
            .calls
            .get(&id)
            .and_then(|c| c.trunk.as_ref())
            .filter(|t| t.state == TrunkState::Bridged)
            .map(|t| t.leg);
        match trunk_leg {
            Some(peer) => {
                // After a consult the caller's music stops as it is joined.
                if let Some(call) = self.calls.get_mut(&id) {
                    call.consulting = false;
                }
                self.media
                    .push_back(MediaCommand::StopPlay { leg: caller_leg });
                self.media.push_back(MediaCommand::Bridge {
                    leg: caller_leg,
                    peer,
                });
            }
            None => self
                .media
                .push_back(MediaCommand::Unbridge { leg: caller_leg }),
        }
        // A seat it brought in that answered has the call now.
        if self.seat_takes_over(now, id) {
            return;
        }
        self.acd.call_ended(now, id);
        self.close_idle_seat_side(id);
    }

    /// A re-INVITE from the seat's phone: hold plays music to the caller, resume bridges again.
    /// Without an offer (RFC 3261 §14.2), our 2xx offers and the ACK's answer decides.
    fn seat_reinvite(&mut self, now: Instant, id: CallId, txn: ServerTxnId, request: Request) {
        let contact = self.config.contact.clone();
        let Some(side) = self.calls.get_mut(&id).and_then(|c| c.seats.as_mut()) else {
            return self.reply(now, txn, &request, 481);
        };
        let offerless = request.body.is_empty();
        let answered = match (offerless, side.sdp.as_mut()) {
            (true, Some(session)) => Ok((sdp_ok(&request, &contact, &session.offer()), None)),
            _ => answer_far_reinvite(side.sdp.as_mut(), &request, &contact)
                .map(|(response, media)| (response, Some(media))),
        };
        let (response, media) = match answered {
            Ok(answered) => answered,
            Err(status) => return self.reply(now, txn, &request, status),
        };
        let Some(link) = side.link.as_mut() else {
            return self.reply(now, txn, &request, 481);
        };
        link.reinvite = Some(txn);
        link.reinvite_offered = media.is_none();
        self.by_invite.insert(txn, id);
        self.endpoint.respond(now, txn, response);
        if let Some(media) = media {
            self.seat_media_changed(id, &media);
        }
    }

    /// The seat's phone's side of the call was renegotiated: the new stream, and music for the
    /// caller while the phone holds it.
    fn seat_media_changed(&mut self, id: CallId, media: &MediaParams) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let caller_leg = call.leg;
        let Some(side) = call.seats.as_mut() else {
            return;
        };
        let leg = side.leg;
        let Some(link) = side.link.as_mut() else {
            return;
        };
        let held = media.held_by_remote();
        let was_held = std::mem::replace(&mut link.held, held);
        self.media.push_back(MediaCommand::Stream {
            leg,
            params: stream_params(media),
        });
        match (was_held, held) {
            (false, true) => {
                info!(call = id.0, "seat put the caller on hold: music");
                self.media
                    .push_back(MediaCommand::Unbridge { leg: caller_leg });
                self.play_hold_music(id);
            }
            (true, false) => {
                info!(call = id.0, "seat resumed the call");
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
            _ => {}
        }
    }

    /// Music on hold for a caller the seat put on hold (the queue's music).
    pub(super) fn play_hold_music(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let queue = call.record.queues.last().map(|v| v.queue.clone());
        let music = queue
            .and_then(|q| call.plan.dialplan.queues.iter().find(|d| d.name == q))
            .map(|d| d.music.clone())
            .unwrap_or_default();
        let prompts = music
            .iter()
            .filter_map(|name| call.plan.prompts.get(name))
            .collect();
        self.next_play += 1;
        call.hold_play = Some(self.next_play);
        self.media.push_back(MediaCommand::Play {
            leg: call.leg,
            play: self.next_play,
            prompts,
            barge_in: false,
        });
    }

    /// The ACK for our 2xx to the seat phone's re-INVITE; after an offerless one it carries the
    /// phone's answer (none usable: the seat's side of the call is hung up, 488).
    pub(super) fn seat_acked(&mut self, now: Instant, id: CallId, ack: &Request) {
        let Some(side) = self.calls.get_mut(&id).and_then(|c| c.seats.as_mut()) else {
            return;
        };
        let Some(link) = side.link.as_mut() else {
            return;
        };
        let Some(txn) = link.reinvite.take() else {
            return;
        };
        let offered = std::mem::take(&mut link.reinvite_offered);
        let answer = offered.then(|| answer_in_ack(side.sdp.as_mut(), ack));
        self.by_invite.remove(&txn);
        self.endpoint.ack_received(now, txn);
        match answer {
            None => {}
            Some(Ok(media)) => self.seat_media_changed(id, &media),
            Some(Err(error)) => {
                info!(call = id.0, %error, "seat phone's ACK without a usable answer");
                self.seat_gone(now, id, "488");
            }
        }
    }

    /// The caller's call is ending: out of the queue (abandoned when the caller hung up),
    /// ringing phones cancelled, a seat in conversation hung up.
    pub(super) fn leave_seats(&mut self, now: Instant, id: CallId, why: &Ending) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let waiting = call.waiting.take().is_some();
        let offers = call
            .seats
            .as_mut()
            .map(|s| std::mem::take(&mut s.offers))
            .unwrap_or_default();
        if waiting || !offers.is_empty() {
            for offer in offers {
                for branch in offer.branches {
                    self.withdraw(now, id, offer.seat, branch);
                }
            }
            match why {
                Ending::CallerHungUp | Ending::CallerCancelled => self.acd.abandon(now, id),
                _ => self.acd.remove(now, id),
            }
        }
        self.end_seat_link(now, id, true);
        // Into the record and the desk events while the call is here: its record is finished
        // before the ACD's actions are carried out.
        self.note_acd_events();
        if let Some(side) = self.calls.get_mut(&id).and_then(|c| c.seats.take()) {
            self.media.push_back(MediaCommand::Close { leg: side.leg });
        }
    }

    /// Forgets the seat side's transactions of a call that is gone.
    pub(super) fn drop_seats(&mut self, id: CallId) {
        let Some(side) = self.calls.get_mut(&id).and_then(|c| c.seats.take()) else {
            return;
        };
        for offer in side.offers {
            for branch in offer.branches {
                self.by_seat_invite.remove(&branch.txn);
            }
        }
        if let Some(link) = side.link {
            self.by_dialog.remove(&link.dialog.id);
        }
    }

    /// Notes in the call's record what the ACD did with it.
    fn acd_event(&mut self, event: &AcdEvent) {
        let at = self.utc(event.at());
        match event {
            AcdEvent::Offered { call, seat, .. } => {
                let seat = self.acd.seat_name(*seat).to_string();
                if let Some(visit) = self.visit_of(*call) {
                    visit.offers.push(SeatOffer {
                        seat,
                        offered: at,
                        ended: None,
                        outcome: None,
                    });
                }
            }
            AcdEvent::OfferEnded {
                call,
                seat,
                outcome,
                ..
            } => {
                let seat = self.acd.seat_name(*seat).to_string();
                if let Some(visit) = self.visit_of(*call) {
                    let offer = visit
                        .offers
                        .iter_mut()
                        .rev()
                        .find(|o| o.seat == seat && o.ended.is_none());
                    if let Some(offer) = offer {
                        offer.ended = Some(at);
                        offer.outcome = Some(outcome.to_string());
                    }
                }
            }
            AcdEvent::Answered {
                call,
                seat: seat_id,
                ..
            } => {
                // A seat has the caller: a failed transfer has nowhere to send it back to any
                // more, and a transfer to this seat has reached it.
                if let Some(c) = self.calls.get_mut(call) {
                    c.returns_to = None;
                }
                self.note_seat_transfer(event.at(), *call, Some(*seat_id), "answered");
                let seat = self.acd.seat_name(*seat_id).to_string();
                if let Some(visit) = self.visit_of(*call) {
                    visit.left = Some(at);
                    visit.outcome = Some("answered".to_string());
                    visit.seat = Some(seat.clone());
                    if let Some(offer) = visit.offers.iter_mut().rev().find(|o| o.seat == seat) {
                        offer.ended = Some(at);
                        offer.outcome = Some("answered".to_string());
                    }
                }
                if let Some(c) = self.calls.get_mut(call) {
                    c.record.times.person_answered.get_or_insert(at);
                }
                self.save_progress(*call);
            }
            AcdEvent::Abandoned { call, .. } => self.close_visit(*call, at, "abandoned"),
            AcdEvent::LeftQueue { call, because, .. } => {
                let outcome = match because {
                    LeftBecause::MaxWait => "max-wait",
                    LeftBecause::NoSeats => "no-seat",
                    LeftBecause::Removed => "removed",
                    LeftBecause::NotTaken => "not-taken",
                };
                self.close_visit(*call, at, outcome);
            }
            AcdEvent::Queued { .. }
            | AcdEvent::Overflowed { .. }
            | AcdEvent::TalkEnded { .. }
            | AcdEvent::SeatChanged { .. } => {}
        }
        self.desk_event(event);
    }

    fn visit_of(&mut self, id: CallId) -> Option<&mut crate::tickets::record::QueueVisit> {
        self.calls.get_mut(&id)?.record.queues.last_mut()
    }

    fn close_visit(&mut self, id: CallId, at: crate::tickets::record::Timestamp, outcome: &str) {
        if let Some(visit) = self.visit_of(id) {
            if visit.outcome.is_none() {
                visit.left = Some(at);
                visit.outcome = Some(outcome.to_string());
            }
            self.save_progress(id);
        }
    }
}
