//! The call distribution (ACD): seats, their states, queues of waiting callers, and which seat
//! takes which caller. Sans-IO and in virtual time, like the switch that drives it.

pub mod event;
pub mod stats;

pub use event::{AcdEvent, LeftBecause, SeatId, SeatState};
