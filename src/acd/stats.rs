//! Statistics of the call distribution, computed from its events.
//!
//! [`Stats`] is fed every [`AcdEvent`] in time order and keeps two kinds of period:
//!
//! - **live**: since the engine started, or since the last [`Stats::reset`] (the centre's day);
//! - **intervals**: fixed buckets of `interval` length aligned to the `epoch` given to
//!   [`Stats::new`]; bucket `k` covers `[epoch + k·interval, epoch + (k+1)·interval)`, and only
//!   the latest `retention` buckets are kept (96 by default: a day of 15-minute intervals).
//!
//! Attribution rules:
//!
//! - **Queue**: a caller counts in the queue it was `Queued` in, whatever queue later events
//!   name. Talk and wrap-up time count in the queue of the call the seat answered.
//! - **Period**: every count goes to the period of the event that completes it: offered at the
//!   queue time, answered/abandoned/left and their waits at that time, talk at `TalkEnded`,
//!   wrap-up when the seat leaves wrap-up. A caller queued at 10:14:50 and answered at 10:15:10
//!   is offered in the 10:00 interval and answered in the 10:15 one, so one interval's rates can
//!   be skewed by callers straddling its edges; rates are capped at 1. The live period follows
//!   the same rule, so a day's live figures are the sum of its intervals.
//! - **Seat time** is the only thing split: a state held across an interval edge is credited to
//!   each interval for the part inside it, and views include the state each seat is in up to
//!   `now`.
//!
//! Thresholds (inclusive): a caller who hangs up after at most 5 s ([`SHORT_ABANDON`]) is a
//! short abandon, excluded from the service level's divisor; an answer after at most 15 s
//! ([`SERVICE_TARGET`]) is within target. `service level = answered within target ÷ (offered −
//! short abandons)`.
//!
//! Memory stays bounded whatever the call volume: counters per queue and per seat, for the live
//! period and each retained interval; per caller only while it waits; per seat its current state
//! and the queue of its last call; at most [`MAX_REASONS`] not-ready reasons per seat and period.
//!
//! Views name seats with a caller-given function (`SeatId → name`), so the JSON is keyed by what
//! supervisors know; names should be unique (a duplicate replaces the earlier seat in the map).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::event::{AcdEvent, LeftBecause, SeatId, SeatState};
use crate::call::CallId;

/// A caller who hangs up within this wait is a short abandon (wrong number, changed mind).
pub const SHORT_ABANDON: Duration = Duration::from_secs(5);
/// The service-level target: answered within this wait.
pub const SERVICE_TARGET: Duration = Duration::from_secs(15);
/// Intervals kept by default (a day of 15-minute intervals).
pub const DEFAULT_RETENTION: usize = 96;
/// Distinct not-ready reasons kept per seat and period; more are summed under [`OTHER_REASON`].
pub const MAX_REASONS: usize = 16;
/// Where not-ready time goes once a seat has used [`MAX_REASONS`] reasons in a period.
pub const OTHER_REASON: &str = "other";

/// A duration total with count and maximum.
#[derive(Clone, Debug, Default)]
struct Sum {
    total: Duration,
    count: u64,
    max: Duration,
}

impl Sum {
    fn add(&mut self, d: Duration) {
        self.total += d;
        self.count += 1;
        self.max = self.max.max(d);
    }

    fn merge(&mut self, other: &Sum) {
        self.total += other.total;
        self.count += other.count;
        self.max = self.max.max(other.max);
    }

    fn avg_s(&self) -> Option<f64> {
        (self.count > 0).then(|| self.total.as_secs_f64() / self.count as f64)
    }

    fn max_s(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max.as_secs_f64())
    }
}

/// Queue counters of one period (one queue, or all).
#[derive(Clone, Debug, Default)]
struct Counts {
    offered: u64,
    overflowed: u64,
    answered: u64,
    answered_in_target: u64,
    abandoned: u64,
    abandoned_short: u64,
    left_other: u64,
    left_max_wait: u64,
    left_no_seats: u64,
    /// Waits of answered and abandoned callers.
    waits: Sum,
    answer_waits: Sum,
    talk: Sum,
    wrap_up: Sum,
}

