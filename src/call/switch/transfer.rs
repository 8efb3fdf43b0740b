//! Transfers a seat makes from its desktop: the caller goes on to another skill group, a
//! sub-centre, an external number over a sub-centre's trunk, or one seat. Only targets the
//! dialplans and the seats file declare can be reached (no toll fraud through the engine), and
//! a caller whose transfer fails goes back to the queue it came from (or the sub-centre's
//! `unanswered` queue), told so.

use std::time::Instant;

use serde_json::{json, Value};
use tracing::info;

use super::Switch;
use crate::acd::{Enqueued, SeatId, SeatState};
use crate::call::caller::CallId;
use crate::call::seat_leg::Waiting;
use crate::desk::{DeskError, TransferKind};
use crate::dialplan::model::{QueueId, SubCentreId, MAX_DIALLED_DIGITS};
use crate::dialplan::spoken::TRANSFER_FAILED;
use crate::media::control::MediaCommand;
use crate::sip::endpoint::ServerTxnId;
use crate::sip::fields::NameAddr;
use crate::sip::message::{HeaderName, Method, Request};

/// Where a transfer goes.
enum Target {
    /// A skill group, by index and name.
    Queue(QueueId, String),
    /// A sub-centre's trunk.
    SubCentre(SubCentreId),
    /// An external number, over the trunk of the first sub-centre whose `dial_out` allows it.
    Number(SubCentreId, String),
    /// One seat (an expert seat, say).
    Seat(SeatId),
}

impl Switch {
    /// The seat passes its caller to `to`: `queue:NAME`, `subcentre:NAME`, `number:DIGITS` or
    /// `seat:ID`; three-way and consult to a queue go to one of its ready seats.
    pub(super) fn transfer(
        &mut self,
        now: Instant,
        seat: SeatId,
        kind: TransferKind,
        to: &str,
    ) -> Result<Value, DeskError> {
        let Some(id) = self.call_of_seat(seat) else {
            return Err(DeskError::new(409, "not on a call"));
        };
        let target = self.target(id, to)?;
        let shown = self.show_target(to);
        if self.calls.get(&id).is_some_and(|c| c.trunk.is_some()) {
            return Err(DeskError::new(409, "a transfer is already under way"));
        }
        if kind != TransferKind::Blind {
            match &target {
                Target::SubCentre(subcentre) => {
                    self.call_in_trunk(now, id, kind, to, *subcentre, None)?
                }
                Target::Number(subcentre, digits) => {
                    self.call_in_trunk(now, id, kind, to, *subcentre, Some(digits.clone()))?
                }
                Target::Seat(seat) => {
                    let seat = *seat;
                    self.reachable_now(id, &target)?;
                    let origin = self.calls.get(&id).and_then(|c| c.record.queues.last());
                    let origin = origin.map(|v| v.queue.clone()).unwrap_or_default();
                    self.bring_in_seat(now, id, kind.as_str(), to, seat, &origin)?;
                }
                Target::Queue(_, name) => {
                    let Some(seat) = self.acd.ready_seat_of(name) else {
                        return Err(DeskError::new(409, format!("no seat of {name} is free")));
                    };
                    self.bring_in_seat(now, id, kind.as_str(), to, seat, name)?;
                }
            }
            if kind == TransferKind::Consult {
                // The caller waits with music; the seat talks to the target once it answers.
                let leg = self.calls.get(&id).map(|c| c.leg);
                if let Some(call) = self.calls.get_mut(&id) {
                    call.consulting = true;
                }
                if let Some(leg) = leg {
                    self.media.push_back(MediaCommand::Unbridge { leg });
                }
                self.play_hold_music(id);
            }
            // Three-way: the seat and the caller keep talking while the target rings.
            return Ok(json!({ "transferring": to, "kind": kind.as_str() }));
        }
        self.reachable_now(id, &target)?;
        info!(
            call = id.0,
            to = %shown,
            kind = kind.as_str(),
            "transfer by the seat"
        );
        let last_visit = self.calls.get(&id).and_then(|c| c.record.queues.last());
        let priority = last_visit.map_or(0, |v| v.priority);
        let origin = last_visit.map(|v| v.queue.clone());
        let called = match &target {
            Target::Seat(called) => Some(*called),
            _ => None,
        };
        let index = self.note_transfer(now, id, kind.as_str(), to, called);
        // Blind: the seat leaves now and goes to wrap-up.
        self.end_seat_link(now, id, true);
        match target {
            Target::Queue(queue, _) => {
                self.note_transfer_outcome(now, id, index, "queued");
                let actions = self.enter_queue(now, id, queue, priority);
                self.run_flow(now, id, actions);
            }
            Target::SubCentre(subcentre) => {
                self.blind_to_trunk(now, id, subcentre, None, index, origin)
            }
            Target::Number(subcentre, digits) => {
                self.blind_to_trunk(now, id, subcentre, Some(digits), index, origin)
            }
            Target::Seat(target) => self.blind_to_seat(now, id, target, priority, index, origin),
        }
        Ok(json!({ "transferred": to, "kind": kind.as_str() }))
    }

