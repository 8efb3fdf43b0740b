//! Call flows between callers, the call distribution and the seats, in virtual time: seat phones
//! register and answer over SIP text, desktops log in and act through `handle_desk`, callers
//! wait in queues. Every assertion is about what someone would observe: the SIP sent to the
//! caller and to the seats' phones, the media plane's commands, the desk's events and replies,
//! and the call record.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use serde_json::Value;

use super::switch::SwitchConfig;
use super::switch_tests::{
    caller_sdp, config, plan, play_id, secs, show, Phone, Sent, Sim, ENGINE_IP,
};
use crate::desk::{Credential, DeskCommand, DeskReply, TransferKind};
use crate::media::control::LegId;
use crate::sdp::{Direction, SessionDescription};
use crate::sip::digest::Challenge;
use crate::sip::fields::Fields;
use crate::sip::message::{HeaderName, Message, Request, Response};
use crate::tickets::record::{CallRecord, QueueVisit};

/// One queue, `general`, that the number 12345 hands every caller to; a survey after the seat.
pub(super) const PLAN: &str = r#"
[defaults]
operator = "operator"
queue_fallback = "busy"

[queues.general]
name = "综合咨询"
skill = "general"
ring_timeout_s = 10
wrap_up_s = 30
max_wait_s = 120
after_max_wait = "offer-callback"
music = ["queue/music"]
announce_every_s = 0

[[numbers]]
number = "12345"
mode = "unified"
line = "12345"
start = "operator"

[nodes.operator]
queue = "general"
after = "rate-us"

[nodes.rate-us]
survey = ["survey"]
next = "goodbye"

[nodes.goodbye]
hangup = ["goodbye"]

[nodes.busy]
hangup = ["busy"]

[nodes.offer-callback]
callback = "caller"
prompts = ["queue/callback-offer"]
next = "goodbye"
fallback = "goodbye"
"#;

/// Two agents of the general queue.
const SEATS: &str = r#"
[seats.a1001]
name = "王芳"
username = "1001"
password = "secret-1001"
token = "token-a1001-0123456789"
skills = { general = 5 }

[seats.a1002]
name = "张伟"
username = "1002"
password = "secret-1002"
token = "token-a1002-0123456789"
skills = { general = 4 }
"#;

/// The hotline's seats on `plan_text`: nobody registered or logged in yet.
fn centre(plan_text: &str) -> Sim {
    staffed(config(), plan_text, SEATS)
}

/// The hotline under `config` on `plan_text` with the seats file `seats`: nobody registered or
/// logged in yet.
fn staffed(config: SwitchConfig, plan_text: &str, seats: &str) -> Sim {
    let mut sim = Sim::with_plan(config, plan(&[("12345.toml", plan_text)]));
    sim.load_seats(seats);
    sim
}

/// The desktop token of `seat`.
fn token(seat: &str) -> String {
    format!("token-{seat}-0123456789")
}

impl Sim {
    /// Loads a seats file.
    pub(super) fn load_seats(&mut self, text: &str) {
        let (book, _) = crate::seats::parse(text, "seats.toml")
            .unwrap_or_else(|problems| panic!("test seats refused: {problems:?}"));
        self.switch.set_seats(self.now, Arc::new(book));
        self.drain();
    }

    /// The next message on the wire, which must be `expected` (`INVITE`, `200 REGISTER`...)
    /// sent to `to`.
    fn sent_to(&mut self, to: SocketAddr, expected: &str) -> Sent {
        let Some(sent) = self.log.get(self.read).cloned() else {
            panic!("expected {expected} to {to}, nothing was sent");
        };
        self.read += 1;
        assert_eq!(sent.summary(), expected, "at {:?}: {sent:?}", sent.at);
        assert_eq!(sent.to.addr, to, "{expected} went to the wrong place");
        sent
    }

    pub(super) fn request_to(&mut self, to: SocketAddr, method: &str) -> Request {
        match self.sent_to(to, method).message {
            Message::Request(request) => request,
            Message::Response(_) => unreachable!(),
        }
    }

    pub(super) fn response_to(&mut self, to: SocketAddr, status: u16, method: &str) -> Response {
        match self.sent_to(to, &format!("{status} {method}")).message {
            Message::Response(response) => response,
            Message::Request(_) => unreachable!(),
        }
    }

    /// A desk request with `seat`'s own token acting on `seat`.
    pub(super) fn desk_as(&mut self, seat: &str, command: DeskCommand) -> DeskReply {
        self.desk_with(&Credential::SeatToken(token(seat)), Some(seat), command)
    }

    fn desk_with(
        &mut self,
        credential: &Credential,
        seat: Option<&str>,
        command: DeskCommand,
    ) -> DeskReply {
        let reply = self.switch.handle_desk(self.now, credential, seat, command);
        self.drain();
        reply
    }

    /// Desk events since the test last looked, one line each: `a1001 ready`,
    /// `a1001 not-ready no-answer`, `offer a1001`, `answered a1001`, `call-ended a1001`,
    /// `queue general queued`.
    pub(super) fn desk_events(&mut self) -> Vec<String> {
        std::mem::take(&mut self.desk)
            .iter()
            .map(|event| {
                let body = &event.body;
                let text = |key: &str| body[key].as_str().unwrap_or_default().to_string();
                match text("type").as_str() {
                    "seat" => match body["reason"].as_str() {
                        Some(reason) => format!("{} {} {reason}", text("seat"), text("state")),
                        None => format!("{} {}", text("seat"), text("state")),
                    },
                    "queue" => format!("queue {} {}", text("queue"), text("event")),
                    kind => format!("{kind} {}", text("seat")),
                }
            })
            .collect()
    }

    /// The latest record of the call (a progress row or the final one).
    pub(super) fn last_record(&self) -> &CallRecord {
        self.records.last().expect("a record")
    }

    /// The call's latest visit to a queue.
    fn last_visit(&self) -> &QueueVisit {
        self.last_record().queues.last().expect("a queue visit")
    }
}

