//! The call distribution (ACD): seats, their states, queues of waiting callers, and which seat
//! takes which caller. Sans-IO and in virtual time, like the switch that drives it.

pub mod event;
pub mod stats;

mod action;
mod caller;
mod desk;
mod distributor;
mod error;
mod matching;
mod queue;
mod reload;
mod rules;
mod seat;
mod timers;
mod transfer;
mod views;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod invariant_tests;

pub use action::{AcdAction, Enqueued};
pub use desk::{LOGGED_IN_NOT_READY, MAX_REASON_LEN};
pub use distributor::{Acd, MIN_ANNOUNCE_PERIOD, NO_ANSWER};
pub use error::AcdError;
pub use event::{AcdEvent, LeftBecause, SeatId, SeatState};
pub use queue::{DEFAULT_HANDLE_TIME, HANDLE_TIME_SAMPLES};
pub use rules::{QueueRules, SeatProfile, Strategy};
pub use views::{QueueView, SeatView, WaitingCaller};
