//! SDP (RFC 4566) parsing and printing, and offer/answer (RFC 3264) for a G.711-only B2BUA.
//!
//! - [`SessionDescription::parse`] reads a body, `to_string()`/[`SessionDescription::write_to`]
//!   print one with CRLF line ends.
//! - [`answer`], [`offer`], [`reoffer`] and [`accept_answer`] are the pure negotiation functions;
//!   [`SdpSession`] wraps them per call leg and keeps the `o=` version rule of RFC 3264 §8.
//! - [`MediaParams`] is what the media layer needs: remote RTP address, codec and payload types,
//!   directions (hold) and ptime.

mod codec;
mod direction;
mod error;
mod local;
mod negotiate;
mod parse;
mod session;
mod state;

#[cfg(test)]
mod fixtures;

pub use codec::{
    telephone_event_fmtp, telephone_event_rtpmap, Codec, PayloadFormat, CLOCK_RATE,
    TELEPHONE_EVENT_ENCODING, TELEPHONE_EVENT_EVENTS, TELEPHONE_EVENT_PAYLOAD_TYPE,
};
pub use direction::Direction;
pub use error::{NegotiationError, SdpError};
pub use local::{Answer, LocalMedia, MediaParams, DEFAULT_PTIME, ORIGIN_USERNAME, SESSION_NAME};
pub use negotiate::{accept_answer, answer, offer, reoffer};
pub use parse::{MAX_ATTRIBUTES, MAX_FORMATS, MAX_MEDIA, MAX_SDP_LEN};
pub use session::{
    AddressType, Attribute, Fmtp, MediaDescription, Origin, RtpMap, SessionDescription,
};
pub use state::SdpSession;
