//! Scenario tests of the call distribution, in virtual time.

use std::time::{Duration, Instant};

use super::*;
use crate::call::CallId;

const S: Duration = Duration::from_secs(1);

/// A call centre floor driven in virtual time, collecting what the distribution says.
struct Floor {
    acd: Acd,
    t0: Instant,
    now: Instant,
    actions: Vec<AcdAction>,
    events: Vec<AcdEvent>,
}

impl Floor {
    fn new(queues: Vec<QueueRules>, seats: Vec<SeatProfile>) -> Floor {
        let t0 = Instant::now();
        let mut acd = Acd::new();
        acd.set_queues(t0, queues);
        acd.set_seats(t0, seats);
        let mut floor = Floor {
            acd,
            t0,
            now: t0,
            actions: Vec::new(),
            events: Vec::new(),
        };
        floor.drain();
        floor
    }

    fn drain(&mut self) {
        while let Some(a) = self.acd.poll_action() {
            self.actions.push(a);
        }
        while let Some(e) = self.acd.poll_event() {
            self.events.push(e);
        }
    }

    /// Moves the clock to `secs` after the start, firing what is due on the way.
    fn at(&mut self, secs: u64) {
        let target = self.t0 + Duration::from_secs(secs);
        while let Some(due) = self.acd.poll_timeout().filter(|&d| d <= target) {
            self.now = due.max(self.now);
            self.acd.handle_timeout(self.now);
        }
        self.now = target;
        self.drain();
    }

    fn seat(&self, name: &str) -> SeatId {
        self.acd.seat_id(name).expect("seat exists")
    }

    fn log_in(&mut self, names: &[&str]) {
        for name in names {
            let seat = self.seat(name);
            self.acd.log_in(self.now, seat, true).expect("logs in");
        }
        self.drain();
    }

    fn enqueue(&mut self, call: u64, queue: &str, priority: u8) -> Enqueued {
        let r = self.acd.enqueue(self.now, CallId(call), queue, priority);
        self.drain();
        r
    }

    fn answer(&mut self, call: u64, seat: &str) -> bool {
        let seat = self.seat(seat);
        let r = self.acd.answered(self.now, CallId(call), seat);
        self.drain();
        r
    }

    fn end(&mut self, call: u64) {
        self.acd.call_ended(self.now, CallId(call));
        self.drain();
    }

    /// The offers made since the last call, as (call, seat names).
    fn offers(&mut self) -> Vec<(u64, Vec<String>)> {
        let offers = self
            .actions
            .iter()
            .filter_map(|a| match a {
                AcdAction::Offer { call, seats } => Some((
                    call.0,
                    seats
                        .iter()
                        .map(|&s| self.acd.seat_name(s).to_string())
                        .collect(),
                )),
                _ => None,
            })
            .collect();
        self.actions
            .retain(|a| !matches!(a, AcdAction::Offer { .. }));
        offers
    }

    fn take_actions(&mut self) -> Vec<AcdAction> {
        std::mem::take(&mut self.actions)
    }

    fn state(&self, name: &str) -> SeatState {
        self.acd
            .seat_state(self.seat(name))
            .cloned()
            .expect("seat exists")
    }
}

fn one(call: u64, seat: &str) -> Vec<(u64, Vec<String>)> {
    vec![(call, vec![seat.to_string()])]
}

fn queue(name: &str, strategy: Strategy) -> QueueRules {
    QueueRules {
        strategy,
        ..QueueRules::new(name, name)
    }
}

fn expert(id: &str, skills: &[(&str, u8)]) -> SeatProfile {
    SeatProfile {
        expert: true,
        ..SeatProfile::new(id, skills)
    }
}