/// Time per seat state in one period.
#[derive(Clone, Debug, Default)]
struct StateTimes {
    ready: Duration,
    ringing: Duration,
    on_call: Duration,
    wrap_up: Duration,
    not_ready: Duration,
    reasons: BTreeMap<String, Duration>,
}

impl StateTimes {
    fn add(&mut self, state: &SeatState, d: Duration) {
        match state {
            SeatState::LoggedOut => {}
            SeatState::Ready => self.ready += d,
            SeatState::Ringing => self.ringing += d,
            SeatState::OnCall => self.on_call += d,
            SeatState::WrapUp => self.wrap_up += d,
            SeatState::NotReady(reason) => {
                self.not_ready += d;
                // Reasons come from the desks: cap them so a misbehaving desk can't grow memory.
                if let Some(t) = self.reasons.get_mut(reason.as_str()) {
                    *t += d;
                } else if self.reasons.len() < MAX_REASONS {
                    self.reasons.insert(reason.clone(), d);
                } else {
                    *self.reasons.entry(OTHER_REASON.to_string()).or_default() += d;
                }
            }
        }
    }

    fn merge(&mut self, other: &StateTimes) {
        self.ready += other.ready;
        self.ringing += other.ringing;
        self.on_call += other.on_call;
        self.wrap_up += other.wrap_up;
        self.not_ready += other.not_ready;
        for (reason, d) in &other.reasons {
            *self.reasons.entry(reason.clone()).or_default() += *d;
        }
    }
}

/// Seat counters of one period.
#[derive(Clone, Debug, Default)]
struct SeatCounts {
    offers: u64,
    answered: u64,
    talk: Sum,
    wrap_up: Sum,
    times: StateTimes,
}

impl SeatCounts {
    fn merge(&mut self, other: &SeatCounts) {
        self.offers += other.offers;
        self.answered += other.answered;
        self.talk.merge(&other.talk);
        self.wrap_up.merge(&other.wrap_up);
        self.times.merge(&other.times);
    }
}

/// Everything counted in one period (the live one or an interval).
#[derive(Clone, Debug, Default)]
struct Period {
    overall: Counts,
    queues: BTreeMap<String, Counts>,
    seats: BTreeMap<SeatId, SeatCounts>,
}

impl Period {
    /// Applies `f` to the overall counters and to `queue`'s, when known.
    fn count(&mut self, queue: Option<&str>, f: &impl Fn(&mut Counts)) {
        f(&mut self.overall);
        if let Some(queue) = queue {
            if let Some(c) = self.queues.get_mut(queue) {
                f(c);
            } else {
                f(self.queues.entry(queue.to_string()).or_default());
            }
        }
    }

    fn seat(&mut self, seat: SeatId) -> &mut SeatCounts {
        self.seats.entry(seat).or_default()
    }
}

/// A caller in a queue.
#[derive(Clone, Debug)]
struct Waiting {
    queue: String,
    since: Instant,
}

/// What is known about a seat right now.
#[derive(Clone, Debug, Default)]
struct SeatNow {
    /// Its state and since when (unknown before its first `SeatChanged`).
    state: Option<(SeatState, Instant)>,
    /// The queue of the call it answered last, for its talk and wrap-up.
    queue: Option<String>,
}

/// Call-distribution statistics: live and per interval, per queue, overall and per seat.
#[derive(Debug)]
pub struct Stats {
    epoch: Instant,
    interval: Duration,
    retention: usize,
    short_abandon: Duration,
    target: Duration,
    live_since: Instant,
    live: Period,
    buckets: BTreeMap<u64, Period>,
    /// Index of the first and the latest bucket any event fell in.
    first_index: Option<u64>,
    latest_index: u64,
    waiting: HashMap<CallId, Waiting>,
    seats: BTreeMap<SeatId, SeatNow>,
}

