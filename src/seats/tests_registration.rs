//! Tests of seat phone registration in virtual time, with requests parsed from real REGISTER
//! text and answers computed as a phone does.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::config::SeatsConfig;
use crate::sip::digest::Challenge;
use crate::sip::digest_server::ha1;
use crate::sip::message::{HeaderName, Message, Request};
use crate::sip::parse::parse as parse_sip;
use crate::sip::uri::Uri;

const PHONE: &str = "192.0.2.7";

/// Seat a1001 with a password, seat a1002 with the HA1 of password "pw-1002" in realm hotline.
fn book() -> SeatBook {
    let text = format!(
        "[seats.a1001]\nname = \"王芳\"\nusername = \"1001\"\npassword = \"pw-1001\"\n\
         token = \"example-token-a1001\"\nskills = {{ general = 3 }}\n\
         [seats.a1002]\nname = \"张伟\"\nusername = \"1002\"\nha1 = \"{}\"\n\
         token = \"example-token-a1002\"\nskills = {{ general = 3 }}\n",
        ha1("1002", "hotline", "pw-1002")
    );
    match parse(&text, "t.toml") {
        Ok((book, _)) => book,
        Err(e) => panic!("{e:?}"),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A REGISTER from `user`'s phone to the engine at 10.0.0.1.
fn register(user: &str, call_id: &str, cseq: u32, extra: &[String]) -> Request {
    let mut text = format!(
        "REGISTER sip:10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE}:5060;branch=z9hG4bK{cseq}\r\n\
         From: <sip:{user}@10.0.0.1>;tag=a\r\nTo: <sip:{user}@10.0.0.1>\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\n"
    );
    for line in extra {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    match parse_sip(text.as_bytes()) {
        Ok(Message::Request(request)) => request,
        other => panic!("not a request: {other:?}"),
    }
}

/// The value of `name` in a reply.
fn header<'a>(reply: &'a RegisterReply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The challenge of a 401.
fn challenge(reply: &RegisterReply) -> Challenge {
    assert_eq!(reply.status, 401, "{reply:?}");
    let value = header(reply, "WWW-Authenticate").expect("WWW-Authenticate");
    Challenge::parse(value).expect("a digest challenge")
}

/// The Authorization line a phone sends answering `reply`.
fn answer(reply: &RegisterReply, user: &str, password: &str) -> String {
    let value = challenge(reply).answer(user, password, "REGISTER", "sip:10.0.0.1", "c0ffee");
    format!("Authorization: {value}")
}

fn contact(host: &str) -> String {
    format!("Contact: <sip:1001@{host}>")
}

fn uri(text: &str) -> Uri {
    Uri::parse(text).expect("uri")
}

/// A phone of `user` at `PHONE` registering `extra` with a challenge round trip at `now`.
struct Phone {
    user: &'static str,
    password: &'static str,
    call_id: &'static str,
    cseq: u32,
}

impl Phone {
    fn new(user: &'static str, password: &'static str, call_id: &'static str) -> Phone {
        Phone {
            user,
            password,
            call_id,
            cseq: 0,
        }
    }

    /// REGISTER, get challenged, REGISTER again with the answer; the second reply.
    fn register(
        &mut self,
        regs: &mut Registrations,
        book: &SeatBook,
        now: Instant,
        extra: &[String],
    ) -> RegisterReply {
        self.cseq += 1;
        let first = register(self.user, self.call_id, self.cseq, extra);
        let reply = regs.handle(now, &first, ip(PHONE), book);
        assert_eq!(reply.status, 401, "{reply:?}");
        assert_eq!(reply.seat, None);
        self.cseq += 1;
        let mut extra = extra.to_vec();
        extra.push(answer(&reply, self.user, self.password));
        regs.handle(
            now,
            &register(self.user, self.call_id, self.cseq, &extra),
            ip(PHONE),
            book,
        )
    }
}

#[test]
fn first_register_is_challenged_and_the_answer_binds() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let first = regs.handle(
        t0,
        &register("1001", "c1", 1, &[contact(PHONE)]),
        ip(PHONE),
        &book,
    );
    let c = challenge(&first);
    assert_eq!(c.realm, "hotline");
    assert!(c.qop_auth);
    assert!(!header(&first, "WWW-Authenticate")
        .unwrap_or("")
        .contains("stale"));
    let extra = [contact(PHONE), answer(&first, "1001", "pw-1001")];
    let reply = regs.handle(t0, &register("1001", "c1", 2, &extra), ip(PHONE), &book);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.seat.as_deref(), Some("a1001"));
    assert_eq!(
        header(&reply, "Contact"),
        Some("<sip:1001@192.0.2.7>;expires=3600")
    );
    assert_eq!(header(&reply, "Expires"), Some("3600"));
    assert_eq!(regs.contacts("1001", t0), vec![uri("sip:1001@192.0.2.7")]);
    assert!(regs.contacts("1002", t0).is_empty());
}

#[test]
fn wrong_answers_lock_the_user_and_address_for_a_while() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let mut phone = Phone::new("1001", "guess", "c1");
    for i in 0..4 {
        let reply = phone.register(&mut regs, &book, t0 + secs(i), &[contact(PHONE)]);
        assert_eq!(reply.status, 401, "attempt {i}: {reply:?}");
        challenge(&reply);
    }
    let reply = phone.register(&mut regs, &book, t0 + secs(4), &[contact(PHONE)]);
    assert_eq!(reply.status, 403, "the fifth wrong answer locks");
    assert!(reply.headers.is_empty());
    // Locked: even the right password and a request without credentials are refused.
    let reply = regs.handle(
        t0 + secs(5),
        &register("1001", "c2", 1, &[contact(PHONE)]),
        ip(PHONE),
        &book,
    );
    assert_eq!(reply.status, 403);
    let old = regs.handle(t0, &register("1001", "c2", 1, &[]), ip("192.0.2.99"), &book);
    let extra = [contact(PHONE), answer(&old, "1001", "pw-1001")];
    let right = register("1001", "c2", 2, &extra);
    assert_eq!(
        regs.handle(t0 + secs(5), &right, ip(PHONE), &book).status,
        403
    );
    // Another address and another user are not locked.
    let reply = regs.handle(t0 + secs(5), &right, ip("192.0.2.99"), &book);
    assert_eq!(reply.status, 200, "{reply:?}");
    let mut other = Phone::new("1002", "pw-1002", "c3");
    let reply = other.register(&mut regs, &book, t0 + secs(5), &[contact(PHONE)]);
    assert_eq!(reply.status, 200, "{reply:?}");
    // After auth_lock_s the right password works again.
    let t1 = t0 + secs(4 + 300);
    assert_eq!(regs.expire(t1 - secs(1)), Vec::<String>::new());
    let mut phone = Phone::new("1001", "pw-1001", "c4");
    let reply = phone.register(&mut regs, &book, t1, &[contact(PHONE)]);
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[test]
fn failures_outside_the_window_do_not_add_up() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let mut phone = Phone::new("1001", "guess", "c1");
    for i in 0..10 {
        let reply = phone.register(&mut regs, &book, t0 + secs(i * 20), &[contact(PHONE)]);
        assert_eq!(reply.status, 401, "attempt {i}: 3 per minute never lock");
    }
}

