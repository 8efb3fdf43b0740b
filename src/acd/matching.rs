//! How callers and seats meet: keeping the queues' indexes in step with every seat change,
//! choosing the seat for a caller and the caller for a seat, and making and ending offers.

use std::collections::BTreeSet;
use std::time::Instant;

use super::action::AcdAction;
use super::caller::Caller;
use super::distributor::Acd;
use super::event::{AcdEvent, LeftBecause, SeatId, SeatState};
use super::queue::{Place, Queue, QueueIx, ReadySeats};
use super::rules::Strategy;
use super::seat::Seat;
use super::timers::AcdTimer;
use crate::call::CallId;

/// How a caller leaves its queue unanswered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Exit {
    /// Hung up.
    Abandoned,
    /// Taken out by the distribution or the switch.
    Left(LeftBecause),
    /// The one seat it waited for did not take it, for this reason.
    NotTaken(&'static str),
}

impl Acd {
    /// Changes a seat (state, reachability, skills, pending log-out) and keeps the queues'
    /// counters and ready sets in step; a state change is timed and reported.
    pub(super) fn update_seat(
        &mut self,
        now: Instant,
        seat: SeatId,
        change: impl FnOnce(&mut Seat),
    ) {
        let Some(s) = self.seats.get_mut(seat.0 as usize) else {
            return;
        };
        account(&mut self.queues, seat, s, false);
        let before = s.state.clone();
        change(s);
        let changed = s.state != before;
        if changed {
            s.since = now;
        }
        let wrap = match before {
            SeatState::WrapUp if s.state != SeatState::WrapUp => s.wrap.take(),
            _ => None,
        };
        account(&mut self.queues, seat, s, true);
        if s.available() {
            self.seats_to_place.push_back(seat);
        }
        if changed {
            let state = s.state.clone();
            self.events.push_back(AcdEvent::SeatChanged {
                at: now,
                seat,
                state,
            });
        }
        if let Some(wrap) = wrap {
            self.timers.clear(AcdTimer::WrapUp(seat));
            let handled = wrap.talked + now.saturating_duration_since(wrap.started);
            self.queues[wrap.queue].handle_times.record(handled);
        }
    }

    /// Puts a seat in `state`.
    pub(super) fn set_state(&mut self, now: Instant, seat: SeatId, state: SeatState) {
        self.update_seat(now, seat, |s| s.state = state);
    }

    /// Matches seats and callers until no ready seat and waiting caller able to meet remain.
    pub(super) fn settle(&mut self, now: Instant) {
        loop {
            if let Some(call) = self.callers_to_place.pop_front() {
                let waiting = self
                    .callers
                    .get(&call)
                    .is_some_and(|c| c.ringing.is_empty());
                if waiting {
                    let seats = self.pick_seats(call);
                    if !seats.is_empty() {
                        self.offer(now, call, seats);
                    }
                }
            } else if let Some(seat) = self.seats_to_place.pop_front() {
                if let Some(call) = self.pick_caller(seat) {
                    let ring_all = self
                        .callers
                        .get(&call)
                        .is_some_and(|c| self.queues[c.queue].rules.strategy == Strategy::RingAll);
                    let seats = if ring_all {
                        self.pick_seats(call)
                    } else {
                        vec![seat]
                    };
                    self.offer(now, call, seats);
                }
            } else {
                return;
            }
        }
    }

    /// The seats to ring for a waiting caller, by its queue's strategy: its own group first,
    /// then (once overflowed) the overflow groups in order, then the experts.
    pub(super) fn pick_seats(&self, call: CallId) -> Vec<SeatId> {
        let Some(caller) = self.callers.get(&call) else {
            return Vec::new();
        };
        if let Some(seat) = caller.pinned {
            let able = self.seat(seat).is_some_and(|s| s.available());
            return match able && !caller.declined.contains(&seat) {
                true => vec![seat],
                false => Vec::new(),
            };
        }
        let queue = &self.queues[caller.queue];
        let mut pools: Vec<&ReadySeats> = vec![&queue.home_ready];
        if caller.overflowed {
            pools.extend(
                queue
                    .overflow_to
                    .iter()
                    .map(|&o| &self.queues[o].home_ready),
            );
            if queue.rules.overflow_experts {
                pools.push(&queue.expert_ready);
            }
        }
        let allowed = |seat: SeatId| !caller.declined.contains(&seat);
        match queue.rules.strategy {
            Strategy::LongestIdle => pools
                .iter()
                .find_map(|p| p.longest_idle(allowed))
                .into_iter()
                .collect(),
            Strategy::RoundRobin => pools
                .iter()
                .find_map(|p| p.next_after(queue.round_robin_after, allowed))
                .into_iter()
                .collect(),
            Strategy::RingAll => {
                let all: BTreeSet<SeatId> = pools
                    .iter()
                    .flat_map(|p| p.by_id.iter().copied())
                    .filter(|&s| allowed(s))
                    .collect();
                all.into_iter().collect()
            }
        }
    }