impl Stats {
    /// Statistics whose intervals of `interval` (at least 1 s) are aligned to `epoch`; the live
    /// period starts at `epoch` too.
    pub fn new(epoch: Instant, interval: Duration) -> Stats {
        Stats {
            epoch,
            interval: interval.max(Duration::from_secs(1)),
            retention: DEFAULT_RETENTION,
            short_abandon: SHORT_ABANDON,
            target: SERVICE_TARGET,
            live_since: epoch,
            live: Period::default(),
            buckets: BTreeMap::new(),
            first_index: None,
            latest_index: 0,
            waiting: HashMap::new(),
            seats: BTreeMap::new(),
        }
    }

    /// Keeps the latest `buckets` intervals (at least 1) instead of [`DEFAULT_RETENTION`].
    pub fn with_retention(mut self, buckets: usize) -> Stats {
        self.retention = buckets.max(1);
        self
    }

    /// Uses other thresholds than [`SHORT_ABANDON`] and [`SERVICE_TARGET`].
    pub fn with_thresholds(mut self, short_abandon: Duration, target: Duration) -> Stats {
        self.short_abandon = short_abandon;
        self.target = target;
        self
    }

    /// Starts a new live period at `at` (the centre's day); intervals and waiting callers stay.
    pub fn reset(&mut self, at: Instant) {
        self.live = Period::default();
        self.live_since = at;
    }

    /// Counts one event; events must come in time order.
    pub fn observe(&mut self, event: &AcdEvent) {
        let at = event.at();
        self.advance(at);
        match event {
            AcdEvent::Queued { call, queue, .. } => {
                // A call queued again (transfer to another queue) is a new offer there.
                self.waiting.insert(
                    *call,
                    Waiting {
                        queue: queue.clone(),
                        since: at,
                    },
                );
                self.count(at, Some(queue), |c| c.offered += 1);
            }
            AcdEvent::Overflowed { call, queue, .. } => {
                let queue = self.waiting.get(call).map_or(queue, |w| &w.queue).clone();
                self.count(at, Some(&queue), |c| c.overflowed += 1);
            }
            AcdEvent::Offered { seat, .. } => self.seat(at, *seat, |s| s.offers += 1),
            AcdEvent::OfferEnded { .. } => {}
            AcdEvent::Answered {
                call,
                queue,
                seat,
                waited,
                ..
            } => {
                let queue = self.leave(*call, queue);
                let in_target = *waited <= self.target;
                self.count(at, Some(&queue), |c| {
                    c.answered += 1;
                    c.answered_in_target += u64::from(in_target);
                    c.waits.add(*waited);
                    c.answer_waits.add(*waited);
                });
                self.seat(at, *seat, |s| s.answered += 1);
                self.seats.entry(*seat).or_default().queue = Some(queue);
            }
            AcdEvent::Abandoned {
                call,
                queue,
                waited,
                ..
            } => {
                let queue = self.leave(*call, queue);
                let short = *waited <= self.short_abandon;
                self.count(at, Some(&queue), |c| {
                    c.abandoned += 1;
                    c.abandoned_short += u64::from(short);
                    c.waits.add(*waited);
                });
            }
            AcdEvent::LeftQueue {
                call,
                queue,
                because,
                ..
            } => {
                let queue = self.leave(*call, queue);
                self.count(at, Some(&queue), |c| {
                    c.left_other += 1;
                    match because {
                        LeftBecause::MaxWait => c.left_max_wait += 1,
                        LeftBecause::NoSeats => c.left_no_seats += 1,
                        LeftBecause::Removed | LeftBecause::NotTaken => {}
                    }
                });
            }
            AcdEvent::TalkEnded {
                queue,
                seat,
                talked,
                ..
            } => {
                let queue = self
                    .seats
                    .get(seat)
                    .and_then(|s| s.queue.clone())
                    .unwrap_or_else(|| queue.clone());
                self.count(at, Some(&queue), |c| c.talk.add(*talked));
                self.seat(at, *seat, |s| s.talk.add(*talked));
            }
            AcdEvent::SeatChanged { seat, state, .. } => self.seat_changed(at, *seat, state),
        }
    }

