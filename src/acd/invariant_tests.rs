//! Property test: random sequences of seat, caller and clock events (callers waiting for one
//! seat among them), with the distribution's promises checked after every step against a
//! model built only from what it said.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::{
    Acd, AcdAction, AcdEvent, Enqueued, LeftBecause, QueueRules, SeatId, SeatProfile, SeatState,
    Strategy as Routing,
};
use crate::call::CallId;

const SEATS: u8 = 6;
const QUEUES: [&str; 3] = ["water", "roads", "legal"];

/// One input to the distribution; indexes pick among what exists when it runs.
#[derive(Clone, Debug)]
enum Op {
    Enqueue { queue: u8, priority: u8 },
    Pin { seat: u8, queue: u8, priority: u8 },
    LogIn { seat: u8, ready: bool },
    LogOut { seat: u8 },
    Ready { seat: u8 },
    NotReady { seat: u8 },
    Reachable { seat: u8, reachable: bool },
    Answer { pick: u8 },
    AnswerAny { call: u8, seat: u8 },
    Decline { pick: u8 },
    Abandon { pick: u8 },
    Remove { pick: u8 },
    EndCall { pick: u8 },
    Advance { secs: u8 },
    ReloadSeats { changed: bool },
    ReloadQueues { changed: bool },
}

fn op() -> impl Strategy<Value = Op> {
    let seat = 0..SEATS;
    prop_oneof![
        4 => (0..3u8, 0..10u8).prop_map(|(queue, priority)| Op::Enqueue { queue, priority }),
        2 => (seat.clone(), 0..3u8, 0..10u8)
            .prop_map(|(seat, queue, priority)| Op::Pin { seat, queue, priority }),
        3 => (seat.clone(), any::<bool>()).prop_map(|(seat, ready)| Op::LogIn { seat, ready }),
        1 => seat.clone().prop_map(|seat| Op::LogOut { seat }),
        2 => seat.clone().prop_map(|seat| Op::Ready { seat }),
        1 => seat.clone().prop_map(|seat| Op::NotReady { seat }),
        1 => (seat.clone(), any::<bool>())
            .prop_map(|(seat, reachable)| Op::Reachable { seat, reachable }),
        4 => any::<u8>().prop_map(|pick| Op::Answer { pick }),
        1 => (any::<u8>(), seat).prop_map(|(call, seat)| Op::AnswerAny { call, seat }),
        2 => any::<u8>().prop_map(|pick| Op::Decline { pick }),
        1 => any::<u8>().prop_map(|pick| Op::Abandon { pick }),
        1 => any::<u8>().prop_map(|pick| Op::Remove { pick }),
        3 => any::<u8>().prop_map(|pick| Op::EndCall { pick }),
        3 => (1..90u8).prop_map(|secs| Op::Advance { secs }),
        1 => any::<bool>().prop_map(|changed| Op::ReloadSeats { changed }),
        1 => any::<bool>().prop_map(|changed| Op::ReloadQueues { changed }),
    ]
}

fn queues(changed: bool) -> Vec<QueueRules> {
    let s = Duration::from_secs;
    let water = QueueRules {
        min_level: 2,
        strategy: if changed {
            Routing::RingAll
        } else {
            Routing::LongestIdle
        },
        wrap_up: s(10),
        overflow_after: Some(s(40)),
        overflow_to: vec!["roads".into()],
        overflow_experts: true,
        max_wait: Some(s(300)),
        announce_every: Some(s(30)),
        ..QueueRules::new("water", "water")
    };
    let roads = QueueRules {
        strategy: Routing::RoundRobin,
        ..QueueRules::new("roads", "roads")
    };
    let legal = QueueRules {
        experts_only: true,
        strategy: Routing::RingAll,
        ring_timeout: s(20),
        wrap_up: s(5),
        overflow_after: Some(s(60)),
        overflow_to: vec!["water".into()],
        max_wait: Some(s(200)),
        ..QueueRules::new("legal", "legal")
    };
    if changed {
        vec![water, legal]
    } else {
        vec![water, roads, legal]
    }
}

fn seats(changed: bool) -> Vec<SeatProfile> {
    let expert = |p: SeatProfile| SeatProfile { expert: true, ..p };
    let mut seats = vec![
        SeatProfile::new("a", &[("water", 3)]),
        SeatProfile::new("b", &[("water", if changed { 3 } else { 1 }), ("roads", 2)]),
        SeatProfile::new("c", &[("roads", 1)]),
        expert(SeatProfile::new("d", &[("legal", 2), ("water", 1)])),
        expert(SeatProfile::new(
            "e",
            &[("water", 4), ("legal", 1), ("roads", 1)],
        )),
        SeatProfile::new("f", &[("water", 2), ("roads", 3)]),
    ];
    if changed {
        seats.remove(2);
    }
    seats
}

