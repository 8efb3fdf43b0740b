//! The vocabulary between the call controller and the media plane: commands down, events up.
//!
//! The controller never touches a packet; it says what a leg should do and hears what happened.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::codec::Codec;
use super::prompt::Prompt;

/// One RTP leg of a call (a caller, a seat, a trunk side, a third party).
///
/// A call's first leg (the caller) has the two top bits clear; its second leg (the trunk or seat
/// it is bridged to) is the same number with [`LegId::PARTNER`] set, and its third leg (the party
/// a seat brings in for a three-way transfer) the same number with [`LegId::THIRD`] set, so the
/// media plane can place all three on the same worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u64);

impl LegId {
    /// The bit that marks a call's second leg.
    pub const PARTNER: u64 = 1 << 63;

    /// The bit that marks a call's third leg.
    pub const THIRD: u64 = 1 << 62;

    /// The call's second leg: its first leg's number with [`LegId::PARTNER`] set.
    pub fn partner(self) -> LegId {
        LegId(self.call_leg().0 | LegId::PARTNER)
    }

    /// The call's third leg: its first leg's number with [`LegId::THIRD`] set.
    pub fn third(self) -> LegId {
        LegId(self.call_leg().0 | LegId::THIRD)
    }

    /// The call's fourth leg: both bits set (a seat phone's second line during a consult).
    pub fn fourth(self) -> LegId {
        LegId(self.call_leg().0 | LegId::PARTNER | LegId::THIRD)
    }

    /// The call's first leg: this id with [`LegId::PARTNER`] and [`LegId::THIRD`] cleared.
    pub fn call_leg(self) -> LegId {
        LegId(self.0 & !(LegId::PARTNER | LegId::THIRD))
    }
}

/// What the peer agreed to in SDP, as the media plane needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamParams {
    /// Where the peer said to send RTP (replaced by where its RTP really comes from).
    pub remote: SocketAddr,
    /// The negotiated codec.
    pub codec: Codec,
    /// The payload type number the peer uses for that codec.
    pub payload_type: u8,
    /// The RFC 4733 telephone-event payload type, when negotiated.
    pub telephone_event: Option<u8>,
    /// Whether we may send (false when the peer holds us: sendonly/inactive from its side).
    pub send: bool,
    /// Whether the peer will send (false when on hold: no media timeout then).
    pub receive: bool,
}

/// How a digit reached the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigitSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// Audio tones found by the Goertzel detector.
    InBand,
    /// SIP INFO (application/dtmf-relay).
    SipInfo,
}

/// A command from the controller to the media plane.
#[derive(Clone, Debug)]
pub enum MediaCommand {
    /// Bind an RTP port for a new leg; answered by `MediaEvent::Opened` or `OpenFailed`.
    Open {
        /// The new leg.
        leg: LegId,
    },
    /// Start or update the stream after offer/answer (also for hold and resume).
    Stream {
        /// The leg.
        leg: LegId,
        /// What was negotiated.
        params: StreamParams,
    },
    /// Play prompts one after the other, replacing any playback; `barge_in` stops them at the
    /// first digit. Only a playback that runs to its end reports `PlayFinished`.
    Play {
        /// The leg.
        leg: LegId,
        /// The controller's number for this playback, echoed in `PlayFinished`.
        play: u64,
        /// The prompts, in order.
        prompts: Vec<Arc<Prompt>>,
        /// Whether a digit interrupts the playback.
        barge_in: bool,
    },
    /// Stop any playback (silence follows).
    StopPlay {
        /// The leg.
        leg: LegId,
    },
    /// Release the leg and its port (a bridged leg is unbridged first, its peer goes silent).
    Close {
        /// The leg.
        leg: LegId,
    },
    /// Relay audio both ways between two legs of one worker (see [`LegId::partner`]): what
    /// arrives on `leg` is sent on `peer` and the other way round, transcoded when their codecs
    /// differ. Either leg's earlier bridge is dissolved first.
    Bridge {
        /// One leg (routes the command).
        leg: LegId,
        /// The other leg.
        peer: LegId,
    },
    /// Dissolve the bridge of `leg`, both directions (silence follows on both legs); a leg in
    /// a conference leaves it instead (the others go on; a conference left alone ends).
    Unbridge {
        /// The leg.
        leg: LegId,
    },
    /// Mix two or three legs of one call (any of its caller, partner and third leg) in a
    /// conference (see [`super::mixer`]): each hears the others, never itself, in its own codec.
    /// The legs' bridges and earlier conferences are dissolved first; the same set again keeps
    /// the running conference. Legs of several calls, unopened legs, repeated legs or a count
    /// outside 2..=3 are logged and ignored.
    Conference {
        /// The legs; the first routes the command.
        legs: Vec<LegId>,
    },
    /// Dissolve the conference of `leg`, every member (silence follows on each until it is
    /// bridged or conferenced again). To take one leg out and let the others go on talking,
    /// `Unbridge` or `Close` it instead.
    EndConference {
        /// Any member leg.
        leg: LegId,
    },
    /// Record the call of `leg` (a caller leg, bridged now or later) into a stereo WAV at
    /// `path`: left is what arrives on `leg`, right what the caller hears from the other parties
    /// (see [`super::recorder`]). Replaces the leg's running recording; answered by exactly one
    /// `MediaEvent::RecordingDone`.
    Record {
        /// The caller leg.
        leg: LegId,
        /// The WAV file to write (parent directories are created).
        path: PathBuf,
    },
    /// Finish the recording of `leg` (closing the leg finishes it too).
    StopRecording {
        /// The caller leg.
        leg: LegId,
    },
}