    /// The seat calls a sub-centre's trunk (for `number`, or its own number) into its call.
    fn call_in_trunk(
        &mut self,
        now: Instant,
        id: CallId,
        kind: TransferKind,
        to: &str,
        subcentre: SubCentreId,
        number: Option<String>,
    ) -> Result<(), DeskError> {
        let shown = self.show_target(to);
        info!(
            call = id.0,
            to = %shown,
            kind = kind.as_str(),
            "the seat calls a sub-centre"
        );
        let index = self.note_transfer(now, id, kind.as_str(), to, None);
        match self.start_trunk_to(now, id, subcentre, number, Some(index)) {
            true => Ok(()),
            false => Err(DeskError::new(409, format!("{shown} cannot be called now"))),
        }
    }

    /// The caller, alone now, rings a sub-centre's trunk (for `number`, or the sub-centre's
    /// own number) with music; if it does not take the call, the caller goes to the
    /// sub-centre's `unanswered` queue, or else back to `origin`.
    fn blind_to_trunk(
        &mut self,
        now: Instant,
        id: CallId,
        subcentre: SubCentreId,
        number: Option<String>,
        index: usize,
        origin: Option<String>,
    ) {
        if let Some(call) = self.calls.get_mut(&id) {
            let dialplan = &call.plan.dialplan;
            let unanswered = dialplan
                .subcentres
                .get(subcentre.0 as usize)
                .and_then(|s| s.unanswered)
                .and_then(|q| dialplan.queues.get(q.0 as usize))
                .map(|q| q.name.clone());
            call.returns_to = unanswered.or(origin);
        }
        match self.start_trunk_to(now, id, subcentre, number, Some(index)) {
            // The caller hears music while the sub-centre rings.
            true => self.play_hold_music(id),
            false => {
                self.back_from_transfer(now, id);
            }
        }
    }

    /// The caller, alone now, waits with music for one seat (in the name of the queue it
    /// came from); if that seat does not take it, back to that queue.
    fn blind_to_seat(
        &mut self,
        now: Instant,
        id: CallId,
        seat: SeatId,
        priority: u8,
        index: usize,
        origin: Option<String>,
    ) {
        let Some(origin) = origin else {
            return;
        };
        if let Some(call) = self.calls.get_mut(&id) {
            call.returns_to = Some(origin.clone());
        }
        match self.acd.enqueue_for_seat(now, id, &origin, priority, seat) {
            Enqueued::Waiting => {
                let visit = self.open_queue_visit(now, id, &origin, priority);
                if let Some(call) = self.calls.get_mut(&id) {
                    call.waiting = Some(Waiting {
                        queue: origin,
                        visit,
                        play: None,
                    });
                }
                self.play_waiting(id, Vec::new());
            }
            Enqueued::NoSeats => {
                self.note_transfer_outcome(now, id, index, "logged-out");
                self.back_from_transfer(now, id);
            }
        }
    }

    /// The seat a blind transfer went to took the call (`answered`) or did not (`declined`,
    /// `no-answer`, `not-ready`, `logged-out`): the record's open transfer to it says so.
    pub(super) fn note_seat_transfer(
        &mut self,
        now: Instant,
        id: CallId,
        seat: Option<SeatId>,
        outcome: &str,
    ) {
        let name = seat.map(|s| format!("seat:{}", self.acd.seat_name(s)));
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let open = call.record.transfers.iter().rposition(|t| {
            t.outcome.is_none()
                && match &name {
                    Some(name) => &t.target == name,
                    None => t.target.starts_with("seat:"),
                }
        });
        if let Some(index) = open {
            self.note_transfer_outcome(now, id, index, outcome);
        }
    }

