//! What the admins configure for the call distribution: each queue's rules (from the dialplan's
//! `[queues.*]`) and each seat's skills (from `seats.toml`).

use std::collections::BTreeMap;
use std::time::Duration;

/// How a queue chooses among the ready seats able to take a caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// The highest skill level first; among equals, the seat ready the longest.
    #[default]
    LongestIdle,
    /// Each seat in turn, in seat order, after the one offered last.
    RoundRobin,
    /// Every ready seat at once; the first to answer takes the caller.
    RingAll,
}

/// One queue (skill group): which seats may take its callers, and how long they wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRules {
    /// The queue's name, as the dialplan's queue nodes name it.
    pub name: String,
    /// The skill a seat needs.
    pub skill: String,
    /// The lowest level of that skill a seat needs.
    pub min_level: u8,
    /// An expert queue: only seats marked expert (with the skill) take its callers.
    pub experts_only: bool,
    /// Which ready seat rings.
    pub strategy: Strategy,
    /// An offer not answered within this ends: the seat goes not-ready (`no-answer`) and the
    /// caller goes back to its place in the queue.
    pub ring_timeout: Duration,
    /// After-call work time of a seat that took a call from this queue (zero: ready at once).
    pub wrap_up: Duration,
    /// After this wait, the caller may also be taken by the seats of `overflow_to` and, with
    /// `overflow_experts`, by expert seats with the skill at any level.
    pub overflow_after: Option<Duration>,
    /// Queues whose seats may take an overflowed caller, in order of preference.
    pub overflow_to: Vec<String>,
    /// Expert seats with the skill (any level) may take an overflowed caller.
    pub overflow_experts: bool,
    /// The longest a caller waits before leaving with [`crate::acd::AcdAction::WaitedTooLong`].
    pub max_wait: Option<Duration>,
    /// Period of the position and estimated-wait announcement while a caller waits.
    pub announce_every: Option<Duration>,
}

impl QueueRules {
    /// A queue `name` for `skill`: level 1, longest idle, 15 s ring, no wrap-up, no overflow,
    /// no maximum wait, no announcements.
    pub fn new(name: &str, skill: &str) -> QueueRules {
        QueueRules {
            name: name.to_string(),
            skill: skill.to_string(),
            min_level: 1,
            experts_only: false,
            strategy: Strategy::LongestIdle,
            ring_timeout: Duration::from_secs(15),
            wrap_up: Duration::ZERO,
            overflow_after: None,
            overflow_to: Vec::new(),
            overflow_experts: false,
            max_wait: None,
            announce_every: None,
        }
    }

    /// When a caller overflows, if the queue has somewhere to overflow to.
    pub(super) fn overflow_delay(&self) -> Option<Duration> {
        let somewhere = !self.overflow_to.is_empty() || self.overflow_experts;
        self.overflow_after.filter(|_| somewhere)
    }
}

/// One seat (agent position) as `seats.toml` describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeatProfile {
    /// The seat's id, stable across reloads.
    pub id: String,
    /// Skill name to level (higher is better).
    pub skills: BTreeMap<String, u8>,
    /// An expert seat: takes expert queues' callers and, where allowed, overflowed callers.
    pub expert: bool,
}

impl SeatProfile {
    /// A seat `id` with these skills, not an expert.
    pub fn new(id: &str, skills: &[(&str, u8)]) -> SeatProfile {
        SeatProfile {
            id: id.to_string(),
            skills: skills.iter().map(|(s, l)| (s.to_string(), *l)).collect(),
            expert: false,
        }
    }
}
