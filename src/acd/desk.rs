//! What a seat's desk (or the switch on its behalf) tells the distribution: log in and out,
//! ready and not ready, and whether the seat's phone can be reached.

use std::time::Instant;

use super::distributor::Acd;
use super::error::AcdError;
use super::event::{SeatId, SeatState};

/// The reason code of a seat that logged in not ready.
pub const LOGGED_IN_NOT_READY: &str = "log-in";

/// The longest not-ready reason kept (longer ones are cut), since it comes from the desk.
pub const MAX_REASON_LEN: usize = 32;

impl Acd {
    /// The seat starts work, ready for calls or not ready (`log-in`). Logging in again while a
    /// log-out is pending after the call cancels the log-out.
    pub fn log_in(&mut self, now: Instant, seat: SeatId, ready: bool) -> Result<(), AcdError> {
        let s = self.seat(seat).ok_or(AcdError::UnknownSeat)?;
        if s.removed {
            return Err(AcdError::Removed);
        }
        if s.leaving {
            self.update_seat(now, seat, |s| s.leaving = false);
        } else if s.state != SeatState::LoggedOut {
            return Err(AcdError::AlreadyLoggedIn);
        } else if ready {
            self.set_state(now, seat, SeatState::Ready);
        } else {
            let reason = LOGGED_IN_NOT_READY.to_string();
            self.set_state(now, seat, SeatState::NotReady(reason));
        }
        self.settle(now);
        Ok(())
    }

    /// The seat stops work: at once, or when its call ends if it is talking. A ringing offer is
    /// withdrawn and the caller offered again.
    pub fn log_out(&mut self, now: Instant, seat: SeatId) -> Result<(), AcdError> {
        let s = self.seat(seat).ok_or(AcdError::UnknownSeat)?;
        match (&s.state, s.call) {
            (SeatState::LoggedOut, _) => return Err(AcdError::NotLoggedIn),
            (SeatState::Ringing, Some(call)) => {
                self.end_offer(now, call, seat, "logged-out", SeatState::LoggedOut);
                self.requeue_if_unoffered(now, call, "logged-out");
            }
            (SeatState::OnCall, _) => self.update_seat(now, seat, |s| s.leaving = true),
            _ => self.set_state(now, seat, SeatState::LoggedOut),
        }
        self.release_pinned(now, seat, "logged-out");
        self.evict_unservable(now);
        self.settle(now);
        Ok(())
    }

    /// The seat is ready for calls again: from not-ready, or ending wrap-up early.
    pub fn set_ready(&mut self, now: Instant, seat: SeatId) -> Result<(), AcdError> {
        let s = self.seat(seat).ok_or(AcdError::UnknownSeat)?;
        match s.state {
            SeatState::LoggedOut => Err(AcdError::NotLoggedIn),
            SeatState::Ringing | SeatState::OnCall => Err(AcdError::Busy),
            SeatState::Ready => Ok(()),
            SeatState::WrapUp | SeatState::NotReady(_) => {
                self.set_state(now, seat, SeatState::Ready);
                self.settle(now);
                Ok(())
            }
        }
    }

    /// The seat takes a break with a reason code (`break`, `training`...; cut to
    /// [`MAX_REASON_LEN`] bytes).
    pub fn set_not_ready(
        &mut self,
        now: Instant,
        seat: SeatId,
        reason: &str,
    ) -> Result<(), AcdError> {
        let s = self.seat(seat).ok_or(AcdError::UnknownSeat)?;
        match s.state {
            SeatState::LoggedOut => Err(AcdError::NotLoggedIn),
            SeatState::Ringing | SeatState::OnCall => Err(AcdError::Busy),
            SeatState::Ready | SeatState::WrapUp | SeatState::NotReady(_) => {
                let reason = SeatState::NotReady(cut(reason, MAX_REASON_LEN).to_string());
                self.set_state(now, seat, reason);
                Ok(())
            }
        }
    }

    /// Whether the seat's phone is registered; unreachable seats are never offered callers
    /// but stay logged in. Unknown seats are ignored.
    pub fn set_reachable(&mut self, now: Instant, seat: SeatId, reachable: bool) {
        self.update_seat(now, seat, |s| s.reachable = reachable);
        self.settle(now);
    }
}

/// `text` cut to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
