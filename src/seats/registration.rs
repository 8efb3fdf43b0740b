//! Seat phones registering (RFC 3261 §10.3) with digest authentication, sans-IO in virtual
//! time: [`Registrations`] checks the `Authorization` of a REGISTER against the seat book and
//! applies it to the [`Registrar`]; the switch turns the [`RegisterReply`] into the response.
//!
//! A username and source IP that answer wrongly `auth_failures` times within the window are
//! refused with 403 Forbidden until the lock ends, whatever they send: SIP has no "too many
//! requests" status (429 is Provide Referrer Identity), and 403 is what registrars such as
//! Kamailio and FreeSWITCH answer to banned sources. A username not in the book is answered
//! exactly like a wrong password, so that the usernames that exist cannot be probed.

use std::net::IpAddr;
use std::time::Instant;

use super::SeatBook;
use crate::config::SeatsConfig;
use crate::sip::digest_server::{Credentials, FailureLimiter, NonceIssuer, Verdict};
use crate::sip::fields::{Fields, NameAddr};
use crate::sip::message::{HeaderName, Headers, Method, Request};
use crate::sip::registrar::{ExpiryLimits, RegisterOutcome, Registrar};
use crate::sip::uri::Uri;

/// Expiry for a phone that asks for none (capped by `register_max_expires_s`).
const DEFAULT_EXPIRES_S: u32 = 3600;
/// Tracked failing (username, IP) pairs beyond which stale ones are purged on the spot.
const LIMITER_PURGE_AT: usize = 4096;

/// What to answer a REGISTER with; the switch adds Via, From, To, Call-ID and CSeq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterReply {
    /// 200, 400, 401, 403, 423 or 500.
    pub status: u16,
    /// Headers to add: `WWW-Authenticate` (401), `Contact` and `Expires` (200), `Min-Expires` (423).
    pub headers: Vec<(HeaderName, String)>,
    /// The id of the seat whose bindings were added, refreshed or removed (200 with contacts).
    pub seat: Option<String>,
    /// Why a 400, 403 or 500 was given, for the log (not sent: it may help an attacker).
    pub detail: Option<String>,
}

impl RegisterReply {
    fn new(status: u16) -> RegisterReply {
        RegisterReply {
            status,
            headers: Vec::new(),
            seat: None,
            detail: None,
        }
    }

    fn refused(status: u16, detail: impl Into<String>) -> RegisterReply {
        RegisterReply {
            detail: Some(detail.into()),
            ..RegisterReply::new(status)
        }
    }
}

/// The seat phones' registrations: authentication, lockouts and contact bindings.
#[derive(Debug)]
pub struct Registrations {
    /// Digest realm.
    realm: String,
    /// Makes and checks nonces.
    issuer: NonceIssuer,
    /// Counts wrong answers per (username, source IP).
    limiter: FailureLimiter,
    /// Contact bindings per username.
    registrar: Registrar,
    /// Makes the Call-IDs of [`Registrations::forget`] unique.
    forgotten: u64,
    /// The latest time seen, for [`Registrations::forget`] (which is not given one).
    latest: Instant,
}

impl Registrations {
    /// Registrations under `[seats]` settings, with nonces keyed by a random secret and dated
    /// from `epoch`.
    pub fn new(config: &SeatsConfig, epoch: Instant) -> Registrations {
        let max = config.register_max_expires_s;
        let limits = ExpiryLimits {
            default: DEFAULT_EXPIRES_S.min(max),
            min: config.register_min_expires_s,
            max,
        };
        Registrations {
            realm: config.realm.clone(),
            issuer: NonceIssuer::with_random_secret(epoch).with_lifetime(config.nonce_lifetime()),
            limiter: FailureLimiter::new(
                usize::try_from(config.auth_failures).unwrap_or(usize::MAX),
                config.auth_failure_window(),
                config.auth_lock(),
            ),
            registrar: Registrar::new(limits),
            forgotten: 0,
            latest: epoch,
        }
    }