/// A visit's offers as `seat outcome`.
pub(super) fn offers(visit: &QueueVisit) -> Vec<String> {
    visit
        .offers
        .iter()
        .map(|o| format!("{} {}", o.seat, o.outcome.as_deref().unwrap_or("-")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The seat phone: registers with digest authentication, answers and sends requests.
// ---------------------------------------------------------------------------------------------

pub(super) struct SeatPhone {
    pub(super) addr: SocketAddr,
    username: String,
    password: String,
    /// The phone's tag, in its REGISTERs' From and the dialogs it answers.
    tag: String,
    register_cseq: u32,
    branches: u32,
    /// CSeq of the requests it sends in a dialog.
    cseq: u32,
    /// The address its Contact names when it differs from where it sends from (behind NAT).
    private: Option<SocketAddr>,
}

impl SeatPhone {
    /// The phone of SIP user `username` at 203.0.113.`n`:5060.
    pub(super) fn new(n: u8, username: &str) -> SeatPhone {
        SeatPhone {
            addr: SocketAddr::new(Ipv4Addr::new(203, 0, 113, n).into(), 5060),
            username: username.to_string(),
            password: format!("secret-{username}"),
            tag: format!("phone{n}"),
            register_cseq: 0,
            branches: 0,
            cseq: 0,
            private: None,
        }
    }

    fn contact(&self) -> String {
        let at = self.private.unwrap_or(self.addr);
        format!("<sip:{}@{at}>", self.username)
    }

    fn new_branch(&mut self) -> String {
        self.branches += 1;
        format!("z9hG4bK-{}-{}", self.tag, self.branches)
    }

    /// The Request-URI (and digest uri) of its REGISTERs.
    fn registrar() -> String {
        format!("sip:{ENGINE_IP}:5060")
    }

    /// A REGISTER of its contact for an hour, with `authorization` when given.
    fn register(&mut self, authorization: Option<&str>) -> String {
        self.register_cseq += 1;
        let branch = self.new_branch();
        let user = &self.username;
        let mut text = format!("REGISTER {} SIP/2.0\r\n", SeatPhone::registrar());
        text += &format!("Via: SIP/2.0/UDP {};branch={branch};rport\r\n", self.addr);
        text += "Max-Forwards: 70\r\n";
        text += &format!("From: <sip:{user}@{ENGINE_IP}>;tag={}\r\n", self.tag);
        text += &format!("To: <sip:{user}@{ENGINE_IP}>\r\n");
        text += &format!("Call-ID: register-{}@{}\r\n", self.tag, self.addr.ip());
        text += &format!("CSeq: {} REGISTER\r\n", self.register_cseq);
        text += &format!("Contact: {}\r\n", self.contact());
        text += "Expires: 3600\r\n";
        if let Some(authorization) = authorization {
            text += &format!("Authorization: {authorization}\r\n");
        }
        text += "Content-Length: 0\r\n\r\n";
        text
    }

    /// The phone's SDP: PCMA and telephone-events at port 42000, `direction`.
    fn sdp(&self, version: u64, direction: &str) -> String {
        let ip = self.addr.ip();
        format!(
            "v=0\r\no={} 77 {version} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio 42000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n\
             a={direction}\r\n",
            self.username
        )
    }

    /// Its response to the engine's INVITE: tagged from 180 on, with its SDP answer in a 200.
    pub(super) fn respond(&self, invite: &Request, status: u16) -> Vec<u8> {
        let mut response = Response::to(invite, status);
        if status > 100 {
            let to = invite.headers.get(&HeaderName::To).unwrap_or_default();
            let to = format!("{to};tag={}", self.tag);
            response.headers.set(HeaderName::To, to);
            response.headers.push(HeaderName::Contact, self.contact());
        }
        if status == 200 {
            response
                .headers
                .push(HeaderName::ContentType, "application/sdp");
            response.body = self.sdp(1, "sendrecv").into_bytes();
        }
        Message::Response(response).to_bytes()
    }

    /// Its answer to any other request of the engine's (BYE, CANCEL, NOTIFY).
    pub(super) fn reply(&self, request: &Request, status: u16) -> Vec<u8> {
        Message::Response(Response::to(request, status)).to_bytes()
    }

    /// A request in the dialog it answered `invite` in, with the next CSeq (or `cseq`).
    pub(super) fn request(
        &mut self,
        invite: &Request,
        method: &str,
        cseq: Option<u32>,
        sdp: Option<&str>,
    ) -> String {
        let cseq = cseq.unwrap_or_else(|| {
            self.cseq += 1;
            self.cseq
        });
        let branch = self.new_branch();
        let target = invite.contact().expect("our Contact").expect("readable");
        let them = invite.headers.get(&HeaderName::From).unwrap_or_default();
        let us = invite.headers.get(&HeaderName::To).unwrap_or_default();
        let mut text = format!("{method} {} SIP/2.0\r\n", target.uri);
        text += &format!("Via: SIP/2.0/UDP {};branch={branch};rport\r\n", self.addr);
        text += "Max-Forwards: 70\r\n";
        text += &format!("From: {us};tag={}\r\n", self.tag);
        text += &format!("To: {them}\r\n");
        text += &format!("Call-ID: {}\r\n", invite.call_id().unwrap_or_default());
        text += &format!("CSeq: {cseq} {method}\r\n");
        if method != "ACK" {
            text += &format!("Contact: {}\r\n", self.contact());
        }
        match sdp {
            Some(sdp) => {
                text += "Content-Type: application/sdp\r\n";
                text += &format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len());
            }
            None => text += "Content-Length: 0\r\n\r\n",
        }
        text
    }
}

/// The phone registers: challenged first, then accepted with its digest answer.
fn register(sim: &mut Sim, phone: &mut SeatPhone) -> Response {
    sim.send(phone.addr, phone.register(None));
    let challenge = sim.response_to(phone.addr, 401, "REGISTER");
    let header = HeaderName::Other("WWW-Authenticate".into());
    let value = challenge.headers.get(&header).expect("a challenge");
    let challenge = Challenge::parse(value).expect("a digest challenge");
    let answer = challenge.answer(
        &phone.username,
        &phone.password,
        "REGISTER",
        &SeatPhone::registrar(),
        "0a4f113b",
    );
    sim.send(phone.addr, phone.register(Some(&answer)));
    sim.response_to(phone.addr, 200, "REGISTER")
}

/// The seat's phone registers and its desktop logs in ready.
pub(super) fn at_work(sim: &mut Sim, phone: &mut SeatPhone, seat: &str) {
    register(sim, phone);
    let reply = sim.desk_as(seat, DeskCommand::LogIn { ready: true });
    assert_eq!(reply.expect("logged in")["state"], "ready");
    assert_eq!(sim.desk_events(), [format!("{seat} ready")]);
}

/// The caller dials 12345 and is answered, which hands it to the queue at once: the media
/// commands after the caller's leg is set up.
fn queued(sim: &mut Sim, caller: &mut Phone) -> Vec<String> {
    let offer = caller_sdp(1, &[8, 0, 101], "sendrecv");
    sim.send(caller.addr, caller.invite(Some(&offer)));
    sim.expect_response(caller, 100, "INVITE");
    let ok = sim.expect_response(caller, 200, "INVITE");
    caller.learn(&ok);
    sim.send(caller.addr, caller.ack(None));
    let mut media = sim.media();
    let leg = media
        .first()
        .and_then(|m| m.strip_prefix("open "))
        .map(str::to_string);
    let leg = leg.expect("the caller's leg first");
    assert_eq!(
        media.drain(..2).collect::<Vec<_>>(),
        [
            format!("open {leg}"),
            format!("stream {leg} Pcma/8 to 198.51.100.7:40000 te=Some(101) send recv"),
        ]
    );
    media
}

/// The engine's INVITE reaches `phone`, which rings.
pub(super) fn rings(sim: &mut Sim, phone: &SeatPhone) -> Request {
    let invite = sim.request_to(phone.addr, "INVITE");
    sim.send(phone.addr, phone.respond(&invite, 180));
    invite
}

/// `phone` answers `invite`; the engine ACKs and bridges.
pub(super) fn picks_up(sim: &mut Sim, phone: &SeatPhone, invite: &Request) {
    sim.send(phone.addr, phone.respond(invite, 200));
    let ack = sim.request_to(phone.addr, "ACK");
    assert_eq!(
        ack.uri.to_string(),
        format!("sip:{}@{}", phone.username, phone.addr)
    );
    assert_eq!(ack.cseq().unwrap().seq, 1);
}

/// The engine gives up on `invite` to `phone`: CANCEL, answered 200, then the INVITE 487 (which
/// the engine ACKs).
pub(super) fn cancelled(sim: &mut Sim, phone: &SeatPhone, invite: &Request) {
    let cancel = sim.request_to(phone.addr, "CANCEL");
    assert_eq!(cancel.call_id().unwrap(), invite.call_id().unwrap());
    assert_eq!(cancel.cseq().unwrap().seq, 1);
    sim.send(phone.addr, phone.reply(&cancel, 200));
    sim.send(phone.addr, phone.respond(invite, 487));
    sim.request_to(phone.addr, "ACK");
}

/// Seat a1001's phone registered, the seat ready, a caller talking to it: the INVITE it got.
pub(super) fn talking(sim: &mut Sim, caller: &mut Phone, phone: &mut SeatPhone) -> Request {
    at_work(sim, phone, "a1001");
    queued(sim, caller);
    let invite = rings(sim, phone);
    picks_up(sim, phone, &invite);
    sim.take_media();
    sim.desk_events();
    invite
}

// ---------------------------------------------------------------------------------------------
// 1. Registration.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_seat_phone_registers_with_its_digest_password() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    sim.send(phone.addr, phone.register(None));
    let challenge = sim.response_to(phone.addr, 401, "REGISTER");
    let header = HeaderName::Other("WWW-Authenticate".into());
    let value = challenge
        .headers
        .get(&header)
        .expect("a challenge")
        .to_string();
    assert!(value.starts_with("Digest realm=\"hotline\""), "{value}");
    let challenge = Challenge::parse(&value).expect("a digest challenge");
    assert!(challenge.qop_auth);

    let answer = challenge.answer(
        "1001",
        "secret-1001",
        "REGISTER",
        &SeatPhone::registrar(),
        "0a4f113b",
    );
    sim.send(phone.addr, phone.register(Some(&answer)));
    let ok = sim.response_to(phone.addr, 200, "REGISTER");
    let contacts: Vec<&str> = ok.headers.get_all(&HeaderName::Contact).collect();
    assert_eq!(contacts, ["<sip:1001@203.0.113.11:5060>;expires=3600"]);
    assert_eq!(ok.headers.get(&HeaderName::Expires), Some("3600"));
    assert!(
        ok.to_header().unwrap().tag().is_some(),
        "a final response is tagged"
    );
    sim.assert_quiet();

    let seats = sim.desk_with(&Credential::Admin, None, DeskCommand::Seats);
    let seats = seats.expect("the seats");
    assert_eq!(seats[0]["id"], "a1001");
    assert_eq!(seats[0]["registered"], true);
    assert_eq!(seats[1]["registered"], false);
}

#[test]
fn a_wrong_password_is_challenged_again() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    sim.send(phone.addr, phone.register(None));
    let challenge = sim.response_to(phone.addr, 401, "REGISTER");
    let header = HeaderName::Other("WWW-Authenticate".into());
    let challenge = Challenge::parse(challenge.headers.get(&header).unwrap()).unwrap();
    let wrong = challenge.answer(
        "1001",
        "secret-1002",
        "REGISTER",
        &SeatPhone::registrar(),
        "0a4f113b",
    );
    sim.send(phone.addr, phone.register(Some(&wrong)));
    let refused = sim.response_to(phone.addr, 401, "REGISTER");
    assert!(refused.headers.get(&header).is_some(), "a fresh challenge");
    assert_eq!(refused.headers.get(&HeaderName::Contact), None);
    sim.assert_quiet();
    let seats = sim.desk_with(&Credential::Admin, None, DeskCommand::Seats);
    assert_eq!(seats.unwrap()[0]["registered"], false);
}

// ---------------------------------------------------------------------------------------------
// 2. Logging in, the offer, the answer, the seat hanging up, wrap-up.
// ---------------------------------------------------------------------------------------------

#[test]
fn only_the_seats_own_token_logs_it_in() {
    let mut sim = centre(PLAN);
    let other = Credential::SeatToken(token("a1002"));
    let refused = sim.desk_with(&other, Some("a1001"), DeskCommand::LogIn { ready: true });
    assert_eq!(refused.unwrap_err().status, 403);
    let unknown = Credential::SeatToken("token-nobody-0123456789".into());
    let refused = sim.desk_with(&unknown, Some("a1001"), DeskCommand::LogIn { ready: true });
    assert_eq!(refused.unwrap_err().status, 401);
    assert!(sim.desk_events().is_empty(), "nothing changed");

    let reply = sim.desk_as("a1001", DeskCommand::LogIn { ready: true });
    let seat = reply.expect("logged in");
    assert_eq!(seat["id"], "a1001");
    assert_eq!(seat["name"], "王芳");
    assert_eq!(seat["state"], "ready");
    assert_eq!(seat["registered"], false);
    assert_eq!(sim.desk_events(), ["a1001 ready"]);
    let again = sim.desk_as("a1001", DeskCommand::LogIn { ready: true });
    assert_eq!(again.unwrap_err().status, 409);
}

#[test]
fn a_queued_caller_hears_music_rings_the_seat_and_is_bridged() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    at_work(&mut sim, &mut phone, "a1001");
    let mut caller = Phone::new(7);
    assert_eq!(
        queued(&mut sim, &mut caller),
        ["play 1 #1 [queue/music]", "open 1'"],
        "music, and a port toward the seat"
    );

    let invite = sim.request_to(phone.addr, "INVITE");
    assert_eq!(invite.uri.to_string(), "sip:1001@203.0.113.11:5060");
    let from = invite.from_header().unwrap();
    assert_eq!(from.display.as_deref(), Some("13800000000 12345"));
    assert_eq!(from.uri.user.as_deref(), Some("13800000000"));
    let pai = HeaderName::Other("P-Asserted-Identity".into());
    assert_eq!(
        invite.headers.get(&pai),
        Some("\"13800000000 12345\" <sip:13800000000@192.0.2.1>")
    );
    assert_eq!(
        invite.to_header().unwrap().uri.user.as_deref(),
        Some("1001")
    );
    let record_id = sim.last_record().id.clone();
    let header = |name: &str| {
        let value = invite.headers.get(&HeaderName::Other(name.into()));
        value.map(str::to_string)
    };
    assert_eq!(header("X-Hotline").as_deref(), Some("12345"));
    assert_eq!(header("X-Hotline-Queue").as_deref(), Some("general"));
    assert_eq!(header("X-Hotline-Record"), Some(record_id.clone()));
    assert_eq!(
        invite.headers.get(&HeaderName::Contact),
        Some("<sip:hotline@192.0.2.1:5060>")
    );
    let offer = SessionDescription::parse(&invite.body).expect("our SDP offer");
    assert_eq!(offer.connection, Some(ENGINE_IP.into()));
    assert_eq!(offer.media[0].port, Sim::rtp_port(LegId(1).partner()));
    assert_eq!(offer.media[0].direction(), Some(Direction::SendRecv));
    assert_eq!(
        sim.desk_events(),
        ["queue general queued", "offer a1001", "a1001 ringing"]
    );

    sim.send(phone.addr, phone.respond(&invite, 180));
    sim.assert_quiet();
    sim.advance(secs(6.0));
    sim.assert_quiet();
    picks_up(&mut sim, &phone, &invite);
    assert_eq!(
        sim.media(),
        [
            "stream 1' Pcma/8 to 203.0.113.11:42000 te=Some(101) send recv",
            "stop 1",
            "bridge 1 1'",
        ]
    );
    assert_eq!(sim.desk_events(), ["answered a1001", "a1001 on-call"]);
    sim.assert_quiet();
    let record = sim.last_record();
    assert!(!record.is_finished());
    let answered = record.times.person_answered.expect("a person answered");
    assert_eq!((answered - record.times.arrived).num_milliseconds(), 6000);
    let visit = sim.last_visit();
    assert_eq!(visit.queue, "general");
    assert_eq!(visit.outcome.as_deref(), Some("answered"));
    assert_eq!(visit.seat.as_deref(), Some("a1001"));
    assert_eq!(offers(visit), ["a1001 answered"]);

    // They talk for a minute; the seat hangs up and the caller is asked for a rating.
    sim.advance(secs(60.0));
    sim.send(phone.addr, phone.request(&invite, "BYE", None, None));
    sim.response_to(phone.addr, 200, "BYE");
    let media = sim.take_media();
    assert_eq!(
        media.iter().map(show).collect::<Vec<_>>(),
        ["unbridge 1", "close 1'", "play 1 #2 [survey] barge-in"]
    );
    assert_eq!(sim.desk_events(), ["call-ended a1001", "a1001 wrap-up"]);
    sim.assert_quiet();

    sim.digit(LegId(1), '5');
    let media = sim.take_media();
    assert_eq!(
        media.iter().map(show).collect::<Vec<_>>(),
        ["stop 1", "play 1 #3 [goodbye]"]
    );
    sim.play_finished(LegId(1), play_id(&media[1]));
    let bye = sim.expect_request(&caller, "BYE");
    sim.send(caller.addr, caller.reply(&bye, 200));
    let records = sim.final_records();
    assert_eq!(records.len(), 1);
    let record = records[0];
    assert_eq!(record.id, record_id);
    assert_eq!(record.wait_s, 6.0);
    assert_eq!(record.talk_s, 60.0, "the talk ended when the seat hung up");
    assert_eq!(
        record.tags.get("satisfaction").map(String::as_str),
        Some("5")
    );
    assert_eq!(record.queues[0].seat.as_deref(), Some("a1001"));

    // Wrap-up lasts the queue's 30 s from the seat's hang-up.
    sim.advance(secs(29.0));
    assert!(sim.desk_events().is_empty());
    sim.advance(secs(1.0));
    assert_eq!(sim.desk_events(), ["a1001 ready"]);
}

