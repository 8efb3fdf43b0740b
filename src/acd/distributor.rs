//! The call distribution itself, and what the switch tells it about callers.
//!
//! Drain rule: after every input (`enqueue`, `answered`, `log_in`, `handle_timeout`, a reload...)
//! drain [`Acd::poll_action`] and [`Acd::poll_event`] until both return `None`, then wake
//! [`Acd::handle_timeout`] at [`Acd::poll_timeout`].

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::action::{AcdAction, Enqueued};
use super::caller::{Caller, Talk};
use super::event::{AcdEvent, LeftBecause, SeatId, SeatState};
use super::matching::Exit;
use super::queue::{Queue, QueueIx};
use super::seat::{Seat, WrapUp};
use super::timers::{AcdTimer, Timers};
use crate::call::CallId;

/// The reason code of a seat that let an offer ring out.
pub const NO_ANSWER: &str = "no-answer";

/// The shortest announcement period: a zero period in the rules would announce without end.
pub const MIN_ANNOUNCE_PERIOD: Duration = Duration::from_secs(1);

/// The call distribution: seats, queues of waiting callers, and the offers between them.
/// Sans-IO: time comes in as `now`; what to do comes out of the `poll_*` methods.
#[derive(Debug, Default)]
pub struct Acd {
    /// Queues by slot.
    pub(super) queues: Vec<Queue>,
    /// Queue slots by name (retired queues included).
    pub(super) queue_names: HashMap<String, QueueIx>,
    /// Seats by `SeatId`.
    pub(super) seats: Vec<Seat>,
    /// Seat ids by name.
    pub(super) seat_names: HashMap<String, SeatId>,
    /// Callers in a queue, waiting or being offered.
    pub(super) callers: HashMap<CallId, Caller>,
    /// Answered callers, until their conversation ends.
    pub(super) talks: HashMap<CallId, Talk>,
    /// Seats held for a seat's three-way or consult transfer of a call, until it ends.
    pub(super) transfer_seats: HashMap<CallId, Talk>,
    /// Deadlines.
    pub(super) timers: Timers,
    /// The next caller's arrival number.
    pub(super) next_seq: u64,
    /// Actions for the switch.
    pub(super) actions: VecDeque<AcdAction>,
    /// Events for statistics, records and desktops.
    pub(super) events: VecDeque<AcdEvent>,
    /// Seats that became able to take a caller, to be matched.
    pub(super) seats_to_place: VecDeque<SeatId>,
    /// Callers that became waiting (or takeable by more seats), to be matched.
    pub(super) callers_to_place: VecDeque<CallId>,
}

impl Acd {
    /// An empty distribution: no queues, no seats.
    pub fn new() -> Acd {
        Acd::default()
    }

    /// The seat with this id from `seats.toml`.
    pub fn seat_id(&self, id: &str) -> Option<SeatId> {
        self.seat_names.get(id).copied()
    }

    /// The seat's id from `seats.toml` (empty for an unknown seat).
    pub fn seat_name(&self, seat: SeatId) -> &str {
        self.seat(seat).map_or("", |s| s.name.as_str())
    }

