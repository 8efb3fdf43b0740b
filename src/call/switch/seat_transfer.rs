//! A seat brings another seat into its call (three-way or consult, to `seat:ID` or to a ready
//! seat of `queue:NAME`): the other seat's phones are the far end of the call's third party
//! leg, rung like an offer, and the seat is held on-call in the ACD while it is in the
//! transfer. When the first seat leaves, the seat brought in takes the call over: it becomes
//! the call's seat, with the leg it talks on.

use std::time::{Duration, Instant};

use tracing::info;

use super::Switch;
use crate::acd::{SeatId, SeatState};
use crate::call::caller::CallId;
use crate::call::seat_leg::{Branch, SeatLink, SeatMedia, SeatSide};
use crate::call::trunk_leg::{FarEnd, SeatCall, TrunkLeg, TrunkState};
use crate::desk::DeskError;
use crate::media::control::{LegId, MediaCommand};
use crate::sdp::SdpSession;
use crate::sip::endpoint::ClientTxnId;
use crate::sip::fields::Fields;
use crate::sip::message::Response;

impl Switch {
    /// Calls `seat` into call `id` for a `kind` transfer noted as `to`, in `queue`'s name (its
    /// ring timeout and wrap-up): the seat must be ready with a registered phone; it is held
    /// on-call from now on.
    pub(super) fn bring_in_seat(
        &mut self,
        now: Instant,
        id: CallId,
        kind: &str,
        to: &str,
        seat: SeatId,
        queue: &str,
    ) -> Result<(), DeskError> {
        let name = self.acd.seat_name(seat).to_string();
        if self.acd.seat_state(seat) != Some(&SeatState::Ready) {
            return Err(DeskError::new(409, format!("seat:{name} is not ready")));
        }
        let username = self.seat_book.by_id(&name).map(|s| s.username.clone());
        let registered = username.is_some_and(|u| !self.registrations.contacts(&u, now).is_empty());
        if !registered {
            return Err(DeskError::new(
                409,
                format!("seat:{name} has no registered phone"),
            ));
        }
        let Some(call) = self.calls.get(&id) else {
            return Err(DeskError::new(409, "not on a call"));
        };
        let ring = call
            .plan
            .dialplan
            .queues
            .iter()
            .find(|q| q.name == queue)
            .map_or(Duration::from_secs(30), |q| q.ring_timeout);
        let leg = super::trunk::third_party_leg(call);
        if !self.acd.hold_for_transfer(now, id, seat, queue) {
            return Err(DeskError::new(409, format!("seat:{name} is not ready")));
        }
        info!(call = id.0, seat = %name, kind, "the seat calls another seat in");
        let transfer = self.note_transfer(now, id, kind, to, Some(seat));
        let Some(call) = self.calls.get_mut(&id) else {
            return Ok(());
        };
        call.trunk = Some(TrunkLeg {
            far: FarEnd::Seat(SeatCall {
                seat,
                ring,
                branches: Vec::new(),
                answered: false,
            }),
            leg,
            peer: call.peer,
            state: TrunkState::Opening,
            invite: None,
            txn: None,
            sdp: None,
            dialog: None,
            reinvite: None,
            authenticated: false,
            transfer,
        });
        self.media.push_back(MediaCommand::Open { leg });
        Ok(())
    }

    /// The leg toward the seat brought in is bound: its phones ring, with our offer.
    pub(super) fn seat_leg_opened(&mut self, now: Instant, id: CallId, port: u16) {
        let local = self.local_media(port, id.0 | LegId::PARTNER);
        let Some(trunk) = self.calls.get_mut(&id).and_then(|c| c.trunk.as_mut()) else {
            return;
        };
        let FarEnd::Seat(far) = &trunk.far else {
            return;
        };
        if trunk.state != TrunkState::Opening {
            return;
        }
        let (seat, ring) = (far.seat, far.ring);
        let mut session = SdpSession::new(local);
        let body = session.offer().to_bytes();
        trunk.sdp = Some(session);
        trunk.state = TrunkState::Inviting;
        let queue = self.transfer_queue(id);
        let invites = self.seat_invites(now, id, seat, body, queue.as_deref());
        let mut branches = Vec::new();
        for (invite, peer) in invites {
            if let Some(txn) = self.endpoint.send_request(now, invite.clone(), peer) {
                self.by_trunk_invite.insert(txn, id);
                branches.push(Branch { invite, txn, peer });
            }
        }
        if branches.is_empty() {
            return self.trunk_failed(now, id, "unreachable");
        }
        let far = self.calls.get_mut(&id).and_then(|c| c.trunk.as_mut());
        if let Some(TrunkLeg {
            far: FarEnd::Seat(far),
            ..
        }) = far
        {
            far.branches = branches;
        }
        self.wakes.set(super::Wake::Trunk(id), now + ring);
    }

    /// The queue a transfer into the call is made in the name of: the target's for
    /// `queue:NAME`, else the one the call came from.
    fn transfer_queue(&self, id: CallId) -> Option<String> {
        let call = self.calls.get(&id)?;
        let index = call.trunk.as_ref()?.transfer;
        let target = &call.record.transfers.get(index)?.target;
        match target.strip_prefix("queue:") {
            Some(queue) => Some(queue.to_string()),
            None => call.record.queues.last().map(|v| v.queue.clone()),
        }
    }