    /// The best waiting caller a ready seat can take: a caller waiting for this seat alone
    /// first (the longest waiting), then among its own queues and the overflowed callers it may
    /// take: highest priority, then longest waiting.
    pub(super) fn pick_caller(&self, seat: SeatId) -> Option<CallId> {
        let s = self.seat(seat)?;
        if !s.available() {
            return None;
        }
        let pinned = s
            .pinned
            .iter()
            .find(|call| self.callers.get(call).is_some_and(|c| c.ringing.is_empty()));
        if let Some(&call) = pinned {
            return Some(call);
        }
        let untried = |place: &Place| {
            self.callers
                .get(&place.call)
                .is_some_and(|c| !c.declined.contains(&seat))
        };
        let first = |set: &BTreeSet<Place>| set.iter().find(|p| untried(p)).copied();
        let home = s.queues.home.iter().map(|&(q, _)| &self.queues[q].waiting);
        let reach = s.queues.reach.iter().map(|&q| &self.queues[q].overflowed);
        home.chain(reach).filter_map(first).min().map(|p| p.call)
    }

    /// Rings `seats` for a waiting caller.
    pub(super) fn offer(&mut self, now: Instant, call: CallId, seats: Vec<SeatId>) {
        let Some(caller) = self.callers.get_mut(&call) else {
            return;
        };
        caller.ringing.clone_from(&seats);
        let place = caller.place(call);
        let pinned = caller.pinned.is_some();
        let queue = &mut self.queues[caller.queue];
        queue.waiting.remove(&place);
        queue.overflowed.remove(&place);
        // A caller for one seat does not take the queue's turn.
        if queue.rules.strategy == Strategy::RoundRobin && !pinned {
            queue.round_robin_after = seats.last().copied();
        }
        let ring_timeout = queue.rules.ring_timeout;
        let name = queue.rules.name.clone();
        for &seat in &seats {
            self.events.push_back(AcdEvent::Offered {
                at: now,
                call,
                queue: name.clone(),
                seat,
            });
            self.update_seat(now, seat, |s| {
                s.state = SeatState::Ringing;
                s.call = Some(call);
                s.last_offer = Some(call);
            });
        }
        self.timers.set(AcdTimer::Ring(call), now + ring_timeout);
        self.timers.clear(AcdTimer::SeatWait(call));
        self.actions.push_back(AcdAction::Offer { call, seats });
    }

    /// Ends one seat's offer of a caller with `outcome`; the seat goes to `next`. The caller is
    /// not put back in the queue here.
    pub(super) fn end_offer(
        &mut self,
        now: Instant,
        call: CallId,
        seat: SeatId,
        outcome: &'static str,
        next: SeatState,
    ) {
        if let Some(caller) = self.callers.get_mut(&call) {
            caller.ringing.retain(|&s| s != seat);
        }
        // A declining phone has already stopped ringing.
        if outcome != "declined" {
            self.actions
                .push_back(AcdAction::StopRinging { call, seat });
        }
        self.events.push_back(AcdEvent::OfferEnded {
            at: now,
            call,
            seat,
            outcome,
        });
        self.update_seat(now, seat, |s| {
            s.call = None;
            s.state = next;
        });
    }

    /// A caller no seat rings any more goes back to its place (its arrival order) and is
    /// matched again; a caller waiting for one seat leaves, the seat having not taken it
    /// (`why`).
    pub(super) fn requeue_if_unoffered(&mut self, now: Instant, call: CallId, why: &'static str) {
        let Some(caller) = self.callers.get(&call) else {
            return;
        };
        if !caller.ringing.is_empty() {
            return;
        }
        if caller.pinned.is_some() {
            return self.leave(now, call, Exit::NotTaken(why));
        }
        let place = caller.place(call);
        let queue = &mut self.queues[caller.queue];
        queue.waiting.insert(place);
        if caller.overflowed {
            queue.overflowed.insert(place);
        }
        self.timers.clear(AcdTimer::Ring(call));
        self.callers_to_place.push_back(call);
    }

