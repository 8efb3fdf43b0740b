//! Tests of the call-distribution statistics, in virtual time with hand-built event sequences.

use std::time::{Duration, Instant};

use super::*;
use crate::acd::event::{AcdEvent, LeftBecause, SeatId, SeatState};
use crate::call::CallId;

/// A clock in seconds from a fixed base.
struct Clock(Instant);

impl Clock {
    fn new() -> Clock {
        Clock(Instant::now())
    }

    fn at(&self, s: u64) -> Instant {
        self.0 + Duration::from_secs(s)
    }

    fn queued(&self, s: u64, call: u64, queue: &str) -> AcdEvent {
        AcdEvent::Queued {
            at: self.at(s),
            call: CallId(call),
            queue: queue.into(),
            priority: 0,
        }
    }

    fn offered(&self, s: u64, call: u64, queue: &str, seat: u32) -> AcdEvent {
        AcdEvent::Offered {
            at: self.at(s),
            call: CallId(call),
            queue: queue.into(),
            seat: SeatId(seat),
        }
    }

    fn answered(&self, s: u64, call: u64, queue: &str, seat: u32, waited: u64) -> AcdEvent {
        AcdEvent::Answered {
            at: self.at(s),
            call: CallId(call),
            queue: queue.into(),
            seat: SeatId(seat),
            waited: Duration::from_secs(waited),
        }
    }

    fn abandoned(&self, s: u64, call: u64, queue: &str, waited: u64) -> AcdEvent {
        AcdEvent::Abandoned {
            at: self.at(s),
            call: CallId(call),
            queue: queue.into(),
            waited: Duration::from_secs(waited),
        }
    }

    fn left(&self, s: u64, call: u64, queue: &str, waited: u64, because: LeftBecause) -> AcdEvent {
        AcdEvent::LeftQueue {
            at: self.at(s),
            call: CallId(call),
            queue: queue.into(),
            waited: Duration::from_secs(waited),
            because,
        }
    }

    fn talk_ended(&self, s: u64, call: u64, queue: &str, seat: u32, talked: u64) -> AcdEvent {
        AcdEvent::TalkEnded {
            at: self.at(s),
            call: CallId(call),
            queue: queue.into(),
            seat: SeatId(seat),
            talked: Duration::from_secs(talked),
        }
    }

    fn seat(&self, s: u64, seat: u32, state: SeatState) -> AcdEvent {
        AcdEvent::SeatChanged {
            at: self.at(s),
            seat: SeatId(seat),
            state,
        }
    }
}

fn name(seat: SeatId) -> String {
    format!("seat{}", seat.0)
}

fn feed(stats: &mut Stats, events: &[AcdEvent]) {
    for e in events {
        stats.observe(e);
    }
}

fn not_ready(reason: &str) -> SeatState {
    SeatState::NotReady(reason.into())
}

#[test]
fn service_level_excludes_short_abandons_and_thresholds_are_inclusive() {
    let c = Clock::new();
    let mut stats = Stats::new(c.at(0), Duration::from_secs(900));
    assert_eq!(
        stats.live(c.at(0), &name).overall.figures.service_level,
        None
    );
    feed(
        &mut stats,
        &[
            c.queued(0, 1, "q"),
            c.queued(0, 2, "q"),
            c.queued(1, 3, "q"),
            c.queued(2, 4, "q"),
            c.queued(3, 5, "q"),
            c.queued(4, 6, "q"),
            c.abandoned(6, 3, "q", 5), // exactly 5 s: short
            c.answered(10, 1, "q", 1, 10),
            c.answered(19, 6, "q", 2, 15), // exactly 15 s: within target
            c.answered(20, 2, "q", 3, 20),
            c.abandoned(32, 4, "q", 30),
            c.left(63, 5, "q", 60, LeftBecause::MaxWait),
        ],
    );
    let view = stats.live(c.at(70), &name);
    let f = &view.queues["q"].figures;
    assert_eq!(f, &view.overall.figures);
    assert_eq!(
        (f.offered, f.answered, f.answered_in_target),
        (6, 3, 2),
        "{f:?}"
    );
    assert_eq!((f.abandoned, f.abandoned_short), (2, 1));
    assert_eq!((f.left_other, f.left_max_wait, f.left_no_seats), (1, 1, 0));
    // Divisor: 6 offered − 1 short abandon.
    assert_eq!(f.service_level, Some(0.4));
    assert_eq!(f.connection_rate, Some(0.6));
    assert_eq!(f.abandon_rate, Some(0.2));
    // Waits of answered and abandoned callers: 10, 15, 20, 5, 30; not the one who left.
    assert_eq!(f.avg_wait_s, Some(16.0));
    assert_eq!(f.longest_wait_s, Some(30.0));
    assert_eq!(f.avg_answer_wait_s, Some(15.0));
    assert_eq!(view.overall.waiting, 0);
    assert_eq!(view.overall.oldest_wait_s, None);
}

