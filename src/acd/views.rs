//! Read-only views of the distribution for the API, the wallboard and the desks.

use std::time::{Duration, Instant};

use super::distributor::Acd;
use super::event::{SeatId, SeatState};
use crate::call::CallId;

/// One seat as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeatView {
    /// Its slot.
    pub seat: SeatId,
    /// Its id from `seats.toml`.
    pub name: String,
    /// Its state.
    pub state: SeatState,
    /// Since when.
    pub since: Instant,
    /// The call ringing it or talking to it.
    pub call: Option<CallId>,
    /// Its phone is registered.
    pub reachable: bool,
    /// It logs out when its call ends.
    pub logging_out: bool,
}

/// One caller in a queue as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitingCaller {
    /// The caller's call.
    pub call: CallId,
    /// 0..=9, higher first.
    pub priority: u8,
    /// When it entered the queue.
    pub since: Instant,
    /// 1 for the next caller served.
    pub position: usize,
    /// The seats ringing for it now (empty while it waits).
    pub ringing: Vec<SeatId>,
    /// It may be taken by overflow seats too.
    pub overflowed: bool,
}

/// One queue as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueView {
    /// Its name.
    pub name: String,
    /// Its callers in service order.
    pub waiting: Vec<WaitingCaller>,
    /// Seats meeting its rules that are ready and reachable.
    pub ready: usize,
    /// Logged-in seats meeting its rules that are not on a break.
    pub staffed: usize,
    /// Average talk plus wrap-up of its recent calls (a default before the first).
    pub average_handle_time: Duration,
}

impl Acd {
    /// A seat's state.
    pub fn seat_state(&self, seat: SeatId) -> Option<&SeatState> {
        self.seat(seat).map(|s| &s.state)
    }

    /// A seat's state and since when it is in it.
    pub fn seat_state_since(&self, seat: SeatId) -> Option<(&SeatState, Instant)> {
        self.seat(seat).map(|s| (&s.state, s.since))
    }

    /// One seat.
    pub fn seat_view(&self, seat: SeatId) -> Option<SeatView> {
        let s = self.seat(seat)?;
        Some(SeatView {
            seat,
            name: s.name.clone(),
            state: s.state.clone(),
            since: s.since,
            call: s.call,
            reachable: s.reachable,
            logging_out: s.leaving,
        })
    }

    /// Every configured seat, and removed seats still on a call.
    pub fn seats(&self) -> Vec<SeatView> {
        (0..self.seats.len())
            .map(|ix| SeatId(ix as u32))
            .filter(|&seat| {
                self.seat(seat)
                    .is_some_and(|s| !s.removed || s.state != SeatState::LoggedOut)
            })
            .filter_map(|seat| self.seat_view(seat))
            .collect()
    }

    /// The callers of a queue, in service order (empty for an unknown queue).
    pub fn waiting(&self, queue: &str) -> Vec<WaitingCaller> {
        let Some(&q) = self.queue_names.get(queue) else {
            return Vec::new();
        };
        let places = self.queues[q].callers.iter().enumerate();
        let callers =
            places.filter_map(|(i, place)| Some((i, place, self.callers.get(&place.call)?)));
        callers
            .map(|(i, place, caller)| WaitingCaller {
                call: place.call,
                priority: caller.priority,
                since: caller.since,
                position: i + 1,
                ringing: caller.ringing.clone(),
                overflowed: caller.overflowed,
            })
            .collect()
    }

    /// Every live queue, and removed queues that still have callers.
    pub fn queues(&self) -> Vec<QueueView> {
        self.queues
            .iter()
            .filter(|queue| !queue.retired || !queue.callers.is_empty())
            .map(|queue| QueueView {
                name: queue.rules.name.clone(),
                waiting: self.waiting(&queue.rules.name),
                ready: queue.home_ready.by_id.len(),
                staffed: queue.staffed,
                average_handle_time: queue.handle_times.average(),
            })
            .collect()
    }

    /// The caller's place in its queue: 1 for the next served (callers being offered count).
    pub fn position(&self, call: CallId) -> Option<usize> {
        let caller = self.callers.get(&call)?;
        let ahead = self.queues[caller.queue]
            .callers
            .range(..caller.place(call));
        Some(ahead.count() + 1)
    }

    /// The caller's estimated wait: position × its queue's average handle time (talk plus
    /// wrap-up of recent calls) ÷ its staffed seats.
    pub fn estimated_wait(&self, call: CallId) -> Option<Duration> {
        let caller = self.callers.get(&call)?;
        let position = self.position(call)?;
        Some(self.queues[caller.queue].estimated_wait(position))
    }

    /// The one seat a caller waits for (a transfer to that seat), while it waits.
    pub fn pinned_to(&self, call: CallId) -> Option<SeatId> {
        self.callers.get(&call)?.pinned
    }

    /// The queue a caller waits in.
    pub fn queue_of(&self, call: CallId) -> Option<&str> {
        let caller = self.callers.get(&call)?;
        Some(self.queues[caller.queue].rules.name.as_str())
    }
}