    /// The ACD gave up on the seat the caller was transferred to (`why`): back to the queue
    /// the caller came from, told so.
    pub(super) fn seat_did_not_take(&mut self, now: Instant, id: CallId, why: &str) {
        info!(
            call = id.0,
            why, "the seat transferred to did not take the call"
        );
        self.note_seat_transfer(now, id, None, why);
        if !self.back_from_transfer(now, id) {
            // Not a transfer after all: the dialplan's way on when no seat can take the call.
            let nav = self.calls.get_mut(&id).and_then(|c| c.nav.as_mut());
            if let Some(actions) = nav.map(|nav| nav.on_queue_unavailable(now)) {
                self.run_flow(now, id, actions);
            }
        }
    }

    /// The target, when the call can be passed to it now: declared, and for a skill group,
    /// someone at work there; for a seat, logged in.
    fn transferable(&self, id: CallId, to: &str) -> Result<Target, DeskError> {
        let target = self.target(id, to)?;
        self.reachable_now(id, &target)?;
        Ok(target)
    }

    /// Whether a blind transfer can go to `target` now: a skill group with someone at work, a
    /// seat logged in (and not the one on the call).
    fn reachable_now(&self, id: CallId, target: &Target) -> Result<(), DeskError> {
        match target {
            Target::Queue(_, name) => {
                let staffed = self
                    .acd
                    .queues()
                    .iter()
                    .any(|q| &q.name == name && q.staffed > 0);
                match staffed {
                    true => Ok(()),
                    false => Err(DeskError::new(409, format!("no seat of {name} is at work"))),
                }
            }
            Target::Seat(seat) => {
                let name = self.acd.seat_name(*seat);
                let call = self.calls.get(&id);
                if call.and_then(|c| c.seat_on_call()) == Some(*seat) {
                    return Err(DeskError::new(
                        409,
                        format!("seat:{name} is the seat on the call"),
                    ));
                }
                if call.and_then(|c| c.record.queues.last()).is_none() {
                    return Err(DeskError::new(409, "the call came from no queue"));
                }
                let logged_in = self
                    .acd
                    .seat_view(*seat)
                    .is_some_and(|v| v.state != SeatState::LoggedOut && !v.logging_out);
                match logged_in {
                    true => Ok(()),
                    false => Err(DeskError::new(409, format!("seat:{name} is not logged in"))),
                }
            }
            Target::SubCentre(_) | Target::Number(..) => Ok(()),
        }
    }

    /// Reads a target: only the call's dialplans' queues and sub-centres, numbers one of their
    /// sub-centres' `dial_out` allows, and the seats of the seats file.
    fn target(&self, id: CallId, to: &str) -> Result<Target, DeskError> {
        let refused = || {
            DeskError::new(
                403,
                format!(
                    "{}: not a declared target (queue:NAME or subcentre:NAME of the dialplans, \
                     seat:ID of the seats file, or number:DIGITS a sub-centre's dial_out allows)",
                    self.show_target(to)
                ),
            )
        };
        let call = self.calls.get(&id).ok_or_else(refused)?;
        let dialplan = &call.plan.dialplan;
        match to.split_once(':') {
            Some(("queue", name)) => dialplan
                .queues
                .iter()
                .position(|q| q.name == name)
                .map(|at| Target::Queue(QueueId(at as u32), name.to_string()))
                .ok_or_else(refused),
            Some(("subcentre", name)) => dialplan
                .subcentres
                .iter()
                .position(|s| s.name == name)
                .map(|at| Target::SubCentre(SubCentreId(at as u32)))
                .ok_or_else(refused),
            Some(("number", digits)) => {
                let digits_only = !digits.is_empty()
                    && digits.len() <= MAX_DIALLED_DIGITS
                    && digits.bytes().all(|b| b.is_ascii_digit());
                if !digits_only {
                    return Err(DeskError::new(
                        403,
                        format!(
                            "{}: a number is 1 to {MAX_DIALLED_DIGITS} digits",
                            self.show_target(to)
                        ),
                    ));
                }
                let allowed = dialplan
                    .subcentres
                    .iter()
                    .position(|s| s.dial_out.iter().any(|p| p.matches(digits)));
                match allowed {
                    Some(at) => Ok(Target::Number(SubCentreId(at as u32), digits.to_string())),
                    None => Err(DeskError::new(
                        403,
                        format!(
                            "{}: no sub-centre's dial_out allows this number",
                            self.show_target(to)
                        ),
                    )),
                }
            }
            Some(("seat", name)) => self
                .seat_book
                .by_id(name)
                .and_then(|_| self.acd.seat_id(name))
                .map(Target::Seat)
                .ok_or_else(refused),
            _ => Err(refused()),
        }
    }