#[test]
fn the_caller_hanging_up_during_the_talk_byes_the_seat() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    let mut caller = Phone::new(7);
    let invite = talking(&mut sim, &mut caller, &mut phone);
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    sim.expect_response(&caller, 200, "BYE");
    let bye = sim.request_to(phone.addr, "BYE");
    assert_eq!(bye.call_id().unwrap(), invite.call_id().unwrap());
    assert_eq!(bye.to_header().unwrap().tag(), Some("phone11"));
    sim.send(phone.addr, phone.reply(&bye, 200));
    assert_eq!(sim.media(), ["unbridge 1", "close 1'", "close 1"]);
    let record = sim.final_records()[0].clone();
    let ended = &sim.desk[0].body;
    assert_eq!(ended["type"], "call-ended");
    assert_eq!(
        ended["record"],
        record.id.as_str(),
        "the desk knows which call"
    );
    assert_eq!(sim.desk_events(), ["call-ended a1001", "a1001 wrap-up"]);
    sim.assert_quiet();
    assert_eq!(record.end.as_ref().map(|e| e.by.as_str()), Some("caller"));
    assert_eq!(record.queues[0].outcome.as_deref(), Some("answered"));
}

// ---------------------------------------------------------------------------------------------
// 3. Nobody logged in.
// ---------------------------------------------------------------------------------------------

#[test]
fn with_no_seat_logged_in_the_dialplan_fallback_runs() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    register(&mut sim, &mut phone);
    let mut caller = Phone::new(7);
    assert_eq!(queued(&mut sim, &mut caller), ["play 1 #1 [busy]"]);
    sim.assert_quiet();
    let visit = sim.last_visit();
    assert_eq!(visit.outcome.as_deref(), Some("no-seat"));
    assert!(visit.offers.is_empty());
}

// ---------------------------------------------------------------------------------------------
// 4. Ring timeout.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_seat_that_lets_it_ring_is_cancelled_and_made_not_ready() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    at_work(&mut sim, &mut phone, "a1001");
    let mut caller = Phone::new(7);
    queued(&mut sim, &mut caller);
    let invite = rings(&mut sim, &phone);
    sim.desk_events();
    sim.advance(secs(9.9));
    sim.assert_quiet();
    sim.advance(secs(0.1));
    cancelled(&mut sim, &phone, &invite);
    assert_eq!(
        sim.media(),
        Vec::<String>::new(),
        "the caller keeps hearing the music; the port toward the seats stays"
    );
    assert_eq!(sim.desk_events(), ["a1001 not-ready no-answer"]);
    sim.assert_quiet();

    // Ready again, the seat is offered the caller once more.
    let seat = sim.desk_as("a1001", DeskCommand::Ready).expect("ready");
    assert_eq!(
        seat["state"], "ringing",
        "the waiting caller is offered at once"
    );
    assert_eq!(
        sim.desk_events(),
        ["a1001 ready", "offer a1001", "a1001 ringing"]
    );
    assert_eq!(sim.media(), Vec::<String>::new(), "the same port as before");
    let again = rings(&mut sim, &phone);
    assert_ne!(again.call_id(), invite.call_id(), "a new INVITE");
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    sim.expect_response(&caller, 200, "BYE");
    cancelled(&mut sim, &phone, &again);
    let record = sim.final_records()[0].clone();
    assert_eq!(
        offers(&record.queues[0]),
        ["a1001 no-answer", "a1001 caller-gone"]
    );
}

#[test]
fn after_a_ring_timeout_the_next_ready_seat_is_offered() {
    let mut sim = centre(PLAN);
    let mut first = SeatPhone::new(11, "1001");
    let mut second = SeatPhone::new(12, "1002");
    at_work(&mut sim, &mut first, "a1001");
    sim.advance(secs(1.0));
    at_work(&mut sim, &mut second, "a1002");
    let mut caller = Phone::new(7);
    queued(&mut sim, &mut caller);
    // Longest idle first.
    let invite = rings(&mut sim, &first);
    sim.desk_events();
    sim.advance(secs(10.0));
    let cancel = sim.request_to(first.addr, "CANCEL");
    let next = sim.request_to(second.addr, "INVITE");
    assert_eq!(
        sim.media(),
        Vec::<String>::new(),
        "the new offer uses the same port"
    );
    assert_eq!(
        sim.desk_events(),
        ["a1001 not-ready no-answer", "offer a1002", "a1002 ringing"]
    );
    sim.send(first.addr, first.reply(&cancel, 200));
    sim.send(first.addr, first.respond(&invite, 487));
    sim.request_to(first.addr, "ACK");
    sim.send(second.addr, second.respond(&next, 180));
    picks_up(&mut sim, &second, &next);
    assert!(sim.media().contains(&"bridge 1 1'".to_string()));
    let visit = sim.last_visit();
    assert_eq!(visit.seat.as_deref(), Some("a1002"));
    assert_eq!(offers(visit), ["a1001 no-answer", "a1002 answered"]);
}

// ---------------------------------------------------------------------------------------------
// 5. A busy seat; ring-all.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_busy_seat_phone_passes_the_call_to_the_next_seat() {
    let mut sim = centre(PLAN);
    let mut first = SeatPhone::new(11, "1001");
    let mut second = SeatPhone::new(12, "1002");
    at_work(&mut sim, &mut first, "a1001");
    sim.advance(secs(1.0));
    at_work(&mut sim, &mut second, "a1002");
    let mut caller = Phone::new(7);
    queued(&mut sim, &mut caller);
    let invite = rings(&mut sim, &first);
    sim.desk_events();
    sim.send(first.addr, first.respond(&invite, 486));
    sim.request_to(first.addr, "ACK");
    let next = rings(&mut sim, &second);
    assert_eq!(next.uri.to_string(), "sip:1002@203.0.113.12:5060");
    assert_eq!(
        sim.desk_events(),
        ["a1001 ready", "offer a1002", "a1002 ringing"],
        "a declining seat stays ready for other callers"
    );
    picks_up(&mut sim, &second, &next);
    assert_eq!(
        offers(sim.last_visit()),
        ["a1001 declined", "a1002 answered"]
    );
}

#[test]
fn ring_all_rings_every_seat_and_the_first_answer_wins() {
    let ring_all = PLAN.replace(
        "skill = \"general\"\n",
        "skill = \"general\"\nstrategy = \"ring-all\"\n",
    );
    let mut sim = centre(&ring_all);
    let mut first = SeatPhone::new(11, "1001");
    let mut second = SeatPhone::new(12, "1002");
    at_work(&mut sim, &mut first, "a1001");
    at_work(&mut sim, &mut second, "a1002");
    let mut caller = Phone::new(7);
    assert_eq!(
        queued(&mut sim, &mut caller),
        ["play 1 #1 [queue/music]", "open 1'"],
        "one port toward the seats, whatever their number"
    );
    let to_first = rings(&mut sim, &first);
    let to_second = rings(&mut sim, &second);
    assert_eq!(to_first.body, to_second.body, "the same offer to both");
    assert_ne!(to_first.call_id(), to_second.call_id());
    assert_eq!(
        sim.desk_events(),
        [
            "queue general queued",
            "offer a1001",
            "a1001 ringing",
            "offer a1002",
            "a1002 ringing"
        ]
    );

    sim.send(second.addr, second.respond(&to_second, 200));
    sim.request_to(second.addr, "ACK");
    let cancel = sim.request_to(first.addr, "CANCEL");
    assert!(sim.media().contains(&"bridge 1 1'".to_string()));
    assert_eq!(
        sim.desk_events(),
        ["a1001 ready", "answered a1002", "a1002 on-call"]
    );
    // The first phone was picked up as the CANCEL went out: ACK and BYE for it.
    sim.send(first.addr, first.reply(&cancel, 200));
    sim.send(first.addr, first.respond(&to_first, 200));
    let ack = sim.request_to(first.addr, "ACK");
    assert_eq!(ack.call_id(), to_first.call_id());
    let bye = sim.request_to(first.addr, "BYE");
    assert_eq!(bye.call_id(), to_first.call_id());
    sim.send(first.addr, first.reply(&bye, 200));
    sim.assert_quiet();
    let visit = sim.last_visit();
    assert_eq!(visit.seat.as_deref(), Some("a1002"));
    assert_eq!(
        offers(visit),
        ["a1001 answered-elsewhere", "a1002 answered"]
    );
    assert!(sim.desk_events().is_empty(), "a1001 stays ready");
}

// ---------------------------------------------------------------------------------------------
// 6. The caller hangs up before a seat answers.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_caller_hanging_up_while_waiting_has_abandoned() {
    let mut sim = centre(PLAN);
    sim.desk_as("a1001", DeskCommand::LogIn { ready: false })
        .expect("logged in, not ready");
    let mut caller = Phone::new(7);
    assert_eq!(queued(&mut sim, &mut caller), ["play 1 #1 [queue/music]"]);
    sim.desk_events();
    sim.advance(secs(20.0));
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    sim.expect_response(&caller, 200, "BYE");
    assert_eq!(sim.media(), ["close 1"]);
    assert_eq!(sim.desk_events(), ["queue general abandoned"]);
    sim.assert_quiet();
    let record = sim.final_records()[0].clone();
    let visit = &record.queues[0];
    assert_eq!(visit.outcome.as_deref(), Some("abandoned"));
    assert_eq!((visit.left.unwrap() - visit.entered).num_seconds(), 20);
    assert_eq!(record.wait_s, 20.0);
}

