//! The set-wide sections: `[clock]`, `[numbering]`, `[defaults]` and `[unknown]`.

use super::spans::{Field, Fields, Pos};
use super::Loader;
use crate::dialplan::model::{MatchOn, NodeId, UnknownTreatment};

/// The keys of `[clock]`.
const CLOCK_KEYS: &[&str] = &["utc_offset"];
/// The keys of `[numbering]`.
const NUMBERING_KEYS: &[&str] = &["match_on", "strip"];
/// The keys of `[unknown]`.
const UNKNOWN_KEYS: &[&str] = &["action", "prompts", "status", "route_to"];
/// The keys of `[defaults]`.
const DEFAULTS_KEYS: &[&str] = &[
    "operator",
    "zero_to_operator",
    "timeout_s",
    "inter_digit_s",
    "retries",
    "invalid",
    "no_input",
    "queue_fallback",
];

/// Built-in `[clock] utc_offset` (China Standard Time), in seconds.
const DEFAULT_UTC_OFFSET_S: i32 = 8 * 3600;

/// What `timeout_s` and `inter_digit_s` must be.
pub(super) const SECONDS: &str = "a number of seconds (1..=600)";
/// What `retries` must be.
pub(super) const RETRIES: &str = "a number of attempts (1..=9)";

/// `[defaults]` as the nodes use it.
#[derive(Clone, Debug)]
pub(super) struct Defaults {
    /// The node that reaches a person, with where it is set.
    pub operator: Option<(NodeId, Pos)>,
    /// Key 0 in every menu goes to `operator`.
    pub zero_to_operator: bool,
    /// Wait for the first key, in seconds.
    pub timeout_s: u64,
    /// Wait between keys, in seconds.
    pub inter_digit_s: u64,
    /// Attempts.
    pub retries: u8,
    /// Played after a wrong key.
    pub invalid: Vec<String>,
    /// Played after a timeout.
    pub no_input: Vec<String>,
    /// Where a queue node without `fallback` goes.
    pub queue_fallback: Option<NodeId>,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            operator: None,
            zero_to_operator: true,
            timeout_s: 5,
            inter_digit_s: 3,
            retries: 3,
            invalid: Vec::new(),
            no_input: Vec::new(),
            queue_fallback: None,
        }
    }
}

/// `[clock]`.
pub(super) fn clock(l: &mut Loader<'_>) {
    l.plan.utc_offset_s = DEFAULT_UTC_OFFSET_S;
    let Some(s) = l.decl.clock.clone() else {
        return;
    };
    let fields = s.fields("[clock]".into());
    fields.unknown_keys(CLOCK_KEYS, &mut l.d);
    let Some(f) = fields.get("utc_offset") else {
        return;
    };
    let expected = "an offset \"+HH:MM\" or \"-HH:MM\", e.g. \"+08:00\"";
    let Some(text) = l.d.str(f, expected) else {
        return;
    };
    match parse_utc_offset(text) {
        Some(seconds) => l.plan.utc_offset_s = seconds,
        None => l.d.error(
            &f.pos,
            format!("`utc_offset` must be {expected}, found \"{text}\""),
        ),
    }
}

/// `"+08:00"` → 28800; hours 0..=23, minutes 0..=59.
fn parse_utc_offset(text: &str) -> Option<i32> {
    let b = text.as_bytes();
    if b.len() != 6 || b[3] != b':' {
        return None;
    }
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours = two_digits(&text[1..3])?;
    let minutes = two_digits(&text[4..6])?;
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 3600 + minutes * 60))
}