    /// A target as logs and messages show it: a `number:` target's digits redacted when the
    /// configuration asks.
    fn show_target(&self, to: &str) -> String {
        match to.strip_prefix("number:") {
            Some(digits) => format!("number:{}", self.show_number(digits)),
            None => to.to_string(),
        }
    }

    /// A transfer the seat made did not reach its target: the caller hears so and waits in
    /// the queue it came from (or takes the dialplan's fallback when nobody is at work there).
    /// False when the call was not one a seat transferred.
    pub(super) fn back_from_transfer(&mut self, now: Instant, id: CallId) -> bool {
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        let Some(origin) = call.returns_to.take() else {
            return false;
        };
        call.hold_play = None;
        let Some(call) = self.calls.get(&id) else {
            return true;
        };
        let queue = call
            .plan
            .dialplan
            .queues
            .iter()
            .position(|q| q.name == origin);
        let priority = call.record.queues.last().map_or(0, |v| v.priority);
        info!(call = id.0, queue = %origin, "transfer failed: back to the queue");
        let actions = match queue {
            Some(at) => self.enter_queue(now, id, QueueId(at as u32), priority),
            None => Vec::new(),
        };
        if actions.is_empty() && self.calls.get(&id).is_some_and(|c| c.waiting.is_some()) {
            self.play_waiting(id, vec![TRANSFER_FAILED.to_string()]);
        } else {
            self.run_flow(now, id, actions);
        }
        true
    }

    /// The seat completes its consult transfer: caller and target are joined, the seat leaves.
    pub(super) fn complete_consult(
        &mut self,
        now: Instant,
        seat: SeatId,
    ) -> Result<Value, DeskError> {
        let id = self.consulting_call(seat)?;
        if !self.trunk_bridged(id) {
            return Err(DeskError::new(409, "the target has not answered yet"));
        }
        info!(call = id.0, "consult transfer completed");
        // Leaving joins the caller to the target (and stops the music).
        self.end_seat_link(now, id, true);
        Ok(json!({ "transfer": "completed" }))
    }

    /// The seat cancels its consult transfer: the target is hung up, the caller is back.
    pub(super) fn cancel_consult(
        &mut self,
        now: Instant,
        seat: SeatId,
    ) -> Result<Value, DeskError> {
        let id = self.consulting_call(seat)?;
        info!(call = id.0, "consult transfer cancelled");
        let trunk = self.calls.get(&id).and_then(|c| c.trunk.as_ref());
        if let Some(index) = trunk.map(|t| t.transfer) {
            self.note_transfer_outcome(now, id, index, "cancelled");
        }
        self.end_trunk(now, id);
        self.rejoin_seat(id);
        Ok(json!({ "transfer": "cancelled" }))
    }

    /// The call of `seat` with a consult transfer under way.
    fn consulting_call(&self, seat: SeatId) -> Result<CallId, DeskError> {
        let id = self
            .call_of_seat(seat)
            .ok_or_else(|| DeskError::new(409, "not on a call"))?;
        match self.calls.get(&id).is_some_and(|c| c.consulting) {
            true => Ok(id),
            false => Err(DeskError::new(409, "no consult transfer under way")),
        }
    }

    /// The caller and the seat talk again (a consult ended, or the third party left): music
    /// stopped, the two bridged.
    pub(super) fn rejoin_seat(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let seat_leg = call
            .seats
            .as_ref()
            .filter(|s| s.link.is_some())
            .map(|s| s.leg);
        let Some(seat_leg) = seat_leg else {
            return;
        };
        call.consulting = false;
        call.hold_play = None;
        let leg = call.leg;
        self.media.push_back(MediaCommand::StopPlay { leg });
        self.media.push_back(MediaCommand::Bridge {
            leg,
            peer: seat_leg,
        });
    }

    /// A consult's target did not take the call: the caller is back with the seat and hears
    /// the transfer-failed notice first (the seat's voice reaches it once the notice ends).
    pub(super) fn back_from_consult(&mut self, id: CallId) {
        self.rejoin_seat(id);
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(notice) = call.plan.prompts.get(TRANSFER_FAILED) else {
            return;
        };
        let leg = call.leg;
        self.next_play += 1;
        self.media.push_back(MediaCommand::Play {
            leg,
            play: self.next_play,
            prompts: vec![notice],
            barge_in: false,
        });
    }

    /// The seat hung up during a consult before the target answered: the target is given up
    /// and the caller goes back to the queue it came from, told so.
    pub(super) fn abandoned_consult(&mut self, now: Instant, id: CallId) {
        let trunk = self.calls.get(&id).and_then(|c| c.trunk.as_ref());
        if let Some(index) = trunk.map(|t| t.transfer) {
            self.note_transfer_outcome(now, id, index, "seat-left");
        }
        self.end_trunk(now, id);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.consulting = false;
        call.returns_to = call.record.queues.last().map(|v| v.queue.clone());
        self.back_from_transfer(now, id);
    }

