//! Why a desk's request to the call distribution was refused.

/// A refused seat command; the desk shows it, nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcdError {
    /// No seat has this id.
    #[error("no such seat")]
    UnknownSeat,
    /// The seat was removed from the seat configuration.
    #[error("the seat is no longer configured")]
    Removed,
    /// The command needs a logged-in seat.
    #[error("the seat is not logged in")]
    NotLoggedIn,
    /// The seat is logged in already.
    #[error("the seat is already logged in")]
    AlreadyLoggedIn,
    /// The seat is ringing or on a call.
    #[error("the seat is ringing or on a call")]
    Busy,
}