#[test]
fn longest_idle_takes_the_highest_level_then_the_longest_ready() {
    let seats = vec![
        SeatProfile::new("a", &[("water", 2)]),
        SeatProfile::new("b", &[("water", 3)]),
        SeatProfile::new("c", &[("water", 3)]),
    ];
    let mut f = Floor::new(vec![queue("water", Strategy::LongestIdle)], seats);
    f.log_in(&["a"]);
    f.at(1);
    f.log_in(&["c"]);
    f.at(2);
    f.log_in(&["b"]);
    f.enqueue(1, "water", 0);
    assert_eq!(f.offers(), one(1, "c"));
    f.enqueue(2, "water", 0);
    assert_eq!(f.offers(), one(2, "b"));
    f.enqueue(3, "water", 0);
    assert_eq!(f.offers(), one(3, "a"));
    assert_eq!(f.state("a"), SeatState::Ringing);
}

#[test]
fn min_level_keeps_junior_seats_out() {
    let rules = QueueRules {
        min_level: 3,
        ..queue("tax", Strategy::LongestIdle)
    };
    let seats = vec![
        SeatProfile::new("junior", &[("tax", 2)]),
        SeatProfile::new("senior", &[("tax", 4)]),
        SeatProfile::new("other", &[("water", 5)]),
    ];
    let mut f = Floor::new(vec![rules], seats);
    f.log_in(&["junior", "other"]);
    assert_eq!(f.enqueue(1, "tax", 0), Enqueued::NoSeats);
    assert_eq!(f.enqueue(2, "nowhere", 0), Enqueued::NoSeats);
    f.log_in(&["senior"]);
    assert_eq!(f.enqueue(3, "tax", 0), Enqueued::Waiting);
    assert_eq!(f.offers(), one(3, "senior"));
    assert_eq!(f.enqueue(4, "tax", 0), Enqueued::Waiting);
    assert!(f.offers().is_empty(), "the junior seat is never offered");
}

#[test]
fn round_robin_rotates_through_the_seats() {
    let seats = ["a", "b", "c"].map(|n| SeatProfile::new(n, &[("roads", 1)]));
    let mut f = Floor::new(vec![queue("roads", Strategy::RoundRobin)], seats.to_vec());
    f.log_in(&["c", "b", "a"]);
    let mut order = Vec::new();
    for call in 1..=5 {
        f.enqueue(call, "roads", 0);
        let offers = f.offers();
        let seat = offers[0].1[0].clone();
        assert!(f.answer(call, &seat));
        f.end(call);
        order.push(seat);
    }
    assert_eq!(order, ["a", "b", "c", "a", "b"]);
}

