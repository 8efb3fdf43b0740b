//! A seat as the distribution keeps it: its skills, state, and the queues it can serve.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::event::SeatState;
use super::queue::{Queue, QueueIx};
use crate::call::CallId;

/// The queues a seat can serve, worked out from its skills and the queues' rules.
#[derive(Clone, Debug, Default)]
pub(super) struct Memberships {
    /// Queues whose rules the seat meets, with its level in their skill.
    pub(super) home: Vec<(QueueIx, u8)>,
    /// Queues whose skill this expert seat has (any level), with the level.
    pub(super) experts_of: Vec<(QueueIx, u8)>,
    /// Other queues whose overflowed callers the seat may take.
    pub(super) reach: Vec<QueueIx>,
}

impl Memberships {
    /// Which of `queues` a seat with these skills can serve.
    pub(super) fn of(skills: &BTreeMap<String, u8>, expert: bool, queues: &[Queue]) -> Self {
        let mut m = Memberships::default();
        for (q, queue) in queues.iter().enumerate() {
            let Some(&level) = skills.get(&queue.rules.skill) else {
                continue;
            };
            if level >= queue.rules.min_level && (expert || !queue.rules.experts_only) {
                m.home.push((q, level));
            }
            if expert {
                m.experts_of.push((q, level));
            }
        }
        let home = |q: QueueIx| m.home.iter().any(|&(h, _)| h == q);
        let expert_of = |q: QueueIx| m.experts_of.iter().any(|&(e, _)| e == q);
        let reach = queues.iter().enumerate().filter(|&(q, queue)| {
            queue.rules.overflow_delay().is_some()
                && !home(q)
                && (queue.overflow_to.iter().any(|&o| home(o))
                    || (queue.rules.overflow_experts && expert_of(q)))
        });
        m.reach = reach.map(|(q, _)| q).collect();
        m
    }
}

/// After-call work in progress, for the queue's handle times.
#[derive(Clone, Copy, Debug)]
pub(super) struct WrapUp {
    /// The queue the call came from.
    pub(super) queue: QueueIx,
    /// How long the seat talked.
    pub(super) talked: Duration,
    /// When the after-call work began.
    pub(super) started: Instant,
}

/// One seat's state.
#[derive(Debug)]
pub(super) struct Seat {
    /// The seat's id from `seats.toml`.
    pub(super) name: String,
    /// Skill name to level.
    pub(super) skills: BTreeMap<String, u8>,
    /// An expert seat.
    pub(super) expert: bool,
    /// Its state.
    pub(super) state: SeatState,
    /// Since when it is in that state (for a ready seat: how long it has been idle).
    pub(super) since: Instant,
    /// Its phone is registered.
    pub(super) reachable: bool,
    /// The call ringing it or talking to it.
    pub(super) call: Option<CallId>,
    /// The last call offered to it, to recognise a late answer.
    pub(super) last_offer: Option<CallId>,
    /// Logs out when its call ends.
    pub(super) leaving: bool,
    /// No longer in `seats.toml`: cannot log in.
    pub(super) removed: bool,
    /// Open after-call work.
    pub(super) wrap: Option<WrapUp>,
    /// The queues it can serve.
    pub(super) queues: Memberships,
    /// Callers waiting for this seat alone (transferred to it), first come first.
    pub(super) pinned: Vec<CallId>,
}

impl Seat {
    /// A new seat `name`, logged out since `now`, reachable until the switch says otherwise.
    pub(super) fn new(name: &str, now: Instant) -> Seat {
        Seat {
            name: name.to_string(),
            skills: BTreeMap::new(),
            expert: false,
            state: SeatState::LoggedOut,
            since: now,
            reachable: true,
            call: None,
            last_offer: None,
            leaving: false,
            removed: false,
            wrap: None,
            queues: Memberships::default(),
            pinned: Vec::new(),
        }
    }

    /// Logged in and staying so: can take callers now or later.
    pub(super) fn logged_in(&self) -> bool {
        self.state != SeatState::LoggedOut && !self.leaving
    }

    /// Working the queues: logged in and not on a break.
    pub(super) fn staffed(&self) -> bool {
        self.logged_in() && !matches!(self.state, SeatState::NotReady(_))
    }

    /// Can be offered a caller right now.
    pub(super) fn available(&self) -> bool {
        self.state == SeatState::Ready && self.reachable
    }
}