#[test]
fn a_caller_hanging_up_while_the_seat_rings_cancels_it() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    at_work(&mut sim, &mut phone, "a1001");
    let mut caller = Phone::new(7);
    queued(&mut sim, &mut caller);
    let invite = rings(&mut sim, &phone);
    sim.desk_events();
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    sim.expect_response(&caller, 200, "BYE");
    cancelled(&mut sim, &phone, &invite);
    assert_eq!(sim.media(), ["close 1'", "close 1"]);
    assert_eq!(
        sim.desk_events(),
        ["a1001 ready", "queue general abandoned"]
    );
    sim.assert_quiet();
    let record = sim.final_records()[0].clone();
    assert_eq!(record.queues[0].outcome.as_deref(), Some("abandoned"));
    assert_eq!(offers(&record.queues[0]), ["a1001 caller-gone"]);
    // Nothing rings when nobody is left to take it.
    sim.advance(secs(60.0));
    sim.assert_quiet();
}

// ---------------------------------------------------------------------------------------------
// 7. Hold from the seat's phone.
// ---------------------------------------------------------------------------------------------

#[test]
fn the_seat_puts_the_caller_on_hold_with_music_and_resumes() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    let mut caller = Phone::new(7);
    let invite = talking(&mut sim, &mut caller, &mut phone);

    let hold = phone.sdp(2, "sendonly");
    sim.send(
        phone.addr,
        phone.request(&invite, "INVITE", None, Some(&hold)),
    );
    sim.response_to(phone.addr, 100, "INVITE");
    let ok = sim.response_to(phone.addr, 200, "INVITE");
    let answer = SessionDescription::parse(&ok.body).expect("our answer");
    assert_eq!(answer.media[0].direction(), Some(Direction::RecvOnly));
    let media = sim.take_media();
    assert_eq!(
        media.iter().map(show).collect::<Vec<_>>(),
        [
            "stream 1' Pcma/8 to 203.0.113.11:42000 te=Some(101) recv",
            "unbridge 1",
            "play 1 #2 [queue/music]",
        ]
    );
    sim.send(phone.addr, phone.request(&invite, "ACK", Some(1), None));
    sim.assert_quiet();
    // The music loops while the caller is held.
    sim.play_finished(LegId(1), play_id(&media[2]));
    assert_eq!(sim.media(), ["play 1 #3 [queue/music]"]);

    let resume = phone.sdp(3, "sendrecv");
    sim.send(
        phone.addr,
        phone.request(&invite, "INVITE", None, Some(&resume)),
    );
    sim.response_to(phone.addr, 100, "INVITE");
    sim.response_to(phone.addr, 200, "INVITE");
    assert_eq!(
        sim.media(),
        [
            "stream 1' Pcma/8 to 203.0.113.11:42000 te=Some(101) send recv",
            "stop 1",
            "bridge 1 1'",
        ]
    );
    sim.send(phone.addr, phone.request(&invite, "ACK", Some(2), None));
    sim.assert_quiet();
    // The re-INVITEs were ACKed: nothing is resent.
    sim.advance(secs(40.0));
    sim.assert_quiet();
}

#[test]
fn an_offerless_reinvite_from_the_seat_is_offered_to_and_answered_in_the_ack() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    let mut caller = Phone::new(7);
    let invite = talking(&mut sim, &mut caller, &mut phone);

    // No offer in the re-INVITE: our 200 offers, nothing changes until the ACK answers.
    sim.send(phone.addr, phone.request(&invite, "INVITE", None, None));
    sim.response_to(phone.addr, 100, "INVITE");
    let ok = sim.response_to(phone.addr, 200, "INVITE");
    let offer = SessionDescription::parse(&ok.body).expect("our offer in the 200");
    assert_eq!(offer.media[0].direction(), Some(Direction::SendRecv));
    sim.assert_quiet();
    // The phone answers sendonly in its ACK: the caller is on hold with music.
    let hold = phone.sdp(2, "sendonly");
    sim.send(
        phone.addr,
        phone.request(&invite, "ACK", Some(1), Some(&hold)),
    );
    assert_eq!(
        sim.media(),
        [
            "stream 1' Pcma/8 to 203.0.113.11:42000 te=Some(101) recv",
            "unbridge 1",
            "play 1 #2 [queue/music]",
        ]
    );

    // Resumed the same way.
    sim.send(phone.addr, phone.request(&invite, "INVITE", None, None));
    sim.response_to(phone.addr, 100, "INVITE");
    sim.response_to(phone.addr, 200, "INVITE");
    let resume = phone.sdp(3, "sendrecv");
    sim.send(
        phone.addr,
        phone.request(&invite, "ACK", Some(2), Some(&resume)),
    );
    assert_eq!(
        sim.media(),
        [
            "stream 1' Pcma/8 to 203.0.113.11:42000 te=Some(101) send recv",
            "stop 1",
            "bridge 1 1'",
        ]
    );
    // The 2xx were ACKed: nothing is resent.
    sim.advance(secs(40.0));
    sim.assert_quiet();

    // An ACK with no usable answer: the seat's side is hung up (the caller goes on).
    sim.send(phone.addr, phone.request(&invite, "INVITE", None, None));
    sim.response_to(phone.addr, 100, "INVITE");
    sim.response_to(phone.addr, 200, "INVITE");
    sim.send(phone.addr, phone.request(&invite, "ACK", Some(3), None));
    sim.request_to(phone.addr, "BYE");
}

// ---------------------------------------------------------------------------------------------
// 8. Position announcements.
// ---------------------------------------------------------------------------------------------

#[test]
fn waiting_callers_are_told_their_place() {
    let announcing = PLAN.replace("announce_every_s = 0", "announce_every_s = 10");
    let mut sim = centre(&announcing);
    sim.desk_as("a1001", DeskCommand::LogIn { ready: false })
        .expect("logged in, not ready");
    let mut first = Phone::new(7);
    let mut second = Phone::new(8);
    assert_eq!(queued(&mut sim, &mut first), ["play 1 #1 [queue/music]"]);
    sim.advance(secs(2.0));
    assert_eq!(queued(&mut sim, &mut second), ["play 2 #2 [queue/music]"]);
    sim.advance(secs(7.9));
    sim.assert_quiet();
    sim.advance(secs(0.1));
    assert_eq!(sim.media(), ["play 1 #3 [queue/next queue/music]"]);
    sim.advance(secs(2.0));
    // Second in line: one ahead; 2 × the default 3-minute handle time for one seat.
    assert_eq!(
        sim.media(),
        [
            "play 2 #4 [queue/ahead-before numbers/1 queue/ahead-after queue/wait-before \
          numbers/6 queue/wait-minutes queue/music]"
        ]
    );
    sim.assert_quiet();
    // The announcement and its music loop as one until the next announcement.
    sim.play_finished(LegId(2), 4);
    assert_eq!(sim.media(), ["play 2 #5 [queue/music]"]);
}

// ---------------------------------------------------------------------------------------------
// 9. Maximum wait.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_caller_waiting_the_maximum_is_offered_a_callback() {
    let mut sim = centre(PLAN);
    sim.desk_as("a1001", DeskCommand::LogIn { ready: false })
        .expect("logged in, not ready");
    let mut caller = Phone::new(7);
    queued(&mut sim, &mut caller);
    sim.desk_events();
    sim.advance(secs(119.9));
    sim.assert_quiet();
    sim.advance(secs(0.1));
    let media = sim.media();
    assert_eq!(media[0], "stop 1");
    assert!(
        media[1].starts_with("play 1 #2 [queue/callback-offer numbers/1-yao numbers/3 numbers/8"),
        "{media:?}"
    );
    assert_eq!(media.len(), 2);
    assert_eq!(sim.desk_events(), ["queue general left"]);
    let visit = sim.last_visit();
    assert_eq!(visit.outcome.as_deref(), Some("max-wait"));
    assert_eq!((visit.left.unwrap() - visit.entered).num_seconds(), 120);
    sim.assert_quiet();
}

// ---------------------------------------------------------------------------------------------
// 10. The desk.
// ---------------------------------------------------------------------------------------------

#[test]
fn the_desk_shows_seats_queues_and_statistics() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    register(&mut sim, &mut phone);
    sim.desk_as("a1001", DeskCommand::LogIn { ready: false })
        .expect("logged in");
    let mut caller = Phone::new(7);
    queued(&mut sim, &mut caller);
    sim.advance(secs(15.0));

    let seats = sim.desk_as("a1001", DeskCommand::Seats).expect("seats");
    let seats = seats.as_array().expect("a list");
    assert_eq!(seats.len(), 2);
    let seat = &seats[0];
    assert_eq!(seat["id"], "a1001");
    assert_eq!(seat["state"], "not-ready");
    assert_eq!(seat["reason"], "log-in");
    assert_eq!(seat["registered"], true);
    assert_eq!(seat["for_s"], 15.0);
    assert_eq!(seat["skills"]["general"], 5);
    assert_eq!(seat["call"], Value::Null);
    assert_eq!(seats[1]["id"], "a1002");
    assert_eq!(seats[1]["state"], "logged-out");

    let queues = sim.desk_as("a1002", DeskCommand::Queues).expect("queues");
    let general = &queues[0];
    assert_eq!(general["name"], "general");
    assert_eq!(general["display"], "综合咨询");
    assert_eq!(general["skill"], "general");
    let waiting = general["waiting"].as_array().expect("a list");
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0]["caller"], "138****0000");
    assert_eq!(waiting[0]["position"], 1);
    assert_eq!(waiting[0]["waiting_s"], 15.0);
    assert_eq!(waiting[0]["record"], sim.last_record().id.as_str());

    let stats = sim
        .desk_with(
            &Credential::Admin,
            None,
            DeskCommand::Stats { interval_s: None },
        )
        .expect("statistics");
    let general = &stats["live"]["queues"]["general"];
    assert_eq!(general["offered"], 1, "{stats}");
    assert_eq!(general["waiting"], 1);
    assert_eq!(general["oldest_wait_s"], 15.0);
    assert_eq!(general["answered"], 0);
    let seat = &stats["live"]["seats"]["a1001"];
    assert_eq!(seat["state"], "not-ready", "{stats}");
    assert_eq!(seat["reason"], "log-in");
    let intervals = stats["intervals"].as_array().expect("a list");
    assert_eq!(intervals.len(), 1, "{stats}");
    assert_eq!(intervals[0]["complete"], false);
    assert_eq!(intervals[0]["queues"]["general"]["offered"], 1);
}

#[test]
fn the_desk_hangs_up_the_seats_call_and_ends_wrap_up() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    let mut caller = Phone::new(7);
    let invite = talking(&mut sim, &mut caller, &mut phone);
    let seat = sim.desk_as("a1001", DeskCommand::Seats).unwrap()[0].clone();
    assert_eq!(seat["state"], "on-call");
    assert_eq!(seat["call"]["caller"], "13800000000");

    let reply = sim.desk_as("a1001", DeskCommand::HangUp).expect("hung up");
    assert_eq!(reply["state"], "wrap-up");
    let bye = sim.request_to(phone.addr, "BYE");
    assert_eq!(bye.call_id(), invite.call_id());
    sim.send(phone.addr, phone.reply(&bye, 200));
    assert_eq!(
        sim.media(),
        ["unbridge 1", "close 1'", "play 1 #2 [survey] barge-in"],
        "the caller goes on to the survey"
    );
    assert_eq!(sim.desk_events(), ["call-ended a1001", "a1001 wrap-up"]);
    let again = sim.desk_as("a1001", DeskCommand::HangUp);
    assert_eq!(again.unwrap_err().status, 409);

    sim.advance(secs(5.0));
    let reply = sim.desk_as("a1001", DeskCommand::EndWrapUp).expect("ready");
    assert_eq!(reply["state"], "ready");
    assert_eq!(sim.desk_events(), ["a1001 ready"]);
    let again = sim.desk_as("a1001", DeskCommand::EndWrapUp);
    assert_eq!(again.unwrap_err().status, 409);
}