/// Whether `seat` may take a waiting caller of `rules` under the configuration `live` (the
/// queues in force, by name), worked out from the rules alone.
fn can_take(seat: &SeatProfile, rules: &QueueRules, overflowed: bool, live: &[QueueRules]) -> bool {
    let home = |r: &QueueRules| {
        seat.skills.get(&r.skill).is_some_and(|&l| l >= r.min_level)
            && (seat.expert || !r.experts_only)
    };
    if home(rules) {
        return true;
    }
    let overflows =
        rules.overflow_after.is_some() && (!rules.overflow_to.is_empty() || rules.overflow_experts);
    overflows
        && overflowed
        && (rules
            .overflow_to
            .iter()
            .filter(|name| **name != rules.name)
            .filter_map(|name| live.iter().find(|r| &r.name == name))
            .any(home)
            || (rules.overflow_experts && seat.expert && seat.skills.contains_key(&rules.skill)))
}

/// The test's view of the floor, built from the actions and events.
struct Model {
    acd: Acd,
    now: Instant,
    queues: Vec<QueueRules>,
    /// Every queue's last rules, also of removed queues.
    last_rules: HashMap<String, QueueRules>,
    seats: Vec<SeatProfile>,
    seat_ids: Vec<SeatId>,
    next_call: u64,
    /// Queue of each caller that entered one.
    queued: HashMap<CallId, String>,
    /// How each caller left its queue: exactly once.
    outcome: HashMap<CallId, &'static str>,
    /// Seat to the call ringing it.
    offers: BTreeMap<SeatId, CallId>,
    /// Seat to the call it talks to.
    talking: BTreeMap<SeatId, CallId>,
    declined: HashSet<(CallId, SeatId)>,
    /// Callers that waited for one seat alone, with that seat.
    pinned: HashMap<CallId, SeatId>,
}

impl Model {
    fn new() -> Model {
        let now = Instant::now();
        let mut acd = Acd::new();
        acd.set_queues(now, queues(false));
        acd.set_seats(now, seats(false));
        let seat_ids = seats(false)
            .iter()
            .filter_map(|s| acd.seat_id(&s.id))
            .collect();
        let mut model = Model {
            acd,
            now,
            queues: queues(false),
            last_rules: queues(false)
                .into_iter()
                .map(|r| (r.name.clone(), r))
                .collect(),
            seats: seats(false),
            seat_ids,
            next_call: 0,
            queued: HashMap::new(),
            outcome: HashMap::new(),
            offers: BTreeMap::new(),
            talking: BTreeMap::new(),
            declined: HashSet::new(),
            pinned: HashMap::new(),
        };
        model.absorb();
        model
    }

    fn seat(&self, i: u8) -> SeatId {
        self.seat_ids[i as usize % self.seat_ids.len()]
    }

    fn waiting_calls(&self) -> Vec<CallId> {
        let mut calls: Vec<CallId> = self
            .queued
            .keys()
            .filter(|c| !self.outcome.contains_key(c))
            .copied()
            .collect();
        calls.sort();
        calls
    }

    fn pick<T: Copy>(items: &[T], pick: u8) -> Option<T> {
        (!items.is_empty()).then(|| items[pick as usize % items.len()])
    }

    /// The call's seat conversation ends, if it has one.
    fn end_talk(&mut self, call: CallId) {
        self.talking.retain(|_, c| *c != call);
    }