#[test]
fn custom_thresholds() {
    let c = Clock::new();
    let mut stats = Stats::new(c.at(0), Duration::from_secs(900))
        .with_thresholds(Duration::from_secs(3), Duration::from_secs(20));
    feed(
        &mut stats,
        &[
            c.queued(0, 1, "q"),
            c.queued(0, 2, "q"),
            c.abandoned(4, 1, "q", 4),
            c.answered(20, 2, "q", 1, 20),
        ],
    );
    let f = stats.live(c.at(20), &name).overall.figures;
    assert_eq!((f.abandoned_short, f.answered_in_target), (0, 1));
    assert_eq!(f.service_level, Some(0.5));
}

#[test]
fn talk_and_wrap_up_count_in_the_queue_the_caller_was_queued_in() {
    let c = Clock::new();
    let mut stats = Stats::new(c.at(0), Duration::from_secs(900));
    feed(
        &mut stats,
        &[
            c.seat(0, 1, SeatState::Ready),
            c.seat(0, 2, SeatState::Ready),
            c.queued(0, 1, "tax"),
            c.queued(0, 2, "water"),
            c.offered(2, 1, "tax", 1),
            c.seat(2, 1, SeatState::Ringing),
            c.answered(5, 1, "tax", 1, 5),
            c.seat(5, 1, SeatState::OnCall),
            // Later events naming another queue still count where the caller was queued.
            c.answered(8, 2, "elsewhere", 2, 8),
            c.seat(8, 2, SeatState::OnCall),
            c.talk_ended(68, 2, "elsewhere", 2, 60),
            c.seat(68, 2, SeatState::WrapUp),
            c.seat(78, 2, SeatState::Ready),
            c.talk_ended(125, 1, "tax", 1, 120),
            c.seat(125, 1, SeatState::WrapUp),
            c.seat(130, 1, SeatState::WrapUp), // repeated state: no new wrap-up
            c.seat(155, 1, SeatState::Ready),
        ],
    );
    let view = stats.live(c.at(200), &name);
    assert_eq!(
        view.queues.keys().collect::<Vec<_>>(),
        ["tax", "water"],
        "no queue `elsewhere`"
    );
    let tax = &view.queues["tax"].figures;
    assert_eq!(
        (tax.offered, tax.answered, tax.talks, tax.wrap_ups),
        (1, 1, 1, 1)
    );
    assert_eq!(
        (tax.avg_talk_s, tax.avg_wrap_up_s),
        (Some(120.0), Some(30.0))
    );
    let water = &view.queues["water"].figures;
    assert_eq!((water.offered, water.answered), (1, 1));
    assert_eq!(
        (water.avg_talk_s, water.avg_wrap_up_s),
        (Some(60.0), Some(10.0))
    );
    let all = &view.overall.figures;
    assert_eq!((all.talks, all.wrap_ups), (2, 2));
    assert_eq!(
        (all.avg_talk_s, all.avg_wrap_up_s),
        (Some(90.0), Some(20.0))
    );

    let s1 = &view.seats["seat1"].figures;
    assert_eq!(
        (s1.offers, s1.answered, s1.talks, s1.wrap_ups),
        (1, 1, 1, 1)
    );
    assert_eq!((s1.avg_talk_s, s1.avg_wrap_up_s), (Some(120.0), Some(30.0)));
    assert_eq!(s1.wrap_up_s, 30.0);
    let s2 = &view.seats["seat2"].figures;
    assert_eq!((s2.offers, s2.answered), (0, 1));
    assert_eq!(view.all_seats.avg_talk_s, Some(90.0));
    // The seat's call queue is forgotten once its wrap-up ends.
    assert!(stats.seats.values().all(|s| s.queue.is_none()));
}