    /// The live period's figures, with the callers waiting and the seats' states at `now`;
    /// `name` names the seats.
    pub fn live(&self, now: Instant, name: &dyn Fn(SeatId) -> String) -> StatsView {
        let mut period = self.live.clone();
        for (seat, s) in &self.seats {
            if let Some((state, since)) = &s.state {
                let from = (*since).max(self.live_since);
                if now > from && *state != SeatState::LoggedOut {
                    period.seat(*seat).times.add(state, now - from);
                }
            }
        }

        let mut overall = LiveQueue::new(figures(&period.overall));
        let mut queues: BTreeMap<String, LiveQueue> = period
            .queues
            .iter()
            .map(|(q, c)| (q.clone(), LiveQueue::new(figures(c))))
            .collect();
        for w in self.waiting.values() {
            let wait = now.saturating_duration_since(w.since).as_secs_f64();
            let q = queues
                .entry(w.queue.clone())
                .or_insert_with(|| LiveQueue::new(figures(&Counts::default())));
            for lq in [&mut overall, q] {
                lq.waiting += 1;
                lq.oldest_wait_s = Some(lq.oldest_wait_s.map_or(wait, |o| o.max(wait)));
            }
        }

        let seats = self
            .seats
            .iter()
            .map(|(id, s)| {
                let counts = period.seats.get(id).cloned().unwrap_or_default();
                let (state, reason, in_state_s) = match &s.state {
                    Some((state, since)) => (
                        Some(state.as_str()),
                        match state {
                            SeatState::NotReady(r) => Some(r.clone()),
                            _ => None,
                        },
                        Some(now.saturating_duration_since(*since).as_secs_f64()),
                    ),
                    None => (None, None, None),
                };
                let view = LiveSeat {
                    id: id.0,
                    state,
                    reason,
                    in_state_s,
                    figures: seat_figures(&counts),
                };
                (name(*id), view)
            })
            .collect();

        StatsView {
            since_offset_s: self.offset_s(self.live_since),
            period_s: now.saturating_duration_since(self.live_since).as_secs_f64(),
            overall,
            queues,
            all_seats: all_seats(&period),
            seats,
        }
    }

    /// The retained intervals, oldest first and contiguous (empty ones included), up to the one
    /// containing `now`; seat times include the current states up to `now`.
    pub fn intervals(&self, now: Instant, name: &dyn Fn(SeatId) -> String) -> Vec<IntervalView> {
        let hi = self.index(now).max(self.latest_index);
        let oldest = (hi + 1).saturating_sub(self.retention as u64);
        let lo = self.first_index.unwrap_or(hi).max(oldest).min(hi);
        let mut periods: BTreeMap<u64, Period> = (lo..=hi)
            .map(|k| (k, self.buckets.get(&k).cloned().unwrap_or_default()))
            .collect();
        for (seat, s) in &self.seats {
            if let Some((state, since)) = &s.state {
                if *state != SeatState::LoggedOut {
                    self.split(*since, now, lo, |k, d| {
                        if let Some(p) = periods.get_mut(&k) {
                            p.seat(*seat).times.add(state, d);
                        }
                    });
                }
            }
        }
        let now_index = self.index(now);
        periods
            .into_iter()
            .map(|(k, p)| IntervalView {
                start_offset_s: self.interval.as_secs_f64() * k as f64,
                length_s: self.interval.as_secs_f64(),
                complete: k < now_index,
                overall: figures(&p.overall),
                queues: p
                    .queues
                    .iter()
                    .map(|(q, c)| (q.clone(), figures(c)))
                    .collect(),
                all_seats: all_seats(&p),
                seats: p
                    .seats
                    .iter()
                    .map(|(id, c)| (name(*id), seat_figures(c)))
                    .collect(),
            })
            .collect()
    }