impl MediaCommand {
    /// The leg the command is for.
    pub fn leg(&self) -> LegId {
        match self {
            MediaCommand::Open { leg }
            | MediaCommand::Stream { leg, .. }
            | MediaCommand::Play { leg, .. }
            | MediaCommand::StopPlay { leg }
            | MediaCommand::Close { leg }
            | MediaCommand::Bridge { leg, .. }
            | MediaCommand::Unbridge { leg }
            | MediaCommand::Record { leg, .. }
            | MediaCommand::EndConference { leg }
            | MediaCommand::StopRecording { leg } => *leg,
            // An empty list is ignored by the plane; leg 0 only keeps this total.
            MediaCommand::Conference { legs } => legs.first().copied().unwrap_or(LegId(0)),
        }
    }
}

/// Something the media plane reports to the controller.
///
/// Only `PartialEq`: `RecordingDone` carries seconds as `f64`.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaEvent {
    /// The leg's RTP socket is bound at `local`.
    Opened {
        /// The leg.
        leg: LegId,
        /// Local RTP address to put in SDP.
        local: SocketAddr,
    },
    /// No RTP port could be bound (pool exhausted or all in use).
    OpenFailed {
        /// The leg.
        leg: LegId,
    },
    /// The caller pressed a key.
    Digit {
        /// The leg.
        leg: LegId,
        /// `0`-`9`, `*`, `#`, `A`-`D`.
        digit: char,
        /// How it arrived.
        source: DigitSource,
    },
    /// The prompts of a `Play` have all been sent (not reported when stopped or replaced).
    PlayFinished {
        /// The leg.
        leg: LegId,
        /// The number given in `Play`.
        play: u64,
    },
    /// No RTP arrived for the configured media timeout.
    Timeout {
        /// The leg.
        leg: LegId,
    },
    /// A recording ended (once per `Record`): the WAV is finalized, or it failed and `error`
    /// says why (the call itself is never affected).
    RecordingDone {
        /// The caller leg given in `Record`.
        leg: LegId,
        /// The file given in `Record`.
        path: PathBuf,
        /// Audio written, in seconds (wall-clock time recorded; less when it failed).
        seconds: f64,
        /// Why the recording failed or is incomplete, if it did or is.
        error: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partner_sets_and_call_leg_clears_the_top_bit() {
        let a = LegId(42);
        assert_eq!(a.partner(), LegId(42 | 1 << 63));
        assert_eq!(a.partner().call_leg(), a);
        assert_eq!(a.call_leg(), a);
        assert_eq!(a.partner().partner(), a.partner());
        assert_ne!(a.partner(), a);
        let peer = a.partner();
        let bridge = MediaCommand::Bridge { leg: a, peer };
        assert_eq!(bridge.leg(), a);
        assert_eq!(MediaCommand::Unbridge { leg: peer }.leg(), peer);
    }

    #[test]
    fn third_has_its_own_bit_and_the_same_call_leg() {
        let a = LegId(42);
        let c = a.third();
        assert_eq!(c, LegId(42 | 1 << 62));
        assert_eq!(c.call_leg(), a);
        assert_eq!(a.partner().third(), c);
        assert_eq!(c.partner(), a.partner());
        assert_eq!(c.third(), c);
        assert!(c != a && c != a.partner());
        let conf = MediaCommand::Conference {
            legs: vec![c, a, a.partner()],
        };
        assert_eq!(conf.leg(), c);
    }
}
