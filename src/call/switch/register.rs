//! Seat phones registering (REGISTER with digest authentication), and the seat book's
//! reloads: which seats exist and which of them a call can reach.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use tracing::info;

use super::Switch;
use crate::acd::SeatProfile;
use crate::seats::SeatBook;
use crate::sip::endpoint::ServerTxnId;
use crate::sip::fields::{Fields, Transport};
use crate::sip::message::Request;
use crate::sip::peer::Peer;
use crate::sip::uri::Uri;

impl Switch {
    /// A REGISTER from a seat's phone.
    pub(super) fn register(
        &mut self,
        now: Instant,
        txn: ServerTxnId,
        request: Request,
        source: Peer,
    ) {
        let reply = self
            .registrations
            .handle(now, &request, source.addr.ip(), &self.seat_book);
        let mut response = self.endpoint.tagged(&request, reply.status);
        for (name, value) in reply.headers {
            response.headers.push(name, value);
        }
        self.endpoint.respond(now, txn, response);
        if reply.status == 200 {
            if let Some(Ok(contact)) = request.contact() {
                if behind_nat_or_tcp(&contact.uri, source) {
                    self.phone_peers.insert(contact.uri.to_string(), source);
                }
            }
        }
        if let Some(seat) = reply.seat {
            self.refresh_reachable(now, &seat);
        }
    }

    /// Tells the ACD whether seat `id` has a registered phone now.
    fn refresh_reachable(&mut self, now: Instant, id: &str) {
        let Some(decl) = self.seat_book.by_id(id) else {
            return;
        };
        let reachable = !self.registrations.contacts(&decl.username, now).is_empty();
        if let Some(seat) = self.acd.seat_id(id) {
            self.acd.set_reachable(now, seat, reachable);
        }
    }

    /// Registrations that ran out: those seats cannot be offered calls any more.
    pub(super) fn expire_registrations(&mut self, now: Instant) {
        let expired = self.registrations.expire(now);
        if !expired.is_empty() {
            self.forget_unregistered_phones(now);
        }
        for username in expired {
            let id = self.seat_book.by_username(&username).map(|s| s.id.clone());
            if let Some(id) = id {
                info!(seat = %id, "registration expired");
                self.refresh_reachable(now, &id);
            }
        }
    }

    /// Drops the sources of phone contacts no longer registered.
    fn forget_unregistered_phones(&mut self, now: Instant) {
        let registered: std::collections::HashSet<String> = self
            .seat_book
            .seats
            .iter()
            .flat_map(|s| self.registrations.contacts(&s.username, now))
            .map(|uri| uri.to_string())
            .collect();
        self.phone_peers.retain(|uri, _| registered.contains(uri));
    }

    /// Takes a new version of the seat book: seats are added, changed and removed in the ACD
    /// (a seat on a call keeps it); removed seats' registrations are forgotten.
    pub fn set_seats(&mut self, now: Instant, book: Arc<SeatBook>) {
        for old in &self.seat_book.seats {
            let kept = book
                .by_id(&old.id)
                .is_some_and(|new| new.username == old.username);
            if !kept {
                self.registrations.forget(&old.username);
            }
        }
        self.acd.set_seats(
            now,
            book.seats
                .iter()
                .map(|s| SeatProfile {
                    id: s.id.clone(),
                    skills: s.skills.clone(),
                    expert: s.expert,
                })
                .collect(),
        );
        self.seat_book = book;
        self.forget_unregistered_phones(now);
        let ids: Vec<String> = self.seat_book.seats.iter().map(|s| s.id.clone()).collect();
        for id in ids {
            self.refresh_reachable(now, &id);
        }
        self.run_acd(now);
    }
}

/// Whether offers to a phone must go back where its REGISTER came from rather than to its
/// Contact: over the TCP connection it registered on, or through its NAT (a private Contact
/// address that is not the source). Otherwise the Contact is used, which also allows a phone
/// registered by a third party.
fn behind_nat_or_tcp(contact: &Uri, source: Peer) -> bool {
    if source.transport != Transport::Udp {
        return true;
    }
    let Ok(IpAddr::V4(ip)) = contact.host.parse::<IpAddr>() else {
        return false;
    };
    let shared = ip.octets()[0] == 100 && (ip.octets()[1] & 0xC0) == 64;
    (ip.is_private() || shared) && IpAddr::V4(ip) != source.addr.ip()
}
