//! What happens in the call distribution, as the statistics, the record and the desktops'
//! event stream see it. The ACD emits these; nothing else does.

use std::time::{Duration, Instant};

use crate::call::CallId;

/// A seat's slot in the ACD: stable while the engine runs, also across `seats.toml` reloads
/// (a removed seat keeps its slot, logged out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeatId(pub u32);

/// A seat's state; every change is an [`AcdEvent::SeatChanged`] with its time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeatState {
    /// Not working: offered nothing.
    LoggedOut,
    /// Waiting for a call.
    Ready,
    /// A call is being offered (the phone rings).
    Ringing,
    /// Talking to a caller.
    OnCall,
    /// After-call work; ends by itself after the queue's wrap-up time, or early from the desk.
    WrapUp,
    /// Logged in but taking no calls, with a reason code (`break`, `training`, `meeting`,
    /// `no-answer` after a ring timeout...).
    NotReady(String),
}

impl SeatState {
    /// The state's name as the API and logs show it (`not-ready`, without the reason).
    pub fn as_str(&self) -> &'static str {
        match self {
            SeatState::LoggedOut => "logged-out",
            SeatState::Ready => "ready",
            SeatState::Ringing => "ringing",
            SeatState::OnCall => "on-call",
            SeatState::WrapUp => "wrap-up",
            SeatState::NotReady(_) => "not-ready",
        }
    }
}

/// Why a caller left a queue without reaching a seat (other than hanging up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeftBecause {
    /// Waited the queue's maximum wait.
    MaxWait,
    /// No seat that could take the call was logged in any more.
    NoSeats,
    /// The switch took the caller out (the call is ending for another reason, shutdown).
    Removed,
    /// The caller waited for one seat (a transfer to it), which did not take the call.
    NotTaken,
}

/// One thing that happened in the call distribution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcdEvent {
    /// A caller entered a queue.
    Queued {
        /// When.
        at: Instant,
        /// The caller's call.
        call: CallId,
        /// The queue's name.
        queue: String,
        /// 0..=9, higher first.
        priority: u8,
    },
    /// A waiting caller may now also be taken by other groups' or expert seats.
    Overflowed {
        /// When.
        at: Instant,
        /// The caller's call.
        call: CallId,
        /// The queue the caller is in.
        queue: String,
    },
    /// A caller is offered to a seat (its phone rings).
    Offered {
        /// When.
        at: Instant,
        /// The caller's call.
        call: CallId,
        /// The queue the caller is in.
        queue: String,
        /// The seat.
        seat: SeatId,
    },
    /// An offer ended without the seat taking the call.
    OfferEnded {
        /// When.
        at: Instant,
        /// The caller's call.
        call: CallId,
        /// The seat.
        seat: SeatId,
        /// `no-answer`, `declined`, `answered-elsewhere`, `logged-out`, `caller-gone`.
        outcome: &'static str,
    },
    /// A seat answered: the caller reached a person.
    Answered {
        /// When.
        at: Instant,
        /// The caller's call.
        call: CallId,
        /// The queue the caller was in.
        queue: String,
        /// The seat.
        seat: SeatId,
        /// Time from entering the queue to this answer.
        waited: Duration,
    },
    /// The caller hung up while waiting or while a seat was ringing.
    Abandoned {
        /// When.
        at: Instant,
        /// The caller's call.
        call: CallId,
        /// The queue.
        queue: String,
        /// Time from entering the queue to hanging up.
        waited: Duration,
    },
    /// The caller left the queue unanswered for another reason.
    LeftQueue {
        /// When.
        at: Instant,
        /// The caller's call.
        call: CallId,
        /// The queue.
        queue: String,
        /// Time in the queue.
        waited: Duration,
        /// Why.
        because: LeftBecause,
    },
    /// A conversation between a caller and a seat ended (the seat goes to wrap-up).
    TalkEnded {
        /// When.
        at: Instant,
        /// The caller's call.
        call: CallId,
        /// The queue the caller came from.
        queue: String,
        /// The seat.
        seat: SeatId,
        /// How long they talked.
        talked: Duration,
    },
    /// A seat's state changed.
    SeatChanged {
        /// When.
        at: Instant,
        /// The seat.
        seat: SeatId,
        /// The new state.
        state: SeatState,
    },
}

impl AcdEvent {
    /// When it happened.
    pub fn at(&self) -> Instant {
        match self {
            AcdEvent::Queued { at, .. }
            | AcdEvent::Overflowed { at, .. }
            | AcdEvent::Offered { at, .. }
            | AcdEvent::OfferEnded { at, .. }
            | AcdEvent::Answered { at, .. }
            | AcdEvent::Abandoned { at, .. }
            | AcdEvent::LeftQueue { at, .. }
            | AcdEvent::TalkEnded { at, .. }
            | AcdEvent::SeatChanged { at, .. } => *at,
        }
    }
}
