//! Reloads of the queues' rules and the seats' skills, applied beside the calls in progress.

use std::collections::HashSet;
use std::time::Instant;

use super::distributor::Acd;
use super::event::{SeatId, SeatState};
use super::matching::account;
use super::queue::Queue;
use super::rules::{QueueRules, SeatProfile};
use super::seat::{Memberships, Seat};

impl Acd {
    /// Puts these queues' rules in force, matched by name. A queue no longer listed takes no new
    /// callers; its waiting callers keep its last rules until served. Waiting callers' timers
    /// follow their queue's new rules (counted from when they entered).
    pub fn set_queues(&mut self, now: Instant, rules: Vec<QueueRules>) {
        let mut listed = HashSet::new();
        for rule in rules {
            let q = match self.queue_names.get(&rule.name) {
                Some(&q) => {
                    self.queues[q].rules = rule;
                    q
                }
                None => {
                    let q = self.queues.len();
                    self.queue_names.insert(rule.name.clone(), q);
                    self.queues.push(Queue::new(rule));
                    q
                }
            };
            listed.insert(q);
        }
        for (q, queue) in self.queues.iter_mut().enumerate() {
            queue.retired = !listed.contains(&q);
        }
        let targets: Vec<Vec<usize>> = self
            .queues
            .iter()
            .enumerate()
            .map(|(q, queue)| {
                let names = queue.rules.overflow_to.iter();
                let found = names.filter_map(|name| self.queue_names.get(name).copied());
                found.filter(|&o| o != q && listed.contains(&o)).collect()
            })
            .collect();
        for (queue, targets) in self.queues.iter_mut().zip(targets) {
            queue.overflow_to = targets;
            queue.clear_seats();
        }
        for (ix, seat) in self.seats.iter_mut().enumerate() {
            seat.queues = Memberships::of(&seat.skills, seat.expert, &self.queues);
            let id = SeatId(ix as u32);
            account(&mut self.queues, id, seat, true);
            if seat.available() {
                self.seats_to_place.push_back(id);
            }
        }
        let calls: Vec<_> = self.callers.keys().copied().collect();
        for call in calls {
            self.arm_caller_timers(now, call);
        }
        self.evict_unservable(now);
        self.settle(now);
    }

    /// Puts these seats' skills in force, matched by id. New seats start logged out; a seat no
    /// longer listed is logged out (ringing: the offer is withdrawn), or when its call ends if
    /// it is talking, and cannot log in until listed again.
    pub fn set_seats(&mut self, now: Instant, seats: Vec<SeatProfile>) {
        let mut listed = HashSet::new();
        for profile in seats {
            let seat = match self.seat_names.get(&profile.id) {
                Some(&seat) => seat,
                None => {
                    let Ok(slot) = u32::try_from(self.seats.len()) else {
                        continue;
                    };
                    self.seats.push(Seat::new(&profile.id, now));
                    self.seat_names.insert(profile.id.clone(), SeatId(slot));
                    SeatId(slot)
                }
            };
            listed.insert(seat);
            let queues = Memberships::of(&profile.skills, profile.expert, &self.queues);
            self.update_seat(now, seat, |s| {
                s.skills = profile.skills;
                s.expert = profile.expert;
                s.removed = false;
                s.queues = queues;
            });
        }
        for ix in 0..self.seats.len() {
            let seat = SeatId(ix as u32);
            let s = &self.seats[ix];
            if listed.contains(&seat) || s.removed {
                continue;
            }
            match (&s.state, s.call) {
                (SeatState::Ringing, Some(call)) => {
                    self.update_seat(now, seat, |s| s.removed = true);
                    self.end_offer(now, call, seat, "logged-out", SeatState::LoggedOut);
                    self.requeue_if_unoffered(now, call, "logged-out");
                }
                (SeatState::OnCall, _) => self.update_seat(now, seat, |s| {
                    s.removed = true;
                    s.leaving = true;
                }),
                _ => self.update_seat(now, seat, |s| {
                    s.removed = true;
                    s.state = SeatState::LoggedOut;
                }),
            }
            self.release_pinned(now, seat, "logged-out");
        }
        self.evict_unservable(now);
        self.settle(now);
    }
}