    fn apply(&mut self, op: &Op) {
        let now = self.now;
        match *op {
            Op::Enqueue { queue, priority } => {
                self.next_call += 1;
                let call = CallId(self.next_call);
                let name = QUEUES[queue as usize];
                if self.acd.enqueue(now, call, name, priority) == Enqueued::Waiting {
                    self.queued.insert(call, name.to_string());
                }
            }
            Op::Pin {
                seat,
                queue,
                priority,
            } => {
                self.next_call += 1;
                let call = CallId(self.next_call);
                let (name, seat) = (QUEUES[queue as usize], self.seat(seat));
                let logged_in = self
                    .acd
                    .seat_view(seat)
                    .is_some_and(|v| v.state != SeatState::LoggedOut && !v.logging_out);
                let waits = self.acd.enqueue_for_seat(now, call, name, priority, seat);
                assert_eq!(
                    waits == Enqueued::Waiting,
                    logged_in,
                    "a caller waits for a seat exactly when it is logged in"
                );
                if waits == Enqueued::Waiting {
                    self.queued.insert(call, name.to_string());
                    self.pinned.insert(call, seat);
                }
            }
            Op::LogIn { seat, ready } => {
                let _ = self.acd.log_in(now, self.seat(seat), ready);
            }
            Op::LogOut { seat } => {
                let _ = self.acd.log_out(now, self.seat(seat));
            }
            Op::Ready { seat } => {
                let _ = self.acd.set_ready(now, self.seat(seat));
            }
            Op::NotReady { seat } => {
                let _ = self.acd.set_not_ready(now, self.seat(seat), "break");
            }
            Op::Reachable { seat, reachable } => {
                self.acd.set_reachable(now, self.seat(seat), reachable)
            }
            Op::Answer { pick } => {
                let offers: Vec<_> = self.offers.iter().map(|(&s, &c)| (s, c)).collect();
                if let Some((seat, call)) = Self::pick(&offers, pick) {
                    assert!(
                        self.acd.answered(now, call, seat),
                        "an open offer is answered"
                    );
                    self.offers.remove(&seat);
                    self.talking.insert(seat, call);
                }
            }
            Op::AnswerAny { call, seat } => {
                let (call, seat) = (
                    CallId(u64::from(call) % (self.next_call + 1)),
                    self.seat(seat),
                );
                let open = self.offers.get(&seat) == Some(&call);
                assert_eq!(self.acd.answered(now, call, seat), open);
                if open {
                    self.offers.remove(&seat);
                    self.talking.insert(seat, call);
                }
            }
            Op::Decline { pick } => {
                let offers: Vec<_> = self.offers.iter().map(|(&s, &c)| (s, c)).collect();
                if let Some((seat, call)) = Self::pick(&offers, pick) {
                    self.acd.declined(now, call, seat);
                    self.offers.remove(&seat);
                    self.declined.insert((call, seat));
                }
            }
            Op::Abandon { pick } | Op::Remove { pick } => {
                let mut calls = self.waiting_calls();
                calls.extend(self.talking.values().copied());
                if let Some(call) = Self::pick(&calls, pick) {
                    if matches!(op, Op::Abandon { .. }) {
                        self.acd.abandon(now, call);
                    } else {
                        self.acd.remove(now, call);
                    }
                    self.end_talk(call);
                }
            }
            Op::EndCall { pick } => {
                let calls: Vec<_> = self.talking.values().copied().collect();
                if let Some(call) = Self::pick(&calls, pick) {
                    self.acd.call_ended(now, call);
                    self.end_talk(call);
                }
            }
            Op::Advance { secs } => {
                let target = now + Duration::from_secs(u64::from(secs));
                while let Some(due) = self.acd.poll_timeout().filter(|&d| d <= target) {
                    self.now = due.max(self.now);
                    self.acd.handle_timeout(self.now);
                    self.absorb();
                    self.check();
                }
                self.now = target;
            }
            Op::ReloadSeats { changed } => {
                self.seats = seats(changed);
                self.acd.set_seats(now, self.seats.clone());
            }
            Op::ReloadQueues { changed } => {
                self.queues = queues(changed);
                for rules in &self.queues {
                    self.last_rules.insert(rules.name.clone(), rules.clone());
                }
                self.acd.set_queues(now, self.queues.clone());
            }
        }
        self.absorb();
        self.check();
    }