    /// A REFER from the seat's phone (RFC 3515): a blind transfer to the target its Refer-To
    /// names (a queue's or a sub-centre's name, a sub-centre's number, a seat's SIP username,
    /// or a number a sub-centre's `dial_out` allows), reported back with NOTIFYs; then the seat
    /// leaves. REFER with Replaces joins the caller to the phone's own consult line.
    pub(super) fn seat_refer(
        &mut self,
        now: Instant,
        id: CallId,
        txn: ServerTxnId,
        refer: &Request,
    ) {
        let refer_to = refer.headers.get(&HeaderName::Other("Refer-To".into()));
        let Some(refer_to) = refer_to.and_then(|v| NameAddr::parse(v, "Refer-To").ok()) else {
            return self.reply(now, txn, refer, 400);
        };
        let replaces = refer_to.uri.headers.as_deref().and_then(|headers| {
            headers.split('&').find_map(|h| {
                let (name, value) = h.split_once('=')?;
                name.eq_ignore_ascii_case("replaces")
                    .then(|| value.to_string())
            })
        });
        if let Some(replaces) = replaces {
            // Attended, from the phone: join the caller to the phone's consult line.
            self.reply(now, txn, refer, 202);
            self.notify_refer(now, id, "SIP/2.0 100 Trying", "active;expires=60");
            if !self.join_consult(now, id, &replaces) {
                info!(
                    call = id.0,
                    "REFER/Replaces names no consult line of this call"
                );
                let status = "SIP/2.0 481 Call/Transaction Does Not Exist";
                self.notify_refer(now, id, status, "terminated;reason=noresource");
            }
            return;
        }
        let user = refer_to.uri.user.clone().unwrap_or_default();
        let Some(call) = self.calls.get(&id) else {
            return self.reply(now, txn, refer, 481);
        };
        let dialplan = &call.plan.dialplan;
        let to = if dialplan.queues.iter().any(|q| q.name == user) {
            format!("queue:{user}")
        } else if let Some(centre) = dialplan
            .subcentres
            .iter()
            .find(|s| s.name == user || s.number.as_deref() == Some(user.as_str()))
        {
            format!("subcentre:{}", centre.name)
        } else if let Some(seat) = self.seat_book.by_username(&user) {
            format!("seat:{}", seat.id)
        } else if self.target(id, &format!("number:{user}")).is_ok() {
            format!("number:{user}")
        } else {
            let shown = self.show_number(&user);
            info!(call = id.0, target = %shown, "REFER to an undeclared target refused");
            return self.reply(now, txn, refer, 403);
        };
        let Some(seat) = call.seat_on_call() else {
            return self.reply(now, txn, refer, 481);
        };
        self.reply(now, txn, refer, 202);
        self.notify_refer(now, id, "SIP/2.0 100 Trying", "active;expires=60");
        // The outcome goes out while the seat's dialog is still there; a blind transfer that
        // can start is a success for the seat, who leaves.
        if let Err(refused) = self.transferable(id, &to) {
            info!(call = id.0, %refused, "transfer asked by REFER refused");
            let status = "SIP/2.0 503 Service Unavailable";
            return self.notify_refer(now, id, status, "terminated;reason=noresource");
        }
        self.notify_refer(now, id, "SIP/2.0 200 OK", "terminated;reason=noresource");
        if let Err(refused) = self.transfer(now, seat, TransferKind::Blind, &to) {
            info!(call = id.0, %refused, "transfer asked by REFER failed");
        }
    }

    /// A NOTIFY of the REFER's progress in the seat phone's dialog (`sipfrag`: a status line).
    pub(super) fn notify_refer(&mut self, now: Instant, id: CallId, status: &str, state: &str) {
        let Some(link) = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.seats.as_mut())
            .and_then(|s| s.link.as_mut())
        else {
            return;
        };
        let mut notify = link.dialog.request(Method::Notify);
        let peer = link.peer;
        let h = &mut notify.headers;
        h.push(HeaderName::Other("Event".into()), "refer");
        h.push(HeaderName::Other("Subscription-State".into()), state);
        h.push(HeaderName::ContentType, "message/sipfrag;version=2.0");
        notify.body = status.as_bytes().to_vec();
        self.endpoint.send_request(now, notify, peer);
    }
}