    /// The bucket index of `t` (times before the epoch fall in the first bucket).
    fn index(&self, t: Instant) -> u64 {
        (t.saturating_duration_since(self.epoch).as_nanos() / self.interval.as_nanos()) as u64
    }

    /// When bucket `k` starts.
    fn start(&self, k: u64) -> Instant {
        let nanos = self.interval.as_nanos().saturating_mul(u128::from(k));
        self.epoch + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Seconds from the epoch to `t`, negative before it.
    fn offset_s(&self, t: Instant) -> f64 {
        match t.checked_duration_since(self.epoch) {
            Some(d) => d.as_secs_f64(),
            None => -(self.epoch - t).as_secs_f64(),
        }
    }

    /// Moves the clock to `at`, dropping the buckets that fall out of retention.
    fn advance(&mut self, at: Instant) {
        let k = self.index(at);
        self.first_index.get_or_insert(k);
        self.latest_index = self.latest_index.max(k);
        while let Some((&first, _)) = self.buckets.first_key_value() {
            if first + self.retention as u64 > self.latest_index {
                break;
            }
            self.buckets.pop_first();
        }
    }

    /// The bucket for bucket index `k`, unless it is out of retention.
    fn bucket(&mut self, k: u64) -> Option<&mut Period> {
        (k + self.retention as u64 > self.latest_index).then(|| self.buckets.entry(k).or_default())
    }

    /// Applies `f` to the counters of `queue` (and overall) in the live period and `at`'s bucket.
    fn count(&mut self, at: Instant, queue: Option<&str>, f: impl Fn(&mut Counts)) {
        self.live.count(queue, &f);
        if let Some(b) = self.bucket(self.index(at)) {
            b.count(queue, &f);
        }
    }

    /// Applies `f` to `seat`'s counters in the live period and `at`'s bucket.
    fn seat(&mut self, at: Instant, seat: SeatId, f: impl Fn(&mut SeatCounts)) {
        // Known from now on, so the live view lists it even before its first state change.
        self.seats.entry(seat).or_default();
        f(self.live.seat(seat));
        if let Some(b) = self.bucket(self.index(at)) {
            f(b.seat(seat));
        }
    }

    /// Takes a caller out of the waiting callers; the queue it was queued in, else `queue`.
    fn leave(&mut self, call: CallId, queue: &str) -> String {
        self.waiting
            .remove(&call)
            .map_or_else(|| queue.to_string(), |w| w.queue)
    }

    /// Closes `seat`'s previous state at `at`: its time, and the wrap-up when that ends.
    fn seat_changed(&mut self, at: Instant, seat: SeatId, state: &SeatState) {
        let now = self.seats.entry(seat).or_default();
        if now.state.as_ref().is_some_and(|(s, _)| s == state) {
            return;
        }
        let previous = now.state.replace((state.clone(), at));
        let Some((old, since)) = previous else {
            return;
        };
        // The queue only matters for the wrap-up after the call; forget it once that ends.
        let queue = if old == SeatState::WrapUp {
            now.queue.take()
        } else {
            None
        };
        self.credit(seat, &old, since, at);
        if old == SeatState::WrapUp {
            let d = at.saturating_duration_since(since);
            self.count(at, queue.as_deref(), |c| c.wrap_up.add(d));
            self.seat(at, seat, |s| s.wrap_up.add(d));
        }
    }

    /// Credits `seat`'s time in `state` over `[from, to)` to the live period and the buckets.
    fn credit(&mut self, seat: SeatId, state: &SeatState, from: Instant, to: Instant) {
        if *state == SeatState::LoggedOut {
            return;
        }
        let live_from = from.max(self.live_since);
        if to > live_from {
            self.live.seat(seat).times.add(state, to - live_from);
        }
        let oldest = (self.latest_index + 1).saturating_sub(self.retention as u64);
        let mut parts = Vec::new();
        self.split(from, to, oldest, |k, d| parts.push((k, d)));
        for (k, d) in parts {
            if let Some(b) = self.bucket(k) {
                b.seat(seat).times.add(state, d);
            }
        }
    }

    /// Calls `f(k, part)` for each bucket `k >= min_index` that `[from, to)` overlaps.
    fn split(&self, from: Instant, to: Instant, min_index: u64, mut f: impl FnMut(u64, Duration)) {
        let mut cur = from.max(self.start(min_index));
        while cur < to {
            let k = self.index(cur);
            let end = to.min(self.start(k + 1));
            if end <= cur {
                break; // Only if the bucket arithmetic saturated.
            }
            f(k, end - cur);
            cur = end;
        }
    }
}

/// Queue figures of one period, as the API shows them (seconds as numbers, rates 0..1 or null).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Callers queued.
    pub offered: u64,
    /// Callers overflowed to other groups' or expert seats.
    pub overflowed: u64,
    /// Callers answered by a seat.
    pub answered: u64,
    /// Callers answered within the target wait (15 s).
    pub answered_in_target: u64,
    /// Callers who hung up while waiting or ringing.
    pub abandoned: u64,
    /// Of those, callers who hung up within 5 s (excluded from the rates' divisor).
    pub abandoned_short: u64,
    /// Callers who left unanswered for another reason (all [`LeftBecause`]s).
    pub left_other: u64,
    /// Of those, callers who waited the queue's maximum wait.
    pub left_max_wait: u64,
    /// Of those, callers left with no seat logged in that could take them.
    pub left_no_seats: u64,
    /// Answered within target ÷ (offered − short abandons).
    pub service_level: Option<f64>,
    /// Answered ÷ (offered − short abandons).
    pub connection_rate: Option<f64>,
    /// (Abandoned − short abandons) ÷ (offered − short abandons).
    pub abandon_rate: Option<f64>,
    /// Average wait of answered and abandoned callers.
    pub avg_wait_s: Option<f64>,
    /// Longest wait of answered and abandoned callers.
    pub longest_wait_s: Option<f64>,
    /// Average wait of answered callers (average speed of answer).
    pub avg_answer_wait_s: Option<f64>,
    /// Conversations ended.
    pub talks: u64,
    /// Their average length.
    pub avg_talk_s: Option<f64>,
    /// Wrap-ups ended.
    pub wrap_ups: u64,
    /// Their average length.
    pub avg_wrap_up_s: Option<f64>,
}