    /// A response from one of the phones of the seat brought in: the first answer wins (the
    /// others are cancelled); when every phone refused, the seat declined.
    pub(super) fn seat_leg_response(
        &mut self,
        now: Instant,
        id: CallId,
        txn: ClientTxnId,
        response: &Response,
    ) {
        let Some(trunk) = self.calls.get_mut(&id).and_then(|c| c.trunk.as_mut()) else {
            return;
        };
        let state = trunk.state;
        let FarEnd::Seat(far) = &mut trunk.far else {
            return;
        };
        match response.status {
            100..=199 => {}
            200..=299 if state == TrunkState::Bridged => {
                // A retransmitted 2xx: our ACK was lost.
                if let (Some(dialog), true) = (&trunk.dialog, trunk.txn == Some(txn)) {
                    let seq = response.cseq().map(|c| c.seq).unwrap_or(1);
                    self.endpoint.send_ack(dialog.ack(seq), trunk.peer);
                }
            }
            200..=299 => {
                let seat = far.seat;
                let branches = std::mem::take(&mut far.branches);
                far.answered = true;
                let mut won = None;
                let mut others = Vec::new();
                for branch in branches {
                    match branch.txn == txn {
                        true => won = Some(branch),
                        false => others.push(branch),
                    }
                }
                let Some(branch) = won else {
                    return;
                };
                trunk.invite = Some(branch.invite);
                trunk.peer = branch.peer;
                trunk.txn = Some(txn);
                for other in others {
                    self.by_trunk_invite.remove(&other.txn);
                    self.withdraw(now, id, seat, other);
                }
                self.acd.transfer_answered(now, id);
                self.trunk_answered(now, id, response);
            }
            _ => self.seat_branch_failed(now, id, txn),
        }
    }

    /// One phone of the seat brought in refused or failed; when all did, the seat declined.
    fn seat_branch_failed(&mut self, now: Instant, id: CallId, txn: ClientTxnId) {
        self.by_trunk_invite.remove(&txn);
        let Some(trunk) = self.calls.get_mut(&id).and_then(|c| c.trunk.as_mut()) else {
            return;
        };
        let FarEnd::Seat(far) = &mut trunk.far else {
            return;
        };
        far.branches.retain(|b| b.txn != txn);
        if far.branches.is_empty() && trunk.state == TrunkState::Inviting {
            self.trunk_failed(now, id, "declined");
        }
    }

    /// Our INVITE toward the third party got no final response.
    pub(super) fn trunk_timeout(&mut self, now: Instant, id: CallId, txn: ClientTxnId) {
        let trunk = self.calls.get(&id).and_then(|c| c.trunk.as_ref());
        match trunk.map(|t| &t.far) {
            Some(FarEnd::Seat(_)) => self.seat_branch_failed(now, id, txn),
            _ => self.trunk_failed(now, id, "timeout"),
        }
    }

    /// The first seat left a call whose third party is a seat that answered: that seat has the
    /// call now (its hang-up, hold and transfers work as for any seat's call), the first
    /// seat's leg closes. False when the third party is not an answered seat.
    pub(super) fn seat_takes_over(&mut self, now: Instant, id: CallId) -> bool {
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        let ready = call.trunk.as_ref().is_some_and(|t| {
            matches!(t.far, FarEnd::Seat(_))
                && t.state == TrunkState::Bridged
                && t.dialog.is_some()
                && t.sdp.is_some()
        });
        if !ready {
            return false;
        }
        let Some(trunk) = call.trunk.take() else {
            return false;
        };
        let (FarEnd::Seat(far), Some(dialog), Some(sdp)) = (trunk.far, trunk.dialog, trunk.sdp)
        else {
            return false;
        };
        if let Some(txn) = trunk.txn {
            self.by_trunk_invite.remove(&txn);
        }
        let side = SeatSide {
            leg: trunk.leg,
            media: SeatMedia::Open,
            sdp: Some(sdp),
            offer: Vec::new(),
            offers: Vec::new(),
            link: Some(SeatLink {
                seat: far.seat,
                dialog,
                peer: trunk.peer,
                reinvite: trunk.reinvite,
                reinvite_offered: false,
                held: false,
                since: now,
            }),
        };
        call.talk_ended = None;
        if let Some(old) = call.seats.replace(side) {
            self.media.push_back(MediaCommand::Close { leg: old.leg });
        }
        info!(call = id.0, seat = %self.acd.seat_name(far.seat), "the seat brought in has the call");
        self.acd.take_over(now, id);
        true
    }

    /// The call that `seat` was brought into and answered, before it took the call over.
    pub(super) fn call_brought_into(&self, seat: SeatId) -> Option<CallId> {
        let mut calls = self.calls.iter();
        calls.find_map(|(id, call)| (call.seat_brought_in() == Some(seat)).then_some(*id))
    }

    /// The seat brought into call `id` hangs up from its desk: as when it hangs up its phone,
    /// its leg ends (BYE) and the caller and the first seat go on together.
    pub(super) fn brought_in_seat_hangs_up(&mut self, now: Instant, id: CallId) {
        info!(call = id.0, "the seat brought in hangs up from its desk");
        self.end_trunk(now, id);
        self.third_party_left(now, id);
    }

    /// The seat on the call left before the seat it called in answered: that seat is
    /// released and the attempt noted `seat-left`.
    pub(super) fn seat_left_before_answer(&mut self, now: Instant, id: CallId) {
        let trunk = self.calls.get(&id).and_then(|c| c.trunk.as_ref());
        let Some(trunk) = trunk.filter(|t| matches!(t.far, FarEnd::Seat(_))) else {
            return;
        };
        let transfer = trunk.transfer;
        self.note_transfer_outcome(now, id, transfer, "seat-left");
        self.end_trunk(now, id);
    }
}
