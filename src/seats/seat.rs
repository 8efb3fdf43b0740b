//! One `[seats.ID]` table of the seats file: each key checked, every problem recorded.

use std::collections::BTreeMap;

use super::{SeatDecl, Secret};
use crate::dialplan::load::spans::{
    describe, describe_value, fields, is_name, Diags, Field, Pos, Src,
};

/// The keys of a `[seats.ID]` table.
const SEAT_KEYS: &[&str] = &[
    "name",
    "username",
    "password",
    "ha1",
    "token",
    "skills",
    "expert",
    "department",
    "languages",
];

/// Shortest accepted desktop token, in characters.
const MIN_TOKEN_CHARS: usize = 16;

/// Reads one `[seats.ID]`; `None` (with errors recorded) when anything in it is wrong.
pub(super) fn seat(src: &Src, d: &mut Diags, f: &Field<'_>) -> Option<SeatDecl> {
    let id = f.key;
    let id_ok = is_name(id);
    if !id_ok {
        d.error(
            &f.key_pos,
            format!("seat id `{id}` is not valid; expected lower-case letters, digits and `-`"),
        );
    }
    let Some(table) = f.item.as_table_like() else {
        d.error(
            &f.pos,
            format!("seat `{id}` must be a table, found {}", describe(f.item)),
        );
        return None;
    };
    let mut s = SeatReader {
        src,
        d,
        id,
        here: f.key_pos.clone(),
        fields: fields(src, table),
        ok: id_ok,
    };
    s.unknown_keys();
    let name = s.text("name", true, "the person's name, e.g. \"王芳\"");
    let username = s.username();
    let secret = s.secret();
    let token = s.token();
    let skills = s.skills();
    let expert = s.flag("expert");
    let department = s.text(
        "department",
        false,
        "the department's name, e.g. \"社保局\"",
    );
    let languages = s.languages();
    if !s.ok {
        return None;
    }
    Some(SeatDecl {
        id: id.to_string(),
        name: name?,
        username: username?,
        secret: secret?,
        token: token?,
        skills,
        expert,
        department: department.unwrap_or_default(),
        languages,
    })
}

/// The keys of one seat being read; `ok` turns false at the first problem.
struct SeatReader<'r, 'a> {
    /// The seats file.
    src: &'r Src,
    /// Where problems go.
    d: &'r mut Diags,
    /// The seat id.
    id: &'a str,
    /// Where the seat is named, for missing keys.
    here: Pos,
    /// Its keys.
    fields: Vec<Field<'a>>,
    /// No problem found so far.
    ok: bool,
}

