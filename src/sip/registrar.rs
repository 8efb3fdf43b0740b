//! The registrar (RFC 3261 §10.3) as a sans-IO table: seat contacts per address-of-record,
//! with expiry in virtual time. Authentication happens before `handle` is called.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::fields::{Fields, NameAddr};
use super::message::{HeaderName, Request};
use super::uri::Uri;
use crate::deadlines::Deadlines;

/// What to answer a REGISTER with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// 200: the AOR's current contacts with their remaining seconds, newest first.
    Ok {
        /// The Contact list of the 200.
        contacts: Vec<(Uri, u32)>,
    },
    /// 423 Interval Too Brief, with this Min-Expires.
    IntervalTooBrief(u32),
    /// 403: the authenticated user may not change this AOR's bindings.
    Forbidden,
    /// 500: same Call-ID with a CSeq not above the binding's (out of order or replayed).
    OutOfOrder,
    /// 400 with this reason.
    BadRequest(String),
}

/// Expiry limits in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiryLimits {
    /// Used when neither the contact nor the request gives one.
    pub default: u32,
    /// Shorter non-zero requests get 423.
    pub min: u32,
    /// Longer requests are cut to this.
    pub max: u32,
}

impl Default for ExpiryLimits {
    fn default() -> Self {
        ExpiryLimits {
            default: 3600,
            min: 60,
            max: 7200,
        }
    }
}

#[derive(Clone, Debug)]
struct Binding {
    uri: Uri,
    expires_at: Instant,
    call_id: String,
    cseq: u32,
    /// Order of the last refresh, for newest-first listing.
    order: u64,
}

/// Contact bindings per address-of-record (the seat's username).
#[derive(Debug, Default)]
pub struct Registrar {
    limits: ExpiryLimits,
    bindings: HashMap<String, Vec<Binding>>,
    deadlines: Deadlines<String>,
    next_order: u64,
}

impl Registrar {
    /// An empty registrar with these limits.
    pub fn new(limits: ExpiryLimits) -> Registrar {
        Registrar {
            limits,
            ..Registrar::default()
        }
    }

    /// Applies a REGISTER from `authenticated_user` at `now`, atomically.
    pub fn handle(
        &mut self,
        now: Instant,
        request: &Request,
        authenticated_user: &str,
    ) -> RegisterOutcome {
        let bad = |e: &dyn std::fmt::Display| RegisterOutcome::BadRequest(e.to_string());
        let to = match request.to_header() {
            Ok(to) => to,
            Err(e) => return bad(&e),
        };
        let Some(aor) = to.uri.user.clone() else {
            return bad(&"To has no user part");
        };
        if aor != authenticated_user {
            return RegisterOutcome::Forbidden;
        }
        let call_id = match request.call_id() {
            Ok(call_id) => call_id.to_string(),
            Err(e) => return bad(&e),
        };
        let cseq = match request.cseq() {
            Ok(cseq) => cseq.seq,
            Err(e) => return bad(&e),
        };
        let header_expires = request
            .headers
            .get(&HeaderName::Expires)
            .and_then(|v| v.trim().parse::<u64>().ok());
        let values: Vec<&str> = request.headers.get_all(&HeaderName::Contact).collect();
        let mut current = self.bindings.get(&aor).cloned().unwrap_or_default();
        current.retain(|b| b.expires_at > now);
        if values.iter().any(|v| v.trim() == "*") {
            if values.len() != 1 || header_expires != Some(0) {
                return bad(&"Contact: * needs Expires: 0 and no other contact");
            }
            if current
                .iter()
                .any(|b| b.call_id == call_id && cseq <= b.cseq)
            {
                return RegisterOutcome::OutOfOrder;
            }
            current.clear();
        }
        let mut changes = Vec::new();
        for value in values.iter().filter(|v| v.trim() != "*") {
            let contact = match NameAddr::parse(value, "Contact") {
                Ok(contact) => contact,
                Err(e) => return bad(&e),
            };
            let requested = contact
                .param("expires")
                .flatten()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .or(header_expires)
                .unwrap_or(u64::from(self.limits.default));
            if requested != 0 && requested < u64::from(self.limits.min) {
                return RegisterOutcome::IntervalTooBrief(self.limits.min);
            }
            let expires = requested.min(u64::from(self.limits.max)) as u32;
            changes.push((contact.uri, expires));
        }
        for (uri, expires) in changes {
            let existing = current.iter().position(|b| same_uri(&b.uri, &uri));
            if let Some(at) = existing {
                let binding = &current[at];
                if binding.call_id == call_id && cseq <= binding.cseq {
                    return RegisterOutcome::OutOfOrder;
                }
                current.remove(at);
            }
            if expires > 0 {
                self.next_order += 1;
                current.push(Binding {
                    uri,
                    expires_at: now + Duration::from_secs(u64::from(expires)),
                    call_id: call_id.clone(),
                    cseq,
                    order: self.next_order,
                });
            }
        }
        current.sort_by_key(|b| std::cmp::Reverse(b.order));
        let contacts = current
            .iter()
            .map(|b| (b.uri.clone(), remaining(b.expires_at, now)))
            .collect();
        self.store(aor, current);
        RegisterOutcome::Ok { contacts }
    }

    /// The unexpired contacts of `user`, newest first.
    pub fn contacts(&self, user: &str, now: Instant) -> Vec<Uri> {
        self.bindings
            .get(user)
            .map(|list| {
                list.iter()
                    .filter(|b| b.expires_at > now)
                    .map(|b| b.uri.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Drops expired bindings; returns the users left with no contact by this expiry.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut emptied = Vec::new();
        while let Some(user) = self.deadlines.pop_due(now) {
            let mut list = self.bindings.remove(&user).unwrap_or_default();
            list.retain(|b| b.expires_at > now);
            if list.is_empty() {
                emptied.push(user);
            } else {
                self.store(user, list);
            }
        }
        emptied.sort();
        emptied
    }

    /// When the next binding expires, for the shell's timer.
    pub fn next_expiry(&mut self) -> Option<Instant> {
        self.deadlines.next_deadline()
    }

    /// Number of users with at least one binding (expired ones not yet dropped included).
    pub fn user_count(&self) -> usize {
        self.bindings.len()
    }

    fn store(&mut self, user: String, list: Vec<Binding>) {
        match list.iter().map(|b| b.expires_at).min() {
            Some(first) => {
                self.deadlines.set(user.clone(), first);
                self.bindings.insert(user, list);
            }
            None => {
                self.deadlines.clear(&user);
                self.bindings.remove(&user);
            }
        }
    }
}

fn remaining(expires_at: Instant, now: Instant) -> u32 {
    let secs = expires_at.saturating_duration_since(now).as_secs();
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// RFC 3261 §19.1.4 in the parts that matter for contacts: scheme and host ignore case,
/// parameters compare as an unordered set with case-insensitive names.
fn same_uri(a: &Uri, b: &Uri) -> bool {
    let params = |u: &Uri| {
        let mut p: Vec<(String, Option<String>)> = u
            .params
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        p.sort();
        p
    };
    a.scheme.eq_ignore_ascii_case(&b.scheme)
        && a.user == b.user
        && a.host.eq_ignore_ascii_case(&b.host)
        && a.port == b.port
        && params(a) == params(b)
}

#[cfg(test)]
mod tests;