#[test]
fn answering_from_the_desk_tells_the_ringing_phone_to_pick_up() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    let idle = sim.desk_as("a1001", DeskCommand::Answer);
    assert_eq!(idle.unwrap_err().status, 409, "nothing rings");
    at_work(&mut sim, &mut phone, "a1001");
    let mut caller = Phone::new(7);
    queued(&mut sim, &mut caller);
    let invite = rings(&mut sim, &phone);
    sim.desk_as("a1001", DeskCommand::Answer)
        .expect("answering");
    let notify = sim.request_to(phone.addr, "NOTIFY");
    assert_eq!(notify.uri, invite.uri);
    assert_eq!(
        notify.headers.get(&HeaderName::Other("Event".into())),
        Some("talk")
    );
    sim.send(phone.addr, phone.reply(&notify, 200));
    sim.assert_quiet();
    picks_up(&mut sim, &phone, &invite);
    assert!(sim.media().contains(&"bridge 1 1'".to_string()));
}

// ---------------------------------------------------------------------------------------------
// 11. A seat with two phones.
// ---------------------------------------------------------------------------------------------

#[test]
fn both_phones_of_a_seat_ring_and_the_one_that_answers_wins() {
    let mut sim = centre(PLAN);
    let mut desk_phone = SeatPhone::new(11, "1001");
    let mut softphone = SeatPhone::new(12, "1001");
    register(&mut sim, &mut desk_phone);
    let ok = register(&mut sim, &mut softphone);
    assert_eq!(ok.headers.get_all(&HeaderName::Contact).count(), 2);
    sim.desk_as("a1001", DeskCommand::LogIn { ready: true })
        .expect("logged in");
    let mut caller = Phone::new(7);
    queued(&mut sim, &mut caller);
    // Newest registration first.
    let to_softphone = rings(&mut sim, &softphone);
    let to_desk_phone = rings(&mut sim, &desk_phone);
    assert_eq!(to_desk_phone.uri.to_string(), "sip:1001@203.0.113.11:5060");
    sim.send(desk_phone.addr, desk_phone.respond(&to_desk_phone, 200));
    let cancel = sim.request_to(softphone.addr, "CANCEL");
    assert_eq!(cancel.call_id(), to_softphone.call_id());
    sim.request_to(desk_phone.addr, "ACK");
    sim.send(softphone.addr, softphone.reply(&cancel, 200));
    sim.send(softphone.addr, softphone.respond(&to_softphone, 487));
    sim.request_to(softphone.addr, "ACK");
    assert!(sim.media().contains(&"bridge 1 1'".to_string()));
    sim.assert_quiet();
    assert_eq!(offers(sim.last_visit()), ["a1001 answered"]);

    // The talk is with the desk phone.
    sim.send(
        desk_phone.addr,
        desk_phone.request(&to_desk_phone, "BYE", None, None),
    );
    sim.response_to(desk_phone.addr, 200, "BYE");
}

// ---------------------------------------------------------------------------------------------
// 12. Reloading the seats.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_seat_removed_by_a_reload_keeps_its_call_until_it_ends() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    let mut caller = Phone::new(7);
    let invite = talking(&mut sim, &mut caller, &mut phone);
    let without_a1001 = SEATS.split("[seats.a1002]").nth(1).unwrap();
    sim.load_seats(&format!("[seats.a1002]{without_a1001}"));
    sim.assert_quiet();
    let seats = sim.desk_with(&Credential::Admin, None, DeskCommand::Seats);
    let seats = seats.unwrap();
    let ids: Vec<&str> = seats
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, ["a1002"]);
    let gone = sim.desk_as("a1001", DeskCommand::Ready);
    assert_eq!(gone.unwrap_err().status, 401, "its token is gone too");

    sim.advance(secs(30.0));
    sim.assert_quiet();
    sim.send(phone.addr, phone.request(&invite, "BYE", None, None));
    sim.response_to(phone.addr, 200, "BYE");
    assert_eq!(
        sim.media(),
        ["unbridge 1", "close 1'", "play 1 #2 [survey] barge-in"]
    );
    assert_eq!(sim.desk_events(), ["call-ended a1001", "a1001 logged-out"]);
}

#[test]
fn a_seat_removed_while_it_rings_is_cancelled_and_with_nobody_left_the_fallback_runs() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    at_work(&mut sim, &mut phone, "a1001");
    let mut caller = Phone::new(7);
    queued(&mut sim, &mut caller);
    let invite = rings(&mut sim, &phone);
    sim.desk_events();
    let without_a1001 = SEATS.split("[seats.a1002]").nth(1).unwrap();
    sim.load_seats(&format!("[seats.a1002]{without_a1001}"));
    cancelled(&mut sim, &phone, &invite);
    assert_eq!(sim.media(), ["stop 1", "close 1'", "play 1 #2 [busy]"]);
    assert_eq!(
        sim.desk_events(),
        ["a1001 logged-out", "queue general left"]
    );
    let visit = sim.last_visit();
    assert_eq!(visit.outcome.as_deref(), Some("no-seat"));
    assert_eq!(offers(visit), ["a1001 logged-out"]);
    // Its phone's registration went with it.
    sim.send(phone.addr, phone.register(None));
    sim.response_to(phone.addr, 401, "REGISTER");
    sim.assert_quiet();
}

// ---------------------------------------------------------------------------------------------
// Edges of the flows above.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_seat_picking_up_just_after_the_ring_timeout_is_hung_up_and_ready_again() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    at_work(&mut sim, &mut phone, "a1001");
    let mut caller = Phone::new(7);
    queued(&mut sim, &mut caller);
    let invite = rings(&mut sim, &phone);
    sim.desk_events();
    sim.advance(secs(10.0));
    let cancel = sim.request_to(phone.addr, "CANCEL");
    assert_eq!(sim.desk_events(), ["a1001 not-ready no-answer"]);
    sim.take_media();

    // The 200 crosses the CANCEL: that talk is not set up, but the seat is at its desk.
    sim.send(phone.addr, phone.reply(&cancel, 200));
    sim.send(phone.addr, phone.respond(&invite, 200));
    sim.request_to(phone.addr, "ACK");
    let bye = sim.request_to(phone.addr, "BYE");
    assert_eq!(bye.call_id(), invite.call_id());
    let again = sim.request_to(phone.addr, "INVITE");
    assert_ne!(again.call_id(), invite.call_id());
    assert_eq!(
        sim.desk_events(),
        ["a1001 ready", "offer a1001", "a1001 ringing"],
        "ready again, and offered the caller still waiting"
    );
    sim.send(phone.addr, phone.reply(&bye, 200));
    sim.send(phone.addr, phone.respond(&again, 180));
    picks_up(&mut sim, &phone, &again);
    assert!(sim.media().contains(&"bridge 1 1'".to_string()));
}

#[test]
fn without_an_after_node_the_caller_is_hung_up_when_the_seat_hangs_up() {
    let mut sim = centre(&PLAN.replace("after = \"rate-us\"\n", ""));
    let mut phone = SeatPhone::new(11, "1001");
    let mut caller = Phone::new(7);
    let invite = talking(&mut sim, &mut caller, &mut phone);
    sim.send(phone.addr, phone.request(&invite, "BYE", None, None));
    sim.response_to(phone.addr, 200, "BYE");
    let bye = sim.expect_request(&caller, "BYE");
    sim.send(caller.addr, caller.reply(&bye, 200));
    assert_eq!(sim.media(), ["unbridge 1", "close 1'", "close 1"]);
    assert_eq!(sim.desk_events(), ["call-ended a1001", "a1001 wrap-up"]);
    let record = sim.final_records()[0].clone();
    assert_eq!(record.queues[0].outcome.as_deref(), Some("answered"));
    assert_eq!(sim.switch.active_calls(), 0);
}

#[test]
fn a_seat_hanging_up_before_the_callers_ack_still_lets_the_caller_go_on() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    at_work(&mut sim, &mut phone, "a1001");
    let mut caller = Phone::new(7);
    let offer = caller_sdp(1, &[8, 0, 101], "sendrecv");
    sim.send(caller.addr, caller.invite(Some(&offer)));
    sim.expect_response(&caller, 100, "INVITE");
    let ok = sim.expect_response(&caller, 200, "INVITE");
    caller.learn(&ok);
    // The caller's ACK is slow; the seat answers and hangs up at once.
    let invite = rings(&mut sim, &phone);
    picks_up(&mut sim, &phone, &invite);
    sim.take_media();
    sim.send(phone.addr, phone.request(&invite, "BYE", None, None));
    sim.response_to(phone.addr, 200, "BYE");
    assert_eq!(
        sim.media(),
        ["unbridge 1", "close 1'", "play 1 #2 [survey] barge-in"]
    );
    sim.send(caller.addr, caller.ack(None));
    sim.assert_quiet();
}

#[test]
fn a_caller_reaching_the_maximum_wait_while_a_seat_rings_cancels_it() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    register(&mut sim, &mut phone);
    sim.desk_as("a1001", DeskCommand::LogIn { ready: false })
        .expect("logged in, not ready");
    let mut caller = Phone::new(7);
    queued(&mut sim, &mut caller);
    sim.advance(secs(115.0));
    sim.desk_as("a1001", DeskCommand::Ready).expect("ready");
    sim.take_media();
    let invite = rings(&mut sim, &phone);
    sim.desk_events();
    sim.advance(secs(5.0));
    cancelled(&mut sim, &phone, &invite);
    let media = sim.media();
    assert_eq!(media[..2], ["stop 1", "close 1'"]);
    assert!(
        media[2].starts_with("play 1 #2 [queue/callback-offer"),
        "{media:?}"
    );
    assert_eq!(sim.desk_events(), ["a1001 ready", "queue general left"]);
    let visit = sim.last_visit();
    assert_eq!(visit.outcome.as_deref(), Some("max-wait"));
    assert_eq!(offers(visit), ["a1001 caller-gone"]);
}

#[test]
fn a_seat_whose_registration_ran_out_is_offered_calls_once_it_registers_again() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    at_work(&mut sim, &mut phone, "a1001");
    sim.advance(secs(3600.0));
    sim.assert_quiet();
    let seats = sim.desk_as("a1001", DeskCommand::Seats).expect("seats");
    assert_eq!(seats[0]["registered"], false);
    assert_eq!(seats[0]["state"], "ready", "still logged in");

    let mut caller = Phone::new(7);
    assert_eq!(
        queued(&mut sim, &mut caller),
        ["play 1 #1 [queue/music]"],
        "no phone to ring"
    );
    sim.assert_quiet();
    register(&mut sim, &mut phone);
    assert_eq!(sim.media(), ["open 1'"]);
    let invite = rings(&mut sim, &phone);
    picks_up(&mut sim, &phone, &invite);
    assert!(sim.media().contains(&"bridge 1 1'".to_string()));
}

