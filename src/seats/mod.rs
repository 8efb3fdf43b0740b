//! Agent and expert seats (座席) as declared in the seats file (`docs/seats.md`), and the
//! registration of their phones with digest authentication.
//!
//! [`load`] reads the file completely and reports every problem as a
//! [`crate::dialplan::Diagnostic`]; [`Registrations`] answers REGISTER requests in virtual time.

mod load;
mod registration;
mod seat;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_registration;

use std::collections::BTreeMap;
use std::fmt;

use crate::sip::digest_server::constant_time_eq;

pub use load::{load, parse};
pub use registration::{RegisterReply, Registrations};

/// Every seat of the seats file, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeatBook {
    /// The seats; ids, usernames and tokens are unique.
    pub seats: Vec<SeatDecl>,
}

impl SeatBook {
    /// The seat with this id.
    pub fn by_id(&self, id: &str) -> Option<&SeatDecl> {
        self.seats.iter().find(|s| s.id == id)
    }

    /// The seat whose phone registers as this SIP username.
    pub fn by_username(&self, username: &str) -> Option<&SeatDecl> {
        self.seats.iter().find(|s| s.username == username)
    }

    /// The seat whose desktop carries this bearer token.
    pub fn by_token(&self, token: &str) -> Option<&SeatDecl> {
        // Compare with every token in full: how long a guess took must not tell how close it was.
        self.seats
            .iter()
            .fold(None, |found, s| match constant_time_eq(&s.token, token) {
                true => Some(s),
                false => found,
            })
    }

    /// Number of seats.
    pub fn len(&self) -> usize {
        self.seats.len()
    }

    /// Whether no seat is declared.
    pub fn is_empty(&self) -> bool {
        self.seats.is_empty()
    }
}

/// One seat: a person's place at the hotline, their phone's credentials and what they know.
#[derive(Clone, PartialEq, Eq)]
pub struct SeatDecl {
    /// The key in `[seats.ID]`: lower-case letters, digits and `-`.
    pub id: String,
    /// The person's name, shown to supervisors and in records.
    pub name: String,
    /// The SIP username: the user part of the address-of-record the phone registers.
    pub username: String,
    /// The digest secret of the phone.
    pub secret: Secret,
    /// The bearer token of this seat's desktop (at least 16 characters).
    pub token: String,
    /// Skill names and levels from 1 (basic) to 5 (expert).
    pub skills: BTreeMap<String, u8>,
    /// An expert seat (专家座席).
    pub expert: bool,
    /// The department the seat belongs to (empty when not given).
    pub department: String,
    /// Languages and dialects the person speaks, e.g. `mandarin`, `cantonese`.
    pub languages: Vec<String>,
}

impl SeatDecl {
    /// The seat's level in `skill`, if it has it.
    pub fn skill(&self, skill: &str) -> Option<u8> {
        self.skills.get(skill).copied()
    }
}

// Written by hand so that logging a seat never prints its secret or token.
impl fmt::Debug for SeatDecl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeatDecl")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("username", &self.username)
            .field("secret", &self.secret)
            .field("token", &"<redacted>")
            .field("skills", &self.skills)
            .field("expert", &self.expert)
            .field("department", &self.department)
            .field("languages", &self.languages)
            .finish()
    }
}

/// A phone's digest secret as written in the seats file.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// `password = "..."`.
    Password(String),
    /// `ha1 = "..."`: md5(username:realm:password) in lower-case hex.
    Ha1(String),
}

impl Secret {
    /// The HA1 the digest response is checked with, for `username` in `realm`.
    pub fn ha1(&self, username: &str, realm: &str) -> String {
        match self {
            Secret::Password(password) => crate::sip::digest_server::ha1(username, realm, password),
            Secret::Ha1(ha1) => ha1.clone(),
        }
    }
}

// Written by hand so that logging a seat never prints its secret.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Password(<redacted>)"),
            Secret::Ha1(_) => f.write_str("Ha1(<redacted>)"),
        }
    }
}
