//! What the call distribution asks the switch to do, and its answer to a caller entering a queue.

use std::time::Duration;

use super::event::SeatId;
use crate::call::CallId;

/// The answer to [`crate::acd::Acd::enqueue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// The caller waits (or is already being offered).
    Waiting,
    /// No logged-in seat can ever take the caller (or the queue does not exist): the caller was
    /// not queued, the dialplan's fallback runs.
    NoSeats,
}

/// Something the switch must do for the call distribution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcdAction {
    /// Ring these seats now for this caller (several only for ring-all).
    Offer {
        /// The caller's call.
        call: CallId,
        /// The seats to ring; each is now ringing.
        seats: Vec<SeatId>,
    },
    /// Withdraw an offer (ring timeout, another seat won, seat logged out, caller gone).
    StopRinging {
        /// The caller's call.
        call: CallId,
        /// The seat whose phone stops ringing.
        seat: SeatId,
    },
    /// The caller waited the queue's maximum and has left the queue.
    WaitedTooLong {
        /// The caller's call.
        call: CallId,
    },
    /// The last seat able to take this waiting caller logged out; the caller has left the queue.
    NoSeats {
        /// The caller's call.
        call: CallId,
    },
    /// The one seat a caller waited for (a transfer to it) did not take the call; the caller
    /// has left the queue.
    NotTaken {
        /// The caller's call.
        call: CallId,
        /// `declined`, `no-answer` (rang out), `logged-out`, or `not-ready` (not ready in time).
        why: &'static str,
    },
    /// Tell the waiting caller its place and expected wait.
    Announce {
        /// The caller's call.
        call: CallId,
        /// 1 for the next caller served.
        position: usize,
        /// Position × average handle time ÷ staffed seats.
        estimated_wait: Duration,
    },
}
