//! RTP media primitives: RFC 3550 packet parsing/writing and RFC 4733 telephone events.
//!
//! Everything here is pure and allocation-free on the per-packet path.

pub mod packet;
pub mod telephone_event;

pub use packet::{is_rtcp, write_header, RtpError, RtpExtension, RtpPacket, RTP_HEADER_LEN};
pub use telephone_event::{
    char_to_event, event_to_char, DtmfPacket, DtmfReceiver, DtmfSender, TelephoneEvent,
    TelephoneEventError,
};