    /// The next action for the switch.
    pub fn poll_action(&mut self) -> Option<AcdAction> {
        self.actions.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<AcdEvent> {
        self.events.pop_front()
    }

    /// When [`Acd::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Runs everything due at or before `now`, in deadline order.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                AcdTimer::WrapUp(seat) => {
                    if self
                        .seat(seat)
                        .is_some_and(|s| s.state == SeatState::WrapUp)
                    {
                        self.set_state(now, seat, SeatState::Ready);
                    }
                }
                AcdTimer::Ring(call) => self.ring_timed_out(now, call),
                AcdTimer::Overflow(call) => self.overflow(now, call),
                AcdTimer::MaxWait(call) => self.leave(now, call, Exit::Left(LeftBecause::MaxWait)),
                AcdTimer::Announce(call) => self.announce(now, call),
                AcdTimer::SeatWait(call) => self.requeue_if_unoffered(now, call, "not-ready"),
            }
            self.settle(now);
        }
    }

    /// A caller enters `queue` with `priority` (0..=9, higher first). A call already queued
    /// stays where it is; a call talking to a seat ends that talk first (a transfer to a queue).
    pub fn enqueue(&mut self, now: Instant, call: CallId, queue: &str, priority: u8) -> Enqueued {
        if self.callers.contains_key(&call) {
            return Enqueued::Waiting;
        }
        if self.talks.contains_key(&call) {
            self.call_ended(now, call);
        }
        let Some(&q) = self.queue_names.get(queue) else {
            return Enqueued::NoSeats;
        };
        if self.queues[q].retired || !self.can_be_served(q) {
            return Enqueued::NoSeats;
        }
        let caller = Caller::new(q, priority, self.next_seq, now, None);
        self.next_seq += 1;
        let place = caller.place(call);
        self.callers.insert(call, caller);
        let queue = &mut self.queues[q];
        queue.callers.insert(place);
        queue.waiting.insert(place);
        self.events.push_back(AcdEvent::Queued {
            at: now,
            call,
            queue: queue.rules.name.clone(),
            priority,
        });
        self.arm_caller_timers(now, call);
        self.callers_to_place.push_back(call);
        self.settle(now);
        Enqueued::Waiting
    }

    /// A caller waits for `seat` alone (a transfer to that seat), in `queue`'s name (its
    /// rules, statistics and wrap-up): it is offered to that seat only, before the seat's
    /// queues' callers, as soon as the seat can take a call. The seat has the queue's ring
    /// timeout to become ready and then that long to answer; when it is not ready in time,
    /// declines, lets it ring out or logs out, the caller leaves with
    /// [`AcdAction::NotTaken`]. `NoSeats` when the seat is not logged in (or logging out) or
    /// the queue is unknown: nothing changes. A call already queued stays where it is; a call
    /// talking to a seat ends that talk first.
    pub fn enqueue_for_seat(
        &mut self,
        now: Instant,
        call: CallId,
        queue: &str,
        priority: u8,
        seat: SeatId,
    ) -> Enqueued {
        if self.callers.contains_key(&call) {
            return Enqueued::Waiting;
        }
        let Some(&q) = self.queue_names.get(queue) else {
            return Enqueued::NoSeats;
        };
        if !self.seat(seat).is_some_and(|s| s.logged_in() && !s.removed) {
            return Enqueued::NoSeats;
        }
        if self.talks.contains_key(&call) {
            self.call_ended(now, call);
        }
        let caller = Caller::new(q, priority, self.next_seq, now, Some(seat));
        self.next_seq += 1;
        self.callers.insert(call, caller);
        if let Some(s) = self.seats.get_mut(seat.0 as usize) {
            s.pinned.push(call);
        }
        let rules = &self.queues[q].rules;
        self.events.push_back(AcdEvent::Queued {
            at: now,
            call,
            queue: rules.name.clone(),
            priority,
        });
        self.timers
            .set(AcdTimer::SeatWait(call), now + rules.ring_timeout);
        self.callers_to_place.push_back(call);
        self.settle(now);
        Enqueued::Waiting
    }

    /// A seat answered the caller's offer. `true`: the seat has the call (other ringing seats
    /// stop). `false`: too late (taken elsewhere, or the offer or the caller is gone); the
    /// switch hangs up that seat's leg.
    pub fn answered(&mut self, now: Instant, call: CallId, seat: SeatId) -> bool {
        let offered = self
            .callers
            .get(&call)
            .is_some_and(|c| c.ringing.contains(&seat));
        if !offered {
            // Picking up after the ring timeout shows the seat is at its desk after all.
            let rang_out = self.seat(seat).is_some_and(|s| {
                s.last_offer == Some(call) && s.state == SeatState::NotReady(NO_ANSWER.into())
            });
            if rang_out {
                self.set_state(now, seat, SeatState::Ready);
                self.settle(now);
            }
            return false;
        }
        let others: Vec<SeatId> = self
            .callers
            .get(&call)
            .map(|c| c.ringing.iter().copied().filter(|&s| s != seat).collect())
            .unwrap_or_default();
        for other in others {
            self.end_offer(now, call, other, "answered-elsewhere", SeatState::Ready);
        }
        let Some(caller) = self.take_out(call) else {
            return false;
        };
        let queue = self.queues[caller.queue].rules.name.clone();
        self.events.push_back(AcdEvent::Answered {
            at: now,
            call,
            queue,
            seat,
            waited: now.saturating_duration_since(caller.since),
        });
        self.talks.insert(
            call,
            Talk {
                seat,
                queue: caller.queue,
                answered_at: now,
            },
        );
        self.set_state(now, seat, SeatState::OnCall);
        self.settle(now);
        true
    }

    /// A seat refused or failed the offer (busy, declined, error): the offer ends, the seat
    /// stays ready but is never offered this caller again, and the caller goes to the next seat.
    pub fn declined(&mut self, now: Instant, call: CallId, seat: SeatId) {
        let Some(caller) = self.callers.get_mut(&call) else {
            return;
        };
        if !caller.ringing.contains(&seat) {
            return;
        }
        caller.declined.push(seat);
        self.end_offer(now, call, seat, "declined", SeatState::Ready);
        self.requeue_if_unoffered(now, call, "declined");
        self.settle(now);
    }

    /// The caller hung up while waiting or ringing. For an answered call, the same as
    /// [`Acd::call_ended`].
    pub fn abandon(&mut self, now: Instant, call: CallId) {
        if self.callers.contains_key(&call) {
            self.leave(now, call, Exit::Abandoned);
            self.settle(now);
        } else {
            self.call_ended(now, call);
        }
    }

    /// The switch takes the caller out of its queue (the call ends for another reason,
    /// shutdown). For an answered call, the same as [`Acd::call_ended`].
    pub fn remove(&mut self, now: Instant, call: CallId) {
        if self.callers.contains_key(&call) {
            self.leave(now, call, Exit::Left(LeftBecause::Removed));
            self.settle(now);
        } else {
            self.call_ended(now, call);
        }
    }

    /// The conversation between caller and seat ended: the seat wraps up (then is ready), or
    /// logs out if that was pending. For a caller still queued, the same as [`Acd::abandon`].
    pub fn call_ended(&mut self, now: Instant, call: CallId) {
        if self.callers.contains_key(&call) {
            self.abandon(now, call);
            return;
        }
        let Some(talk) = self.talks.remove(&call) else {
            return;
        };
        self.end_talk(now, call, talk, true);
        self.settle(now);
    }

    /// A seat's talk (or, not `answered`, its hold for a transfer it never answered) is over:
    /// the seat wraps up (then is ready), or logs out if that was pending.
    pub(super) fn end_talk(&mut self, now: Instant, call: CallId, talk: Talk, answered: bool) {
        let talked = now.saturating_duration_since(talk.answered_at);
        let leaving = self.seat(talk.seat).is_some_and(|s| s.leaving || s.removed);
        let queue = &mut self.queues[talk.queue];
        if answered {
            self.events.push_back(AcdEvent::TalkEnded {
                at: now,
                call,
                queue: queue.rules.name.clone(),
                seat: talk.seat,
                talked,
            });
        }
        let wrap_up = queue.rules.wrap_up;
        if leaving || wrap_up.is_zero() {
            if answered {
                queue.handle_times.record(talked);
            }
            let next = if leaving {
                SeatState::LoggedOut
            } else {
                SeatState::Ready
            };
            self.update_seat(now, talk.seat, |s| {
                s.call = None;
                s.leaving = false;
                s.state = next;
            });
        } else {
            let wrap = answered.then_some(WrapUp {
                queue: talk.queue,
                talked,
                started: now,
            });
            self.update_seat(now, talk.seat, |s| {
                s.call = None;
                s.state = SeatState::WrapUp;
                s.wrap = wrap;
            });
            self.timers.set(AcdTimer::WrapUp(talk.seat), now + wrap_up);
        }
    }

    /// The seat in this slot.
    pub(super) fn seat(&self, seat: SeatId) -> Option<&Seat> {
        self.seats.get(seat.0 as usize)
    }

    /// Arms a caller's overflow, maximum-wait and announcement timers from its queue's rules.
    pub(super) fn arm_caller_timers(&mut self, now: Instant, call: CallId) {
        let Some(caller) = self.callers.get(&call) else {
            return;
        };
        if caller.pinned.is_some() {
            // Waits for its seat only: no overflow, no maximum wait, no place to announce.
            return;
        }
        let rules = &self.queues[caller.queue].rules;
        match rules.overflow_delay() {
            Some(after) if !caller.overflowed => self
                .timers
                .set(AcdTimer::Overflow(call), caller.since + after),
            _ => self.timers.clear(AcdTimer::Overflow(call)),
        }
        match rules.max_wait {
            Some(max) => self.timers.set(AcdTimer::MaxWait(call), caller.since + max),
            None => self.timers.clear(AcdTimer::MaxWait(call)),
        }
        match announce_period(rules.announce_every) {
            Some(every) if !self.timers.is_armed(AcdTimer::Announce(call)) => {
                self.timers.set(AcdTimer::Announce(call), now + every)
            }
            Some(_) => {}
            None => self.timers.clear(AcdTimer::Announce(call)),
        }
    }

    /// Every seat ringing for the caller let it ring out: they go not-ready, the caller back to
    /// its place.
    fn ring_timed_out(&mut self, now: Instant, call: CallId) {
        let Some(caller) = self.callers.get(&call) else {
            return;
        };
        for seat in caller.ringing.clone() {
            let state = SeatState::NotReady(NO_ANSWER.to_string());
            self.end_offer(now, call, seat, "no-answer", state);
        }
        self.requeue_if_unoffered(now, call, "no-answer");
    }

    /// The caller has waited long enough to be taken by overflow seats too.
    fn overflow(&mut self, now: Instant, call: CallId) {
        let Some(caller) = self.callers.get_mut(&call) else {
            return;
        };
        caller.overflowed = true;
        let place = caller.place(call);
        let waiting = caller.ringing.is_empty();
        let queue = &mut self.queues[caller.queue];
        if waiting {
            queue.overflowed.insert(place);
            self.callers_to_place.push_back(call);
        }
        self.events.push_back(AcdEvent::Overflowed {
            at: now,
            call,
            queue: queue.rules.name.clone(),
        });
    }

    /// Tells a waiting caller its place; a caller being offered hears nothing this time.
    fn announce(&mut self, now: Instant, call: CallId) {
        let Some(caller) = self.callers.get(&call) else {
            return;
        };
        let rules = &self.queues[caller.queue].rules;
        if let Some(every) = announce_period(rules.announce_every) {
            self.timers.set(AcdTimer::Announce(call), now + every);
        }
        if !caller.ringing.is_empty() {
            return;
        }
        if let (Some(position), Some(estimated_wait)) =
            (self.position(call), self.estimated_wait(call))
        {
            self.actions.push_back(AcdAction::Announce {
                call,
                position,
                estimated_wait,
            });
        }
    }
}

/// The announcement period in force for `every`.
fn announce_period(every: Option<Duration>) -> Option<Duration> {
    every.map(|e| e.max(MIN_ANNOUNCE_PERIOD))
}