    /// Answers a REGISTER that arrived from `source` at `now`, for the seats in `book`.
    pub fn handle(
        &mut self,
        now: Instant,
        request: &Request,
        source: IpAddr,
        book: &SeatBook,
    ) -> RegisterReply {
        let username = match self.authenticate(now, request, source, book) {
            Ok(username) => username,
            Err(refused) => return refused,
        };
        let Some(seat) = book.by_username(&username) else {
            return self.challenge(false, now);
        };
        let outcome = self.registrar.handle(now, request, &username);
        reply(outcome, request, &seat.id)
    }

    /// Checks the digest answer of a seat phone's request (REGISTER, or an INVITE it makes):
    /// the authenticated username, or the reply to send (a challenge, 403 when locked, 400).
    pub fn authenticate(
        &mut self,
        now: Instant,
        request: &Request,
        source: IpAddr,
        book: &SeatBook,
    ) -> Result<String, RegisterReply> {
        self.latest = self.latest.max(now);
        let authorization = self.authorization(request);
        let credentials = authorization.and_then(Credentials::parse);
        // Without credentials the lock is looked up under the To user, saving a round trip.
        let claimed = match &credentials {
            Some(c) => Some(c.username.clone()),
            None => request.to_header().ok().and_then(|to| to.uri.user),
        };
        if let Some(user) = &claimed {
            if self.limiter.is_locked(user, source, now) {
                return Err(RegisterReply::refused(
                    403,
                    "locked after too many wrong answers",
                ));
            }
        }
        let (Some(authorization), Some(credentials)) = (authorization, credentials) else {
            // No Authorization, or one we cannot read (another scheme or algorithm).
            return Err(self.challenge(false, now));
        };
        let realm = self.realm.as_str();
        let ha1_of = |user: &str| book.by_username(user).map(|s| s.secret.ha1(user, realm));
        let verdict =
            self.issuer
                .verify_ha1(authorization, request.method.as_str(), realm, ha1_of, now);
        let username = match verdict {
            Verdict::Ok { username } => username,
            Verdict::Stale => return Err(self.challenge(true, now)),
            Verdict::Malformed => return Err(self.challenge(false, now)),
            Verdict::Wrong => {
                if self.limiter.len() > LIMITER_PURGE_AT {
                    self.limiter.purge(now);
                }
                let user = credentials.username.as_str();
                if self.limiter.record_failure(user, source, now) {
                    return Err(RegisterReply::refused(
                        403,
                        "locked after too many wrong answers",
                    ));
                }
                return Err(self.challenge(false, now));
            }
        };
        self.limiter.record_success(&username, source);
        if book.by_username(&username).is_none() {
            return Err(self.challenge(false, now));
        }
        // RFC 2617 §3.2.2.5: the digest-uri must name the resource of the Request-URI.
        if !same_resource(&credentials.uri, &request.uri) {
            return Err(RegisterReply::refused(
                400,
                format!(
                    "the digest uri \"{}\" is not the Request-URI {}",
                    credentials.uri, request.uri
                ),
            ));
        }
        Ok(username)
    }

    /// The latest time this table was told of.
    pub fn latest(&self) -> Instant {
        self.latest
    }

    /// The current contacts of `username`, newest first.
    pub fn contacts(&self, username: &str, now: Instant) -> Vec<Uri> {
        self.registrar.contacts(username, now)
    }

