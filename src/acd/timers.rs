//! The call distribution's deadlines: one ordered table, at most one deadline per timer.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::event::SeatId;
use crate::call::CallId;

/// What a deadline wakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum AcdTimer {
    /// A seat's after-call work ends.
    WrapUp(SeatId),
    /// A caller's offer was not answered in time.
    Ring(CallId),
    /// A caller may be taken by overflow seats.
    Overflow(CallId),
    /// A caller has waited the queue's maximum.
    MaxWait(CallId),
    /// A caller hears its position again.
    Announce(CallId),
    /// A caller waiting for one seat stops waiting for it to be ready.
    SeatWait(CallId),
}

/// Armed deadlines, in firing order; re-arming a timer replaces its deadline.
#[derive(Debug, Default)]
pub(super) struct Timers {
    due: BTreeSet<(Instant, AcdTimer)>,
    armed: HashMap<AcdTimer, Instant>,
}

impl Timers {
    /// Arms (or re-arms) `timer` for `at`.
    pub(super) fn set(&mut self, timer: AcdTimer, at: Instant) {
        if let Some(old) = self.armed.insert(timer, at) {
            self.due.remove(&(old, timer));
        }
        self.due.insert((at, timer));
    }

    /// Disarms `timer`.
    pub(super) fn clear(&mut self, timer: AcdTimer) {
        if let Some(old) = self.armed.remove(&timer) {
            self.due.remove(&(old, timer));
        }
    }

    /// Whether `timer` is armed.
    pub(super) fn is_armed(&self, timer: AcdTimer) -> bool {
        self.armed.contains_key(&timer)
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Disarms and returns a timer due at or before `now`, earliest first.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<AcdTimer> {
        let &(at, timer) = self.due.first()?;
        if at > now {
            return None;
        }
        self.due.remove(&(at, timer));
        self.armed.remove(&timer);
        Some(timer)
    }
}
