//! The call's second (or, with a seat on the call, third) leg, toward a sub-centre's SIP trunk.

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

/// The call's leg toward a sub-centre.
#[derive(Debug)]
pub struct TrunkLeg {
    /// The sub-centre.
    pub subcentre: SubCentreId,
    /// The external number dialled over its trunk (a seat's `number:` transfer); `None`: the
    /// sub-centre's own number.
    pub dialled: Option<String>,
    /// Its media leg (the caller leg's partner).
    pub leg: LegId,
    /// The trunk's address.
    pub peer: Peer,
    /// Where it stands.
    pub state: TrunkState,
    /// The INVITE as we built it (without our Via).
    pub invite: Option<Request>,
    /// Its client transaction.
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
