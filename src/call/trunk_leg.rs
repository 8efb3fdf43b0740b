//! The call's second (or, with a seat on the call, third) leg, toward a third party: a
//! sub-centre's SIP trunk, or the phone(s) of a seat another seat brings into its call.

use std::time::Duration;

use super::seat_leg::Branch;
use crate::acd::SeatId;
use crate::dialplan::model::SubCentreId;
use crate::media::control::LegId;
use crate::sdp::SdpSession;
use crate::sip::dialog::Dialog;
use crate::sip::endpoint::{ClientTxnId, ServerTxnId};
use crate::sip::message::Request;
use crate::sip::peer::Peer;

/// Where the trunk leg stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrunkState {
    /// Waiting for the media plane to bind the leg's RTP port.
    Opening,
    /// INVITE sent, no final response yet.
    Inviting,
    /// Answered: the two legs' media are bridged.
    Bridged,
    /// Given up (ring timeout, caller gone): cancelled, or to be cancelled at the first 1xx.
    Abandoned,
}

/// Who is at the far end of the leg.
#[derive(Debug)]
pub enum FarEnd {
    /// A sub-centre's trunk.
    SubCentre {
        /// The sub-centre.
        subcentre: SubCentreId,
        /// The external number dialled over its trunk (a seat's `number:` transfer); `None`:
        /// the sub-centre's own number.
        dialled: Option<String>,
    },
    /// A seat's phones (a seat's three-way or consult transfer to `seat:ID` or `queue:NAME`).
    Seat(SeatCall),
}

/// The phones of a seat brought into a call, ringing.
#[derive(Debug)]
pub struct SeatCall {
    /// The seat (held on-call in the ACD while it is in the transfer).
    pub seat: SeatId,
    /// Its queue's ring timeout.
    pub ring: Duration,
    /// One INVITE per registered contact while they ring (the answering one moves to the leg).
    pub branches: Vec<Branch>,
    /// Whether it answered.
    pub answered: bool,
}

/// The call's leg toward a third party.
#[derive(Debug)]
pub struct TrunkLeg {
    /// Who is at the far end.
    pub far: FarEnd,
    /// Its media leg (the caller leg's partner, or its third leg with a seat on the call).
    pub leg: LegId,
    /// The far end's address (a seat's: the phone that answered).
    pub peer: Peer,
    /// Where it stands.
    pub state: TrunkState,
    /// The INVITE as we built it (without our Via).
    pub invite: Option<Request>,
    /// Its client transaction (a seat's: the answering phone's).
    pub txn: Option<ClientTxnId>,
    /// Offer/answer on this leg.
    pub sdp: Option<SdpSession>,
    /// The dialog, once answered.
    pub dialog: Option<Dialog>,
    /// The trunk's re-INVITE we answered 2xx, until its ACK.
    pub reinvite: Option<ServerTxnId>,
    /// Whether the INVITE was already sent again with credentials (one try only).
    pub authenticated: bool,
    /// Index of this attempt in the call record's transfers.
    pub transfer: usize,
}
