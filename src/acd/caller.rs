//! A caller as the distribution keeps it while waiting, and a conversation once a seat answered.

use std::cmp::Reverse;
use std::time::Instant;

use super::event::SeatId;
use super::queue::{Place, QueueIx};
use crate::call::CallId;

/// A caller in a queue, waiting or being offered.
#[derive(Debug)]
pub(super) struct Caller {
    /// Its queue.
    pub(super) queue: QueueIx,
    /// 0..=9, higher first.
    pub(super) priority: u8,
    /// Arrival order across all queues.
    pub(super) seq: u64,
    /// When it entered the queue.
    pub(super) since: Instant,
    /// The seats ringing for it now.
    pub(super) ringing: Vec<SeatId>,
    /// Seats that declined it: never offered it again.
    pub(super) declined: Vec<SeatId>,
    /// Waited long enough to be taken by overflow seats.
    pub(super) overflowed: bool,
    /// Waits for this seat alone (a transfer to it), outside its queue's order.
    pub(super) pinned: Option<SeatId>,
}

impl Caller {
    /// A caller entering `queue` now, `seq`-th in arrival order; `pinned` when it waits for one
    /// seat alone.
    pub(super) fn new(
        queue: QueueIx,
        priority: u8,
        seq: u64,
        since: Instant,
        pinned: Option<SeatId>,
    ) -> Caller {
        Caller {
            queue,
            priority,
            seq,
            since,
            ringing: Vec::new(),
            declined: Vec::new(),
            overflowed: false,
            pinned,
        }
    }

    /// Its place in service order.
    pub(super) fn place(&self, call: CallId) -> Place {
        Place {
            rank: Reverse(self.priority),
            seq: self.seq,
            call,
        }
    }
}

/// A conversation between a caller and a seat.
#[derive(Clone, Copy, Debug)]
pub(super) struct Talk {
    /// The seat.
    pub(super) seat: SeatId,
    /// The queue the caller came from.
    pub(super) queue: QueueIx,
    /// When the seat answered.
    pub(super) answered_at: Instant,
}
