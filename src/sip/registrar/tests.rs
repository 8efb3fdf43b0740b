use super::*;
use crate::sip::message::Message;
use crate::sip::parse::parse;

fn register(call_id: &str, cseq: u32, extra: &[&str]) -> Request {
    let mut text = format!(
        "REGISTER sip:10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK{cseq}\r\n\
         From: <sip:1001@10.0.0.1>;tag=a\r\nTo: <sip:1001@10.0.0.1>\r\nCall-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\n"
    );
    for line in extra {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    match parse(text.as_bytes()) {
        Ok(Message::Request(request)) => request,
        other => panic!("not a request: {other:?}"),
    }
}

fn uri(text: &str) -> Uri {
    Uri::parse(text).expect("uri")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn binds_with_default_header_and_param_expiry() {
    let t0 = Instant::now();
    let mut r = Registrar::default();
    let out = r.handle(
        t0,
        &register("c1", 1, &["Contact: <sip:1001@192.0.2.7>"]),
        "1001",
    );
    assert_eq!(
        out,
        RegisterOutcome::Ok {
            contacts: vec![(uri("sip:1001@192.0.2.7"), 3600)]
        }
    );
    let out = r.handle(
        t0,
        &register(
            "c2",
            1,
            &["Contact: <sip:1001@192.0.2.8>;expires=120", "Expires: 600"],
        ),
        "1001",
    );
    let RegisterOutcome::Ok { contacts } = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        contacts[0],
        (uri("sip:1001@192.0.2.8"), 120),
        "newest first"
    );
    assert_eq!(contacts[1], (uri("sip:1001@192.0.2.7"), 3600));
    let out = r.handle(
        t0,
        &register("c3", 1, &["Contact: <sip:1001@192.0.2.9>", "Expires: 600"]),
        "1001",
    );
    assert!(matches!(&out, RegisterOutcome::Ok { contacts } if contacts[0].1 == 600));
    assert_eq!(
        r.contacts("1001", t0),
        vec![
            uri("sip:1001@192.0.2.9"),
            uri("sip:1001@192.0.2.8"),
            uri("sip:1001@192.0.2.7")
        ]
    );
}

#[test]
fn too_brief_is_423_and_too_long_is_clamped() {
    let t0 = Instant::now();
    let mut r = Registrar::default();
    let out = r.handle(
        t0,
        &register("c1", 1, &["Contact: <sip:a@h>;expires=30"]),
        "1001",
    );
    assert_eq!(out, RegisterOutcome::IntervalTooBrief(60));
    assert!(r.contacts("1001", t0).is_empty(), "nothing applied");
    let out = r.handle(
        t0,
        &register("c1", 2, &["Contact: <sip:a@h>", "Expires: 86400"]),
        "1001",
    );
    assert_eq!(
        out,
        RegisterOutcome::Ok {
            contacts: vec![(uri("sip:a@h"), 7200)]
        }
    );
}

#[test]
fn call_id_and_cseq_order_is_enforced_atomically() {
    let t0 = Instant::now();
    let mut r = Registrar::default();
    let first = register("c1", 5, &["Contact: <sip:a@h>"]);
    assert!(matches!(
        r.handle(t0, &first, "1001"),
        RegisterOutcome::Ok { .. }
    ));
    assert_eq!(r.handle(t0, &first, "1001"), RegisterOutcome::OutOfOrder);
    let older = register(
        "c1",
        4,
        &["Contact: <sip:b@h>", "Contact: <sip:a@h>;expires=0"],
    );
    assert_eq!(r.handle(t0, &older, "1001"), RegisterOutcome::OutOfOrder);
    assert_eq!(r.contacts("1001", t0), vec![uri("sip:a@h")], "b not added");
    // Another Call-ID may update regardless of CSeq (a rebooted phone).
    let reboot = register("c2", 1, &["Contact: <sip:a@h>", "Expires: 300"]);
    assert!(matches!(
        r.handle(t0, &reboot, "1001"),
        RegisterOutcome::Ok { contacts } if contacts == vec![(uri("sip:a@h"), 300)]
    ));
}

#[test]
fn expires_zero_removes_one_and_star_removes_all() {
    let t0 = Instant::now();
    let mut r = Registrar::default();
    r.handle(
        t0,
        &register("c1", 1, &["Contact: <sip:a@h>", "Contact: <sip:b@h>"]),
        "1001",
    );
    assert_eq!(r.contacts("1001", t0).len(), 2);
    let out = r.handle(
        t0,
        &register("c1", 2, &["Contact: <sip:A@H>;expires=0"]),
        "1001",
    );
    assert!(
        matches!(&out, RegisterOutcome::Ok { contacts } if contacts.len() == 2),
        "user part is case-sensitive"
    );
    r.handle(
        t0,
        &register("c1", 3, &["Contact: <sip:a@H>;expires=0"]),
        "1001",
    );
    assert_eq!(r.contacts("1001", t0), vec![uri("sip:b@h")]);

    let bad = register("c1", 4, &["Contact: *"]);
    assert!(matches!(
        r.handle(t0, &bad, "1001"),
        RegisterOutcome::BadRequest(_)
    ));
    let bad = register("c1", 4, &["Contact: *", "Contact: <sip:c@h>", "Expires: 0"]);
    assert!(matches!(
        r.handle(t0, &bad, "1001"),
        RegisterOutcome::BadRequest(_)
    ));
    let stale = register("c1", 1, &["Contact: *", "Expires: 0"]);
    assert_eq!(r.handle(t0, &stale, "1001"), RegisterOutcome::OutOfOrder);
    let all = register("c1", 9, &["Contact: *", "Expires: 0"]);
    assert_eq!(
        r.handle(t0, &all, "1001"),
        RegisterOutcome::Ok { contacts: vec![] }
    );
    assert!(r.contacts("1001", t0).is_empty());
    assert_eq!(r.user_count(), 0);
    assert_eq!(r.next_expiry(), None);
}

#[test]
fn query_forbidden_and_bad_requests() {
    let t0 = Instant::now();
    let mut r = Registrar::default();
    r.handle(t0, &register("c1", 1, &["Contact: <sip:a@h>"]), "1001");
    let query = register("c9", 1, &[]);
    assert_eq!(
        r.handle(t0 + secs(100), &query, "1001"),
        RegisterOutcome::Ok {
            contacts: vec![(uri("sip:a@h"), 3500)]
        }
    );
    let other = register("c1", 2, &["Contact: <sip:x@h>"]);
    assert_eq!(r.handle(t0, &other, "1002"), RegisterOutcome::Forbidden);
    let garbage = register("c1", 2, &["Contact: <no uri"]);
    assert!(matches!(
        r.handle(t0, &garbage, "1001"),
        RegisterOutcome::BadRequest(_)
    ));
}

#[test]
fn expiry_drops_bindings_and_reports_users_left_without_contacts() {
    let t0 = Instant::now();
    let mut r = Registrar::default();
    r.handle(
        t0,
        &register(
            "c1",
            1,
            &[
                "Contact: <sip:a@h>;expires=60",
                "Contact: <sip:b@h>;expires=120",
            ],
        ),
        "1001",
    );
    let mut two = register("c2", 1, &["Contact: <sip:z@h>;expires=90"]);
    two.headers.set(HeaderName::To, "<sip:1002@10.0.0.1>");
    r.handle(t0, &two, "1002");
    assert_eq!(r.next_expiry(), Some(t0 + secs(60)));
    assert!(r.expire(t0 + secs(59)).is_empty());
    assert!(r.expire(t0 + secs(60)).is_empty(), "1001 still has b");
    assert_eq!(r.contacts("1001", t0 + secs(60)), vec![uri("sip:b@h")]);
    assert_eq!(r.next_expiry(), Some(t0 + secs(90)));
    assert_eq!(r.expire(t0 + secs(90)), vec!["1002".to_string()]);
    assert_eq!(r.next_expiry(), Some(t0 + secs(120)));
    // Contacts past expiry are hidden even before expire() runs.
    assert!(r.contacts("1001", t0 + secs(120)).is_empty());
    assert_eq!(r.expire(t0 + secs(500)), vec!["1001".to_string()]);
    assert_eq!(r.next_expiry(), None);
    assert_eq!(r.user_count(), 0);
}

#[test]
fn a_refresh_pushes_the_expiry_back() {
    let t0 = Instant::now();
    let mut r = Registrar::default();
    r.handle(
        t0,
        &register("c1", 1, &["Contact: <sip:a@h>;expires=60"]),
        "1001",
    );
    r.handle(
        t0 + secs(50),
        &register("c1", 2, &["Contact: <sip:a@h>;expires=60"]),
        "1001",
    );
    assert!(r.expire(t0 + secs(60)).is_empty());
    assert_eq!(r.next_expiry(), Some(t0 + secs(110)));
    assert_eq!(r.contacts("1001", t0 + secs(100)), vec![uri("sip:a@h")]);
}
