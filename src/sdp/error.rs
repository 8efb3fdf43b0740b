//! Errors of SDP parsing and of offer/answer negotiation.

/// Why an SDP body could not be parsed.
///
/// Line numbers are 1-based and count every line of the body, including ignored ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is longer than the parser accepts.
    #[error("SDP body of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Length of the body.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More `m=` lines than the parser accepts.
    #[error("more than {0} media descriptions")]
    TooManyMedia(usize),
    /// More `a=` lines than the parser accepts.
    #[error("more than {0} attributes")]
    TooManyAttributes(usize),
    /// More formats on one `m=` line than the parser accepts.
    #[error("line {line}: more than {max} formats on an m= line")]
    TooManyFormats {
        /// Line of the `m=` line.
        line: usize,
        /// The limit.
        max: usize,
    },
    /// A `v=` line with a version other than 0.
    #[error("line {0}: unsupported SDP version")]
    UnsupportedVersion(usize),
    /// No `o=` line.
    #[error("missing o= line")]
    MissingOrigin,
    /// A malformed `o=` line.
    #[error("line {0}: malformed o= line")]
    InvalidOrigin(usize),
    /// A malformed `c=` line (also: a host name instead of an IP address).
    #[error("line {0}: malformed c= line")]
    InvalidConnection(usize),
    /// A media description with a non-zero port has no `c=` line of its own nor a session one.
    #[error("media description {0} has no connection address")]
    MissingConnection(usize),
    /// A malformed `m=` line.
    #[error("line {line}: malformed m= line: {reason}")]
    InvalidMedia {
        /// Line of the `m=` line.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The port of an `m=` line (or its port count) is not a number in range.
    #[error("line {0}: invalid port on m= line")]
    InvalidPort(usize),
}

/// Why an offer/answer exchange failed; the engine answers 488 Not Acceptable Here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// The SDP has no audio stream (or the answer lacks the audio stream we offered).
    #[error("no audio stream")]
    NoAudio,
    /// The audio streams use a transport other than plain RTP/AVP (e.g. SRTP).
    #[error("unsupported audio transport {0}")]
    UnsupportedTransport(String),
    /// The audio stream is rejected (port 0) or shares no codec with us.
    #[error("no common codec")]
    NoCommonCodec,
    /// The audio stream has no connection address.
    #[error("audio stream has no connection address")]
    MissingConnection,
    /// An answer arrived but no offer of ours is outstanding.
    #[error("no offer outstanding")]
    NoOfferPending,
}