/// A queue's (or all queues') live figures with the callers waiting now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveQueue {
    /// The period's figures.
    #[serde(flatten)]
    pub figures: Figures,
    /// Callers waiting now.
    pub waiting: u64,
    /// How long the longest-waiting of them has waited.
    pub oldest_wait_s: Option<f64>,
}

impl LiveQueue {
    fn new(figures: Figures) -> LiveQueue {
        LiveQueue {
            figures,
            waiting: 0,
            oldest_wait_s: None,
        }
    }
}

/// A seat's (or all seats') figures of one period.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SeatFigures {
    /// Offers made to it (its phone rang).
    pub offers: u64,
    /// Calls it answered.
    pub answered: u64,
    /// Conversations it ended.
    pub talks: u64,
    /// Their average length.
    pub avg_talk_s: Option<f64>,
    /// Wrap-ups it ended.
    pub wrap_ups: u64,
    /// Their average length.
    pub avg_wrap_up_s: Option<f64>,
    /// (Ringing + on call + wrap-up) ÷ (that + ready); not-ready and logged-out time excluded.
    pub occupancy: Option<f64>,
    /// Time ready.
    pub ready_s: f64,
    /// Time ringing.
    pub ringing_s: f64,
    /// Time on a call.
    pub on_call_s: f64,
    /// Time in wrap-up.
    pub wrap_up_s: f64,
    /// Time not ready, all reasons.
    pub not_ready_s: f64,
    /// Time not ready per reason.
    pub not_ready_reasons_s: BTreeMap<String, f64>,
}

