//! The four RFC 3261 §17 transaction state machines, with the RFC 6026 Accepted states.
//!
//! Every machine is sans-IO: it never reads a clock, touches a socket or spawns a task. Time is
//! an `Instant` argument, and work to do comes back as [`TransactionOutput`]s.
//!
//! # Driving a machine (the drain rule)
//!
//! Feed it with `handle_*(now, input)` (and, from the TU, `respond(now, response)`,
//! `cancel_sent(now)`, `handle_ack_for_2xx(now)`). After ANY such call — including
//! construction and [`Transaction::handle_timeout`] — call [`Transaction::poll_output`] until it
//! returns `None`, acting on each output in order, then read [`Transaction::poll_timeout`]: the
//! instant at which `handle_timeout(now)` must next be called (`None`: no timer armed). `now`
//! must never go backwards. Once [`TransactionOutput::Terminated`] was drained the machine may
//! be dropped; later inputs are ignored (or refused with [`TransactionError::Terminated`]).
//!
//! # Routing (what the endpoint does)
//!
//! - Incoming response: [`ClientKey::for_response`] finds the client transaction, which gets
//!   `handle_response`. A response matching none is dropped (RFC 6026 §7.2): in particular a
//!   2xx retransmission arriving after Timer M is not passed to the TU.
//! - Incoming request: [`ServerKey::for_request`] finds the server transaction, which gets
//!   `handle_request` (retransmissions, and the ACK of a non-2xx final, which maps to the
//!   INVITE's key). A request matching none starts a new server transaction, except:
//!   - ACK matching none is the ACK of a 2xx (its own branch): hand it to the dialog layer, which
//!     calls [`ServerInvite::handle_ack_for_2xx`] on the INVITE transaction it acknowledges;
//!   - CANCEL starts its own [`ServerNonInvite`]; [`ServerKey::invite_key_for_cancel`] finds the
//!     INVITE it targets (none: answer the CANCEL 481).
//! - Client transactions read their transport from the request's top Via; server transactions
//!   are given the transport the request arrived on.

mod client_invite;
mod client_non_invite;
mod key;
mod server_invite;
mod server_non_invite;
#[cfg(test)]
mod test_support;
mod timers;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use client_invite::{ClientInvite, ClientInviteState};
pub use client_non_invite::{ClientNonInvite, ClientNonInviteState};
pub use key::{ClientKey, ServerKey};
pub use server_invite::{ServerInvite, ServerInviteState};
pub use server_non_invite::{ServerNonInvite, ServerNonInviteState};
pub use timers::{Timer, TimerConfig};

use super::fields::{FieldError, Transport};
use super::message::{Message, Method, Request, Response};
use timers::TimerTable;

/// What a transaction asks of its owner; drained with [`Transaction::poll_output`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransactionOutput {
    /// Send this message to the transaction's peer (the transport layer knows where).
    Transmit(Message),
    /// Client transactions: pass this response to the TU.
    Response(Response),
    /// Server INVITE in Accepted: an ACK for its 2xx matched the transaction; pass it to the TU.
    Ack(Request),
    /// Client: Timer B/F (or the §9.1 CANCEL wait) fired; server INVITE: Timer H, or 2xx never ACKed.
    Timeout,
    /// The transport layer failed to deliver this transaction's message (§17.1.4, §17.2.4).
    TransportError,
    /// The machine reached Terminated; drop it once drained.
    Terminated,
}

/// Why a transaction could not be created or refused an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// A header the transaction needs is missing or malformed.
    #[error("cannot run a transaction for this message: {0}")]
    Field(#[from] FieldError),
    /// This machine does not handle requests of this method.
    #[error("a {0} request cannot start this kind of transaction")]
    WrongMethod(Method),
    /// The status code is outside 100..=699.
    #[error("status {0} is not a response status")]
    InvalidStatus(u16),
    /// A final response was already sent; the new response was discarded.
    #[error("final response {sent} already sent; response {rejected} discarded")]
    FinalAlreadySent {
        /// The final response already sent.
        sent: u16,
        /// The response that was refused.
        rejected: u16,
    },
    /// The transaction is terminated.
    #[error("the transaction is terminated")]
    Terminated,
}

/// The driving surface the four machines share (see the drain rule above).
pub trait Transaction {
    /// Fires every timer due at or before `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// Reports that the transport could not deliver this transaction's message: the TU is told
    /// ([`TransactionOutput::TransportError`]) and the transaction terminates.
    fn handle_transport_error(&mut self, now: Instant);
    /// The next output to act on, `None` once drained.
    fn poll_output(&mut self) -> Option<TransactionOutput>;
    /// When `handle_timeout` must next be called; `None` if no timer is armed.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Whether the machine reached Terminated.
    fn is_terminated(&self) -> bool;
}

/// The status class of a response: 1 for 1xx ... 6 for 6xx, `None` outside 100..=699.
fn status_class(status: u16) -> Option<u16> {
    (100..=699).contains(&status).then_some(status / 100)
}

/// State the four machines share: config, transport, armed timers, and the output queue.
#[derive(Debug)]
struct Core {
    config: TimerConfig,
    transport: Transport,
    timers: TimerTable,
    outputs: VecDeque<TransactionOutput>,
    terminated: bool,
}

impl Core {
    /// A fresh core with no timers and no outputs.
    fn new(config: TimerConfig, transport: Transport) -> Core {
        Core {
            config,
            transport,
            timers: TimerTable::default(),
            outputs: VecDeque::new(),
            terminated: false,
        }
    }

    /// Whether the transport is reliable (retransmission timers off).
    fn reliable(&self) -> bool {
        self.transport.is_reliable()
    }

    /// Queues an output.
    fn emit(&mut self, output: TransactionOutput) {
        self.outputs.push_back(output);
    }

    /// Queues a message for the wire.
    fn transmit(&mut self, message: Message) {
        self.emit(TransactionOutput::Transmit(message));
    }

    /// Arms `timer` to fire `after` from `now`.
    fn arm(&mut self, timer: Timer, now: Instant, after: Duration) {
        self.timers.set(timer, now + after);
    }

    /// Enters Terminated: disarms every timer and emits `Terminated` (once).
    fn terminate(&mut self) {
        if !self.terminated {
            self.terminated = true;
            self.timers.stop_all();
            self.emit(TransactionOutput::Terminated);
        }
    }

    /// Emits `output` (Timeout or TransportError) and terminates, unless already terminated.
    fn fail(&mut self, output: TransactionOutput) {
        if !self.terminated {
            self.emit(output);
            self.terminate();
        }
    }

    /// The next queued output.
    fn poll_output(&mut self) -> Option<TransactionOutput> {
        self.outputs.pop_front()
    }

    /// The next timer deadline.
    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(status_class(100), Some(1));
        assert_eq!(status_class(299), Some(2));
        assert_eq!(status_class(699), Some(6));
        assert_eq!(status_class(99), None);
        assert_eq!(status_class(700), None);
    }

    #[test]
    fn terminate_emits_once_and_clears_timers() {
        let now = Instant::now();
        let mut core = Core::new(TimerConfig::default(), Transport::Udp);
        core.arm(Timer::A, now, Duration::from_secs(1));
        core.fail(TransactionOutput::Timeout);
        core.fail(TransactionOutput::Timeout);
        core.terminate();
        assert_eq!(core.poll_output(), Some(TransactionOutput::Timeout));
        assert_eq!(core.poll_output(), Some(TransactionOutput::Terminated));
        assert_eq!(core.poll_output(), None);
        assert_eq!(core.poll_timeout(), None);
    }
}
