//! The call's side toward the seats: while the caller waits in a queue, the offers ringing
//! seats' phones; once a seat answers, the link to that seat, bridged in the media plane.

use std::time::Instant;

use crate::acd::SeatId;
use crate::media::control::LegId;
use crate::sdp::SdpSession;
use crate::sip::dialog::Dialog;
use crate::sip::endpoint::{ClientTxnId, ServerTxnId};
use crate::sip::message::Request;
use crate::sip::peer::Peer;

/// The caller waiting in a queue.
#[derive(Debug)]
pub struct Waiting {
    /// The queue's name.
    pub queue: String,
    /// Index of this visit in the call record's queues.
    pub visit: usize,
    /// The playback of the waiting music or an announcement.
    pub play: Option<u64>,
}

/// Whether the seat side's RTP port is bound yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeatMedia {
    /// Asked for; offers wait for it.
    Opening,
    /// Bound: offers can carry our SDP.
    Open,
}

/// One INVITE to one of a seat's registered contacts.
#[derive(Debug)]
pub struct Branch {
    /// The INVITE as built (without our Via), for the dialog and the ACK.
    pub invite: Request,
    /// Its client transaction.
    pub txn: ClientTxnId,
    /// The contact's address.
    pub peer: Peer,
}

/// The call offered to one seat: its phone(s) ring.
#[derive(Debug)]
pub struct Offer {
    /// The seat.
    pub seat: SeatId,
    /// One INVITE per registered contact (forking); empty while the port is being bound.
    pub branches: Vec<Branch>,
}

/// A seat talking to the caller.
#[derive(Debug)]
pub struct SeatLink {
    /// The seat.
    pub seat: SeatId,
    /// The dialog with the seat's phone.
    pub dialog: Dialog,
    /// Where the phone is.
    pub peer: Peer,
    /// A re-INVITE from the phone answered 2xx, until its ACK.
    pub reinvite: Option<ServerTxnId>,
    /// That re-INVITE had no offer: our 2xx carried one and the ACK carries the answer.
    pub reinvite_offered: bool,
    /// The phone put the caller on hold (the caller hears music).
    pub held: bool,
    /// When the seat answered.
    pub since: Instant,
}

/// Everything between the call and the seats.
#[derive(Debug)]
pub struct SeatSide {
    /// The media leg toward the seat (the caller leg's partner).
    pub leg: LegId,
    /// Whether its port is bound.
    pub media: SeatMedia,
    /// Offer/answer toward the seat phones; every branch carries the same offer.
    pub sdp: Option<SdpSession>,
    /// The offer's bytes, made once.
    pub offer: Vec<u8>,
    /// Seats ringing (several only with ring-all).
    pub offers: Vec<Offer>,
    /// The seat that answered.
    pub link: Option<SeatLink>,
}

impl SeatSide {
    /// A seat side whose media leg is being opened.
    pub fn opening(leg: LegId) -> SeatSide {
        SeatSide {
            leg,
            media: SeatMedia::Opening,
            sdp: None,
            offer: Vec::new(),
            offers: Vec::new(),
            link: None,
        }
    }

    /// The offer that has a branch with this transaction.
    pub fn offer_of(&self, txn: ClientTxnId) -> Option<usize> {
        self.offers
            .iter()
            .position(|o| o.branches.iter().any(|b| b.txn == txn))
    }
}

/// The seat phone's second line during a consult it makes itself: its INVITE to a sub-centre
/// (answered once the sub-centre answers), bridged to the sub-centre until the phone joins the
/// caller to it with REFER/Replaces or hangs up.
#[derive(Debug)]
pub struct ConsultLine {
    /// The phone's INVITE.
    pub invite: Request,
    /// Its server transaction.
    pub txn: ServerTxnId,
    /// Where the phone is.
    pub peer: Peer,
    /// Our To tag.
    pub local_tag: String,
    /// The phone's SDP offer.
    pub offer: Option<crate::sdp::SessionDescription>,
    /// Offer/answer on the line, once its port is bound.
    pub sdp: Option<SdpSession>,
    /// The dialog, once answered.
    pub dialog: Option<Dialog>,
}
