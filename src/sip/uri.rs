//! SIP URIs (RFC 3261 §19.1): `sip:user@host:port;params?headers`.

use std::fmt;

/// Why a URI could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// The scheme is missing or not one the engine serves.
    #[error("unsupported URI scheme")]
    Scheme,
    /// The host part is empty or holds characters a host cannot.
    #[error("invalid host")]
    Host,
    /// The port is not a number in 1..=65535.
    #[error("invalid port")]
    Port,
}

/// A `sip:`, `sips:` or `tel:` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    /// `sip`, `sips` or `tel`.
    pub scheme: String,
    /// The user part, without its password (kept escaped, as written).
    pub user: Option<String>,
    /// The host (an IPv6 reference keeps its brackets); for `tel:` the number.
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
    /// URI parameters in order (`;transport=tcp`, `;lr`).
    pub params: Vec<(String, Option<String>)>,
    /// The `?headers` part, as written.
    pub headers: Option<String>,
}

impl Uri {
    /// Reads a URI; `sip`, `sips` and `tel` schemes only (others get 416 from the caller).
    pub fn parse(text: &str) -> Result<Uri, UriError> {
        let text = text.trim();
        let (scheme, rest) = text.split_once(':').ok_or(UriError::Scheme)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "tel" {
            let (number, params) = split_params(rest);
            if number.is_empty() {
                return Err(UriError::Host);
            }
            return Ok(Uri {
                scheme,
                user: None,
                host: number.to_string(),
                port: None,
                params,
                headers: None,
            });
        }
        if scheme != "sip" && scheme != "sips" {
            return Err(UriError::Scheme);
        }
        // The user part may contain ';' (RFC 4475 semicolon-separated user) and '?' (RFC 4475
        // intmeth: `user-unreserved` includes both), so split on the last '@' before looking at
        // params or headers: '@' cannot appear unescaped in the params or headers.
        let (user, hostport) = match rest.rfind('@') {
            Some(at) => {
                let userinfo = &rest[..at];
                let user = userinfo.split(':').next().unwrap_or(userinfo);
                (Some(user.to_string()), &rest[at + 1..])
            }
            None => (None, rest),
        };
        let (hostport, headers) = match hostport.split_once('?') {
            Some((r, h)) => (r, Some(h.to_string())),
            None => (hostport, None),
        };
        let (hostport, params) = split_params(hostport);
        let (host, port) = split_host_port(hostport)?;
        Ok(Uri {
            scheme,
            user,
            host,
            port,
            params,
            headers,
        })
    }

    /// A plain `sip:user@host:port` URI.
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> Uri {
        Uri {
            scheme: "sip".to_string(),
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
            params: Vec::new(),
            headers: None,
        }
    }

    /// The value of a URI parameter (`None` if absent, `Some(None)` for a flag like `lr`).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
}

/// Splits `a;b=c;d` into `a` and its parameters.
pub(crate) fn split_params(text: &str) -> (&str, Vec<(String, Option<String>)>) {
    let mut parts = text.split(';');
    let head = parts.next().unwrap_or("").trim();
    let params = parts
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n.trim().to_string(), Some(v.trim().to_string())),
            None => (p.trim().to_string(), None),
        })
        .collect();
    (head, params)
}

/// Splits `host:port`, `[v6]:port` or `host`.
pub(crate) fn split_host_port(text: &str) -> Result<(String, Option<u16>), UriError> {
    let text = text.trim();
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let close = v6.find(']').ok_or(UriError::Host)?;
        let host = &text[..close + 2];
        let after = &v6[close + 1..];
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(UriError::Host),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.[]:_".contains(c));
    if !valid_host {
        return Err(UriError::Host);
    }
    let port = match port {
        Some(p) => match p.trim().parse::<u16>() {
            Ok(0) | Err(_) => return Err(UriError::Port),
            Ok(p) => Some(p),
        },
        None => None,
    };
    Ok((host.to_string(), port))
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write_params(f, &self.params)?;
        if let Some(headers) = &self.headers {
            write!(f, "?{headers}")?;
        }
        Ok(())
    }
}

/// Prints `;name=value` parameters.
pub(crate) fn write_params(
    f: &mut fmt::Formatter<'_>,
    params: &[(String, Option<String>)],
) -> fmt::Result {
    for (name, value) in params {
        match value {
            Some(v) => write!(f, ";{name}={v}")?,
            None => write!(f, ";{name}")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_host_port_and_params() {
        let uri = Uri::parse("sip:12345@127.0.0.1:5060;transport=tcp").unwrap();
        assert_eq!(uri.user.as_deref(), Some("12345"));
        assert_eq!(uri.host, "127.0.0.1");
        assert_eq!(uri.port, Some(5060));
        assert_eq!(uri.param("transport"), Some(Some("tcp")));
        assert_eq!(uri.to_string(), "sip:12345@127.0.0.1:5060;transport=tcp");
    }

    #[test]
    fn reads_ipv6_and_password() {
        let uri = Uri::parse("sip:alice:secret@[2001:db8::10]:5070").unwrap();
        assert_eq!(uri.user.as_deref(), Some("alice"));
        assert_eq!(uri.host, "[2001:db8::10]");
        assert_eq!(uri.port, Some(5070));
    }

    #[test]
    fn reads_question_mark_in_user_part() {
        // RFC 4475 intmeth: '?' and ';' are user-unreserved.
        let uri = Uri::parse("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com").unwrap();
        assert_eq!(
            uri.user.as_deref(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(uri.host, "example.com");
        assert_eq!(uri.headers, None);
        let escaped = Uri::parse("sip:user@example.com?Route=%3Csip:example.com%3E").unwrap();
        assert_eq!(escaped.host, "example.com");
        assert_eq!(
            escaped.headers.as_deref(),
            Some("Route=%3Csip:example.com%3E")
        );
    }

    #[test]
    fn rejects_bad_scheme_host_and_port() {
        assert_eq!(Uri::parse("http://x"), Err(UriError::Scheme));
        assert_eq!(Uri::parse("sip:@"), Err(UriError::Host));
        assert_eq!(Uri::parse("sip:a@b:99999"), Err(UriError::Port));
        assert_eq!(Uri::parse("sip:a@b c"), Err(UriError::Host));
    }
}
