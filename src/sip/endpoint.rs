//! The SIP endpoint: bytes in, transactions matched, events out to the transaction user.
//!
//! Like quinn-proto's endpoint it sorts every message into "belongs to a transaction",
//! "new request for the TU" or "answered statelessly" (400 for unreadable requests).
//! Sans-IO: `handle_message` / `handle_timeout` feed it; `poll_transmit`, `poll_event` and
//! `poll_timeout` drain it (drain all three after every feed).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use tracing::debug;

use super::fields::{Fields, Transport, Via, BRANCH_COOKIE};
use super::message::{HeaderName, Message, Method, Request, Response};
use super::parse::parse;
use super::peer::{response_destination, stamp_received, Peer};
use super::transaction::{
    ClientInvite, ClientKey, ClientNonInvite, ServerInvite, ServerKey, ServerNonInvite,
    TimerConfig, Transaction, TransactionOutput,
};
use super::validate::check_request;
use crate::deadlines::Deadlines;

/// Names a server transaction for the TU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxnId(pub u64);

/// Names a client transaction for the TU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxnId(pub u64);

/// Bytes to send to a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: Peer,
    /// The printed message.
    pub bytes: Vec<u8>,
}

/// What the endpoint tells its transaction user.
#[derive(Clone, Debug)]
pub enum SipEvent {
    /// A new request (not ACK, not a CANCEL that matched): the TU must `respond` to `txn`.
    Request {
        /// The server transaction to answer on.
        txn: ServerTxnId,
        /// The request, top Via stamped with `received`/`rport`.
        request: Request,
        /// Where it came from.
        source: Peer,
    },
    /// An ACK that matched no INVITE server transaction: the ACK for a 2xx.
    Ack {
        /// The ACK.
        request: Request,
        /// Where it came from.
        source: Peer,
    },
    /// A CANCEL matched this pending INVITE (already answered 200): the TU should answer 487.
    Cancelled {
        /// The INVITE's server transaction.
        invite: ServerTxnId,
    },
    /// A response to one of our requests.
    Response {
        /// The client transaction.
        txn: ClientTxnId,
        /// The response.
        response: Response,
    },
    /// A client transaction got no final response in time (Timer B/F).
    ClientTimeout {
        /// The client transaction.
        txn: ClientTxnId,
    },
    /// A server INVITE transaction's final response was never ACKed (Timer H or 2xx timeout).
    AckTimeout {
        /// The server transaction.
        txn: ServerTxnId,
    },
}

/// The endpoint's settings.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// The host written in our Via (the advertised address).
    pub via_host: String,
    /// The port written in our Via.
    pub via_port: u16,
    /// RFC 3261 timer constants.
    pub timers: TimerConfig,
    /// The `Server` header on our responses.
    pub server_name: String,
}

enum ServerTxn {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

enum ClientTxn {
    Invite(ClientInvite),
    NonInvite(ClientNonInvite),
}

struct ServerEntry {
    txn: ServerTxn,
    key: ServerKey,
    peer: Peer,
    /// The To tag the TU gave its responses, so a 200 to CANCEL can carry the same (§9.2).
    to_tag: Option<String>,
}

struct ClientEntry {
    txn: ClientTxn,
    key: ClientKey,
    peer: Peer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum TxnRef {
    Server(u64),
    Client(u64),
}

/// The SIP endpoint: the transaction layer plus stateless handling.
pub struct Endpoint {
    config: EndpointConfig,
    servers: HashMap<u64, ServerEntry>,
    server_keys: HashMap<ServerKey, u64>,
    clients: HashMap<u64, ClientEntry>,
    client_keys: HashMap<ClientKey, u64>,
    timers: Deadlines<TxnRef>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SipEvent>,
    next_id: u64,
    seed: u64,
}

impl Endpoint {
    /// A new endpoint; `seed` makes its tags, branches and Call-IDs unique per process.
    pub fn new(config: EndpointConfig, seed: u64) -> Endpoint {
        Endpoint {
            config,
            servers: HashMap::new(),
            server_keys: HashMap::new(),
            clients: HashMap::new(),
            client_keys: HashMap::new(),
            timers: Deadlines::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_id: 0,
            seed,
        }
    }