#[test]
fn an_expired_nonce_is_challenged_again_as_stale() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let first = regs.handle(t0, &register("1001", "c1", 1, &[]), ip(PHONE), &book);
    let late = t0 + secs(301);
    for cseq in 2..12 {
        let extra = [contact(PHONE), answer(&first, "1001", "pw-1001")];
        let reply = regs.handle(
            late,
            &register("1001", "c1", cseq, &extra),
            ip(PHONE),
            &book,
        );
        assert_eq!(reply.status, 401, "{reply:?}");
        let value = header(&reply, "WWW-Authenticate").unwrap_or("");
        assert!(value.contains("stale=true"), "{value}");
    }
    // Stale answers are not failures: the phone is not locked.
    let extra = [contact(PHONE), answer(&first, "1001", "pw-1001")];
    let stale = regs.handle(late, &register("1001", "c1", 12, &extra), ip(PHONE), &book);
    let extra = [contact(PHONE), answer(&stale, "1001", "pw-1001")];
    let reply = regs.handle(late, &register("1001", "c1", 13, &extra), ip(PHONE), &book);
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[test]
fn one_seat_can_have_two_phones() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let mut desk = Phone::new("1001", "pw-1001", "desk");
    let reply = desk.register(&mut regs, &book, t0, &[contact("192.0.2.7")]);
    assert_eq!(reply.status, 200);
    let mut soft = Phone::new("1001", "pw-1001", "soft");
    let extra = [contact("192.0.2.8"), "Expires: 600".to_string()];
    let reply = soft.register(&mut regs, &book, t0 + secs(10), &extra);
    assert_eq!(reply.status, 200);
    let contacts: Vec<&str> = reply
        .headers
        .iter()
        .filter(|(n, _)| *n == HeaderName::Contact)
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        contacts,
        vec![
            "<sip:1001@192.0.2.8>;expires=600",
            "<sip:1001@192.0.2.7>;expires=3590"
        ]
    );
    assert_eq!(header(&reply, "Expires"), Some("600"));
    assert_eq!(
        regs.contacts("1001", t0 + secs(10)),
        vec![uri("sip:1001@192.0.2.8"), uri("sip:1001@192.0.2.7")],
        "newest first"
    );
}