#[test]
fn occupancy_and_time_per_state_up_to_now() {
    let c = Clock::new();
    let mut stats = Stats::new(c.at(0), Duration::from_secs(3600));
    feed(
        &mut stats,
        &[
            c.seat(0, 1, SeatState::Ready),
            c.seat(0, 2, SeatState::Ready),
            c.seat(0, 3, SeatState::LoggedOut),
            c.seat(60, 1, SeatState::Ringing),
            c.seat(70, 1, SeatState::OnCall),
            c.seat(170, 1, SeatState::WrapUp),
            c.seat(200, 1, SeatState::Ready),
            c.seat(300, 1, not_ready("break")),
            c.seat(300, 3, SeatState::Ready),
            c.seat(350, 3, SeatState::LoggedOut),
        ],
    );
    let view = stats.live(c.at(400), &name);
    let s1 = &view.seats["seat1"];
    assert_eq!(
        (s1.state, s1.reason.as_deref(), s1.in_state_s),
        (Some("not-ready"), Some("break"), Some(100.0))
    );
    let f = &s1.figures;
    assert_eq!(
        (f.ready_s, f.ringing_s, f.on_call_s, f.wrap_up_s),
        (160.0, 10.0, 100.0, 30.0)
    );
    // The open not-ready state counts up to now.
    assert_eq!(f.not_ready_s, 100.0);
    assert_eq!(f.not_ready_reasons_s["break"], 100.0);
    assert_eq!(f.occupancy, Some(140.0 / 300.0));
    assert_eq!(view.seats["seat2"].figures.ready_s, 400.0);
    assert_eq!(view.seats["seat2"].figures.occupancy, Some(0.0));
    // Logged-out time is not counted anywhere.
    let s3 = &view.seats["seat3"].figures;
    assert_eq!(
        (s3.ready_s, s3.not_ready_s, s3.occupancy),
        (50.0, 0.0, Some(0.0))
    );
    assert_eq!(view.seats["seat3"].state, Some("logged-out"));
    // Overall: busy 140 s of 140 + 160 + 400 + 50 s worked.
    assert_eq!(view.all_seats.occupancy, Some(140.0 / 750.0));
    assert_eq!(view.all_seats.ready_s, 610.0);

    // Nothing observed since: the open states keep counting.
    let later = stats.live(c.at(500), &name);
    assert_eq!(later.seats["seat1"].figures.not_ready_s, 200.0);
    assert_eq!(later.seats["seat2"].figures.ready_s, 500.0);
}

#[test]
fn not_ready_reasons_are_capped() {
    let c = Clock::new();
    let mut stats = Stats::new(c.at(0), Duration::from_secs(900));
    for i in 0..20 {
        stats.observe(&c.seat(i, 1, not_ready(&format!("r{i}"))));
    }
    stats.observe(&c.seat(20, 1, SeatState::Ready));
    let f = &stats.live(c.at(20), &name).seats["seat1"].figures;
    assert_eq!(f.not_ready_s, 20.0);
    assert_eq!(f.not_ready_reasons_s.len(), MAX_REASONS + 1);
    assert_eq!(f.not_ready_reasons_s[OTHER_REASON], 4.0);
    assert_eq!(f.not_ready_reasons_s["r0"], 1.0);
    assert_eq!(f.occupancy, None);
}