#[test]
fn shutdown_hangs_up_the_seat_and_the_caller_and_refuses_the_desk() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    let mut caller = Phone::new(7);
    let invite = talking(&mut sim, &mut caller, &mut phone);
    sim.shutdown();
    let bye = sim.request_to(phone.addr, "BYE");
    assert_eq!(bye.call_id(), invite.call_id());
    sim.expect_request(&caller, "BYE");
    assert_eq!(sim.media(), ["unbridge 1", "close 1'", "close 1"]);
    let refused = sim.desk_as("a1001", DeskCommand::Seats);
    assert_eq!(refused.unwrap_err().status, 503);
}

#[test]
fn a_seat_logging_out_while_its_phone_rings_is_cancelled() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(11, "1001");
    let mut other = SeatPhone::new(12, "1002");
    at_work(&mut sim, &mut phone, "a1001");
    register(&mut sim, &mut other);
    sim.desk_as("a1002", DeskCommand::LogIn { ready: false })
        .expect("logged in, not ready");
    sim.desk_events();
    let mut caller = Phone::new(7);
    queued(&mut sim, &mut caller);
    let invite = rings(&mut sim, &phone);
    sim.desk_events();
    let reply = sim
        .desk_as("a1001", DeskCommand::LogOut)
        .expect("logged out");
    assert_eq!(reply["state"], "logged-out");
    cancelled(&mut sim, &phone, &invite);
    assert_eq!(
        sim.media(),
        Vec::<String>::new(),
        "the caller waits on, with music, and keeps the port toward the seats"
    );
    assert_eq!(sim.desk_events(), ["a1001 logged-out"]);
    sim.assert_quiet();
}

#[test]
fn a_phone_behind_nat_is_called_where_it_registered_from() {
    let mut sim = centre(PLAN);
    let mut phone = SeatPhone::new(12, "1001");
    phone.private = Some("192.168.1.20:5060".parse().unwrap());
    at_work(&mut sim, &mut phone, "a1001");
    let mut caller = Phone::new(7);
    queued(&mut sim, &mut caller);
    // Sent to the address the REGISTER came from, addressed to the Contact it registered.
    let invite = sim.request_to(phone.addr, "INVITE");
    assert_eq!(invite.uri.to_string(), "sip:1001@192.168.1.20:5060");
}

/// The centre on `plan_text` with recordings on, into `/var/rec`.
fn recording_centre(plan_text: &str) -> Sim {
    let mut config = config();
    config.recordings = Some("/var/rec".into());
    staffed(config, plan_text, SEATS)
}

/// What the media plane is told when the seat picks up, on `plan_text`.
fn bridged_with(mut sim: Sim) -> Vec<String> {
    let mut phone = SeatPhone::new(11, "1001");
    at_work(&mut sim, &mut phone, "a1001");
    let mut caller = Phone::new(7);
    queued(&mut sim, &mut caller);
    let invite = rings(&mut sim, &phone);
    picks_up(&mut sim, &phone, &invite);
    sim.media()
}

#[test]
fn calls_are_recorded_unless_their_queue_says_not_to() {
    let recorded = bridged_with(recording_centre(PLAN));
    assert_eq!(recorded.len(), 4, "{recorded:?}");
    assert!(
        recorded[3].starts_with("record 1 /var/rec/"),
        "the bridged call is recorded: {recorded:?}"
    );
    let quiet = PLAN.replace(
        "announce_every_s = 0",
        "announce_every_s = 0\nrecord = false",
    );
    let unrecorded = bridged_with(recording_centre(&quiet));
    assert_eq!(
        unrecorded,
        [
            "stream 1' Pcma/8 to 203.0.113.11:42000 te=Some(101) send recv",
            "stop 1",
            "bridge 1 1'",
        ],
        "record = false: no recording"
    );
}

// ---------------------------------------------------------------------------------------------
// Transfers from the seat's desktop.
// ---------------------------------------------------------------------------------------------

/// [`PLAN`] with a second skill group and a sub-centre whose trunk is the PBX at
/// 198.51.100.9:5062.
pub(super) fn transfer_plan() -> String {
    format!(
        "{PLAN}\n[queues.housing]\nname = \"住房\"\nskill = \"housing\"\nannounce_every_s = 0\n\n\
         [subcentres.tax]\nname = \"税务\"\ntrunk = \"198.51.100.9:5062\"\ntransport = \"udp\"\n\
         number = \"12366\"\nalways_open = true\n"
    )
}

/// a1001 in the general group, a1002 in housing.
pub(super) const TRANSFER_SEATS: &str = r#"
[seats.a1001]
name = "王芳"
username = "1001"
password = "secret-1001"
token = "token-a1001-0123456789"
skills = { general = 5 }

[seats.a1002]
name = "张伟"
username = "1002"
password = "secret-1002"
token = "token-a1002-0123456789"
skills = { housing = 5 }
"#;

/// e2001, an expert of another skill, to add to [`TRANSFER_SEATS`].
pub(super) const EXPERT_SEAT: &str = r#"
[seats.e2001]
name = "陈静"
username = "2001"
password = "secret-2001"
token = "token-e2001-0123456789"
skills = { social-security-expert = 5 }
expert = true
"#;

/// A caller talking to a1001 on the transfer plan.
fn talking_for_transfer() -> (Sim, Phone, SeatPhone, Request) {
    talking_on(&transfer_plan(), TRANSFER_SEATS)
}

/// A caller talking to a1001 on `plan_text` with the seats file `seats`: the seat phone and
/// its INVITE.
pub(super) fn talking_on(plan_text: &str, seats: &str) -> (Sim, Phone, SeatPhone, Request) {
    let mut sim = staffed(config(), plan_text, seats);
    let mut caller = Phone::new(7);
    let mut phone = SeatPhone::new(11, "1001");
    let invite = talking(&mut sim, &mut caller, &mut phone);
    (sim, caller, phone, invite)
}

/// a1001's desktop asks for a `kind` transfer to `to`.
pub(super) fn transfer(sim: &mut Sim, kind: TransferKind, to: &str) -> DeskReply {
    let to = to.to_string();
    sim.desk_as("a1001", DeskCommand::Transfer { kind, to })
}

/// The sub-centres' PBX answers the engine's INVITE 200 and gets its ACK: the INVITE.
pub(super) fn trunk_answers(sim: &mut Sim) -> Request {
    let pbx = Phone::new(9).addr;
    let invite = sim.request_to(pbx, "INVITE");
    sim.send(pbx, super::switch_tests::pbx_reply(&invite, 200));
    sim.request_to(pbx, "ACK");
    invite
}

/// The media plane's latest commands tell the caller the transfer failed, then play its
/// queue's music: it waits in the queue again.
pub(super) fn told_the_transfer_failed(sim: &mut Sim) {
    let media = sim.media();
    assert!(
        media
            .iter()
            .any(|m| m.ends_with("[queue/transfer-failed queue/music]")),
        "told, then waiting in the queue again: {media:?}"
    );
}

/// a1001's desktop passes the caller on blind to `to`, and its `phone` is hung up.
pub(super) fn passed_on(sim: &mut Sim, phone: &SeatPhone, to: &str) {
    transfer(sim, TransferKind::Blind, to).expect("transferred");
    seat_hung_up(sim, phone);
}

/// The seat's phone gets the engine's BYE (a blind transfer frees the seat) and answers it.
pub(super) fn seat_hung_up(sim: &mut Sim, phone: &SeatPhone) {
    let bye = sim.request_to(phone.addr, "BYE");
    sim.send(phone.addr, phone.reply(&bye, 200));
}

#[test]
fn a_blind_transfer_to_another_skill_group_frees_the_seat_and_rings_that_group() {
    let (mut sim, _caller, phone, invite) = talking_for_transfer();
    let mut housing = SeatPhone::new(12, "1002");
    at_work(&mut sim, &mut housing, "a1002");

    transfer(&mut sim, TransferKind::Blind, "queue:housing").expect("transferred");
    // The seat's phone is hung up and the seat goes to wrap-up; the caller hears music.
    let bye = sim.request_to(phone.addr, "BYE");
    assert_eq!(bye.call_id().unwrap(), invite.call_id().unwrap());
    let media = sim.media();
    assert_eq!(media[0], "unbridge 1", "{media:?}");
    assert!(
        media.contains(&"play 1 #2 [queue/music]".to_string()),
        "{media:?}"
    );
    let next = rings(&mut sim, &housing);
    picks_up(&mut sim, &housing, &next);
    let events = sim.desk_events();
    assert!(events.contains(&"a1001 wrap-up".to_string()), "{events:?}");
    assert!(events.contains(&"answered a1002".to_string()), "{events:?}");

    let record = sim.last_record();
    let transfer = &record.transfers[0];
    assert_eq!(
        (transfer.kind.as_str(), transfer.target.as_str()),
        ("blind", "queue:housing")
    );
    let visits: Vec<(String, Option<String>, Option<String>)> = record
        .queues
        .iter()
        .map(|v| (v.queue.clone(), v.outcome.clone(), v.seat.clone()))
        .collect();
    assert_eq!(
        visits,
        [
            (
                "general".into(),
                Some("answered".into()),
                Some("a1001".into())
            ),
            (
                "housing".into(),
                Some("answered".into()),
                Some("a1002".into())
            ),
        ],
        "one record for the caller's call, with both seats"
    );
}

#[test]
fn only_declared_targets_with_someone_at_work_are_taken() {
    let (mut sim, _caller, _phone, _invite) = talking_for_transfer();
    let refused = transfer(
        &mut sim,
        TransferKind::Blind,
        "sip:0088612345678@198.51.100.200",
    )
    .unwrap_err();
    assert_eq!(refused.status, 403, "{refused}");
    let refused = transfer(&mut sim, TransferKind::Blind, "queue:nobody-declared-it").unwrap_err();
    assert_eq!(refused.status, 403, "{refused}");
    // Housing is declared, but its only seat is not at work: the seat keeps the caller.
    let refused = transfer(&mut sim, TransferKind::Blind, "queue:housing").unwrap_err();
    assert_eq!(refused.status, 409, "{refused}");
    sim.assert_quiet();
    assert!(sim.last_record().transfers.is_empty());
}

#[test]
fn a_blind_transfer_to_a_subcentre_bridges_the_caller_to_its_trunk() {
    let (mut sim, _caller, phone, _invite) = talking_for_transfer();
    passed_on(&mut sim, &phone, "subcentre:tax");
    let pbx = Phone::new(9);
    let media = sim.media();
    assert!(media.contains(&"close 1'".to_string()), "{media:?}");
    assert!(media.contains(&"open 1'".to_string()), "{media:?}");
    let trunk_invite = sim.request_to(pbx.addr, "INVITE");
    assert_eq!(trunk_invite.uri.user.as_deref(), Some("12366"));
    assert!(
        media
            .iter()
            .any(|m| m.starts_with("play 1 ") && m.contains("queue/music")),
        "music while the sub-centre rings: {media:?}"
    );
    sim.send(pbx.addr, super::switch_tests::pbx_reply(&trunk_invite, 200));
    sim.request_to(pbx.addr, "ACK");
    let media = sim.media();
    assert!(media.contains(&"bridge 1 1'".to_string()), "{media:?}");
    let transfer = &sim.last_record().transfers[0];
    assert_eq!(
        (transfer.kind.as_str(), transfer.outcome.as_deref()),
        ("blind", Some("answered"))
    );
}