    /// Drops expired bindings; returns the usernames whose last binding just expired.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        self.latest = self.latest.max(now);
        self.limiter.purge(now);
        self.registrar.expire(now)
    }

    /// When the next binding expires, for the caller's timer.
    pub fn next_expiry(&mut self) -> Option<Instant> {
        self.registrar.next_expiry()
    }

    /// Drops every binding of `username` (a seat removed by a reload); not reported by `expire`.
    pub fn forget(&mut self, username: &str) {
        self.forgotten += 1;
        // An un-REGISTER (Contact: *) under a Call-ID no phone uses, so no CSeq can conflict.
        let mut headers = Headers::new();
        headers.push(HeaderName::To, format!("<sip:{username}@forget.invalid>"));
        headers.push(
            HeaderName::CallId,
            format!("hotline-forget-{}", self.forgotten),
        );
        headers.push(HeaderName::CSeq, "1 REGISTER");
        headers.push(HeaderName::Contact, "*");
        headers.push(HeaderName::Expires, "0");
        let request = Request {
            method: Method::Register,
            uri: Uri::sip(None, "forget.invalid", None),
            headers,
            body: Vec::new(),
        };
        // Only an unparsable username could fail, and such a one never registered.
        let _ = self.registrar.handle(self.latest, &request, username);
    }

    /// The `Authorization` value answering our realm, else the first one.
    fn authorization<'r>(&self, request: &'r Request) -> Option<&'r str> {
        let values: Vec<&'r str> = request
            .headers
            .iter()
            .filter(|(n, _)| n.as_str().eq_ignore_ascii_case("Authorization"))
            .map(|(_, v)| v)
            .collect();
        let ours = values
            .iter()
            .find(|v| Credentials::parse(v).is_some_and(|c| c.realm == self.realm));
        ours.or(values.first()).copied()
    }

    /// 401 with a fresh challenge.
    fn challenge(&self, stale: bool, now: Instant) -> RegisterReply {
        let mut reply = RegisterReply::new(401);
        reply.headers.push((
            HeaderName::Other("WWW-Authenticate".into()),
            self.issuer.challenge(&self.realm, stale, now),
        ));
        reply
    }
}

/// The reply for the registrar's outcome of an authenticated REGISTER from seat `seat`.
fn reply(outcome: RegisterOutcome, request: &Request, seat: &str) -> RegisterReply {
    match outcome {
        RegisterOutcome::Ok { contacts } => {
            let mut reply = RegisterReply::new(200);
            let asked: Vec<&str> = request.headers.get_all(&HeaderName::Contact).collect();
            // Expires tells the phone what it got for the (first) contact it sent.
            let granted = match asked.first() {
                None => None,
                Some(v) if v.trim() == "*" => Some(0),
                Some(v) => NameAddr::parse(v, "Contact").ok().map(|sent| {
                    contacts
                        .iter()
                        .find(|(uri, _)| *uri == sent.uri)
                        .map_or(0, |(_, secs)| *secs)
                }),
            };
            for (uri, secs) in &contacts {
                reply
                    .headers
                    .push((HeaderName::Contact, format!("<{uri}>;expires={secs}")));
            }
            if let Some(secs) = granted {
                reply.headers.push((HeaderName::Expires, secs.to_string()));
            }
            if !asked.is_empty() {
                reply.seat = Some(seat.to_string());
            }
            reply
        }
        RegisterOutcome::IntervalTooBrief(min) => {
            let mut reply = RegisterReply::new(423);
            reply
                .headers
                .push((HeaderName::Other("Min-Expires".into()), min.to_string()));
            reply
        }
        RegisterOutcome::Forbidden => {
            RegisterReply::refused(403, "the To user is not the authenticated user")
        }
        RegisterOutcome::OutOfOrder => RegisterReply::refused(
            500,
            "same Call-ID with a CSeq not above the last one (out of order or replayed)",
        ),
        RegisterOutcome::BadRequest(reason) => RegisterReply::refused(400, reason),
    }
}

/// Whether the digest-uri names the Request-URI: scheme, user, host and port (case-insensitive
/// scheme and host), so that a phone's own spelling of the same URI is accepted.
fn same_resource(digest_uri: &str, request_uri: &Uri) -> bool {
    let Ok(uri) = Uri::parse(digest_uri) else {
        return false;
    };
    uri.scheme.eq_ignore_ascii_case(&request_uri.scheme)
        && uri.user == request_uri.user
        && uri.host.eq_ignore_ascii_case(&request_uri.host)
        && uri.port == request_uri.port
}