#[test]
fn intervals_split_at_the_boundary() {
    let c = Clock::new();
    let mut stats = Stats::new(c.at(0), Duration::from_secs(900));
    feed(
        &mut stats,
        &[
            c.seat(800, 1, SeatState::Ready),
            c.queued(890, 1, "q"),
            c.offered(895, 1, "q", 1),
            c.seat(895, 1, SeatState::Ringing),
            c.answered(910, 1, "q", 1, 20),
            c.seat(910, 1, SeatState::OnCall),
        ],
    );
    let views = stats.intervals(c.at(1000), &name);
    assert_eq!(views.len(), 2, "{views:?}");
    let (first, second) = (&views[0], &views[1]);
    assert_eq!(
        (first.start_offset_s, first.length_s, first.complete),
        (0.0, 900.0, true)
    );
    assert_eq!((second.start_offset_s, second.complete), (900.0, false));

    // Offered by queue time, answered by answer time.
    assert_eq!((first.overall.offered, first.overall.answered), (1, 0));
    assert_eq!(first.queues["q"].offered, 1);
    assert_eq!(first.overall.service_level, Some(0.0));
    assert_eq!((second.overall.offered, second.overall.answered), (0, 1));
    assert_eq!(second.overall.service_level, None);
    assert_eq!(second.overall.avg_answer_wait_s, Some(20.0));

    // Seat time split at 900 s; the open on-call state counts up to now.
    let s = &first.seats["seat1"];
    assert_eq!(
        (s.ready_s, s.ringing_s, s.on_call_s, s.offers),
        (95.0, 5.0, 0.0, 1)
    );
    assert_eq!(s.occupancy, Some(0.05));
    let s = &second.seats["seat1"];
    assert_eq!(
        (s.ready_s, s.ringing_s, s.on_call_s, s.answered),
        (0.0, 10.0, 90.0, 1)
    );
    assert_eq!(s.occupancy, Some(1.0));

    // The live period sums both.
    let live = stats.live(c.at(1000), &name);
    assert_eq!(
        (live.overall.figures.offered, live.overall.figures.answered),
        (1, 1)
    );
    assert_eq!(live.overall.figures.service_level, Some(0.0));
    assert_eq!(live.seats["seat1"].figures.ringing_s, 15.0);
}

#[test]
fn intervals_are_contiguous_and_bounded() {
    let c = Clock::new();
    let mut stats = Stats::new(c.at(0), Duration::from_secs(60)).with_retention(4);
    // Nothing observed yet: just the current interval.
    let views = stats.intervals(c.at(130), &name);
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].start_offset_s, 120.0);

    // The first interval shown is the first one with an event.
    stats.observe(&c.queued(200, 100, "q"));
    stats.observe(&c.abandoned(201, 100, "q", 1));
    let views = stats.intervals(c.at(230), &name);
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].start_offset_s, 180.0);
    assert_eq!(views[0].overall.abandoned_short, 1);

    for i in 4..20 {
        stats.observe(&c.queued(i * 60 + 1, i, "q"));
        stats.observe(&c.abandoned(i * 60 + 2, i, "q", 1));
        assert!(stats.buckets.len() <= 4);
    }
    let views = stats.intervals(c.at(19 * 60 + 30), &name);
    let starts: Vec<f64> = views.iter().map(|v| v.start_offset_s).collect();
    assert_eq!(starts, [960.0, 1020.0, 1080.0, 1140.0]);
    assert!(views.iter().all(|v| v.overall.offered == 1));
    assert_eq!(
        views.iter().filter(|v| !v.complete).count(),
        1,
        "only the current one"
    );
    assert_eq!(stats.live(c.at(1200), &name).overall.figures.offered, 17);

    // A quiet stretch shows as empty intervals.
    stats.observe(&c.queued(30 * 60, 1000, "q"));
    let views = stats.intervals(c.at(30 * 60), &name);
    let offered: Vec<u64> = views.iter().map(|v| v.overall.offered).collect();
    assert_eq!(offered, [0, 0, 0, 1]);
    assert_eq!(views[0].start_offset_s, 27.0 * 60.0);
    assert!(stats.buckets.len() <= 4);
}

#[test]
fn a_long_state_spreads_over_retained_intervals_only() {
    let c = Clock::new();
    let mut stats = Stats::new(c.at(0), Duration::from_secs(60)).with_retention(3);
    stats.observe(&c.seat(30, 1, SeatState::Ready));
    // Open state, nothing else observed: the view splits it.
    let views = stats.intervals(c.at(150), &name);
    let ready: Vec<f64> = views.iter().map(|v| v.seats["seat1"].ready_s).collect();
    assert_eq!(ready, [30.0, 60.0, 30.0]);
    // Closed after ten minutes: only the last three intervals are kept.
    stats.observe(&c.seat(630, 1, SeatState::OnCall));
    assert_eq!(stats.buckets.len(), 3);
    let views = stats.intervals(c.at(630), &name);
    let ready: Vec<f64> = views.iter().map(|v| v.seats["seat1"].ready_s).collect();
    assert_eq!(ready, [60.0, 60.0, 30.0]);
    assert_eq!(
        stats.live(c.at(630), &name).seats["seat1"].figures.ready_s,
        600.0
    );
}