#[test]
fn ring_all_rings_everyone_and_the_first_answer_wins() {
    let seats = ["a", "b", "c"].map(|n| SeatProfile::new(n, &[("help", 1)]));
    let mut f = Floor::new(vec![queue("help", Strategy::RingAll)], seats.to_vec());
    f.log_in(&["a", "b", "c"]);
    f.enqueue(1, "help", 0);
    assert_eq!(
        f.offers(),
        vec![(1, vec!["a".into(), "b".into(), "c".into()])]
    );
    assert!(f.answer(1, "b"));
    let stops: Vec<_> = f
        .take_actions()
        .into_iter()
        .filter_map(|a| match a {
            AcdAction::StopRinging { call, seat } => {
                Some((call.0, f.acd.seat_name(seat).to_string()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(stops, [(1, "a".to_string()), (1, "c".to_string())]);
    assert!(!f.answer(1, "a"), "second answer is too late");
    assert_eq!(f.state("a"), SeatState::Ready);
    assert_eq!(f.state("b"), SeatState::OnCall);
    let ended = f.events.iter().filter(|e| {
        matches!(
            e,
            AcdEvent::OfferEnded {
                outcome: "answered-elsewhere",
                ..
            }
        )
    });
    assert_eq!(ended.count(), 2);
}

#[test]
fn expert_queues_take_only_expert_seats() {
    let rules = QueueRules {
        experts_only: true,
        ..queue("legal", Strategy::LongestIdle)
    };
    let seats = vec![
        SeatProfile::new("clerk", &[("legal", 5)]),
        expert("lawyer", &[("legal", 1)]),
    ];
    let mut f = Floor::new(vec![rules], seats);
    f.log_in(&["clerk"]);
    assert_eq!(f.enqueue(1, "legal", 0), Enqueued::NoSeats);
    f.log_in(&["lawyer"]);
    f.enqueue(2, "legal", 0);
    assert_eq!(f.offers(), one(2, "lawyer"));
}

#[test]
fn higher_priority_first_then_first_come() {
    let mut f = Floor::new(
        vec![queue("water", Strategy::LongestIdle)],
        vec![SeatProfile::new("a", &[("water", 1)])],
    );
    let a = f.seat("a");
    f.acd.log_in(f.now, a, false).expect("logs in");
    for (call, priority) in [(1, 0), (2, 5), (3, 5), (4, 9)] {
        f.at(call);
        f.enqueue(call, "water", priority);
    }
    let positions: Vec<_> = f.acd.waiting("water").iter().map(|w| w.call.0).collect();
    assert_eq!(positions, [4, 2, 3, 1]);
    f.acd.set_ready(f.now, a).expect("ready");
    f.drain();
    let mut served = Vec::new();
    for _ in 0..4 {
        let call = f.offers()[0].0;
        assert!(f.answer(call, "a"));
        f.end(call);
        served.push(call);
    }
    assert_eq!(served, [4, 2, 3, 1]);
}

#[test]
fn overflow_opens_other_groups_and_experts_only_after_the_wait() {
    let water = QueueRules {
        min_level: 3,
        overflow_after: Some(60 * S),
        overflow_to: vec!["roads".into()],
        overflow_experts: true,
        ..queue("water", Strategy::LongestIdle)
    };
    let seats = vec![
        SeatProfile::new("w", &[("water", 3)]),
        SeatProfile::new("r", &[("roads", 1)]),
        expert("x", &[("water", 1)]),
    ];
    let mut f = Floor::new(vec![water, queue("roads", Strategy::LongestIdle)], seats);
    f.log_in(&["w", "r"]);
    let w = f.seat("w");
    f.acd.set_not_ready(f.now, w, "break").expect("break");
    f.enqueue(1, "water", 0);
    f.at(59);
    assert!(f.offers().is_empty());
    assert!(!f
        .events
        .iter()
        .any(|e| matches!(e, AcdEvent::Overflowed { .. })));
    f.at(60);
    assert!(f
        .events
        .iter()
        .any(|e| matches!(e, AcdEvent::Overflowed { .. })));
    assert_eq!(f.offers(), one(1, "r"));
    assert!(f.answer(1, "r"));
    // An overflowed caller is also taken by an expert seat becoming ready.
    f.enqueue(2, "water", 0);
    f.at(130);
    assert!(f.offers().is_empty());
    f.log_in(&["x"]);
    assert_eq!(f.offers(), one(2, "x"));
}

#[test]
fn a_seat_becoming_ready_takes_the_best_caller_of_all_its_queues() {
    let water = QueueRules {
        overflow_after: Some(10 * S),
        overflow_to: vec!["roads".into()],
        ..queue("water", Strategy::LongestIdle)
    };
    let seats = vec![
        SeatProfile::new("w", &[("water", 1)]),
        SeatProfile::new("r", &[("roads", 1)]),
    ];
    let mut f = Floor::new(vec![water, queue("roads", Strategy::LongestIdle)], seats);
    let (w, r) = (f.seat("w"), f.seat("r"));
    f.acd.log_in(f.now, w, false).expect("logs in");
    f.acd.log_in(f.now, r, false).expect("logs in");
    f.enqueue(1, "water", 0);
    f.at(5);
    f.enqueue(2, "roads", 0);
    f.at(8);
    f.acd.set_ready(f.now, r).expect("ready");
    f.drain();
    assert_eq!(f.offers(), one(2, "r"), "not overflowed yet: its own queue");
    assert!(f.answer(2, "r"));
    f.end(2);
    assert!(f.offers().is_empty());
    f.at(10);
    assert_eq!(
        f.offers(),
        one(1, "r"),
        "overflowed: taken by the roads seat"
    );
}

#[test]
fn max_wait_takes_the_caller_out() {
    let rules = QueueRules {
        max_wait: Some(120 * S),
        ..queue("water", Strategy::LongestIdle)
    };
    let mut f = Floor::new(vec![rules], vec![SeatProfile::new("a", &[("water", 1)])]);
    let a = f.seat("a");
    f.acd.log_in(f.now, a, false).expect("logs in");
    f.enqueue(1, "water", 0);
    f.at(119);
    assert!(f.take_actions().is_empty());
    f.at(120);
    assert_eq!(
        f.take_actions(),
        [AcdAction::WaitedTooLong { call: CallId(1) }]
    );
    assert!(f.events.iter().any(|e| matches!(
        e,
        AcdEvent::LeftQueue { because: LeftBecause::MaxWait, waited, .. } if *waited == 120 * S
    )));
    assert!(f.acd.waiting("water").is_empty());
}

#[test]
fn announcements_give_position_and_computed_wait() {
    let rules = QueueRules {
        announce_every: Some(30 * S),
        wrap_up: 30 * S,
        ..queue("water", Strategy::LongestIdle)
    };
    let mut f = Floor::new(vec![rules], vec![SeatProfile::new("a", &[("water", 1)])]);
    f.log_in(&["a"]);
    f.enqueue(1, "water", 0);
    assert!(f.answer(1, "a"));
    f.enqueue(2, "water", 0);
    f.at(10);
    f.enqueue(3, "water", 0);
    f.take_actions();
    f.at(30);
    // No handled call yet: the default handle time; one staffed seat (on a call).
    let first = AcdAction::Announce {
        call: CallId(2),
        position: 1,
        estimated_wait: DEFAULT_HANDLE_TIME,
    };
    assert_eq!(f.take_actions(), [first]);
    f.at(40);
    let third = AcdAction::Announce {
        call: CallId(3),
        position: 2,
        estimated_wait: 2 * DEFAULT_HANDLE_TIME,
    };
    assert_eq!(f.take_actions(), [third]);
    // Talk 50 s, then 30 s of wrap-up: counted once the wrap-up is over.
    f.at(50);
    f.end(1);
    f.at(59);
    assert_eq!(f.acd.estimated_wait(CallId(2)), Some(DEFAULT_HANDLE_TIME));
    f.at(60);
    assert_eq!(
        f.take_actions(),
        [AcdAction::Announce {
            call: CallId(2),
            position: 1,
            estimated_wait: DEFAULT_HANDLE_TIME,
        }]
    );
    f.at(80);
    assert_eq!(f.offers(), one(2, "a"));
    assert_eq!(f.acd.queues()[0].average_handle_time, 80 * S);
    // The ringing caller still counts ahead; the ringing seat is staffed.
    assert_eq!(f.acd.position(CallId(3)), Some(2));
    assert_eq!(f.acd.estimated_wait(CallId(3)), Some(160 * S));
}

#[test]
fn ring_no_answer_sends_the_seat_to_not_ready_and_the_caller_back_to_the_head() {
    let mut f = Floor::new(
        vec![queue("water", Strategy::LongestIdle)],
        vec![
            SeatProfile::new("a", &[("water", 1)]),
            SeatProfile::new("b", &[("water", 1)]),
        ],
    );
    f.log_in(&["a"]);
    f.enqueue(1, "water", 0);
    assert_eq!(f.offers(), one(1, "a"));
    f.at(1);
    f.enqueue(2, "water", 0);
    f.at(14);
    assert_eq!(f.state("a"), SeatState::Ringing);
    f.at(15);
    assert_eq!(
        f.take_actions(),
        [AcdAction::StopRinging {
            call: CallId(1),
            seat: f.seat("a"),
        }]
    );
    assert_eq!(f.state("a"), SeatState::NotReady(NO_ANSWER.into()));
    let order: Vec<_> = f.acd.waiting("water").iter().map(|w| w.call.0).collect();
    assert_eq!(
        order,
        [1, 2],
        "the unanswered caller keeps its place at the head"
    );
    f.log_in(&["b"]);
    assert_eq!(f.offers(), one(1, "b"));
}

#[test]
fn a_late_answer_after_the_ring_timeout_makes_the_seat_ready() {
    let mut f = Floor::new(
        vec![queue("water", Strategy::LongestIdle)],
        vec![SeatProfile::new("a", &[("water", 1)])],
    );
    f.log_in(&["a"]);
    f.enqueue(1, "water", 0);
    f.at(15);
    assert_eq!(f.state("a"), SeatState::NotReady(NO_ANSWER.into()));
    assert!(!f.answer(1, "a"));
    assert_eq!(
        f.state("a"),
        SeatState::Ringing,
        "ready again, and offered the caller anew"
    );
    assert!(f.answer(1, "a"));
}

#[test]
fn a_seat_logging_out_while_ringing_passes_the_caller_on() {
    let mut f = Floor::new(
        vec![queue("water", Strategy::LongestIdle)],
        vec![
            SeatProfile::new("a", &[("water", 1)]),
            SeatProfile::new("b", &[("water", 1)]),
        ],
    );
    f.log_in(&["a"]);
    f.at(1);
    f.log_in(&["b"]);
    f.enqueue(1, "water", 0);
    assert_eq!(f.offers(), one(1, "a"));
    let a = f.seat("a");
    f.acd.log_out(f.now, a).expect("logs out");
    f.drain();
    assert_eq!(f.state("a"), SeatState::LoggedOut);
    assert_eq!(f.offers(), one(1, "b"));
    assert!(f.take_actions().contains(&AcdAction::StopRinging {
        call: CallId(1),
        seat: a
    }));
    // The last able seat going: the waiting caller leaves with no seats.
    assert!(f.answer(1, "b"));
    f.enqueue(2, "water", 0);
    let b = f.seat("b");
    f.acd.log_out(f.now, b).expect("log-out pending");
    f.drain();
    assert_eq!(f.take_actions(), [AcdAction::NoSeats { call: CallId(2) }]);
    assert_eq!(f.state("b"), SeatState::OnCall);
    f.end(1);
    assert_eq!(f.state("b"), SeatState::LoggedOut);
}

#[test]
fn wrap_up_ends_on_time_or_early() {
    let rules = QueueRules {
        wrap_up: 30 * S,
        ..queue("water", Strategy::LongestIdle)
    };
    let mut f = Floor::new(vec![rules], vec![SeatProfile::new("a", &[("water", 1)])]);
    f.log_in(&["a"]);
    f.enqueue(1, "water", 0);
    assert_eq!(f.offers(), one(1, "a"));
    assert!(f.answer(1, "a"));
    f.at(100);
    f.end(1);
    assert!(matches!(
        f.events.iter().rev().find(|e| matches!(e, AcdEvent::TalkEnded { .. })),
        Some(AcdEvent::TalkEnded { talked, .. }) if *talked == 100 * S
    ));
    f.enqueue(2, "water", 0);
    f.at(129);
    assert_eq!(f.state("a"), SeatState::WrapUp);
    f.at(130);
    assert_eq!(
        f.offers(),
        one(2, "a"),
        "ready after wrap-up, takes the waiting caller"
    );
    assert!(f.answer(2, "a"));
    f.end(2);
    f.at(135);
    let a = f.seat("a");
    f.acd.set_ready(f.now, a).expect("ends wrap-up early");
    f.drain();
    assert_eq!(f.state("a"), SeatState::Ready);
    let changes: Vec<_> = f
        .events
        .iter()
        .filter_map(|e| match e {
            AcdEvent::SeatChanged { at, state, .. } => Some((*at - f.t0, state.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes[changes.len() - 3..],
        [
            (130 * S, "on-call"),
            (130 * S, "wrap-up"),
            (135 * S, "ready")
        ]
    );
}

#[test]
fn a_declined_caller_goes_to_the_next_seat_and_never_back() {
    let mut f = Floor::new(
        vec![queue("water", Strategy::LongestIdle)],
        vec![
            SeatProfile::new("a", &[("water", 1)]),
            SeatProfile::new("b", &[("water", 1)]),
        ],
    );
    f.log_in(&["a"]);
    f.enqueue(1, "water", 0);
    f.enqueue(2, "water", 0);
    assert_eq!(f.offers(), one(1, "a"));
    let a = f.seat("a");
    f.acd.declined(f.now, CallId(1), a);
    f.drain();
    assert_eq!(
        f.offers(),
        one(2, "a"),
        "a stays ready and takes the next caller"
    );
    assert!(!f
        .take_actions()
        .iter()
        .any(|x| matches!(x, AcdAction::StopRinging { .. })));
    f.acd.declined(f.now, CallId(2), a);
    f.drain();
    assert!(f.offers().is_empty());
    assert_eq!(f.state("a"), SeatState::Ready);
    f.log_in(&["b"]);
    assert_eq!(f.offers(), one(1, "b"));
}

#[test]
fn reloading_seats_adds_changes_and_removes_them() {
    let queues = vec![
        queue("water", Strategy::LongestIdle),
        queue("roads", Strategy::LongestIdle),
    ];
    let mut f = Floor::new(
        queues,
        vec![
            SeatProfile::new("a", &[("water", 1)]),
            SeatProfile::new("b", &[("water", 1)]),
        ],
    );
    f.log_in(&["a", "b"]);
    f.enqueue(1, "water", 0);
    let first = f.offers()[0].1[0].clone();
    assert!(f.answer(1, &first));
    let other = if first == "a" { "b" } else { "a" };
    // The talking seat and the idle one are removed; a new roads seat appears.
    f.acd
        .set_seats(f.now, vec![SeatProfile::new("c", &[("roads", 1)])]);
    f.drain();
    assert_eq!(f.state(&first), SeatState::OnCall);
    assert_eq!(f.state(other), SeatState::LoggedOut);
    assert_eq!(f.enqueue(2, "water", 0), Enqueued::NoSeats);
    f.end(1);
    assert_eq!(f.state(&first), SeatState::LoggedOut);
    let removed = f.seat(&first);
    assert_eq!(f.acd.log_in(f.now, removed, true), Err(AcdError::Removed));
    f.log_in(&["c"]);
    f.enqueue(3, "roads", 0);
    assert_eq!(f.offers(), one(3, "c"));
    // Skills change: c now serves water too, and keeps its slot.
    let c = f.seat("c");
    f.acd.set_seats(
        f.now,
        vec![SeatProfile::new("c", &[("roads", 1), ("water", 2)])],
    );
    assert_eq!(f.seat("c"), c);
    assert!(f.answer(3, "c"));
    f.end(3);
    f.enqueue(4, "water", 0);
    assert_eq!(f.offers(), one(4, "c"));
}

#[test]
fn reloading_queues_keeps_the_callers_of_a_removed_queue() {
    let mut f = Floor::new(
        vec![
            queue("water", Strategy::LongestIdle),
            queue("roads", Strategy::LongestIdle),
        ],
        vec![SeatProfile::new("a", &[("water", 1), ("roads", 1)])],
    );
    let a = f.seat("a");
    f.acd.log_in(f.now, a, false).expect("logs in");
    f.enqueue(1, "water", 0);
    f.enqueue(2, "roads", 0);
    let roads = QueueRules {
        max_wait: Some(100 * S),
        ..queue("roads", Strategy::LongestIdle)
    };
    f.acd.set_queues(f.now, vec![roads]);
    f.drain();
    assert_eq!(f.enqueue(3, "water", 0), Enqueued::NoSeats, "water is gone");
    assert_eq!(f.acd.waiting("water").len(), 1, "its caller still waits");
    f.acd.set_ready(f.now, a).expect("ready");
    f.drain();
    assert_eq!(f.offers(), one(1, "a"), "served under its last rules");
    f.at(100);
    assert!(
        f.take_actions()
            .contains(&AcdAction::WaitedTooLong { call: CallId(2) }),
        "the new rules apply"
    );
}

// ---------------------------------------------------------------------------------------------
// Callers waiting for one seat (a transfer to that seat).
// ---------------------------------------------------------------------------------------------

impl Floor {
    fn pin(&mut self, call: u64, queue: &str, seat: &str) -> Enqueued {
        let seat = self.seat(seat);
        let r = self
            .acd
            .enqueue_for_seat(self.now, CallId(call), queue, 0, seat);
        self.drain();
        r
    }

    /// The `NotTaken` actions since the test last looked, as (call, why).
    fn not_taken(&mut self) -> Vec<(u64, &'static str)> {
        let found = self
            .actions
            .iter()
            .filter_map(|a| match a {
                AcdAction::NotTaken { call, why } => Some((call.0, *why)),
                _ => None,
            })
            .collect();
        self.actions
            .retain(|a| !matches!(a, AcdAction::NotTaken { .. }));
        found
    }
}

/// Two seats of `water`, both logged in and ready, `a` ready the longest.
fn two_ready_seats() -> Floor {
    let mut f = Floor::new(
        vec![queue("water", Strategy::LongestIdle)],
        vec![
            SeatProfile::new("a", &[("water", 1)]),
            SeatProfile::new("b", &[("water", 1)]),
        ],
    );
    f.log_in(&["a"]);
    f.at(1);
    f.log_in(&["b"]);
    f
}

#[test]
fn a_caller_for_one_seat_rings_that_seat_only() {
    let mut f = two_ready_seats();
    assert_eq!(f.pin(1, "water", "b"), Enqueued::Waiting);
    assert_eq!(
        f.offers(),
        one(1, "b"),
        "not a, although a is ready the longest"
    );
    assert!(
        f.acd.waiting("water").is_empty(),
        "not in the queue's order: nobody else takes it"
    );
    assert_eq!(f.acd.pinned_to(CallId(1)), Some(f.seat("b")));
    assert!(f.answer(1, "b"));
    assert_eq!(f.state("b"), SeatState::OnCall);
    assert_eq!(f.acd.pinned_to(CallId(1)), None);
    // It was answered in the queue's name: queued, offered, answered there.
    let answered = f.events.iter().any(
        |e| matches!(e, AcdEvent::Answered { call, queue, .. } if call.0 == 1 && queue == "water"),
    );
    assert!(answered, "{:?}", f.events);
}

#[test]
fn a_caller_for_a_busy_seat_waits_for_it_ahead_of_the_queue() {
    let mut f = two_ready_seats();
    f.enqueue(1, "water", 0);
    assert_eq!(f.offers(), one(1, "a"));
    assert!(f.answer(1, "a"));
    // a talks; a caller waits for a alone, another in the queue with a higher priority.
    assert_eq!(f.pin(2, "water", "a"), Enqueued::Waiting);
    f.acd
        .set_not_ready(f.now, f.seat("b"), "break")
        .expect("break");
    f.enqueue(3, "water", 9);
    assert!(f.offers().is_empty(), "a is busy, b on a break");
    f.at(5);
    f.end(1);
    assert_eq!(
        f.offers(),
        one(2, "a"),
        "free again, a takes the caller waiting for it first"
    );
    assert!(f.not_taken().is_empty());
}

#[test]
fn a_seat_not_ready_within_the_ring_timeout_does_not_take_the_caller() {
    let mut f = two_ready_seats();
    let b = f.seat("b");
    f.acd.set_not_ready(f.now, b, "break").expect("break");
    f.drain();
    assert_eq!(f.pin(1, "water", "b"), Enqueued::Waiting);
    f.at(15);
    assert!(f.offers().is_empty(), "a, ready, is never offered it");
    assert!(f.not_taken().is_empty());
    f.at(16);
    assert_eq!(f.not_taken(), [(1, "not-ready")]);
    assert!(f.events.iter().any(|e| matches!(
        e,
        AcdEvent::LeftQueue { call, because: LeftBecause::NotTaken, waited, .. }
            if call.0 == 1 && *waited == 15 * S
    )));
    assert_eq!(f.acd.pinned_to(CallId(1)), None);
    // Ready now, b is not offered the caller that left.
    f.acd.set_ready(f.now, b).expect("ready");
    f.drain();
    assert!(f.offers().is_empty());
}

#[test]
fn a_seat_declining_letting_it_ring_or_logging_out_does_not_take_the_caller() {
    let mut f = two_ready_seats();
    let (a, b) = (f.seat("a"), f.seat("b"));
    f.pin(1, "water", "b");
    assert_eq!(f.offers(), one(1, "b"));
    f.acd.declined(f.now, CallId(1), b);
    f.drain();
    assert_eq!(f.not_taken(), [(1, "declined")]);
    assert_eq!(f.state("b"), SeatState::Ready, "declining, b stays ready");
    assert!(f.offers().is_empty(), "and a is not offered the caller");

    f.pin(2, "water", "b");
    assert_eq!(f.offers(), one(2, "b"));
    f.at(16);
    assert_eq!(f.not_taken(), [(2, "no-answer")]);
    assert_eq!(f.state("b"), SeatState::NotReady(NO_ANSWER.into()));
    assert!(f.take_actions().contains(&AcdAction::StopRinging {
        call: CallId(2),
        seat: b
    }));

    // Waiting for a while a talks, then a logs out: the caller will not be taken.
    f.enqueue(3, "water", 0);
    assert_eq!(f.offers(), one(3, "a"));
    assert!(f.answer(3, "a"));
    f.pin(4, "water", "a");
    f.acd.log_out(f.now, a).expect("logs out after its call");
    f.drain();
    assert_eq!(f.not_taken(), [(4, "logged-out")]);
    // Ringing when it logs out, the same.
    f.acd.set_ready(f.now, b).expect("ready");
    f.drain();
    f.pin(5, "water", "b");
    assert_eq!(f.offers(), one(5, "b"));
    f.acd.log_out(f.now, b).expect("logs out");
    f.drain();
    assert_eq!(f.not_taken(), [(5, "logged-out")]);
    assert!(f.offers().is_empty());
}

#[test]
fn only_a_logged_in_seat_can_be_waited_for() {
    let mut f = two_ready_seats();
    let b = f.seat("b");
    f.acd.log_out(f.now, b).expect("logs out");
    f.drain();
    assert_eq!(f.pin(1, "water", "b"), Enqueued::NoSeats);
    assert_eq!(f.pin(2, "nowhere", "a"), Enqueued::NoSeats);
    assert!(f.offers().is_empty() && f.not_taken().is_empty());
    assert_eq!(f.acd.pinned_to(CallId(1)), None);
    // A caller hanging up while it waits for its seat has abandoned.
    f.enqueue(3, "water", 0);
    assert_eq!(f.offers(), one(3, "a"));
    assert!(f.answer(3, "a"));
    f.pin(4, "water", "a");
    f.acd.abandon(f.now, CallId(4));
    f.drain();
    assert!(f
        .events
        .iter()
        .any(|e| matches!(e, AcdEvent::Abandoned { call, .. } if call.0 == 4)));
    f.end(3);
    assert!(
        f.offers().is_empty(),
        "a is not offered the caller that left"
    );
}
