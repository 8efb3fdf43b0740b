//! Seats a seat brings into its call (a three-way or consult transfer to one seat or to a skill
//! group): picked among the ready seats, held on-call while their phone rings and talks, so
//! they get no other offer, and wrapped up like after any call when they leave, or made the
//! call's seat when they take the call over.

use std::time::Instant;

use super::caller::Talk;
use super::distributor::Acd;
use super::event::{SeatId, SeatState};
use super::rules::Strategy;
use crate::call::CallId;

impl Acd {
    /// A ready seat of `queue`'s own group for a transfer into a call, by the queue's strategy
    /// (ring-all: the longest idle); `None` when nobody there is ready now.
    pub fn ready_seat_of(&mut self, queue: &str) -> Option<SeatId> {
        let &q = self.queue_names.get(queue)?;
        let queue = &mut self.queues[q];
        if queue.retired {
            return None;
        }
        let pool = &queue.home_ready;
        match queue.rules.strategy {
            Strategy::RoundRobin => {
                let seat = pool.next_after(queue.round_robin_after, |_| true)?;
                queue.round_robin_after = Some(seat);
                Some(seat)
            }
            Strategy::LongestIdle | Strategy::RingAll => pool.longest_idle(|_| true),
        }
    }

    /// Holds ready `seat` for call's transfer in `queue`'s name (its wrap-up): on-call until
    /// [`Acd::transfer_ended`] or [`Acd::take_over`]. False (nothing changes) when the seat is
    /// not ready, the queue is unknown or the call holds a seat already.
    pub fn hold_for_transfer(
        &mut self,
        now: Instant,
        call: CallId,
        seat: SeatId,
        queue: &str,
    ) -> bool {
        let Some(&q) = self.queue_names.get(queue) else {
            return false;
        };
        let ready = self
            .seat(seat)
            .is_some_and(|s| s.state == SeatState::Ready && s.logged_in() && !s.removed);
        if !ready || self.transfer_seats.contains_key(&call) {
            return false;
        }
        let talk = Talk {
            seat,
            queue: q,
            answered_at: now,
        };
        self.transfer_seats.insert(call, talk);
        self.update_seat(now, seat, |s| {
            s.state = SeatState::OnCall;
            s.call = Some(call);
        });
        self.settle(now);
        true
    }

    /// The seat held for call's transfer answered: its talk starts now.
    pub fn transfer_answered(&mut self, now: Instant, call: CallId) {
        if let Some(talk) = self.transfer_seats.get_mut(&call) {
            talk.answered_at = now;
        }
    }

    /// The seat held for call's transfer leaves it (hung up, declined, rang out, cancelled):
    /// wrap-up as after any call; `answered` says whether it talked.
    pub fn transfer_ended(&mut self, now: Instant, call: CallId, answered: bool) {
        let Some(talk) = self.transfer_seats.remove(&call) else {
            return;
        };
        self.end_talk(now, call, talk, answered);
        self.settle(now);
    }

    /// The seat held for call's transfer takes the call over: the call's seat wraps up, and the
    /// held seat is the call's seat from now on. False when no seat is held for the call.
    pub fn take_over(&mut self, now: Instant, call: CallId) -> bool {
        let Some(held) = self.transfer_seats.remove(&call) else {
            return false;
        };
        if let Some(talk) = self.talks.remove(&call) {
            self.end_talk(now, call, talk, true);
        }
        self.talks.insert(call, held);
        self.settle(now);
        true
    }

    /// The seat held for call's transfer, if any.
    pub fn transfer_seat(&self, call: CallId) -> Option<SeatId> {
        self.transfer_seats.get(&call).map(|t| t.seat)
    }
}