    /// A fresh token for tags, branches and Call-IDs (unique, unguessable enough for routing).
    pub fn new_token(&mut self) -> String {
        self.next_id += 1;
        format!("{:016x}", splitmix64(self.seed ^ self.next_id))
    }

    /// 16 fresh bytes for ids (call record UUIDs), from the same seeded generator as tokens.
    pub fn new_id(&mut self) -> [u8; 16] {
        self.next_id += 1;
        let high = splitmix64(self.seed ^ self.next_id);
        self.next_id += 1;
        let low = splitmix64(self.seed ^ self.next_id);
        ((u128::from(high) << 64) | u128::from(low)).to_be_bytes()
    }

    /// Feeds one message received from `source`.
    pub fn handle_message(&mut self, now: Instant, source: Peer, bytes: &[u8]) {
        match parse(bytes) {
            Ok(Message::Request(request)) => self.handle_request(now, source, request),
            Ok(Message::Response(response)) => self.handle_response(now, response),
            Err(error) => {
                debug!(%error, from = %source.addr, "unreadable SIP message");
                if let Some(request) = error.salvage() {
                    if request.method != Method::Ack {
                        let mut request = request.clone();
                        self.stamp(&mut request, source.addr);
                        let status = error.status();
                        self.respond_stateless(&request, source, status, &error.to_string());
                    }
                }
            }
        }
    }

    fn stamp(&self, request: &mut Request, source: SocketAddr) {
        if let Some(Ok(mut via)) = request.headers.get(&HeaderName::Via).map(Via::parse) {
            stamp_received(&mut via, source);
            request
                .headers
                .replace_first(&HeaderName::Via, via.to_string());
        }
    }

    fn handle_request(&mut self, now: Instant, source: Peer, mut request: Request) {
        self.stamp(&mut request, source.addr);
        if let Err(rejection) = check_request(&request) {
            if request.method != Method::Ack {
                let mut response = Response::to(&request, rejection.status);
                response.reason = rejection.reason.clone();
                for (name, value) in &rejection.extra_headers {
                    response.headers.push(name.clone(), value.clone());
                }
                self.send_stateless(&request, source, response);
            }
            return;
        }
        let key = match ServerKey::for_request(&request) {
            Ok(key) => key,
            Err(error) => {
                self.respond_stateless(&request, source, 400, &error.to_string());
                return;
            }
        };
        if let Some(&id) = self.server_keys.get(&key) {
            // A retransmission, or the ACK for a non-2xx final response.
            self.with_server(now, id, |txn, now| match txn {
                ServerTxn::Invite(t) => t.handle_request(now, &request),
                ServerTxn::NonInvite(t) => t.handle_request(now, &request),
            });
            return;
        }
        match request.method {
            Method::Ack => self.events.push_back(SipEvent::Ack { request, source }),
            Method::Cancel => self.handle_cancel(now, source, request, key),
            _ => {
                let Some(id) = self.create_server(now, source, &request, key) else {
                    return;
                };
                self.events.push_back(SipEvent::Request {
                    txn: ServerTxnId(id),
                    request,
                    source,
                });
                self.drain_server(id);
            }
        }
    }

    fn handle_cancel(&mut self, now: Instant, source: Peer, request: Request, key: ServerKey) {
        let invite = key
            .invite_key_for_cancel()
            .and_then(|invite| self.server_keys.get(&invite).copied());
        let Some(id) = self.create_server(now, source, &request, key) else {
            return;
        };
        let status = if invite.is_some() { 200 } else { 481 };
        let invite_tag = invite
            .and_then(|invite| self.servers.get(&invite))
            .and_then(|entry| entry.to_tag.clone());
        let response = match (invite_tag, request.headers.get(&HeaderName::To)) {
            (Some(tag), Some(to)) => {
                let mut response = Response::to(&request, status);
                response
                    .headers
                    .set(HeaderName::To, format!("{to};tag={tag}"));
                response
            }
            _ => self.tagged(&request, status),
        };
        self.respond(now, ServerTxnId(id), response);
        if let Some(invite) = invite {
            self.events.push_back(SipEvent::Cancelled {
                invite: ServerTxnId(invite),
            });
        }
    }