/// Exactly two ASCII digits.
pub(super) fn two_digits(s: &str) -> Option<i32> {
    (s.len() == 2 && s.bytes().all(|c| c.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `[numbering]`.
pub(super) fn numbering(l: &mut Loader<'_>) {
    let Some(s) = l.decl.numbering.clone() else {
        return;
    };
    let fields = s.fields("[numbering]".into());
    fields.unknown_keys(NUMBERING_KEYS, &mut l.d);
    if let Some(f) = fields.get("match_on") {
        let expected = "a list of \"request-uri\" and \"to\"";
        if let Some(list) = l.d.strings(s.src, f, expected) {
            if list.is_empty() {
                l.d.error(&f.pos, format!("`match_on` is empty; expected {expected}"));
            }
            let mut parts = Vec::new();
            for (part, pos) in list {
                match part {
                    "request-uri" => parts.push(MatchOn::RequestUri),
                    "to" => parts.push(MatchOn::To),
                    _ => l.d.error(
                        &pos,
                        format!("`match_on` must name \"request-uri\" or \"to\", found \"{part}\""),
                    ),
                }
            }
            l.plan.numbering.match_on = parts;
        }
    }
    if let Some(f) = fields.get("strip") {
        let expected = "a list of prefixes, e.g. [\"+86\", \"0086\"]";
        if let Some(list) = l.d.strings(s.src, f, expected) {
            for (prefix, pos) in list {
                if prefix.is_empty() {
                    l.d.error(&pos, "an empty prefix in `strip`; expected e.g. \"+86\"");
                } else {
                    l.plan.numbering.strip.push(prefix.to_string());
                }
            }
        }
    }
}

/// `[defaults]`.
pub(super) fn defaults(l: &mut Loader<'_>) {
    let Some(s) = l.decl.defaults.clone() else {
        return;
    };
    let fields = s.fields("[defaults]".into());
    fields.unknown_keys(DEFAULTS_KEYS, &mut l.d);
    if let Some(f) = fields.get("operator") {
        l.defaults.operator = l.node_ref(f, "operator").map(|id| (id, f.pos.clone()));
    }
    if let Some(f) = fields.get("queue_fallback") {
        l.defaults.queue_fallback = l.node_ref(f, "queue_fallback");
    }
    if let Some(b) = fields.get("zero_to_operator").and_then(|f| l.d.bool(f)) {
        l.defaults.zero_to_operator = b;
    }
    if let Some(n) = seconds(l, &fields, "timeout_s") {
        l.defaults.timeout_s = n;
    }
    if let Some(n) = seconds(l, &fields, "inter_digit_s") {
        l.defaults.inter_digit_s = n;
    }
    if let Some(n) = retries(l, &fields) {
        l.defaults.retries = n;
    }
    if let Some(f) = fields.get("invalid") {
        l.defaults.invalid = l.prompts(s.src, f);
    }
    if let Some(f) = fields.get("no_input") {
        l.defaults.no_input = l.prompts(s.src, f);
    }
}

/// `timeout_s` or `inter_digit_s`, when set and valid.
pub(super) fn seconds(l: &mut Loader<'_>, fields: &Fields<'_>, key: &str) -> Option<u64> {
    let f = fields.get(key)?;
    l.d.int(f, 1, 600, SECONDS).map(|n| n as u64)
}

/// `retries`, when set and valid.
pub(super) fn retries(l: &mut Loader<'_>, fields: &Fields<'_>) -> Option<u8> {
    let f = fields.get("retries")?;
    l.d.int(f, 1, 9, RETRIES).map(|n| n as u8)
}

/// `[unknown]` (after the numbers: `route_to` names one).
pub(super) fn unknown(l: &mut Loader<'_>) {
    let Some(s) = l.decl.unknown.clone() else {
        return;
    };
    let fields = s.fields("[unknown]".into());
    fields.unknown_keys(UNKNOWN_KEYS, &mut l.d);
    let action = match fields.get("action") {
        None => Some("reject"),
        Some(f) => match l.d.str(f, "\"reject\" or \"route\"") {
            Some(a @ ("reject" | "route")) => Some(a),
            Some(other) => {
                l.d.error(
                    &f.pos,
                    format!("`action` must be \"reject\" or \"route\", found \"{other}\""),
                );
                None
            }
            None => None,
        },
    };
    match action {
        Some("reject") => {
            only_with(l, &fields, "route_to", "route");
            let prompts = match fields.get("prompts") {
                Some(f) => l.prompts(s.src, f),
                None => Vec::new(),
            };
            let status = fields
                .get("status")
                .and_then(|f| l.d.int(f, 400, 699, "a SIP status (400..=699)"))
                .map_or(404, |n| n as u16);
            l.plan.unknown = UnknownTreatment::Reject { prompts, status };
        }
        Some(_) => {
            only_with(l, &fields, "prompts", "reject");
            only_with(l, &fields, "status", "reject");
            match fields.get("route_to") {
                Some(f) => route_to(l, f),
                None => fields.missing(
                    "route_to",
                    "the declared number to treat the call as (action = \"route\")",
                    &mut l.d,
                ),
            }
        }
        None => {}
    }
}

/// Records an error when `key` is set although `action` is not `action`.
fn only_with(l: &mut Loader<'_>, fields: &Fields<'_>, key: &str, action: &str) {
    if let Some(f) = fields.get(key) {
        l.d.error(
            &f.key_pos,
            format!("`{key}` is only allowed with action = \"{action}\""),
        );
    }
}

/// `route_to`: a declared exact number.
fn route_to(l: &mut Loader<'_>, f: &Field<'_>) {
    let Some(number) = l.d.str(f, "a declared number") else {
        return;
    };
    match l.plan.exact.get(number) {
        Some(&index) => l.plan.unknown = UnknownTreatment::Route(index),
        None => l.d.error(
            &f.pos,
            format!(
                "`route_to` names {number}, which is not declared as an exact number \
                 ([[numbers]] number = \"{number}\")"
            ),
        ),
    }
}
