//! The media direction attributes (RFC 4566 §6, RFC 3264 §6.1) and the answer rule.

use std::fmt;

/// The direction of a media stream, always from the point of view of the SDP's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv`: the author sends and receives (the default when no attribute is given).
    #[default]
    SendRecv,
    /// `a=sendonly`: the author sends but does not receive (it puts the peer on hold).
    SendOnly,
    /// `a=recvonly`: the author receives but does not send.
    RecvOnly,
    /// `a=inactive`: no media in either direction.
    Inactive,
}

impl Direction {
    /// Builds a direction from whether the author sends and whether it receives.
    pub const fn from_flags(sends: bool, receives: bool) -> Direction {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether the author sends media.
    pub const fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the author receives media.
    pub const fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same stream seen from the other end: sendonly and recvonly swap.
    pub const fn reverse(self) -> Direction {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// Allows only what both directions allow.
    pub const fn intersect(self, other: Direction) -> Direction {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    /// The direction to put in an answer (RFC 3264 §6.1).
    ///
    /// `offered` is the offerer's (effective) direction, `local` what we want ourselves
    /// (`SendRecv` normally, `SendOnly` while we hold the peer, `Inactive` when both hold).
    /// sendonly → recvonly, recvonly → sendonly, inactive → inactive, sendrecv → `local`.
    pub const fn answer_to(offered: Direction, local: Direction) -> Direction {
        offered.reverse().intersect(local)
    }

    /// Drops receiving: what a stream means when its address is `0.0.0.0` (RFC 2543 hold).
    pub const fn without_receive(self) -> Direction {
        Direction::from_flags(self.sends(), false)
    }

    /// The attribute name, e.g. `sendonly`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Maps an attribute name (case-insensitive) to a direction.
    pub fn from_attribute(name: &str) -> Option<Direction> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Direction::{self, *};

    #[test]
    fn answer_rule_with_sendrecv_preference() {
        assert_eq!(Direction::answer_to(SendOnly, SendRecv), RecvOnly);
        assert_eq!(Direction::answer_to(RecvOnly, SendRecv), SendOnly);
        assert_eq!(Direction::answer_to(Inactive, SendRecv), Inactive);
        assert_eq!(Direction::answer_to(SendRecv, SendRecv), SendRecv);
    }

    #[test]
    fn answer_rule_while_we_hold() {
        assert_eq!(Direction::answer_to(SendRecv, SendOnly), SendOnly);
        assert_eq!(Direction::answer_to(SendOnly, SendOnly), Inactive);
        assert_eq!(Direction::answer_to(RecvOnly, SendOnly), SendOnly);
        assert_eq!(Direction::answer_to(SendRecv, Inactive), Inactive);
    }

    #[test]
    fn names_and_flags() {
        for d in [SendRecv, SendOnly, RecvOnly, Inactive] {
            assert_eq!(Direction::from_attribute(d.as_str()), Some(d));
            assert_eq!(Direction::from_flags(d.sends(), d.receives()), d);
            assert_eq!(d.reverse().reverse(), d);
        }
        assert_eq!(Direction::from_attribute("SENDONLY"), Some(SendOnly));
        assert_eq!(Direction::from_attribute("rtcp-mux"), None);
        assert_eq!(SendRecv.without_receive(), SendOnly);
        assert_eq!(RecvOnly.without_receive(), Inactive);
        assert_eq!(Direction::default(), SendRecv);
    }
}