#[test]
fn live_waiting_callers_and_reset() {
    let c = Clock::new();
    let mut stats = Stats::new(c.at(0), Duration::from_secs(900));
    feed(
        &mut stats,
        &[
            c.seat(0, 1, SeatState::Ready),
            c.queued(0, 1, "a"),
            c.queued(10, 2, "a"),
            c.queued(20, 3, "b"),
        ],
    );
    let view = stats.live(c.at(30), &name);
    assert_eq!(
        (view.overall.waiting, view.overall.oldest_wait_s),
        (3, Some(30.0))
    );
    assert_eq!(
        (view.queues["a"].waiting, view.queues["a"].oldest_wait_s),
        (2, Some(30.0))
    );
    assert_eq!(
        (view.queues["b"].waiting, view.queues["b"].oldest_wait_s),
        (1, Some(10.0))
    );

    stats.observe(&c.answered(40, 1, "a", 1, 40));
    let view = stats.live(c.at(50), &name);
    assert_eq!(
        (view.overall.waiting, view.overall.oldest_wait_s),
        (2, Some(40.0))
    );
    assert_eq!(
        (view.queues["a"].waiting, view.queues["a"].oldest_wait_s),
        (1, Some(40.0))
    );

    // A new day: counters restart, callers still waiting stay visible.
    stats.reset(c.at(60));
    let view = stats.live(c.at(70), &name);
    assert_eq!((view.since_offset_s, view.period_s), (60.0, 10.0));
    assert_eq!(
        (view.overall.figures.offered, view.overall.figures.answered),
        (0, 0)
    );
    assert_eq!(
        (view.overall.waiting, view.overall.oldest_wait_s),
        (2, Some(60.0))
    );
    assert_eq!(view.queues["a"].figures.offered, 0);
    assert_eq!(view.queues["b"].oldest_wait_s, Some(50.0));
    // Seat time restarts at the reset; its time in state does not.
    let seat = &view.seats["seat1"];
    assert_eq!((seat.figures.ready_s, seat.in_state_s), (10.0, Some(70.0)));
    assert_eq!(seat.figures.answered, 0);

    // Completed in the new day: counted there, by completion time.
    stats.observe(&c.abandoned(80, 2, "a", 70));
    stats.observe(&c.left(80, 3, "b", 60, LeftBecause::NoSeats));
    let view = stats.live(c.at(90), &name);
    assert_eq!(view.queues["a"].figures.abandoned, 1);
    assert_eq!(view.queues["a"].figures.abandon_rate, None);
    assert_eq!(view.queues["b"].figures.left_no_seats, 1);
    assert_eq!(view.overall.waiting, 0);
    // No per-caller state is left once every caller is counted.
    assert!(stats.waiting.is_empty());
    // The intervals are not affected by the reset.
    let views = stats.intervals(c.at(90), &name);
    assert_eq!(
        (views[0].overall.offered, views[0].overall.answered),
        (3, 1)
    );
}

#[test]
fn views_serialize_with_plain_numbers() {
    let c = Clock::new();
    let mut stats = Stats::new(c.at(0), Duration::from_secs(900));
    feed(
        &mut stats,
        &[c.seat(0, 7, SeatState::Ready), c.queued(0, 1, "q")],
    );
    let live = serde_json::to_value(stats.live(c.at(12), &name)).unwrap();
    assert_eq!(live["overall"]["offered"], 1);
    assert_eq!(live["overall"]["waiting"], 1);
    assert_eq!(live["overall"]["oldest_wait_s"], 12.0);
    assert_eq!(live["overall"]["service_level"], 0.0);
    assert!(live["overall"]["avg_wait_s"].is_null());
    assert_eq!(live["queues"]["q"]["offered"], 1);
    assert_eq!(live["seats"]["seat7"]["id"], 7);
    assert_eq!(live["seats"]["seat7"]["state"], "ready");
    assert_eq!(live["seats"]["seat7"]["ready_s"], 12.0);
    assert_eq!(live["all_seats"]["occupancy"], 0.0);

    let intervals = serde_json::to_value(stats.intervals(c.at(12), &name)).unwrap();
    assert_eq!(intervals[0]["start_offset_s"], 0.0);
    assert_eq!(intervals[0]["complete"], false);
    assert_eq!(intervals[0]["overall"]["offered"], 1);
    assert!(intervals[0]["overall"].get("waiting").is_none());
}
