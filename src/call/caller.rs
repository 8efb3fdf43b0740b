//! One caller's call as the switch tracks it: the SIP side (INVITE, dialog, offer/answer) and
//! where the caller is in the flow.

use std::sync::Arc;
use std::time::Instant;

use crate::media::control::LegId;
use crate::sdp::{SdpSession, SessionDescription};
use crate::sip::dialog::Dialog;
use crate::sip::endpoint::{ClientTxnId, ServerTxnId};
use crate::sip::message::Request;
use crate::sip::peer::Peer;

use super::seat_leg::{ConsultLine, SeatSide, Waiting};
use super::trunk_leg::{FarEnd, TrunkLeg, TrunkState};
use crate::acd::SeatId;
use crate::dialplan::navigation::Navigation;
use crate::dialplan::Plan;
use crate::tickets::record::CallRecord;

/// The switch's number for a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// Where a call stands on the SIP side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the media plane to bind the caller's RTP port.
    Opening,
    /// 180 sent; answering when the ring time is over.
    Ringing,
    /// 200 sent, waiting for the ACK.
    Answering,
    /// Confirmed dialog: the caller is in the flow.
    Talking,
    /// We sent BYE and wait for its response.
    HangingUp,
}

/// Who ended a call, and why (the seed of the call record's end cause).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The caller sent BYE.
    CallerHungUp,
    /// The sub-centre the call was passed to hung up.
    SubCentreHungUp,
    /// The seat talking to the caller hung up (and the dialplan had nothing after it).
    SeatHungUp,
    /// The caller cancelled before the answer.
    CallerCancelled,
    /// The dialplan hung up.
    FlowDone,
    /// No RTP from the caller for the media timeout.
    MediaTimeout,
    /// Our 2xx was never ACKed.
    NoAck,
    /// The engine is shutting down.
    Shutdown,
    /// The call was refused before the answer with this status.
    Refused(u16),
}

/// A re-INVITE answered 2xx, waiting for its ACK (which stops the 2xx retransmission and, when
/// our 2xx carried the offer, brings the answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reinvite {
    /// Its server transaction.
    pub txn: ServerTxnId,
    /// Its CSeq number, which the ACK repeats.
    pub seq: u32,
    /// Whether our 2xx carried an offer (offerless re-INVITE): the answer comes in the ACK.
    pub offered: bool,
}

/// What the number plan made of a new call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallRoute {
    /// A declared number: its index in the dialplan's numbers.
    Number {
        /// Index in `Dialplan::numbers`.
        entry: usize,
        /// The number dialled.
        dialled: String,
    },
    /// An unknown number: announce as early media, then refuse with this status.
    Announce {
        /// The announcement.
        prompts: Vec<String>,
        /// The final status.
        status: u16,
        /// The number dialled.
        dialled: String,
    },
}

/// One caller's call.
#[derive(Debug)]
pub struct Caller {
    /// The caller's media leg.
    pub leg: LegId,
    /// Where the caller's signalling comes from; our in-dialog requests go back there, which
    /// reaches callers behind NAT and reuses their TCP connection.
    pub peer: Peer,
    /// The initial INVITE.
    pub invite: Request,
    /// Its server transaction.
    pub invite_txn: ServerTxnId,
    /// Our To tag.
    pub local_tag: String,
    /// SIP state.
    pub phase: Phase,
    /// The dialog, once answered.
    pub dialog: Option<Dialog>,
    /// The caller's SDP offer, when the INVITE had one (else late offer).
    pub offer: Option<SessionDescription>,
    /// Offer/answer state, once the RTP port is known.
    pub sdp: Option<SdpSession>,
    /// The dialplan version the call started on.
    pub plan: Arc<Plan>,
    /// What the number plan made of the call.
    pub route: CallRoute,
    /// The caller's number (From user part).
    pub caller: String,
    /// The walk through the dialplan, once answered.
    pub nav: Option<Navigation>,
    /// The call record, kept up to date as the call goes.
    pub record: CallRecord,
    /// The leg toward a sub-centre, while the call is passed to one.
    pub trunk: Option<TrunkLeg>,
    /// A recording of the call is being written.
    pub recording: bool,
    /// The playback whose end the flow waits for.
    pub current_play: Option<u64>,
    /// Our BYE, while it is outstanding.
    pub bye: Option<ClientTxnId>,
    /// A re-INVITE we answered 2xx whose ACK is still awaited.
    pub reinvite: Option<Reinvite>,
    /// When the INVITE arrived.
    pub arrived: Instant,
    /// Waiting in a queue for a seat.
    pub waiting: Option<Waiting>,
    /// A consult transfer is under way: the caller is on hold while the seat talks to the target.
    pub consulting: bool,
    /// The seat phone's own consult call to a sub-centre (before REFER with Replaces).
    pub consult_line: Option<ConsultLine>,
    /// The queue a caller goes back to when the transfer a seat made fails.
    pub returns_to: Option<String>,
    /// Offers to seats, and the seat talking to the caller.
    pub seats: Option<SeatSide>,
    /// The music on hold the caller hears while the seat holds the call.
    pub hold_play: Option<u64>,
    /// When the talk with a seat ended (the caller may go on, to a survey).
    pub talk_ended: Option<Instant>,
}

impl Caller {
    /// The number the caller dialled, when it is a declared one.
    pub fn dialled(&self) -> Option<String> {
        match &self.route {
            CallRoute::Number { dialled, .. } => Some(dialled.clone()),
            CallRoute::Announce { .. } => None,
        }
    }

    /// The seat talking to the caller.
    pub(crate) fn seat_on_call(&self) -> Option<SeatId> {
        self.seats.as_ref()?.link.as_ref().map(|link| link.seat)
    }

    /// The seat brought into the call that answered, before it took the call over.
    pub(crate) fn seat_brought_in(&self) -> Option<SeatId> {
        let trunk = self.trunk.as_ref()?;
        match &trunk.far {
            FarEnd::Seat(far) if trunk.state == TrunkState::Bridged => Some(far.seat),
            _ => None,
        }
    }
}
