//! Our side of a negotiation ([`LocalMedia`]) and its outcome ([`MediaParams`], [`Answer`]).

use std::net::{IpAddr, SocketAddr};

use super::codec::{self, Codec};
use super::direction::Direction;
use super::session::{AddressType, Attribute, MediaDescription, Origin, SessionDescription};

/// The `o=` user name of the descriptions we produce.
pub const ORIGIN_USERNAME: &str = "-";

/// The `s=` value of the descriptions we produce.
pub const SESSION_NAME: &str = "-";

/// The packet time we ask for by default, in milliseconds.
pub const DEFAULT_PTIME: u32 = 20;

/// What we offer or accept for one call leg, and the `o=` identity of its descriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Our media IP address (goes into `o=` and `c=`).
    pub address: IpAddr,
    /// Our RTP port.
    pub rtp_port: u16,
    /// The codecs we accept, in the order we offer them (default PCMA, PCMU; empty = default).
    pub codecs: Vec<Codec>,
    /// Whether we send and receive RFC 4733 telephone-event.
    pub telephone_event: bool,
    /// The `a=ptime` we put in our descriptions (`None`: no attribute).
    pub ptime: Option<u32>,
    /// What we want ourselves: `SendRecv` normally, `SendOnly` while we hold the peer.
    pub direction: Direction,
    /// The `o=` session id; stays the same for the whole leg.
    pub session_id: u64,
    /// The `o=` session version of the next description we produce.
    pub session_version: u64,
}

impl LocalMedia {
    /// Our defaults: PCMA then PCMU, telephone-event, ptime 20, sendrecv, version 1.
    pub fn new(address: IpAddr, rtp_port: u16, session_id: u64) -> LocalMedia {
        LocalMedia {
            address,
            rtp_port,
            codecs: Codec::DEFAULT_PREFERENCE.to_vec(),
            telephone_event: true,
            ptime: Some(DEFAULT_PTIME),
            direction: Direction::SendRecv,
            session_id,
            session_version: 1,
        }
    }

    /// Increments the `o=` version; call it when a new description differs from the last one.
    pub fn bump_version(&mut self) {
        self.session_version = self.session_version.saturating_add(1);
    }

    /// The codecs to offer: our list without duplicates, or the default list if it is empty.
    pub(crate) fn offered_codecs(&self) -> Vec<Codec> {
        let mut out: Vec<Codec> = Vec::new();
        for c in &self.codecs {
            if !out.contains(c) {
                out.push(*c);
            }
        }
        if out.is_empty() {
            out = Codec::DEFAULT_PREFERENCE.to_vec();
        }
        out
    }

    /// Our audio m-line: the given codecs and telephone-event payload types, our port and ptime.
    pub(crate) fn audio_media(
        &self,
        codecs: &[(u8, Codec)],
        telephone_event: Option<u8>,
        direction: Direction,
    ) -> MediaDescription {
        let mut formats: Vec<String> = codecs.iter().map(|(pt, _)| pt.to_string()).collect();
        let mut attributes: Vec<Attribute> = codecs
            .iter()
            .map(|(pt, c)| Attribute::RtpMap(c.rtpmap(*pt)))
            .collect();
        if let Some(pt) = telephone_event {
            formats.push(pt.to_string());
            attributes.push(Attribute::RtpMap(codec::telephone_event_rtpmap(pt)));
            attributes.push(Attribute::Fmtp(codec::telephone_event_fmtp(pt)));
        }
        if let Some(p) = self.ptime {
            attributes.push(Attribute::Ptime(p));
        }
        attributes.push(Attribute::Direction(direction));
        MediaDescription {
            media: "audio".to_owned(),
            port: self.rtp_port,
            port_count: None,
            proto: "RTP/AVP".to_owned(),
            formats,
            connection: None,
            attributes,
        }
    }

    /// A description with our `o=`, `s=`, session-level `c=` and the given media.
    pub(crate) fn description(&self, media: Vec<MediaDescription>) -> SessionDescription {
        SessionDescription {
            origin: Origin {
                username: ORIGIN_USERNAME.to_owned(),
                session_id: self.session_id,
                session_version: self.session_version,
                address_type: AddressType::of(&self.address),
                address: self.address.to_string(),
            },
            session_name: SESSION_NAME.to_owned(),
            connection: Some(self.address),
            attributes: Vec::new(),
            media,
        }
    }
}

/// The negotiated audio stream: what the media layer needs to send and receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaParams {
    /// Where to send RTP: the peer's `c=` address and `m=` port (`0.0.0.0` while on RFC 2543 hold).
    pub remote_rtp: SocketAddr,
    /// The chosen codec.
    pub codec: Codec,
    /// The payload type number of the codec as the peer's description states it.
    pub payload_type: u8,
    /// The telephone-event payload type, if both sides support it.
    pub telephone_event: Option<u8>,
    /// The peer's effective direction (sendonly/inactive: the peer holds us).
    pub remote_direction: Direction,
    /// Our agreed direction (whether we may send and should expect to receive).
    pub local_direction: Direction,
    /// The peer's `a=ptime`, if given.
    pub ptime: Option<u32>,
}

impl MediaParams {
    /// Whether the peer has put us on hold (it does not want to receive media).
    pub fn held_by_remote(&self) -> bool {
        !self.remote_direction.receives()
    }

    /// Whether we should send RTP to [`MediaParams::remote_rtp`] now.
    pub fn should_send(&self) -> bool {
        self.local_direction.sends()
            && self.remote_direction.receives()
            && !self.remote_rtp.ip().is_unspecified()
            && self.remote_rtp.port() != 0
    }
}

/// The result of answering an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The answer to send.
    pub sdp: SessionDescription,
    /// The negotiated audio stream.
    pub media: MediaParams,
}