    fn create_server(
        &mut self,
        now: Instant,
        source: Peer,
        request: &Request,
        key: ServerKey,
    ) -> Option<u64> {
        let (transport, timers) = (source.transport, self.config.timers);
        let txn = if request.method == Method::Invite {
            ServerInvite::new(now, request.clone(), transport, timers).map(ServerTxn::Invite)
        } else {
            ServerNonInvite::new(now, request.clone(), transport, timers).map(ServerTxn::NonInvite)
        };
        let txn = match txn {
            Ok(txn) => txn,
            Err(error) => {
                self.respond_stateless(request, source, 400, &error.to_string());
                return None;
            }
        };
        let peer = match request.top_via() {
            Ok(via) => response_destination(&via, source),
            Err(_) => source,
        };
        self.next_id += 1;
        let id = self.next_id;
        self.server_keys.insert(key.clone(), id);
        self.servers.insert(
            id,
            ServerEntry {
                txn,
                key,
                peer,
                to_tag: None,
            },
        );
        Some(id)
    }

    fn handle_response(&mut self, now: Instant, response: Response) {
        let Ok(key) = ClientKey::for_response(&response) else {
            return;
        };
        let Some(&id) = self.client_keys.get(&key) else {
            debug!(status = response.status, "response matches no transaction");
            return;
        };
        self.with_client(now, id, |txn, now| match txn {
            ClientTxn::Invite(t) => t.handle_response(now, response),
            ClientTxn::NonInvite(t) => t.handle_response(now, response),
        });
    }

    /// Sends the TU's response on a server transaction.
    pub fn respond(&mut self, now: Instant, txn: ServerTxnId, mut response: Response) {
        if response.headers.get(&HeaderName::Server).is_none() {
            response
                .headers
                .push(HeaderName::Server, self.config.server_name.clone());
        }
        if let Some(entry) = self.servers.get_mut(&txn.0) {
            if entry.to_tag.is_none() {
                entry.to_tag = response
                    .to_header()
                    .ok()
                    .and_then(|to| to.tag().map(str::to_string));
            }
        }
        self.with_server(now, txn.0, |t, now| {
            let sent = match t {
                ServerTxn::Invite(t) => t.respond(now, response),
                ServerTxn::NonInvite(t) => t.respond(now, response),
            };
            // A second final response (e.g. 487 racing our 200) is refused by the machine.
            if let Err(error) = sent {
                debug!(%error, "response not sent");
            }
        });
    }

    /// The ACK for our 2xx arrived (the dialog matched it): stop retransmitting the 2xx.
    pub fn ack_received(&mut self, now: Instant, txn: ServerTxnId) {
        self.with_server(now, txn.0, |t, now| {
            if let ServerTxn::Invite(t) = t {
                t.handle_ack_for_2xx(now);
            }
        });
    }

    /// Sends a request in a new client transaction; a top Via with a new branch is added.
    /// `None` when the request cannot start one (an ACK, or headers the machine rejects).
    pub fn send_request(
        &mut self,
        now: Instant,
        mut request: Request,
        to: Peer,
    ) -> Option<ClientTxnId> {
        let branch = format!("{BRANCH_COOKIE}{}", self.new_token());
        request
            .headers
            .push_front(HeaderName::Via, self.via(to.transport, &branch));
        let key = ClientKey::for_request(&request).ok()?;
        let timers = self.config.timers;
        let txn = if request.method == Method::Invite {
            ClientTxn::Invite(ClientInvite::new(now, request, timers).ok()?)
        } else {
            ClientTxn::NonInvite(ClientNonInvite::new(now, request, timers).ok()?)
        };
        self.next_id += 1;
        let id = self.next_id;
        self.client_keys.insert(key.clone(), id);
        self.clients.insert(id, ClientEntry { txn, key, peer: to });
        self.drain_client(id);
        Some(ClientTxnId(id))
    }

