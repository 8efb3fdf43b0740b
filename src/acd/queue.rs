//! A queue as the distribution keeps it: its rules, its callers in service order, and the ready
//! seats able to take them, indexed so that a choice costs a few tree look-ups, not a scan.

use std::cmp::Reverse;
use std::collections::{BTreeSet, VecDeque};
use std::ops::Bound;
use std::time::{Duration, Instant};

use super::event::SeatId;
use super::rules::QueueRules;
use crate::call::CallId;

/// A queue's slot; stable while the engine runs (a queue removed by a reload keeps its slot).
pub(super) type QueueIx = usize;

/// Until a queue has handled calls, its average handle time (talk plus wrap-up) is taken to be
/// this: three minutes, a common figure for citizen-service hotlines.
pub const DEFAULT_HANDLE_TIME: Duration = Duration::from_secs(180);

/// How many recent calls the average handle time is taken over.
pub const HANDLE_TIME_SAMPLES: usize = 50;

/// A caller's place in service order: higher priority first, then earlier arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Place {
    /// Priority, higher first.
    pub(super) rank: Reverse<u8>,
    /// Arrival order across all queues.
    pub(super) seq: u64,
    /// The caller.
    pub(super) call: CallId,
}

/// The ready, reachable seats of one pool: by level then idle time, and by id for round robin.
#[derive(Debug, Default)]
pub(super) struct ReadySeats {
    /// Highest level first, then ready the longest.
    pub(super) by_idle: BTreeSet<(Reverse<u8>, Instant, SeatId)>,
    /// In seat order.
    pub(super) by_id: BTreeSet<SeatId>,
}

impl ReadySeats {
    /// Adds (or takes away) a seat ready since `since` with `level` in the pool's skill.
    pub(super) fn set(&mut self, level: u8, since: Instant, seat: SeatId, present: bool) {
        if present {
            self.by_idle.insert((Reverse(level), since, seat));
            self.by_id.insert(seat);
        } else {
            self.by_idle.remove(&(Reverse(level), since, seat));
            self.by_id.remove(&seat);
        }
    }

    /// The best seat by level then idle time that `allowed` lets through.
    pub(super) fn longest_idle(&self, allowed: impl Fn(SeatId) -> bool) -> Option<SeatId> {
        self.by_idle
            .iter()
            .map(|&(_, _, seat)| seat)
            .find(|&seat| allowed(seat))
    }

    /// The first seat after `after` in seat order (wrapping) that `allowed` lets through.
    pub(super) fn next_after(
        &self,
        after: Option<SeatId>,
        allowed: impl Fn(SeatId) -> bool,
    ) -> Option<SeatId> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.by_id
            .range((start, Bound::Unbounded))
            .chain(self.by_id.iter())
            .copied()
            .find(|&seat| allowed(seat))
    }
}

/// Handle times (talk plus wrap-up) of a queue's recent calls.
#[derive(Debug, Default)]
pub(super) struct HandleTimes {
    recent: VecDeque<Duration>,
    total: Duration,
}

impl HandleTimes {
    /// Adds a finished call's handle time.
    pub(super) fn record(&mut self, handled: Duration) {
        if self.recent.len() == HANDLE_TIME_SAMPLES {
            if let Some(oldest) = self.recent.pop_front() {
                self.total = self.total.saturating_sub(oldest);
            }
        }
        self.recent.push_back(handled);
        self.total = self.total.saturating_add(handled);
    }

    /// The average over the recent calls, or [`DEFAULT_HANDLE_TIME`] before the first.
    pub(super) fn average(&self) -> Duration {
        match u32::try_from(self.recent.len()) {
            Ok(n) if n > 0 => self.total / n,
            _ => DEFAULT_HANDLE_TIME,
        }
    }
}

/// One queue's state.
#[derive(Debug)]
pub(super) struct Queue {
    /// The rules in force (the last ones, for a queue removed by a reload).
    pub(super) rules: QueueRules,
    /// Removed by a reload: takes no new callers, serves the ones it has.
    pub(super) retired: bool,
    /// `rules.overflow_to` resolved to live queues.
    pub(super) overflow_to: Vec<QueueIx>,
    /// Every caller in the queue, waiting or being offered, in service order.
    pub(super) callers: BTreeSet<Place>,
    /// The callers not being offered, in service order.
    pub(super) waiting: BTreeSet<Place>,
    /// The waiting callers that have overflowed.
    pub(super) overflowed: BTreeSet<Place>,
    /// Ready seats meeting the queue's rules.
    pub(super) home_ready: ReadySeats,
    /// Ready expert seats with the skill at any level (for overflow to experts).
    pub(super) expert_ready: ReadySeats,
    /// The seat offered last, for round robin.
    pub(super) round_robin_after: Option<SeatId>,
    /// Logged-in seats meeting the rules (not counting those logging out after their call).
    pub(super) home_logged_in: usize,
    /// Logged-in expert seats with the skill.
    pub(super) experts_logged_in: usize,
    /// Logged-in seats meeting the rules that are not on a break (ready, ringing, talking,
    /// wrapping up): the divisor of the estimated wait.
    pub(super) staffed: usize,
    /// Recent handle times, for the estimated wait.
    pub(super) handle_times: HandleTimes,
}

impl Queue {
    /// A queue with these rules, no callers and no seats yet.
    pub(super) fn new(rules: QueueRules) -> Queue {
        Queue {
            rules,
            retired: false,
            overflow_to: Vec::new(),
            callers: BTreeSet::new(),
            waiting: BTreeSet::new(),
            overflowed: BTreeSet::new(),
            home_ready: ReadySeats::default(),
            expert_ready: ReadySeats::default(),
            round_robin_after: None,
            home_logged_in: 0,
            experts_logged_in: 0,
            staffed: 0,
            handle_times: HandleTimes::default(),
        }
    }

    /// Forgets every seat's part, before the seats are counted again.
    pub(super) fn clear_seats(&mut self) {
        self.home_ready = ReadySeats::default();
        self.expert_ready = ReadySeats::default();
        self.home_logged_in = 0;
        self.experts_logged_in = 0;
        self.staffed = 0;
    }

    /// Estimated wait of the caller at `position`: position × average handle time ÷ staffed
    /// seats (at least one: a queue whose seats are all on a break still counts one).
    pub(super) fn estimated_wait(&self, position: usize) -> Duration {
        let position = u32::try_from(position).unwrap_or(u32::MAX);
        let staffed = u32::try_from(self.staffed.max(1)).unwrap_or(u32::MAX);
        self.handle_times.average().saturating_mul(position) / staffed
    }
}
