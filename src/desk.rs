//! What agent desktops and supervisors ask of the switch, and what it tells them: the channel
//! types between the HTTP API and the switch task, which alone owns seat and queue state.
//!
//! The API authenticates the admin token, forwards every other token as
//! [`Credential::SeatToken`] for the switch to check, and sends the switch's JSON back as it is.

use std::fmt;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot};

/// Who is asking, from `Authorization: Bearer <token>`.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// The `[api] admin_token`, checked by the API: may act on every seat.
    Admin,
    /// Any other token; the switch knows which seat (or supervisor) it belongs to.
    SeatToken(String),
}

// Tokens are secrets: never in logs.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Admin => f.write_str("Admin"),
            Credential::SeatToken(_) => f.write_str("SeatToken(..)"),
        }
    }
}

/// What the desktop asks; the first seven act on [`DeskRequest::seat`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeskCommand {
    /// Log the seat in, ready for calls or not ready.
    LogIn {
        /// Ready at once (otherwise not ready).
        ready: bool,
    },
    /// Log the seat out.
    LogOut,
    /// Make the seat ready for calls.
    Ready,
    /// Take the seat out of distribution with a reason code.
    NotReady {
        /// Lower-case letters, digits and `-` (`break`, `training`...).
        reason: String,
    },
    /// End the after-call work now.
    EndWrapUp,
    /// Answer the call the seat is being offered.
    Answer,
    /// Hang up the seat's call.
    HangUp,
    /// Pass the seat's caller on to a declared target.
    Transfer {
        /// `blind` (the seat leaves at once), `three-way` or `consult`.
        kind: TransferKind,
        /// `queue:NAME`, `subcentre:NAME`, `number:DIGITS` or `seat:ID` (see `docs/seats.md`).
        to: String,
    },
    /// Complete a consult transfer: caller and target are joined, the seat leaves.
    CompleteTransfer,
    /// Cancel a consult transfer: the target is hung up, the caller is back with the seat.
    CancelTransfer,
    /// The queues and their waiting callers.
    Queues,
    /// The seats and their states.
    Seats,
    /// The distribution's statistics, over the last `interval_s` seconds when given.
    Stats {
        /// Length of the interval in seconds.
        interval_s: Option<u64>,
    },
    /// Whose credential this is: `{"seat": "a1001"}` or `{"admin": true}`.
    WhoAmI,
}

impl DeskCommand {
    /// The command's name for logs and messages (`login`, `not-ready`...).
    pub fn name(&self) -> &'static str {
        match self {
            DeskCommand::LogIn { .. } => "login",
            DeskCommand::LogOut => "logout",
            DeskCommand::Ready => "ready",
            DeskCommand::NotReady { .. } => "not-ready",
            DeskCommand::EndWrapUp => "end-wrap-up",
            DeskCommand::Answer => "answer",
            DeskCommand::HangUp => "hangup",
            DeskCommand::Transfer { .. } => "transfer",
            DeskCommand::CompleteTransfer => "complete-transfer",
            DeskCommand::CancelTransfer => "cancel-transfer",
            DeskCommand::Queues => "queues",
            DeskCommand::Seats => "seats",
            DeskCommand::Stats { .. } => "stats",
            DeskCommand::WhoAmI => "whoami",
        }
    }
}

/// How a transfer is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferKind {
    /// The caller goes to the target; the seat is free at once.
    Blind,
    /// The target is called; once it answers caller, seat and target talk together, until the
    /// seat leaves (hangs up) and caller and target go on.
    ThreeWay,
    /// The caller waits on hold with music while the seat talks to the target; then the seat
    /// completes (caller and target joined, seat leaves) or cancels (back to the caller).
    Consult,
}

impl TransferKind {
    /// The kind as requests and records name it.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::Blind => "blind",
            TransferKind::ThreeWay => "three-way",
            TransferKind::Consult => "consult",
        }
    }
}

/// One request to the switch, answered once on `reply`.
#[derive(Debug)]
pub struct DeskRequest {
    /// Who asks.
    pub credential: Credential,
    /// The seat acted on (the seat commands), from the URL.
    pub seat: Option<String>,
    /// What is asked.
    pub command: DeskCommand,
    /// Where the answer goes; the asker may be gone by then.
    pub reply: oneshot::Sender<DeskReply>,
}

/// The switch's answer: the JSON the API returns with 200, or an error.
pub type DeskReply = Result<serde_json::Value, DeskError>;

/// A refused request: an HTTP status and a message for `{"error": message}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeskError {
    /// 401 bad token, 403 another seat's, 404 no such seat, 409 wrong state, 503 stopping.
    pub status: u16,
    /// Says what is wrong, for people.
    pub message: String,
}

impl DeskError {
    /// An error with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> DeskError {
        DeskError {
            status,
            message: message.into(),
        }
    }
}

impl fmt::Display for DeskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for DeskError {}

/// Something that happened, for the desktops' event stream.
#[derive(Clone, Debug, PartialEq)]
pub struct DeskEvent {
    /// The seat it concerns (seen by that seat and the admin), or None for everyone.
    pub seat: Option<String>,
    /// The JSON sent, with `"type"`: `seat`, `offer`, `answered`, `call-ended`, `queue`...
    pub body: serde_json::Value,
}

/// The API's ends of the channels to the switch.
#[derive(Clone, Debug)]
pub struct DeskHandle {
    /// Requests to the switch.
    pub requests: mpsc::Sender<DeskRequest>,
    /// Events from the switch; every event stream subscribes.
    pub events: broadcast::Sender<Arc<DeskEvent>>,
}

impl DeskHandle {
    /// A handle with room for `requests` queued requests and `events` events per slow
    /// listener, and the receiver the switch serves.
    pub fn channel(requests: usize, events: usize) -> (DeskHandle, mpsc::Receiver<DeskRequest>) {
        let (requests_tx, requests_rx) = mpsc::channel(requests.max(1));
        let (events_tx, _) = broadcast::channel(events.max(1));
        let handle = DeskHandle {
            requests: requests_tx,
            events: events_tx,
        };
        (handle, requests_rx)
    }

    /// Send `event` to every event stream (none listening is fine).
    pub fn publish(&self, event: DeskEvent) {
        let _ = self.events.send(Arc::new(event));
    }
}