#[test]
fn a_busy_subcentre_sends_the_caller_back_to_its_queue_with_a_notice() {
    let (mut sim, _caller, phone, _invite) = talking_for_transfer();
    passed_on(&mut sim, &phone, "subcentre:tax");
    let pbx = Phone::new(9);
    let trunk_invite = sim.request_to(pbx.addr, "INVITE");
    sim.media();
    sim.send(pbx.addr, super::switch_tests::pbx_reply(&trunk_invite, 486));
    sim.request_to(pbx.addr, "ACK");
    let media = sim.media();
    assert!(
        media.contains(&"play 1 #4 [queue/transfer-failed queue/music]".to_string()),
        "told, then music in the queue it came from: {media:?}"
    );
    let record = sim.last_record();
    assert_eq!(record.transfers[0].outcome.as_deref(), Some("486"));
    let last = record.queues.last().unwrap();
    assert_eq!(
        (last.queue.as_str(), last.outcome.as_deref()),
        ("general", None)
    );
}

/// a1001's desktop asks for a three-way call with the tax sub-centre.
fn three_way(sim: &mut Sim) -> DeskReply {
    transfer(sim, TransferKind::ThreeWay, "subcentre:tax")
}

/// A three-way call: the seat calls the sub-centre, which answers; all three are mixed.
/// Returns the seat phone's INVITE and the sub-centre's.
fn in_three_way_call() -> (Sim, Phone, SeatPhone, Request, Phone, Request) {
    let (mut sim, caller, phone, seat_invite) = talking_for_transfer();
    three_way(&mut sim).expect("calling the sub-centre");
    assert_eq!(
        sim.media(),
        ["open 1\""],
        "the sub-centre gets the third leg"
    );
    let pbx = Phone::new(9);
    let trunk_invite = trunk_answers(&mut sim);
    assert_eq!(
        sim.media(),
        [
            "stream 1\" Pcmu/0 to 198.51.100.9:41000 te=Some(101) send recv",
            "conference 1 1' 1\"",
        ],
        "caller, seat and sub-centre each hear the other two"
    );
    (sim, caller, phone, seat_invite, pbx, trunk_invite)
}

fn pbx_bye(invite: &Request) -> String {
    super::switch_tests::pbx_request(invite, "BYE", 2)
}

#[test]
fn in_a_three_way_call_the_seat_leaves_and_caller_and_subcentre_go_on() {
    let (mut sim, caller, mut phone, seat_invite, pbx, trunk_invite) = in_three_way_call();
    // The seat introduces the case and hangs up.
    sim.send(phone.addr, phone.request(&seat_invite, "BYE", None, None));
    sim.response_to(phone.addr, 200, "BYE");
    let media = sim.media();
    assert_eq!(
        media,
        ["stop 1", "bridge 1 1\"", "close 1'"],
        "caller and sub-centre joined directly, without the mixer"
    );
    assert!(sim.desk_events().contains(&"a1001 wrap-up".to_string()));
    sim.assert_quiet();
    // The sub-centre ends the call.
    sim.send(pbx.addr, pbx_bye(&trunk_invite));
    sim.response_to(pbx.addr, 200, "BYE");
    sim.request_to(caller.addr, "BYE");
    let transfer = &sim.last_record().transfers[0];
    assert_eq!(
        (transfer.kind.as_str(), transfer.outcome.as_deref()),
        ("three-way", Some("answered"))
    );
}

#[test]
fn when_the_subcentre_leaves_a_three_way_call_caller_and_seat_go_on() {
    let (mut sim, caller, _phone, _seat_invite, pbx, trunk_invite) = in_three_way_call();
    sim.send(pbx.addr, pbx_bye(&trunk_invite));
    sim.response_to(pbx.addr, 200, "BYE");
    assert_eq!(sim.media(), ["close 1\"", "stop 1", "bridge 1 1'"]);
    sim.assert_quiet();
    let _ = caller;
}

#[test]
fn a_busy_subcentre_leaves_the_caller_talking_to_the_seat() {
    let (mut sim, mut caller, _phone, _invite) = talking_for_transfer();
    three_way(&mut sim).expect("calling the sub-centre");
    sim.media();
    let pbx = Phone::new(9);
    let trunk_invite = sim.request_to(pbx.addr, "INVITE");
    sim.send(pbx.addr, super::switch_tests::pbx_reply(&trunk_invite, 486));
    sim.request_to(pbx.addr, "ACK");
    assert_eq!(
        sim.media(),
        ["close 1\""],
        "the caller stays bridged to the seat"
    );
    sim.assert_quiet();
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    sim.expect_response(&caller, 200, "BYE");
    let record = sim.final_records()[0].clone();
    assert_eq!(record.transfers[0].outcome.as_deref(), Some("486"));
    assert_eq!(record.queues[0].seat.as_deref(), Some("a1001"));
}

/// a1001's desktop asks to consult the tax sub-centre.
fn consult(sim: &mut Sim) -> DeskReply {
    transfer(sim, TransferKind::Consult, "subcentre:tax")
}

/// A consult: the caller on hold with music, the seat talking to the answered sub-centre.
fn consulting() -> (Sim, Phone, SeatPhone, Request, Phone, Request) {
    let (mut sim, caller, phone, seat_invite) = talking_for_transfer();
    consult(&mut sim).expect("calling the sub-centre");
    assert_eq!(
        sim.media(),
        ["open 1\"", "unbridge 1", "play 1 #2 [queue/music]"],
        "the caller waits with music"
    );
    let pbx = Phone::new(9);
    let trunk_invite = trunk_answers(&mut sim);
    assert_eq!(
        sim.media(),
        [
            "stream 1\" Pcmu/0 to 198.51.100.9:41000 te=Some(101) send recv",
            "bridge 1' 1\"",
        ],
        "the seat talks to the sub-centre; the caller keeps the music"
    );
    (sim, caller, phone, seat_invite, pbx, trunk_invite)
}

#[test]
fn a_completed_consult_joins_the_caller_to_the_subcentre_and_frees_the_seat() {
    let (mut sim, _caller, phone, seat_invite, _pbx, _trunk_invite) = consulting();
    sim.desk_as("a1001", DeskCommand::CompleteTransfer)
        .expect("completed");
    let bye = sim.request_to(phone.addr, "BYE");
    assert_eq!(bye.call_id().unwrap(), seat_invite.call_id().unwrap());
    assert_eq!(sim.media(), ["stop 1", "bridge 1 1\"", "close 1'"]);
    assert!(sim.desk_events().contains(&"a1001 wrap-up".to_string()));
    let transfer = &sim.last_record().transfers[0];
    assert_eq!(transfer.kind, "consult");
}

#[test]
fn a_cancelled_consult_hangs_up_the_subcentre_and_brings_the_caller_back() {
    let (mut sim, _caller, _phone, _seat_invite, pbx, _trunk_invite) = consulting();
    sim.desk_as("a1001", DeskCommand::CancelTransfer)
        .expect("cancelled");
    sim.request_to(pbx.addr, "BYE");
    assert_eq!(sim.media(), ["close 1\"", "stop 1", "bridge 1 1'"]);
    let refused = sim
        .desk_as("a1001", DeskCommand::CancelTransfer)
        .unwrap_err();
    assert_eq!(refused.status, 409, "nothing left to cancel");
}

#[test]
fn completing_a_consult_before_the_subcentre_answers_is_refused() {
    let (mut sim, _caller, _phone, _invite) = talking_for_transfer();
    consult(&mut sim).expect("calling the sub-centre");
    let refused = sim
        .desk_as("a1001", DeskCommand::CompleteTransfer)
        .unwrap_err();
    assert_eq!(refused.status, 409);
}

#[test]
fn a_subcentre_that_does_not_answer_a_consult_brings_the_caller_back_to_the_seat() {
    let (mut sim, _caller, _phone, _invite) = talking_for_transfer();
    consult(&mut sim).expect("calling the sub-centre");
    sim.media();
    let pbx = Phone::new(9);
    let trunk_invite = sim.request_to(pbx.addr, "INVITE");
    sim.send(pbx.addr, super::switch_tests::pbx_reply(&trunk_invite, 603));
    sim.request_to(pbx.addr, "ACK");
    // Back with the seat, told first that the transfer did not go through.
    assert_eq!(
        sim.media(),
        [
            "close 1\"",
            "stop 1",
            "bridge 1 1'",
            "play 1 #3 [queue/transfer-failed]"
        ]
    );
}

#[test]
fn the_seat_hanging_up_during_an_unanswered_consult_sends_the_caller_back_to_the_queue() {
    let (mut sim, _caller, mut phone, seat_invite) = talking_for_transfer();
    consult(&mut sim).expect("calling the sub-centre");
    sim.media();
    let pbx = Phone::new(9);
    let trunk_invite = sim.request_to(pbx.addr, "INVITE");
    sim.send(pbx.addr, super::switch_tests::pbx_reply(&trunk_invite, 180));
    sim.send(phone.addr, phone.request(&seat_invite, "BYE", None, None));
    sim.response_to(phone.addr, 200, "BYE");
    sim.request_to(pbx.addr, "CANCEL");
    told_the_transfer_failed(&mut sim);
    let record = sim.last_record();
    assert_eq!(record.transfers[0].outcome.as_deref(), Some("seat-left"));
    assert_eq!(
        record.queues.len(),
        2,
        "back in the queue: {:?}",
        record.queues
    );
}

#[test]
fn the_seat_hanging_up_during_an_answered_consult_completes_it() {
    let (mut sim, caller, mut phone, seat_invite, _pbx, _trunk_invite) = consulting();
    sim.send(phone.addr, phone.request(&seat_invite, "BYE", None, None));
    sim.response_to(phone.addr, 200, "BYE");
    assert_eq!(sim.media(), ["stop 1", "bridge 1 1\"", "close 1'"]);
    sim.assert_quiet();
    let _ = caller;
}

/// The seat's phone asks, in its dialog with the engine, for a transfer to `target`.
pub(super) fn refer(phone: &mut SeatPhone, invite: &Request, target: &str) -> String {
    let request = phone.request(invite, "REFER", None, None);
    request.replace(
        "Content-Length: 0\r\n",
        &format!("Refer-To: <{target}>\r\nContent-Length: 0\r\n"),
    )
}

/// The sipfrag status line of the next NOTIFY to `phone`, answered 200.
pub(super) fn notified(sim: &mut Sim, phone: &SeatPhone) -> String {
    let notify = sim.request_to(phone.addr, "NOTIFY");
    assert_eq!(
        notify.headers.get(&HeaderName::Other("Event".into())),
        Some("refer")
    );
    sim.send(phone.addr, phone.reply(&notify, 200));
    String::from_utf8_lossy(&notify.body).into_owned()
}

#[test]
fn a_refer_from_the_seats_phone_transfers_the_caller_blind_with_notifies() {
    let (mut sim, _caller, mut phone, invite) = talking_for_transfer();
    let mut housing = SeatPhone::new(12, "1002");
    at_work(&mut sim, &mut housing, "a1002");
    sim.send(
        phone.addr,
        refer(&mut phone, &invite, "sip:housing@192.0.2.1"),
    );
    sim.response_to(phone.addr, 202, "REFER");
    assert_eq!(notified(&mut sim, &phone), "SIP/2.0 100 Trying");
    assert_eq!(notified(&mut sim, &phone), "SIP/2.0 200 OK");
    sim.request_to(phone.addr, "BYE");
    let next = rings(&mut sim, &housing);
    picks_up(&mut sim, &housing, &next);
    let transfer = &sim.last_record().transfers[0];
    assert_eq!(
        (transfer.kind.as_str(), transfer.target.as_str()),
        ("blind", "queue:housing")
    );
}