#[test]
fn bindings_expire_when_asked() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let mut phone = Phone::new("1001", "pw-1001", "c1");
    let extra = [format!("{};expires=120", contact(PHONE))];
    let reply = phone.register(&mut regs, &book, t0, &extra);
    assert_eq!(header(&reply, "Expires"), Some("120"));
    assert_eq!(regs.next_expiry(), Some(t0 + secs(120)));
    assert!(regs.expire(t0 + secs(119)).is_empty());
    assert_eq!(regs.contacts("1001", t0 + secs(119)).len(), 1);
    assert!(regs.contacts("1001", t0 + secs(120)).is_empty());
    assert_eq!(regs.expire(t0 + secs(120)), vec!["1001".to_string()]);
    assert_eq!(regs.next_expiry(), None);
}

#[test]
fn too_brief_gets_423_and_too_long_is_cut() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let mut phone = Phone::new("1001", "pw-1001", "c1");
    let reply = phone.register(
        &mut regs,
        &book,
        t0,
        &[contact(PHONE), "Expires: 30".into()],
    );
    assert_eq!(reply.status, 423);
    assert_eq!(header(&reply, "Min-Expires"), Some("60"));
    assert_eq!(reply.seat, None);
    let extra = [contact(PHONE), "Expires: 86400".into()];
    let reply = phone.register(&mut regs, &book, t0, &extra);
    assert_eq!(header(&reply, "Expires"), Some("3600"));
}

#[test]
fn unregister_removes_all_or_one_binding() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let mut phone = Phone::new("1001", "pw-1001", "c1");
    phone.register(&mut regs, &book, t0, &[contact("192.0.2.7")]);
    phone.register(&mut regs, &book, t0, &[contact("192.0.2.8")]);
    assert_eq!(regs.contacts("1001", t0).len(), 2);
    let one = [format!("{};expires=0", contact("192.0.2.8"))];
    let reply = phone.register(&mut regs, &book, t0, &one);
    assert_eq!(reply.status, 200);
    assert_eq!(header(&reply, "Expires"), Some("0"));
    assert_eq!(regs.contacts("1001", t0), vec![uri("sip:1001@192.0.2.7")]);
    let all = ["Contact: *".to_string(), "Expires: 0".to_string()];
    let reply = phone.register(&mut regs, &book, t0 + secs(1), &all);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.seat.as_deref(), Some("a1001"));
    assert_eq!(header(&reply, "Contact"), None);
    assert_eq!(header(&reply, "Expires"), Some("0"));
    assert!(regs.contacts("1001", t0 + secs(1)).is_empty());
    assert_eq!(regs.next_expiry(), None);
}

#[test]
fn a_query_lists_bindings_without_changing_them() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let mut phone = Phone::new("1001", "pw-1001", "c1");
    phone.register(&mut regs, &book, t0, &[contact(PHONE)]);
    let reply = phone.register(&mut regs, &book, t0 + secs(100), &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.seat, None);
    assert_eq!(header(&reply, "Expires"), None);
    assert_eq!(
        header(&reply, "Contact"),
        Some("<sip:1001@192.0.2.7>;expires=3500")
    );
}

#[test]
fn an_ha1_secret_authenticates() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let mut phone = Phone::new("1002", "pw-1002", "c1");
    let reply = phone.register(
        &mut regs,
        &book,
        t0,
        &["Contact: <sip:1002@192.0.2.9>".into()],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.seat.as_deref(), Some("a1002"));
    let mut wrong = Phone::new("1002", "pw-1001", "c2");
    let reply = wrong.register(
        &mut regs,
        &book,
        t0,
        &["Contact: <sip:1002@192.0.2.9>".into()],
    );
    assert_eq!(reply.status, 401);
}