    /// Takes a caller out of its queue and disarms its timers (its offers are left as they are).
    pub(super) fn take_out(&mut self, call: CallId) -> Option<Caller> {
        let caller = self.callers.remove(&call)?;
        if let Some(seat) = caller.pinned.and_then(|s| self.seats.get_mut(s.0 as usize)) {
            seat.pinned.retain(|&c| c != call);
        }
        let place = caller.place(call);
        let queue = &mut self.queues[caller.queue];
        queue.callers.remove(&place);
        queue.waiting.remove(&place);
        queue.overflowed.remove(&place);
        for timer in [
            AcdTimer::Ring(call),
            AcdTimer::Overflow(call),
            AcdTimer::MaxWait(call),
            AcdTimer::Announce(call),
            AcdTimer::SeatWait(call),
        ] {
            self.timers.clear(timer);
        }
        Some(caller)
    }

    /// A caller leaves its queue unanswered: its offers end, and the switch and the statistics
    /// are told why.
    pub(super) fn leave(&mut self, now: Instant, call: CallId, exit: Exit) {
        let ringing = match self.callers.get(&call) {
            Some(caller) => caller.ringing.clone(),
            None => return,
        };
        for seat in ringing {
            self.end_offer(now, call, seat, "caller-gone", SeatState::Ready);
        }
        let Some(caller) = self.take_out(call) else {
            return;
        };
        let queue = self.queues[caller.queue].rules.name.clone();
        let waited = now.saturating_duration_since(caller.since);
        let because = match exit {
            Exit::Abandoned => {
                self.events.push_back(AcdEvent::Abandoned {
                    at: now,
                    call,
                    queue,
                    waited,
                });
                return;
            }
            Exit::Left(because) => because,
            Exit::NotTaken(_) => LeftBecause::NotTaken,
        };
        self.events.push_back(AcdEvent::LeftQueue {
            at: now,
            call,
            queue,
            waited,
            because,
        });
        match (because, exit) {
            (LeftBecause::MaxWait, _) => self.actions.push_back(AcdAction::WaitedTooLong { call }),
            (LeftBecause::NoSeats, _) => self.actions.push_back(AcdAction::NoSeats { call }),
            (_, Exit::NotTaken(why)) => self.actions.push_back(AcdAction::NotTaken { call, why }),
            _ => {}
        }
    }

    /// The callers waiting for `seat` alone and not ringing it leave: the seat will not take
    /// them (`why`: it logged out).
    pub(super) fn release_pinned(&mut self, now: Instant, seat: SeatId, why: &'static str) {
        let waiting: Vec<CallId> = self
            .seat(seat)
            .map(|s| s.pinned.clone())
            .unwrap_or_default();
        for call in waiting {
            self.requeue_if_unoffered(now, call, why);
        }
    }

    /// Whether some logged-in seat can take the queue's callers, now or once they overflow.
    pub(super) fn can_be_served(&self, q: QueueIx) -> bool {
        let queue = &self.queues[q];
        if queue.home_logged_in > 0 {
            return true;
        }
        queue.rules.overflow_delay().is_some()
            && (queue
                .overflow_to
                .iter()
                .any(|&o| self.queues[o].home_logged_in > 0)
                || (queue.rules.overflow_experts && queue.experts_logged_in > 0))
    }

    /// Callers of queues that no logged-in seat can take any more leave with `NoSeats`.
    pub(super) fn evict_unservable(&mut self, now: Instant) {
        for q in 0..self.queues.len() {
            if self.queues[q].callers.is_empty() || self.can_be_served(q) {
                continue;
            }
            let calls: Vec<CallId> = self.queues[q].callers.iter().map(|p| p.call).collect();
            for call in calls {
                self.leave(now, call, Exit::Left(LeftBecause::NoSeats));
            }
        }
    }
}

/// Adds (or takes away) a seat's part in its queues' counters and ready sets.
pub(super) fn account(queues: &mut [Queue], id: SeatId, seat: &Seat, add: bool) {
    let logged_in = seat.logged_in();
    let staffed = seat.staffed();
    let available = seat.available();
    for &(q, level) in &seat.queues.home {
        let queue = &mut queues[q];
        if logged_in {
            bump(&mut queue.home_logged_in, add);
        }
        if staffed {
            bump(&mut queue.staffed, add);
        }
        if available {
            queue.home_ready.set(level, seat.since, id, add);
        }
    }
    for &(q, level) in &seat.queues.experts_of {
        let queue = &mut queues[q];
        if logged_in {
            bump(&mut queue.experts_logged_in, add);
        }
        if available {
            queue.expert_ready.set(level, seat.since, id, add);
        }
    }
}

/// Counts one up or down.
fn bump(count: &mut usize, up: bool) {
    if up {
        *count += 1;
    } else {
        *count = count.saturating_sub(1);
    }
}