#[test]
fn a_refer_to_an_undeclared_number_or_with_replaces_is_refused() {
    let (mut sim, _caller, mut phone, invite) = talking_for_transfer();
    sim.send(
        phone.addr,
        refer(&mut phone, &invite, "sip:0088612345678@192.0.2.1"),
    );
    sim.response_to(phone.addr, 403, "REFER");
    // Replaces naming no consult line of this call: accepted, then reported failed.
    let replaces = "sip:12366@192.0.2.1?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2";
    sim.send(phone.addr, refer(&mut phone, &invite, replaces));
    sim.response_to(phone.addr, 202, "REFER");
    assert_eq!(notified(&mut sim, &phone), "SIP/2.0 100 Trying");
    assert_eq!(
        notified(&mut sim, &phone),
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    );
    sim.assert_quiet();
    assert!(sim.last_record().transfers.is_empty());
}

#[test]
fn a_refer_to_a_group_with_nobody_at_work_is_reported_failed_and_the_seat_keeps_the_caller() {
    let (mut sim, _caller, mut phone, invite) = talking_for_transfer();
    sim.send(
        phone.addr,
        refer(&mut phone, &invite, "sip:housing@192.0.2.1"),
    );
    sim.response_to(phone.addr, 202, "REFER");
    assert_eq!(notified(&mut sim, &phone), "SIP/2.0 100 Trying");
    assert_eq!(
        notified(&mut sim, &phone),
        "SIP/2.0 503 Service Unavailable"
    );
    sim.assert_quiet();
}

#[test]
fn a_refer_to_a_subcentre_number_passes_the_caller_to_its_trunk() {
    let (mut sim, _caller, mut phone, invite) = talking_for_transfer();
    sim.send(
        phone.addr,
        refer(&mut phone, &invite, "sip:12366@192.0.2.1"),
    );
    sim.response_to(phone.addr, 202, "REFER");
    notified(&mut sim, &phone);
    assert_eq!(notified(&mut sim, &phone), "SIP/2.0 200 OK");
    sim.request_to(phone.addr, "BYE");
    let trunk_invite = sim.request_to(Phone::new(9).addr, "INVITE");
    assert_eq!(trunk_invite.uri.user.as_deref(), Some("12366"));
}

/// The seat phone's own INVITE on its second line to `target` (a new dialog), with an offer
/// and, when given, its digest answer.
fn second_line_invite(phone: &SeatPhone, target: &str, authorization: Option<&str>) -> String {
    let ip = phone.addr.ip();
    let sdp = format!(
        "v=0\r\no=1001 88 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 42002 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    );
    let cseq = if authorization.is_some() { 2 } else { 1 };
    let mut text = format!("INVITE {target} SIP/2.0\r\n");
    text += &format!(
        "Via: SIP/2.0/UDP {};branch=z9hG4bK-line2-{cseq};rport\r\n",
        phone.addr
    );
    text += "Max-Forwards: 70\r\n";
    text += &format!("From: <sip:1001@{ENGINE_IP}>;tag=line2\r\n");
    text += &format!("To: <{target}>\r\n");
    text += &format!("Call-ID: line2@{ip}\r\n");
    text += &format!("CSeq: {cseq} INVITE\r\n");
    text += &format!("Contact: {}\r\n", phone.contact());
    if let Some(authorization) = authorization {
        text += &format!("Authorization: {authorization}\r\n");
    }
    text += "Content-Type: application/sdp\r\n";
    text += &format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len());
    text
}

/// The phone's second line dials `target`: challenged (401), then sent again with its digest
/// answer, which the engine takes in (100).
fn dial_second_line(sim: &mut Sim, phone: &SeatPhone, target: &str) {
    sim.send(phone.addr, second_line_invite(phone, target, None));
    sim.response_to(phone.addr, 100, "INVITE");
    let challenge = sim.response_to(phone.addr, 401, "INVITE");
    sim.send(phone.addr, ack_of_refusal(phone, target, &challenge));
    let value = challenge
        .headers
        .get(&HeaderName::Other("WWW-Authenticate".into()))
        .expect("a challenge");
    let digest = Challenge::parse(value).expect("digest");
    let answer = digest.answer("1001", "secret-1001", "INVITE", target, "c0ffee");
    sim.send(phone.addr, second_line_invite(phone, target, Some(&answer)));
    sim.response_to(phone.addr, 100, "INVITE");
}

/// The phone's ACK for the engine's non-2xx answer to its first second-line INVITE.
fn ack_of_refusal(phone: &SeatPhone, target: &str, refusal: &Response) -> String {
    let to = refusal.headers.get(&HeaderName::To).unwrap_or_default();
    format!(
        "ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-line2-1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:1001@{ENGINE_IP}>;tag=line2\r\nTo: {to}\r\n\
         Call-ID: line2@{}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        phone.addr,
        phone.addr.ip()
    )
}

/// The seat phone holds its caller and consults the sub-centre on its second line, which
/// answers: returns the first line's INVITE and our To tag on the second line.
fn phone_consulting() -> (Sim, SeatPhone, Request, String) {
    let (mut sim, _caller, mut phone, first_line) = talking_for_transfer();
    // The phone holds the caller: music.
    let hold = phone.sdp(2, "sendonly");
    let hold = phone.request(&first_line, "INVITE", None, Some(&hold));
    sim.send(phone.addr, hold);
    sim.response_to(phone.addr, 100, "INVITE");
    sim.response_to(phone.addr, 200, "INVITE");
    sim.send(phone.addr, phone.request(&first_line, "ACK", Some(1), None));
    sim.media();

    // Its second line calls the sub-centre's number: challenged, then let through.
    let target = format!("sip:12366@{ENGINE_IP}");
    dial_second_line(&mut sim, &phone, &target);
    sim.response_to(phone.addr, 180, "INVITE");
    trunk_answers(&mut sim);
    let line_ok = sim.response_to(phone.addr, 200, "INVITE");
    let to_tag = line_ok.to_header().unwrap().tag().unwrap().to_string();
    let media = sim.media();
    assert!(
        media.contains(&"bridge 1'\" 1\"".to_string()),
        "the phone's second line talks to the sub-centre: {media:?}"
    );
    (sim, phone, first_line, to_tag)
}

/// The phone REFERs its first line to the sub-centre, replacing its second line (whose
/// dialog it names with `to_tag`): accepted (202), then NOTIFY 100 Trying.
fn refers_with_replaces(sim: &mut Sim, phone: &mut SeatPhone, first_line: &Request, to_tag: &str) {
    let replaces = format!(
        "sip:12366@{ENGINE_IP}?Replaces=line2%40{}%3Bto-tag%3D{to_tag}%3Bfrom-tag%3Dline2",
        phone.addr.ip()
    );
    sim.send(phone.addr, refer(phone, first_line, &replaces));
    sim.response_to(phone.addr, 202, "REFER");
    assert_eq!(notified(sim, phone), "SIP/2.0 100 Trying");
}

#[test]
fn an_attended_transfer_from_the_phone_joins_the_caller_to_the_subcentre() {
    let (mut sim, mut phone, first_line, to_tag) = phone_consulting();
    // REFER with Replaces on the first line: the caller is joined to the sub-centre.
    refers_with_replaces(&mut sim, &mut phone, &first_line, &to_tag);
    assert_eq!(notified(&mut sim, &phone), "SIP/2.0 200 OK");
    let bye_line2 = sim.request_to(phone.addr, "BYE");
    assert_eq!(
        bye_line2.call_id().unwrap(),
        format!("line2@{}", phone.addr.ip())
    );
    let bye_line1 = sim.request_to(phone.addr, "BYE");
    assert_eq!(bye_line1.call_id().unwrap(), first_line.call_id().unwrap());
    let media = sim.media();
    assert_eq!(
        media,
        ["close 1'\"", "stop 1", "bridge 1 1\"", "close 1'"],
        "caller and sub-centre joined; the phone's lines closed"
    );
    let record = sim.last_record();
    assert_eq!(
        (
            record.transfers[0].kind.as_str(),
            record.transfers[0].target.as_str()
        ),
        ("consult", "subcentre:tax")
    );
}

#[test]
fn a_seat_phone_may_dial_only_declared_targets() {
    let (mut sim, _caller, phone, _first_line) = talking_for_transfer();
    let target = format!("sip:0088612345678@{ENGINE_IP}");
    dial_second_line(&mut sim, &phone, &target);
    sim.response_to(phone.addr, 403, "INVITE");
}

#[test]
fn the_caller_hanging_up_in_a_three_way_call_ends_every_leg() {
    let (mut sim, mut caller, phone, _seat_invite, pbx, _trunk_invite) = in_three_way_call();
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    sim.expect_response(&caller, 200, "BYE");
    sim.request_to(pbx.addr, "BYE");
    sim.request_to(phone.addr, "BYE");
    let record = sim.final_records()[0].clone();
    let end = record.end.expect("ended");
    assert_eq!((end.by.as_str(), end.cause.as_str()), ("caller", "bye"));
    assert_eq!(record.transfers[0].outcome.as_deref(), Some("answered"));
}

#[test]
fn the_caller_hanging_up_while_a_three_way_target_rings_cancels_it() {
    let (mut sim, mut caller, phone, _invite) = talking_for_transfer();
    three_way(&mut sim).expect("calling the sub-centre");
    let pbx = Phone::new(9);
    let trunk_invite = sim.request_to(pbx.addr, "INVITE");
    sim.send(pbx.addr, super::switch_tests::pbx_reply(&trunk_invite, 180));
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    sim.expect_response(&caller, 200, "BYE");
    sim.request_to(pbx.addr, "CANCEL");
    sim.request_to(phone.addr, "BYE");
    assert_eq!(
        sim.final_records().len(),
        1,
        "one record for the caller's call"
    );
}

#[test]
fn the_caller_hanging_up_during_a_consult_ends_the_seat_and_the_target() {
    let (mut sim, mut caller, phone, _seat_invite, pbx, _trunk_invite) = consulting();
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    sim.expect_response(&caller, 200, "BYE");
    sim.request_to(pbx.addr, "BYE");
    sim.request_to(phone.addr, "BYE");
    let record = sim.final_records()[0].clone();
    assert_eq!(record.transfers[0].kind, "consult");
    assert_eq!(record.end.expect("ended").by, "caller");
}

#[test]
fn the_caller_on_hold_during_a_long_consult_keeps_hearing_music() {
    let (mut sim, _caller, _phone, _seat_invite, _pbx, _trunk_invite) = consulting();
    // The music (play #2) runs out while the seat still talks to the sub-centre: again.
    sim.play_finished(LegId(1), 2);
    assert_eq!(sim.media(), ["play 1 #3 [queue/music]"]);
}

#[test]
fn a_replaces_with_the_wrong_tags_joins_nothing() {
    let (mut sim, mut phone, first_line, _to_tag) = phone_consulting();
    refers_with_replaces(&mut sim, &mut phone, &first_line, "not-ours");
    assert_eq!(
        notified(&mut sim, &phone),
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    );
    sim.assert_quiet();
}
