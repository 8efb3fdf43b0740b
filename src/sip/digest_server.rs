//! Digest authentication as a server (RFC 2617 / RFC 7616 with MD5): stateless nonces,
//! verifying a seat's `Authorization`, and a limit on repeated wrong answers.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::digest::{md5_hex, params_of};

/// Issues nonces that carry their issue time and a MAC under a server secret: no state kept.
#[derive(Clone, Debug)]
pub struct NonceIssuer {
    secret: String,
    epoch: Instant,
    lifetime: Duration,
}

/// The outcome of checking an `Authorization` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The response is right and the nonce fresh.
    Ok {
        /// The authenticated user.
        username: String,
    },
    /// The response is right but the nonce expired: challenge again with `stale=true`.
    Stale,
    /// Wrong password, unknown user, other realm, or a nonce we did not issue.
    Wrong,
    /// Not a well-formed MD5 Digest answer.
    Malformed,
}

impl NonceIssuer {
    /// An issuer keyed by `secret`, measuring nonce age from `epoch`; nonces live 5 minutes.
    pub fn new(secret: impl Into<String>, epoch: Instant) -> NonceIssuer {
        NonceIssuer {
            secret: secret.into(),
            epoch,
            lifetime: Duration::from_secs(300),
        }
    }

    /// An issuer with a fresh random secret.
    pub fn with_random_secret(epoch: Instant) -> NonceIssuer {
        NonceIssuer::new(format!("{:032x}", rand::random::<u128>()), epoch)
    }

    /// Sets how long a nonce stays fresh.
    pub fn with_lifetime(mut self, lifetime: Duration) -> NonceIssuer {
        self.lifetime = lifetime;
        self
    }

    /// A new nonce: hex issue time, hex random, then md5(secret:time:random).
    pub fn nonce(&self, now: Instant) -> String {
        let time = now.saturating_duration_since(self.epoch).as_secs();
        let random = rand::random::<u64>();
        format!("{time:016x}{random:016x}{}", self.mac(time, random))
    }

    /// The `WWW-Authenticate` value challenging for `realm`.
    pub fn challenge(&self, realm: &str, stale: bool, now: Instant) -> String {
        let mut value = format!(
            "Digest realm=\"{realm}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"",
            self.nonce(now)
        );
        if stale {
            value.push_str(", stale=true");
        }
        value
    }

    /// Checks an `Authorization` value for `method` against `realm` and the user's password.
    pub fn verify(
        &self,
        authorization: &str,
        method: &str,
        realm: &str,
        password_of: impl Fn(&str) -> Option<String>,
        now: Instant,
    ) -> Verdict {
        let ha1_of = |user: &str| password_of(user).map(|p| ha1(user, realm, &p));
        self.verify_ha1(authorization, method, realm, ha1_of, now)
    }

    /// Same as [`NonceIssuer::verify`] with the user's stored HA1 instead of the password.
    pub fn verify_ha1(
        &self,
        authorization: &str,
        method: &str,
        realm: &str,
        ha1_of: impl Fn(&str) -> Option<String>,
        now: Instant,
    ) -> Verdict {
        let Some(credentials) = Credentials::parse(authorization) else {
            return Verdict::Malformed;
        };
        if credentials.realm != realm {
            return Verdict::Wrong;
        }
        let Some(issued) = self.issue_time(&credentials.nonce) else {
            return Verdict::Wrong;
        };
        let Some(ha1) = ha1_of(&credentials.username) else {
            return Verdict::Wrong;
        };
        if !credentials.matches_ha1(&ha1, method) {
            return Verdict::Wrong;
        }
        let age = now.saturating_duration_since(self.epoch).as_secs();
        if age.saturating_sub(issued) > self.lifetime.as_secs() {
            return Verdict::Stale;
        }
        Verdict::Ok {
            username: credentials.username,
        }
    }

    /// The issue time (seconds since epoch) of a nonce this issuer made, `None` otherwise.
    fn issue_time(&self, nonce: &str) -> Option<u64> {
        if nonce.len() != 64 || !nonce.is_ascii() {
            return None;
        }
        let time = u64::from_str_radix(&nonce[..16], 16).ok()?;
        let random = u64::from_str_radix(&nonce[16..32], 16).ok()?;
        constant_time_eq(&nonce[32..], &self.mac(time, random)).then_some(time)
    }

    fn mac(&self, time: u64, random: u64) -> String {
        md5_hex(&format!("{}:{time:016x}:{random:016x}", self.secret))
    }
}

