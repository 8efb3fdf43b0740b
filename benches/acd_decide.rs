//! The call distribution's choices on a full floor: 1,000 seats across five skill groups and
//! 1,000 callers waiting.
//!
//! `cargo bench --bench acd_decide`. Two figures, each a whole switch round trip through the
//! public API (so an upper bound on the choice itself), and each should stay under 10 µs:
//!
//! - `seat_for_caller/*`: a caller enters a queue with every seat ready and is offered to the
//!   seat the strategy picks; then hangs up, so the seat is ready again for the next round.
//! - `caller_for_seat`: a seat's call ends (no wrap-up), it is offered the best waiting caller
//!   among its three queues, answers, and a new caller arrives to keep 1,000 waiting.

use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use hotline::acd::{Acd, AcdAction, QueueRules, SeatId, SeatProfile, Strategy};
use hotline::call::CallId;

const SEATS: usize = 1000;
const WAITING: usize = 1000;
const GROUPS: usize = 5;

/// Five skill groups, plus `hold`, whose only seat is on a break so its callers just wait.
fn floor(now: Instant, strategy: Strategy) -> Acd {
    let mut acd = Acd::new();
    let mut queues: Vec<QueueRules> = (0..GROUPS)
        .map(|g| QueueRules {
            strategy,
            ..QueueRules::new(&format!("q{g}"), &format!("s{g}"))
        })
        .collect();
    queues.push(QueueRules::new("hold", "hold"));
    acd.set_queues(now, queues);
    let mut seats: Vec<SeatProfile> = (0..SEATS)
        .map(|i| {
            let skill = |k: usize| {
                (
                    format!("s{}", (i + k) % GROUPS),
                    (1 + (i * 7 + k) % 5) as u8,
                )
            };
            SeatProfile {
                id: format!("seat-{i}"),
                skills: (0..3).map(skill).collect(),
                expert: false,
            }
        })
        .collect();
    seats.push(SeatProfile::new("hold-seat", &[("hold", 1)]));
    acd.set_seats(now, seats);
    if let Some(hold) = acd.seat_id("hold-seat") {
        let _ = acd.log_in(now, hold, false);
    }
    acd
}

/// Hands every action to `offered` and drops the events, as the switch drains after each input.
fn drain(acd: &mut Acd, mut offered: impl FnMut(CallId, &[SeatId])) {
    while let Some(action) = acd.poll_action() {
        if let AcdAction::Offer { call, seats } = &action {
            offered(*call, seats);
        }
    }
    while acd.poll_event().is_some() {}
}

fn seat_for_caller(c: &mut Criterion, name: &str, strategy: Strategy) {
    let mut now = Instant::now();
    let mut acd = floor(now, strategy);
    for i in 0..SEATS {
        if let Some(seat) = acd.seat_id(&format!("seat-{i}")) {
            let _ = acd.log_in(now, seat, true);
        }
    }
    for call in 0..WAITING as u64 {
        acd.enqueue(now, CallId(1_000_000 + call), "hold", (call % 10) as u8);
    }
    drain(&mut acd, |_, _| {});
    let queues: Vec<String> = (0..GROUPS).map(|g| format!("q{g}")).collect();
    let mut next = 0u64;
    c.bench_function(name, |b| {
        b.iter(|| {
            now += Duration::from_millis(1);
            next += 1;
            let call = CallId(next);
            let queue = &queues[next as usize % GROUPS];
            black_box(acd.enqueue(now, call, queue, (next % 10) as u8));
            drain(&mut acd, |_, seats| {
                black_box(seats);
            });
            acd.abandon(now, call);
            drain(&mut acd, |_, _| {});
        })
    });
}

fn caller_for_seat(c: &mut Criterion) {
    let mut now = Instant::now();
    let mut acd = floor(now, Strategy::LongestIdle);
    let seats: Vec<SeatId> = (0..SEATS)
        .filter_map(|i| acd.seat_id(&format!("seat-{i}")))
        .collect();
    for &seat in &seats {
        let _ = acd.log_in(now, seat, true);
    }
    let mut talking = vec![CallId(0); SEATS];
    let mut next = 0u64;
    let mut arrive = |acd: &mut Acd, now: Instant| {
        next += 1;
        let queue = format!("q{}", next as usize % GROUPS);
        acd.enqueue(now, CallId(next), &queue, (next * 7 % 10) as u8);
    };
    // Fill every seat with a call, then let 1,000 more callers wait.
    let mut arrivals = 0;
    while talking.iter().any(|c| c.0 == 0) && arrivals < 10 * SEATS {
        arrivals += 1;
        arrive(&mut acd, now);
        let mut offers = Vec::new();
        drain(&mut acd, |call, seats| offers.push((call, seats[0])));
        for (call, seat) in offers {
            acd.answered(now, call, seat);
            talking[seat.0 as usize] = call;
        }
        drain(&mut acd, |_, _| {});
    }
    for _ in 0..WAITING {
        arrive(&mut acd, now);
    }
    drain(&mut acd, |_, _| {});
    let mut turn = 0usize;
    let mut missed = 0u64;
    c.bench_function("caller_for_seat", |b| {
        b.iter(|| {
            now += Duration::from_millis(1);
            turn = (turn + 1) % SEATS;
            let seat = seats[turn];
            acd.call_ended(now, talking[seat.0 as usize]);
            let mut offer = None;
            drain(&mut acd, |call, seats| offer = Some((call, seats[0])));
            match offer {
                Some((call, seat)) => {
                    black_box(acd.answered(now, call, seat));
                    talking[seat.0 as usize] = call;
                }
                None => missed += 1,
            }
            arrive(&mut acd, now);
            drain(&mut acd, |_, _| {});
        })
    });
    if missed > 0 {
        eprintln!("caller_for_seat: {missed} rounds offered no caller (the figure is too low)");
    }
}

fn bench(c: &mut Criterion) {
    seat_for_caller(c, "seat_for_caller/longest_idle", Strategy::LongestIdle);
    seat_for_caller(c, "seat_for_caller/round_robin", Strategy::RoundRobin);
    caller_for_seat(c);
}

criterion_group!(benches, bench);
criterion_main!(benches);
