use super::*;
use crate::sip::digest::Challenge;

const REALM: &str = "12345.hotline";

fn password_of(user: &str) -> Option<String> {
    (user == "1001").then(|| "secret".to_string())
}

fn issuer(t0: Instant) -> NonceIssuer {
    NonceIssuer::new("server-secret", t0)
}

fn answer(issuer: &NonceIssuer, password: &str, now: Instant) -> String {
    let challenge = Challenge::parse(&issuer.challenge(REALM, false, now)).expect("parses");
    challenge.answer("1001", password, "REGISTER", "sip:10.0.0.1", "c0ffee")
}

#[test]
fn the_rfc_2617_mufasa_answer_verifies() {
    let header = "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
        nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
        nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", \
        opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    let credentials = Credentials::parse(header).expect("parses");
    assert!(credentials.matches("Circle Of Life", "GET"));
    assert!(!credentials.matches("circle of life", "GET"));
    assert!(!credentials.matches("Circle Of Life", "POST"));
}

#[test]
fn round_trip_with_the_client_verifies() {
    let t0 = Instant::now();
    let issuer = issuer(t0);
    let header = answer(&issuer, "secret", t0);
    let verdict = issuer.verify(&header, "REGISTER", REALM, password_of, t0);
    assert_eq!(
        verdict,
        Verdict::Ok {
            username: "1001".into()
        }
    );
}

#[test]
fn the_rfc_2069_form_without_qop_verifies() {
    let t0 = Instant::now();
    let issuer = issuer(t0);
    let nonce = issuer.nonce(t0);
    let challenge =
        Challenge::parse(&format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\"")).expect("parses");
    let header = challenge.answer("1001", "secret", "REGISTER", "sip:h", "c");
    assert!(!header.contains("qop"));
    assert!(matches!(
        issuer.verify(&header, "REGISTER", REALM, password_of, t0),
        Verdict::Ok { .. }
    ));
}

#[test]
fn wrong_password_unknown_user_and_other_realm_are_wrong() {
    let t0 = Instant::now();
    let issuer = issuer(t0);
    let header = answer(&issuer, "guess", t0);
    assert_eq!(
        issuer.verify(&header, "REGISTER", REALM, password_of, t0),
        Verdict::Wrong
    );
    let header = answer(&issuer, "secret", t0);
    assert_eq!(
        issuer.verify(&header, "REGISTER", REALM, |_| None, t0),
        Verdict::Wrong
    );
    assert_eq!(
        issuer.verify(&header, "REGISTER", "other", password_of, t0),
        Verdict::Wrong
    );
    assert_eq!(
        issuer.verify(&header, "INVITE", REALM, password_of, t0),
        Verdict::Wrong
    );
}

#[test]
fn an_expired_nonce_with_a_right_answer_is_stale() {
    let t0 = Instant::now();
    let issuer = issuer(t0).with_lifetime(Duration::from_secs(300));
    let header = answer(&issuer, "secret", t0);
    let fresh = t0 + Duration::from_secs(300);
    assert!(matches!(
        issuer.verify(&header, "REGISTER", REALM, password_of, fresh),
        Verdict::Ok { .. }
    ));
    let late = t0 + Duration::from_secs(302);
    assert_eq!(
        issuer.verify(&header, "REGISTER", REALM, password_of, late),
        Verdict::Stale
    );
    let wrong = answer(&issuer, "guess", t0);
    assert_eq!(
        issuer.verify(&wrong, "REGISTER", REALM, password_of, late),
        Verdict::Wrong,
        "stale is only for right answers"
    );
    assert!(issuer.challenge(REALM, true, late).ends_with("stale=true"));
}

#[test]
fn a_tampered_or_foreign_nonce_is_wrong() {
    let t0 = Instant::now();
    let issuer = issuer(t0);
    let nonce = issuer.nonce(t0);
    // Pretend the nonce was issued later (to dodge expiry), keeping its MAC.
    let forged = format!("{:016x}{}", 1_000_000u64, &nonce[16..]);
    for nonce in [forged, "dcd98b7102dd2f0e8b11d0f600bfb0c093".to_string()] {
        let challenge = Challenge::parse(&format!(
            "Digest realm=\"{REALM}\", nonce=\"{nonce}\", qop=\"auth\""
        ))
        .expect("parses");
        let header = challenge.answer("1001", "secret", "REGISTER", "sip:h", "c");
        assert_eq!(
            issuer.verify(&header, "REGISTER", REALM, password_of, t0),
            Verdict::Wrong
        );
    }
    let other = NonceIssuer::new("another-secret", t0);
    let header = answer(&other, "secret", t0);
    assert_eq!(
        issuer.verify(&header, "REGISTER", REALM, password_of, t0),
        Verdict::Wrong
    );
}

#[test]
fn malformed_answers_are_malformed() {
    let t0 = Instant::now();
    let issuer = issuer(t0);
    for header in [
        "Basic dXNlcjpwYXNz",
        "Digest username=\"1001\", realm=\"r\"",
        "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", qop=auth",
        "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", algorithm=SHA-256",
        "",
    ] {
        assert_eq!(
            issuer.verify(header, "REGISTER", REALM, password_of, t0),
            Verdict::Malformed,
            "{header}"
        );
    }
}

#[test]
fn failures_lock_then_unlock_and_success_clears() {
    let t0 = Instant::now();
    let ip: IpAddr = "192.0.2.7".parse().expect("ip");
    let other: IpAddr = "192.0.2.8".parse().expect("ip");
    let mut limiter = FailureLimiter::default();
    for i in 0..4 {
        assert!(!limiter.record_failure("1001", ip, t0 + Duration::from_secs(i)));
    }
    assert!(!limiter.is_locked("1001", ip, t0 + Duration::from_secs(4)));
    assert!(limiter.record_failure("1001", ip, t0 + Duration::from_secs(4)));
    assert!(limiter.is_locked("1001", ip, t0 + Duration::from_secs(5)));
    assert!(!limiter.is_locked("1001", other, t0 + Duration::from_secs(5)));
    assert!(!limiter.is_locked("1002", ip, t0 + Duration::from_secs(5)));
    assert!(limiter.is_locked("1001", ip, t0 + Duration::from_secs(63)));
    assert!(!limiter.is_locked("1001", ip, t0 + Duration::from_secs(64)));
    // After the lock a fresh count starts.
    assert!(!limiter.record_failure("1001", ip, t0 + Duration::from_secs(65)));

    limiter.record_success("1001", ip);
    for i in 0..4 {
        limiter.record_failure("1001", ip, t0 + Duration::from_secs(70 + i));
    }
    limiter.record_success("1001", ip);
    assert!(!limiter.record_failure("1001", ip, t0 + Duration::from_secs(75)));
}

#[test]
fn failures_outside_the_window_do_not_count() {
    let t0 = Instant::now();
    let ip: IpAddr = "192.0.2.7".parse().expect("ip");
    let mut limiter = FailureLimiter::default();
    for i in 0..10 {
        // One every 20 s: never five within 60 s.
        assert!(!limiter.record_failure("1001", ip, t0 + Duration::from_secs(20 * i)));
    }
    limiter.purge(t0 + Duration::from_secs(20 * 9 + 60));
    assert!(limiter.is_empty());
}