/// The fields of a Digest `Authorization` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The claimed user.
    pub username: String,
    /// The realm answered.
    pub realm: String,
    /// The nonce answered.
    pub nonce: String,
    /// The digest-uri.
    pub uri: String,
    /// The client's response hash.
    pub response: String,
    /// `Some((nc, cnonce))` for qop=auth, `None` for the RFC 2069 form.
    pub qop_auth: Option<(String, String)>,
}

impl Credentials {
    /// Reads a Digest answer; `None` if fields are missing or the algorithm/qop is unsupported.
    pub fn parse(value: &str) -> Option<Credentials> {
        let (scheme, params) = value.trim().split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let mut fields: HashMap<String, String> = HashMap::new();
        for (name, value) in params_of(params) {
            fields.insert(name.to_ascii_lowercase(), value);
        }
        if let Some(algorithm) = fields.get("algorithm") {
            if !algorithm.eq_ignore_ascii_case("md5") {
                return None;
            }
        }
        let qop_auth = match fields.get("qop").map(String::as_str) {
            None => None,
            Some("auth") => Some((fields.remove("nc")?, fields.remove("cnonce")?)),
            Some(_) => return None,
        };
        Some(Credentials {
            username: fields.remove("username")?,
            realm: fields.remove("realm")?,
            nonce: fields.remove("nonce")?,
            uri: fields.remove("uri")?,
            response: fields.remove("response")?.to_ascii_lowercase(),
            qop_auth,
        })
    }

    /// Whether the response is the one `password` gives for `method`.
    pub fn matches(&self, password: &str, method: &str) -> bool {
        self.matches_ha1(&ha1(&self.username, &self.realm, password), method)
    }

    /// Whether the response is the one the stored `ha1` (lower-case hex) gives for `method`.
    pub fn matches_ha1(&self, ha1: &str, method: &str) -> bool {
        let ha2 = md5_hex(&format!("{method}:{}", self.uri));
        let expected = match &self.qop_auth {
            Some((nc, cnonce)) => {
                md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce))
            }
            None => md5_hex(&format!("{ha1}:{}:{ha2}", self.nonce)),
        };
        constant_time_eq(&expected, &self.response)
    }
}

/// HA1 = md5(username:realm:password) in lower-case hex, as stored instead of a password.
pub fn ha1(username: &str, realm: &str, password: &str) -> String {
    md5_hex(&format!("{username}:{realm}:{password}"))
}

/// Equality that looks at every byte of equally long strings.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Refuses a (username, source IP) for a while after too many wrong answers.
#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: usize,
    window: Duration,
    lock: Duration,
    entries: HashMap<(String, IpAddr), Failures>,
}

#[derive(Debug, Default)]
struct Failures {
    recent: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        FailureLimiter::new(5, Duration::from_secs(60), Duration::from_secs(60))
    }
}

impl FailureLimiter {
    /// Locks for `lock` after `max_failures` wrong answers within `window`.
    pub fn new(max_failures: usize, window: Duration, lock: Duration) -> FailureLimiter {
        FailureLimiter {
            max_failures: max_failures.max(1),
            window,
            lock,
            entries: HashMap::new(),
        }
    }

    /// Whether attempts from `source` for `username` are refused (answer 403) at `now`.
    pub fn is_locked(&self, username: &str, source: IpAddr, now: Instant) -> bool {
        self.entries
            .get(&(username.to_string(), source))
            .and_then(|f| f.locked_until)
            .is_some_and(|until| now < until)
    }

    /// Counts a wrong answer; returns whether the pair is now locked.
    pub fn record_failure(&mut self, username: &str, source: IpAddr, now: Instant) -> bool {
        let entry = self
            .entries
            .entry((username.to_string(), source))
            .or_default();
        if entry.locked_until.is_some_and(|until| now < until) {
            return true;
        }
        entry.locked_until = None;
        while entry
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            entry.recent.pop_front();
        }
        entry.recent.push_back(now);
        if entry.recent.len() >= self.max_failures {
            entry.recent.clear();
            entry.locked_until = Some(now + self.lock);
            return true;
        }
        false
    }

    /// Forgets the failures of a pair that just authenticated.
    pub fn record_success(&mut self, username: &str, source: IpAddr) {
        self.entries.remove(&(username.to_string(), source));
    }

    /// Drops entries with no live lock and no failure inside the window.
    pub fn purge(&mut self, now: Instant) {
        let window = self.window;
        self.entries.retain(|_, f| {
            f.locked_until.is_some_and(|until| now < until)
                || f.recent
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < window)
        });
    }

    /// Number of tracked pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no pair is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests;