    /// Takes in what the distribution said, checking each action as it comes.
    fn absorb(&mut self) {
        while let Some(action) = self.acd.poll_action() {
            match action {
                AcdAction::Offer { call, seats } => {
                    assert!(!seats.is_empty());
                    assert!(
                        !self.offers.values().any(|&c| c == call),
                        "{call:?} offered while already ringing"
                    );
                    let queue = &self.queued[&call];
                    if let Some(&seat) = self.pinned.get(&call) {
                        assert_eq!(seats, [seat], "a caller for one seat rings only that seat");
                    }
                    if seats.len() > 1 {
                        assert_eq!(self.last_rules[queue].strategy, Routing::RingAll);
                    }
                    for seat in seats {
                        assert!(!self.offers.contains_key(&seat), "{seat:?} rung twice");
                        assert!(!self.talking.contains_key(&seat), "{seat:?} rung on a call");
                        assert!(
                            !self.declined.contains(&(call, seat)),
                            "declined caller again"
                        );
                        self.offers.insert(seat, call);
                    }
                }
                AcdAction::StopRinging { call, seat } => {
                    assert_eq!(self.offers.remove(&seat), Some(call), "stop of no offer");
                }
                AcdAction::WaitedTooLong { call } | AcdAction::NoSeats { call } => {
                    assert!(self.queued.contains_key(&call));
                    assert!(
                        !self.pinned.contains_key(&call),
                        "a pinned caller has no queue"
                    );
                }
                AcdAction::NotTaken { call, why } => {
                    assert!(
                        self.pinned.contains_key(&call),
                        "{call:?} waited for no seat"
                    );
                    assert!(
                        ["declined", "no-answer", "logged-out", "not-ready"].contains(&why),
                        "{why}"
                    );
                    assert!(
                        !self.offers.values().any(|&c| c == call),
                        "a caller the seat did not take still rings"
                    );
                }
                AcdAction::Announce { call, position, .. } => {
                    assert!(position >= 1);
                    assert!(!self.outcome.contains_key(&call));
                }
            }
        }
        while let Some(event) = self.acd.poll_event() {
            let (call, outcome) = match event {
                AcdEvent::Answered { call, .. } => (call, "answered"),
                AcdEvent::Abandoned { call, .. } => (call, "abandoned"),
                AcdEvent::LeftQueue { call, because, .. } => (
                    call,
                    match because {
                        LeftBecause::MaxWait => "max-wait",
                        LeftBecause::NoSeats => "no-seats",
                        LeftBecause::Removed => "removed",
                        LeftBecause::NotTaken => {
                            assert!(self.pinned.contains_key(&call));
                            "not-taken"
                        }
                    },
                ),
                AcdEvent::Queued { call, .. } => {
                    assert!(self.queued.contains_key(&call) || call.0 == self.next_call);
                    continue;
                }
                _ => continue,
            };
            assert!(
                self.outcome.insert(call, outcome).is_none(),
                "{call:?} left its queue twice"
            );
            if outcome != "answered" {
                assert!(
                    !self.offers.values().any(|&c| c == call),
                    "gone caller still rings"
                );
            }
        }
    }

    /// The promises, after a step.
    fn check(&self) {
        let mut in_views = HashMap::new();
        for view in self.acd.queues() {
            for w in view.waiting {
                assert!(
                    in_views.insert(w.call, w.clone()).is_none(),
                    "caller in two queues"
                );
                assert_eq!(self.queued.get(&w.call), Some(&view.name));
            }
        }
        for call in self.queued.keys() {
            let waiting = match self.pinned.get(call) {
                Some(&seat) => {
                    assert!(
                        !in_views.contains_key(call),
                        "a pinned caller is in no queue"
                    );
                    let waits_for = self.acd.pinned_to(*call);
                    assert!(waits_for.is_none() || waits_for == Some(seat));
                    waits_for.is_some()
                }
                None => in_views.contains_key(call),
            };
            assert!(
                self.outcome.contains_key(call) != waiting,
                "{call:?} must be either waiting or gone, once"
            );
        }
        for (call, &seat) in &self.pinned {
            let waiting = !self.outcome.contains_key(call);
            let ringing = self.offers.values().any(|c| c == call);
            let view = self.acd.seat_view(seat).expect("seat");
            if waiting && !ringing {
                assert!(
                    !(view.state == SeatState::Ready && view.reachable),
                    "ready {} and {call:?} waiting for it left apart",
                    view.name
                );
                assert!(
                    view.state != SeatState::LoggedOut && !view.logging_out,
                    "{call:?} waits for {}, which logged out",
                    view.name
                );
            }
        }
        for (&seat, &call) in &self.talking {
            assert_eq!(self.outcome.get(&call), Some(&"answered"));
            assert!(!self.offers.contains_key(&seat));
        }
        for &seat in &self.seat_ids {
            let view = self.acd.seat_view(seat).expect("seat");
            match view.state {
                SeatState::Ringing => assert_eq!(view.call, self.offers.get(&seat).copied()),
                SeatState::OnCall => assert_eq!(view.call, self.talking.get(&seat).copied()),
                _ => {
                    assert!(!self.offers.contains_key(&seat) && !self.talking.contains_key(&seat))
                }
            }
            if view.state != SeatState::Ready || !view.reachable {
                continue;
            }
            let Some(profile) = self.seats.iter().find(|p| p.id == view.name) else {
                continue;
            };
            for w in in_views.values().filter(|w| w.ringing.is_empty()) {
                let rules = &self.last_rules[&self.queued[&w.call]];
                let able = can_take(profile, rules, w.overflowed, &self.queues);
                assert!(
                    !able || self.declined.contains(&(w.call, seat)),
                    "ready {} and waiting {:?} left apart",
                    view.name,
                    w.call
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_distribution_keeps_its_promises(ops in proptest::collection::vec(op(), 1..80)) {
        let mut model = Model::new();
        for op in &ops {
            model.apply(op);
        }
    }
}