impl<'a> SeatReader<'_, 'a> {
    /// The field called `key`.
    fn get(&self, key: &str) -> Option<&Field<'a>> {
        self.fields.iter().find(|f| f.key == key)
    }

    fn error(&mut self, at: &Pos, message: impl Into<String>) {
        self.ok = false;
        self.d.error(at, message);
    }

    /// ``"`key` of seat `ID` must be EXPECTED, found TYPE"``.
    fn wrong(&mut self, key: &str, expected: &str) {
        let Some(f) = self.get(key) else { return };
        let (at, found) = (f.pos.clone(), describe(f.item));
        let message = format!(
            "`{key}` of seat `{}` must be {expected}, found {found}",
            self.id
        );
        self.error(&at, message);
    }

    /// ``"seat `ID` has no `key`; expected …"`` at the seat.
    fn missing(&mut self, key: &str, expected: &str) {
        let message = format!("seat `{}` has no `{key}`; expected {expected}", self.id);
        let here = self.here.clone();
        self.error(&here, message);
    }

    fn unknown_keys(&mut self) {
        let unknown: Vec<(Pos, String)> = self
            .fields
            .iter()
            .filter(|f| !SEAT_KEYS.contains(&f.key))
            .map(|f| (f.key_pos.clone(), f.key.to_string()))
            .collect();
        for (at, key) in unknown {
            let message = format!(
                "unknown key `{key}` in seat `{}`; expected one of: {}",
                self.id,
                SEAT_KEYS.join(", ")
            );
            self.error(&at, message);
        }
    }

    /// A string value without control characters; `required` ones must also be non-empty.
    fn text(&mut self, key: &str, required: bool, expected: &str) -> Option<String> {
        let Some(f) = self.get(key) else {
            if required {
                self.missing(key, expected);
            }
            return None;
        };
        let at = f.pos.clone();
        match f.item.as_str() {
            Some(s) if s.chars().any(char::is_control) || (required && s.trim().is_empty()) => {
                let message = format!(
                    "`{key}` of seat `{}` must be {expected} (not empty, no control characters)",
                    self.id
                );
                self.error(&at, message);
                None
            }
            Some(s) => Some(s.to_string()),
            None => {
                self.wrong(key, expected);
                None
            }
        }
    }

    /// `username`: what the phone registers as.
    fn username(&mut self) -> Option<String> {
        let expected = "the SIP username of the seat's phone, e.g. \"1001\"";
        let username = self.text("username", true, expected)?;
        // Kept to characters that need no escaping in a SIP URI's user part.
        let plain = username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'));
        if !plain {
            let at = self
                .get("username")
                .map_or(self.here.clone(), |f| f.pos.clone());
            let message = format!(
                "`username` of seat `{}` must be letters, digits, `.`, `_`, `-` and `+`, \
                 found \"{username}\"",
                self.id
            );
            self.error(&at, message);
            return None;
        }
        Some(username)
    }

    /// `password` or `ha1`, exactly one.
    fn secret(&mut self) -> Option<Secret> {
        let password = self.text("password", false, "the phone's digest password");
        let ha1 = self.text(
            "ha1",
            false,
            "32 hex digits, md5 of username:realm:password",
        );
        match (
            password,
            ha1,
            self.get("password").is_some(),
            self.get("ha1").is_some(),
        ) {
            (_, _, true, true) => {
                let at = self
                    .get("ha1")
                    .map_or(self.here.clone(), |f| f.key_pos.clone());
                let message = format!(
                    "seat `{}` has both `password` and `ha1`; keep one of them",
                    self.id
                );
                self.error(&at, message);
                None
            }
            (Some(password), None, _, _) if password.is_empty() => {
                let at = self
                    .get("password")
                    .map_or(self.here.clone(), |f| f.pos.clone());
                let message = format!("`password` of seat `{}` must not be empty", self.id);
                self.error(&at, message);
                None
            }
            (Some(password), None, _, _) => Some(Secret::Password(password)),
            (None, Some(ha1), _, _) => {
                if ha1.len() == 32 && ha1.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Some(Secret::Ha1(ha1.to_ascii_lowercase()));
                }
                let at = self.get("ha1").map_or(self.here.clone(), |f| f.pos.clone());
                let message = format!(
                    "`ha1` of seat `{}` must be 32 hex digits (md5 of username:realm:password)",
                    self.id
                );
                self.error(&at, message);
                None
            }
            (None, None, false, false) => {
                let expected = "the phone's digest password, or `ha1` (md5 of \
                                username:realm:password in hex)";
                self.missing("password", expected);
                None
            }
            // A password or ha1 of the wrong type: already reported.
            _ => None,
        }
    }

    /// `token`: the desktop's bearer token.
    fn token(&mut self) -> Option<String> {
        let expected = format!(
            "the bearer token of the seat's desktop, at least {MIN_TOKEN_CHARS} characters"
        );
        let token = self.text("token", true, &expected)?;
        let visible = token.chars().all(|c| c.is_ascii_graphic());
        if token.chars().count() < MIN_TOKEN_CHARS || !visible {
            let at = self
                .get("token")
                .map_or(self.here.clone(), |f| f.pos.clone());
            let message = format!(
                "`token` of seat `{}` must be at least {MIN_TOKEN_CHARS} visible ASCII \
                 characters without spaces (found {} characters)",
                self.id,
                token.chars().count()
            );
            self.error(&at, message);
            return None;
        }
        Some(token)
    }

    /// `skills = { NAME = LEVEL }`.
    fn skills(&mut self) -> BTreeMap<String, u8> {
        let mut out = BTreeMap::new();
        let expected = "a table of skills and levels 1..=5, e.g. { social-security = 5 }";
        let Some(f) = self.get("skills") else {
            let message = format!(
                "seat `{}` has no `skills`; it will be offered no queue's calls",
                self.id
            );
            self.d.warning(&self.here, message);
            return out;
        };
        let Some(table) = f.item.as_table_like() else {
            self.wrong("skills", expected);
            return out;
        };
        for skill in fields(self.src, table) {
            if !is_name(skill.key) {
                let message = format!(
                    "skill name `{}` is not valid; expected lower-case letters, digits and `-`",
                    skill.key
                );
                self.error(&skill.key_pos, message);
            }
            match skill.item.as_integer() {
                Some(level) if (1..=5).contains(&level) => {
                    out.insert(skill.key.to_string(), level as u8);
                }
                Some(level) => {
                    let message = format!(
                        "level of skill `{}` must be from 1 (basic) to 5 (expert), found {level}",
                        skill.key
                    );
                    self.error(&skill.pos, message);
                }
                None => {
                    let message = format!(
                        "level of skill `{}` must be a whole number from 1 to 5, found {}",
                        skill.key,
                        describe(skill.item)
                    );
                    self.error(&skill.pos, message);
                }
            }
        }
        if out.is_empty() && self.ok {
            let message = format!(
                "seat `{}` has no skills; it will be offered no queue's calls",
                self.id
            );
            self.d.warning(&self.here, message);
        }
        out
    }

    /// A `true`/`false` key, false when absent.
    fn flag(&mut self, key: &str) -> bool {
        let Some(f) = self.get(key) else {
            return false;
        };
        match f.item.as_bool() {
            Some(b) => b,
            None => {
                self.wrong(key, "true or false");
                false
            }
        }
    }

    /// `languages = ["mandarin", ...]`.
    fn languages(&mut self) -> Vec<String> {
        let expected = "a list of languages and dialects, e.g. [\"mandarin\", \"cantonese\"]";
        let Some(f) = self.get("languages") else {
            return Vec::new();
        };
        let Some(array) = f.item.as_array() else {
            self.wrong("languages", expected);
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for (i, v) in array.iter().enumerate() {
            let at = self.src.span_pos(v.span());
            match v.as_str() {
                Some(s) if !is_name(s) => self.error(
                    &at,
                    format!(
                        "language `{s}` is not valid; expected lower-case letters, digits and \
                         `-`, e.g. \"mandarin\""
                    ),
                ),
                Some(s) if out.iter().any(|l| l == s) => {
                    self.error(&at, format!("language `{s}` is listed twice"))
                }
                Some(s) => out.push(s.to_string()),
                None => self.error(
                    &at,
                    format!(
                        "item {} of `languages` must be a string, found {}",
                        i + 1,
                        describe_value(v)
                    ),
                ),
            }
        }
        out
    }
}