#[test]
fn an_unknown_user_looks_like_a_wrong_password() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let mut phone = Phone::new("1999", "pw-1001", "c1");
    for i in 0..4 {
        let reply = phone.register(&mut regs, &book, t0, &[contact(PHONE)]);
        assert_eq!(reply.status, 401, "attempt {i}");
        assert_eq!(reply.headers.len(), 1);
        assert!(!header(&reply, "WWW-Authenticate")
            .unwrap_or("")
            .contains("stale"));
    }
    let reply = phone.register(&mut regs, &book, t0, &[contact(PHONE)]);
    assert_eq!(reply.status, 403, "unknown users lock like known ones");
}

#[test]
fn another_users_aor_is_forbidden() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let first = regs.handle(t0, &register("1002", "c1", 1, &[]), ip(PHONE), &book);
    // 1001 authenticates but asks to bind 1002's address-of-record.
    let extra = [contact(PHONE), answer(&first, "1001", "pw-1001")];
    let reply = regs.handle(t0, &register("1002", "c1", 2, &extra), ip(PHONE), &book);
    assert_eq!(reply.status, 403);
    assert!(reply.detail.is_some());
    assert!(regs.contacts("1002", t0).is_empty());
    assert!(regs.contacts("1001", t0).is_empty());
}

#[test]
fn the_digest_uri_must_name_the_request_uri() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let first = regs.handle(t0, &register("1001", "c1", 1, &[]), ip(PHONE), &book);
    let c = challenge(&first);
    let other = c.answer("1001", "pw-1001", "REGISTER", "sip:10.0.0.2", "c0ffee");
    let extra = [contact(PHONE), format!("Authorization: {other}")];
    let reply = regs.handle(t0, &register("1001", "c1", 2, &extra), ip(PHONE), &book);
    assert_eq!(reply.status, 400, "{reply:?}");
    // The same URI spelled differently is accepted.
    let same = c.answer("1001", "pw-1001", "REGISTER", "SIP:10.0.0.1", "c0ffee");
    let extra = [contact(PHONE), format!("Authorization: {same}")];
    let reply = regs.handle(t0, &register("1001", "c1", 3, &extra), ip(PHONE), &book);
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[test]
fn an_unreadable_authorization_is_challenged_without_counting() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    for cseq in 1..10 {
        let extra = [
            contact(PHONE),
            "Authorization: Basic MTAwMTpwdw==".to_string(),
        ];
        let reply = regs.handle(t0, &register("1001", "c1", cseq, &extra), ip(PHONE), &book);
        assert_eq!(reply.status, 401);
        challenge(&reply);
    }
}

#[test]
fn a_replayed_register_is_refused() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let first = regs.handle(t0, &register("1001", "c1", 1, &[]), ip(PHONE), &book);
    let extra = [contact(PHONE), answer(&first, "1001", "pw-1001")];
    let request = register("1001", "c1", 2, &extra);
    assert_eq!(regs.handle(t0, &request, ip(PHONE), &book).status, 200);
    let replay = regs.handle(t0 + secs(1), &request, ip(PHONE), &book);
    assert_eq!(replay.status, 500, "{replay:?}");
}

#[test]
fn forget_drops_a_removed_seats_bindings() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let mut phone = Phone::new("1001", "pw-1001", "c1");
    phone.register(&mut regs, &book, t0, &[contact(PHONE)]);
    let mut other = Phone::new("1002", "pw-1002", "c2");
    other.register(
        &mut regs,
        &book,
        t0,
        &["Contact: <sip:1002@192.0.2.9>".into()],
    );
    regs.forget("1001");
    assert!(regs.contacts("1001", t0).is_empty());
    assert_eq!(regs.contacts("1002", t0).len(), 1);
    assert!(regs.expire(t0 + secs(3600)) == vec!["1002".to_string()]);
    regs.forget("1001");
    regs.forget("nobody");
}

#[test]
fn a_removed_seat_can_no_longer_register() {
    let (t0, book) = (Instant::now(), book());
    let mut regs = Registrations::new(&SeatsConfig::default(), t0);
    let first = regs.handle(t0, &register("1001", "c1", 1, &[]), ip(PHONE), &book);
    let extra = [contact(PHONE), answer(&first, "1001", "pw-1001")];
    let reloaded = SeatBook::default();
    let reply = regs.handle(t0, &register("1001", "c1", 2, &extra), ip(PHONE), &reloaded);
    assert_eq!(reply.status, 401);
}
