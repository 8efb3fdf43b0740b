//! Digest authentication as a client (RFC 2617 / RFC 7616 with MD5): answering a trunk's
//! 401 or 407 challenge.

use md5::{Digest, Md5};

/// A `WWW-Authenticate` or `Proxy-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// Returned unchanged.
    pub opaque: Option<String>,
    /// Whether the server offered `qop=auth`.
    pub qop_auth: bool,
}

impl Challenge {
    /// Reads a `Digest` challenge; `None` for other schemes or algorithms than MD5.
    pub fn parse(value: &str) -> Option<Challenge> {
        let (scheme, params) = value.trim().split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let mut realm = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut qop_auth = false;
        for (name, value) in params_of(params) {
            match name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(value),
                "nonce" => nonce = Some(value),
                "opaque" => opaque = Some(value),
                "qop" => qop_auth = value.split(',').any(|q| q.trim() == "auth"),
                "algorithm" if !value.eq_ignore_ascii_case("md5") => return None,
                _ => {}
            }
        }
        Some(Challenge {
            realm: realm?,
            nonce: nonce?,
            opaque,
            qop_auth,
        })
    }

    /// The `Authorization` value for `method` on `uri`; `cnonce` is used when qop=auth.
    pub fn answer(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> String {
        let ha1 = md5_hex(&format!("{username}:{}:{password}", self.realm));
        let ha2 = md5_hex(&format!("{method}:{uri}"));
        let nc = "00000001";
        let response = match self.qop_auth {
            true => md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce)),
            false => md5_hex(&format!("{ha1}:{}:{ha2}", self.nonce)),
        };
        let mut value = format!(
            "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm=MD5",
            self.realm, self.nonce
        );
        if self.qop_auth {
            value.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        }
        if let Some(opaque) = &self.opaque {
            value.push_str(&format!(", opaque=\"{opaque}\""));
        }
        value
    }
}

/// `name=value` and `name="quoted, value"` pairs separated by commas.
pub(super) fn params_of(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let after = after.trim_start();
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            },
            None => match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            },
        };
        out.push((name.trim().to_string(), value.trim().to_string()));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

pub(super) fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5.
    const RFC_CHALLENGE: &str = "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
        nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

    #[test]
    fn the_rfc_2617_example_gives_its_response() {
        let challenge = Challenge::parse(RFC_CHALLENGE).expect("a digest challenge");
        assert!(challenge.qop_auth);
        let answer = challenge.answer(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
        );
        assert!(
            answer.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{answer}"
        );
        assert!(answer.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        assert!(answer.contains("qop=auth, nc=00000001, cnonce=\"0a4f113b\""));
    }

    #[test]
    fn without_qop_the_response_is_the_rfc_2069_one() {
        let challenge = Challenge::parse("Digest realm=\"r\", nonce=\"n\"").expect("parses");
        let answer = challenge.answer("u", "p", "INVITE", "sip:12366@10.0.0.1", "c");
        let ha1 = md5_hex("u:r:p");
        let ha2 = md5_hex("INVITE:sip:12366@10.0.0.1");
        let expected = md5_hex(&format!("{ha1}:n:{ha2}"));
        assert!(answer.contains(&format!("response=\"{expected}\"")));
        assert!(!answer.contains("qop"));
    }

    #[test]
    fn other_schemes_and_algorithms_are_not_answered() {
        assert_eq!(Challenge::parse("Basic realm=\"r\""), None);
        assert_eq!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256"),
            None
        );
        assert_eq!(Challenge::parse("Digest realm=\"r\""), None, "no nonce");
    }
}