    /// CANCELs our INVITE transaction `invite` (§9.1) in a client transaction of its own.
    /// `None` when it cannot be cancelled now: no provisional response yet (retry after one),
    /// or already final.
    pub fn cancel(&mut self, now: Instant, invite: ClientTxnId) -> Option<ClientTxnId> {
        let entry = self.clients.get_mut(&invite.0)?;
        let ClientTxn::Invite(txn) = &mut entry.txn else {
            return None;
        };
        let cancel = txn.cancel()?;
        txn.cancel_sent(now);
        let peer = entry.peer;
        let key = ClientKey::for_request(&cancel).ok()?;
        let txn = ClientNonInvite::new(now, cancel, self.config.timers).ok()?;
        self.next_id += 1;
        let id = self.next_id;
        self.client_keys.insert(key.clone(), id);
        let entry = ClientEntry {
            txn: ClientTxn::NonInvite(txn),
            key,
            peer,
        };
        self.clients.insert(id, entry);
        self.drain_client(invite.0);
        self.drain_client(id);
        Some(ClientTxnId(id))
    }

    /// Sends an ACK for a 2xx: outside any transaction (§17.1.1.3), with a new branch.
    pub fn send_ack(&mut self, mut ack: Request, to: Peer) {
        let branch = format!("{BRANCH_COOKIE}{}", self.new_token());
        ack.headers
            .push_front(HeaderName::Via, self.via(to.transport, &branch));
        self.transmits.push_back(Transmit {
            to,
            bytes: Message::Request(ack).to_bytes(),
        });
    }

    fn via(&self, transport: Transport, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {}:{};branch={branch};rport",
            transport.as_str(),
            self.config.via_host,
            self.config.via_port
        )
    }

    /// A response to `request` with our To tag added when it has none.
    pub fn tagged(&mut self, request: &Request, status: u16) -> Response {
        let mut response = Response::to(request, status);
        if let Ok(to) = request.to_header() {
            if to.tag().is_none() && status > 100 {
                let tag = self.new_token();
                if let Some(value) = request.headers.get(&HeaderName::To) {
                    response
                        .headers
                        .set(HeaderName::To, format!("{value};tag={tag}"));
                }
            }
        }
        response
    }

    fn respond_stateless(&mut self, request: &Request, source: Peer, status: u16, why: &str) {
        let mut response = self.tagged(request, status);
        if status == 400 {
            response.reason = format!("Bad Request ({why})");
        }
        self.send_stateless(request, source, response);
    }

    fn send_stateless(&mut self, request: &Request, source: Peer, mut response: Response) {
        response
            .headers
            .push(HeaderName::Server, self.config.server_name.clone());
        let to = match request.top_via() {
            Ok(via) => response_destination(&via, source),
            Err(_) => source,
        };
        self.transmits.push_back(Transmit {
            to,
            bytes: Message::Response(response).to_bytes(),
        });
    }

    /// Fires due transaction timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(due) = self.timers.pop_due(now) {
            match due {
                TxnRef::Server(id) => self.with_server(now, id, |t, now| match t {
                    ServerTxn::Invite(t) => t.handle_timeout(now),
                    ServerTxn::NonInvite(t) => t.handle_timeout(now),
                }),
                TxnRef::Client(id) => self.with_client(now, id, |t, now| match t {
                    ClientTxn::Invite(t) => t.handle_timeout(now),
                    ClientTxn::NonInvite(t) => t.handle_timeout(now),
                }),
            }
        }
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<SipEvent> {
        self.events.pop_front()
    }

    /// Gives back table space left over from a load peak.
    pub fn shrink(&mut self) {
        crate::memory::shrink_sparse(&mut self.servers);
        crate::memory::shrink_sparse(&mut self.server_keys);
        crate::memory::shrink_sparse(&mut self.clients);
        crate::memory::shrink_sparse(&mut self.client_keys);
        self.timers.shrink();
        self.transmits.shrink_to_fit();
        self.events.shrink_to_fit();
    }