/// A seat's live figures with its current state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveSeat {
    /// The seat's slot number.
    pub id: u32,
    /// Its state now ([`SeatState::as_str`]), null before its first state change.
    pub state: Option<&'static str>,
    /// The not-ready reason, when not ready.
    pub reason: Option<String>,
    /// How long it has been in that state.
    pub in_state_s: Option<f64>,
    /// The period's figures.
    #[serde(flatten)]
    pub figures: SeatFigures,
}

/// The live period: since the start or the last reset.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatsView {
    /// When the period started, in seconds from the epoch (negative before it).
    pub since_offset_s: f64,
    /// The period's length up to now.
    pub period_s: f64,
    /// All queues.
    pub overall: LiveQueue,
    /// Per queue name.
    pub queues: BTreeMap<String, LiveQueue>,
    /// All seats together.
    pub all_seats: SeatFigures,
    /// Per seat name.
    pub seats: BTreeMap<String, LiveSeat>,
}

/// One interval.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IntervalView {
    /// Its start in seconds from the epoch.
    pub start_offset_s: f64,
    /// Its length.
    pub length_s: f64,
    /// Whether it is over (false for the current one).
    pub complete: bool,
    /// All queues.
    pub overall: Figures,
    /// Per queue name.
    pub queues: BTreeMap<String, Figures>,
    /// All seats together.
    pub all_seats: SeatFigures,
    /// Per seat name, seats active in the interval only.
    pub seats: BTreeMap<String, SeatFigures>,
}

/// `n ÷ d`, capped at 1 (callers straddling a period's edges), none when `d` is 0.
fn rate(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| (n as f64 / d as f64).min(1.0))
}

/// The API form of queue counters.
fn figures(c: &Counts) -> Figures {
    let base = c.offered.saturating_sub(c.abandoned_short);
    Figures {
        offered: c.offered,
        overflowed: c.overflowed,
        answered: c.answered,
        answered_in_target: c.answered_in_target,
        abandoned: c.abandoned,
        abandoned_short: c.abandoned_short,
        left_other: c.left_other,
        left_max_wait: c.left_max_wait,
        left_no_seats: c.left_no_seats,
        service_level: rate(c.answered_in_target, base),
        connection_rate: rate(c.answered, base),
        abandon_rate: rate(c.abandoned.saturating_sub(c.abandoned_short), base),
        avg_wait_s: c.waits.avg_s(),
        longest_wait_s: c.waits.max_s(),
        avg_answer_wait_s: c.answer_waits.avg_s(),
        talks: c.talk.count,
        avg_talk_s: c.talk.avg_s(),
        wrap_ups: c.wrap_up.count,
        avg_wrap_up_s: c.wrap_up.avg_s(),
    }
}

/// The API form of seat counters.
fn seat_figures(c: &SeatCounts) -> SeatFigures {
    let t = &c.times;
    let busy = t.ringing + t.on_call + t.wrap_up;
    let worked = busy + t.ready;
    SeatFigures {
        offers: c.offers,
        answered: c.answered,
        talks: c.talk.count,
        avg_talk_s: c.talk.avg_s(),
        wrap_ups: c.wrap_up.count,
        avg_wrap_up_s: c.wrap_up.avg_s(),
        occupancy: (!worked.is_zero()).then(|| busy.as_secs_f64() / worked.as_secs_f64()),
        ready_s: t.ready.as_secs_f64(),
        ringing_s: t.ringing.as_secs_f64(),
        on_call_s: t.on_call.as_secs_f64(),
        wrap_up_s: t.wrap_up.as_secs_f64(),
        not_ready_s: t.not_ready.as_secs_f64(),
        not_ready_reasons_s: t
            .reasons
            .iter()
            .map(|(r, d)| (r.clone(), d.as_secs_f64()))
            .collect(),
    }
}

/// All seats' counters of a period together.
fn all_seats(p: &Period) -> SeatFigures {
    let mut total = SeatCounts::default();
    for c in p.seats.values() {
        total.merge(c);
    }
    seat_figures(&total)
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
