//! Where SIP messages come from and go to, and the RFC 3261 §18.2.2 / RFC 3581 rules for
//! sending a response back along the top Via.

use std::net::{IpAddr, SocketAddr};

use super::fields::{Transport, Via};

/// A transport-level peer: an address, a transport and, for streams, the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The remote socket address.
    pub addr: SocketAddr,
    /// The transport.
    pub transport: Transport,
    /// The stream connection the message came on (TCP), so responses reuse it.
    pub connection: Option<u64>,
}

impl Peer {
    /// A UDP peer.
    pub fn udp(addr: SocketAddr) -> Peer {
        Peer {
            addr,
            transport: Transport::Udp,
            connection: None,
        }
    }
}

/// Records on the top Via where a request really came from (`received`, and `rport` when the
/// sender asked for it, RFC 3581), so responses and the dialog can find a peer behind NAT.
pub fn stamp_received(via: &mut Via, source: SocketAddr) {
    let sent_by_ip: Option<IpAddr> = via.host.trim_matches(['[', ']']).parse().ok();
    if via.param("rport").is_some() {
        via.set_param("rport", Some(source.port().to_string()));
        via.set_param("received", Some(source.ip().to_string()));
    } else if sent_by_ip != Some(source.ip()) {
        via.set_param("received", Some(source.ip().to_string()));
    }
}

/// Where a response to a request with this (stamped) top Via goes.
pub fn response_destination(via: &Via, source: Peer) -> Peer {
    if via.transport.is_reliable() {
        // Streams: back on the connection the request came on (§18.2.2).
        return source;
    }
    let ip = via
        .param("received")
        .flatten()
        .and_then(|r| r.parse::<IpAddr>().ok())
        .or_else(|| via.host.trim_matches(['[', ']']).parse().ok())
        .unwrap_or(source.addr.ip());
    let port = via
        .param("rport")
        .flatten()
        .and_then(|p| p.parse::<u16>().ok())
        .or(via.port)
        .unwrap_or(5060);
    Peer::udp(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> SocketAddr {
        "203.0.113.7:40000".parse().unwrap()
    }

    #[test]
    fn rport_sends_the_response_back_to_the_nat_binding() {
        let mut via = Via::parse("SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bK1;rport").unwrap();
        stamp_received(&mut via, source());
        assert_eq!(via.param("received"), Some(Some("203.0.113.7")));
        assert_eq!(via.param("rport"), Some(Some("40000")));
        let to = response_destination(&via, Peer::udp(source()));
        assert_eq!(to.addr, source());
    }

    #[test]
    fn without_rport_the_response_goes_to_received_ip_and_sent_by_port() {
        let mut via = Via::parse("SIP/2.0/UDP 192.168.1.2:5070;branch=z9hG4bK1").unwrap();
        stamp_received(&mut via, source());
        assert_eq!(via.param("rport"), None);
        let to = response_destination(&via, Peer::udp(source()));
        assert_eq!(to.addr, "203.0.113.7:5070".parse().unwrap());
    }

    #[test]
    fn matching_sent_by_gets_no_received_and_default_port_is_5060() {
        let mut via = Via::parse("SIP/2.0/UDP 203.0.113.7;branch=z9hG4bK1").unwrap();
        stamp_received(&mut via, source());
        assert_eq!(via.param("received"), None);
        let to = response_destination(&via, Peer::udp(source()));
        assert_eq!(to.addr, "203.0.113.7:5060".parse().unwrap());
    }

    #[test]
    fn tcp_responses_reuse_the_connection() {
        let via = Via::parse("SIP/2.0/TCP 192.168.1.2:5060;branch=z9hG4bK1").unwrap();
        let peer = Peer {
            addr: source(),
            transport: Transport::Tcp,
            connection: Some(9),
        };
        assert_eq!(response_destination(&via, peer), peer);
    }
}