    /// Live transactions (for metrics and leak tests).
    pub fn transactions(&self) -> usize {
        self.servers.len() + self.clients.len()
    }

    fn with_server(&mut self, now: Instant, id: u64, f: impl FnOnce(&mut ServerTxn, Instant)) {
        if let Some(entry) = self.servers.get_mut(&id) {
            f(&mut entry.txn, now);
            self.drain_server(id);
        }
    }

    fn with_client(&mut self, now: Instant, id: u64, f: impl FnOnce(&mut ClientTxn, Instant)) {
        if let Some(entry) = self.clients.get_mut(&id) {
            f(&mut entry.txn, now);
            self.drain_client(id);
        }
    }

    fn drain_server(&mut self, id: u64) {
        let Some(entry) = self.servers.get_mut(&id) else {
            return;
        };
        let mut terminated = false;
        loop {
            let output = match &mut entry.txn {
                ServerTxn::Invite(t) => t.poll_output(),
                ServerTxn::NonInvite(t) => t.poll_output(),
            };
            match output {
                None => break,
                Some(TransactionOutput::Transmit(message)) => self.transmits.push_back(Transmit {
                    to: entry.peer,
                    bytes: message.to_bytes(),
                }),
                Some(TransactionOutput::Timeout) => self.events.push_back(SipEvent::AckTimeout {
                    txn: ServerTxnId(id),
                }),
                // An ACK for our 2xx that reused the INVITE's branch.
                Some(TransactionOutput::Ack(request)) => self.events.push_back(SipEvent::Ack {
                    request,
                    source: entry.peer,
                }),
                Some(TransactionOutput::Terminated) => terminated = true,
                Some(_) => {}
            }
        }
        let next = match &entry.txn {
            ServerTxn::Invite(t) => t.poll_timeout(),
            ServerTxn::NonInvite(t) => t.poll_timeout(),
        };
        if terminated {
            let key = entry.key.clone();
            self.servers.remove(&id);
            self.server_keys.remove(&key);
            self.timers.clear(&TxnRef::Server(id));
        } else {
            match next {
                Some(at) => self.timers.set(TxnRef::Server(id), at),
                None => self.timers.clear(&TxnRef::Server(id)),
            }
        }
    }

    fn drain_client(&mut self, id: u64) {
        let Some(entry) = self.clients.get_mut(&id) else {
            return;
        };
        let mut terminated = false;
        loop {
            let output = match &mut entry.txn {
                ClientTxn::Invite(t) => t.poll_output(),
                ClientTxn::NonInvite(t) => t.poll_output(),
            };
            match output {
                None => break,
                Some(TransactionOutput::Transmit(message)) => self.transmits.push_back(Transmit {
                    to: entry.peer,
                    bytes: message.to_bytes(),
                }),
                Some(TransactionOutput::Response(response)) => {
                    self.events.push_back(SipEvent::Response {
                        txn: ClientTxnId(id),
                        response,
                    })
                }
                Some(TransactionOutput::Timeout) => {
                    self.events.push_back(SipEvent::ClientTimeout {
                        txn: ClientTxnId(id),
                    })
                }
                Some(TransactionOutput::Terminated) => terminated = true,
                Some(_) => {}
            }
        }
        let next = match &entry.txn {
            ClientTxn::Invite(t) => t.poll_timeout(),
            ClientTxn::NonInvite(t) => t.poll_timeout(),
        };
        if terminated {
            let key = entry.key.clone();
            self.clients.remove(&id);
            self.client_keys.remove(&key);
            self.timers.clear(&TxnRef::Client(id));
        } else {
            match next {
                Some(at) => self.timers.set(TxnRef::Client(id), at),
                None => self.timers.clear(&TxnRef::Client(id)),
            }
        }
    }
}

/// A 64-bit mixer (SplitMix64) turning a counter into well-spread tokens.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
