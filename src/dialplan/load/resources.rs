//! `[lists.NAME]` (number files), `[queues.NAME]` (skill groups and how callers wait in them)
//! and `[subcentres.NAME]`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use super::spans::{is_number, Diags, Field, Fields, Pos, Src};
use super::time::schedule_ref;
use super::Loader;
use crate::dialplan::model::{
    DialPattern, NumberList, QueueDecl, QueueId, Strategy, SubCentre, TrunkTransport,
    DEFAULT_SUBCENTRE_RING,
};
use crate::dialplan::spoken::{ANNOUNCEMENT_PROMPTS, TRANSFER_FAILED};

/// The keys of a list.
const LIST_KEYS: &[&str] = &["file"];
/// The keys of a queue.
const QUEUE_KEYS: &[&str] = &[
    "name",
    "skill",
    "min_level",
    "experts",
    "strategy",
    "ring_timeout_s",
    "wrap_up_s",
    "overflow_after_s",
    "overflow_to",
    "overflow_experts",
    "max_wait_s",
    "after_max_wait",
    "music",
    "announce_every_s",
    "record",
];
/// What `strategy` must be.
const STRATEGIES: &str = "\"longest-idle\", \"round-robin\" or \"ring-all\"";
/// The keys of a sub-centre.
const SUBCENTRE_KEYS: &[&str] = &[
    "name",
    "trunk",
    "transport",
    "number",
    "username",
    "password",
    "always_open",
    "schedule",
    "dial_out",
    "ring_timeout_s",
    "unanswered",
];
/// What a `dial_out` pattern must be.
const DIAL_PATTERN: &str =
    "digits, `?` for exactly one digit and a final `*` for any further digits, e.g. \"0571*\"";

/// Every `[lists.NAME]`, with its file read and checked.
pub(super) fn lists(l: &mut Loader<'_>) {
    for s in l.decl.lists.decls.clone() {
        let fields = s.fields(format!("[lists.{}]", s.name));
        fields.unknown_keys(LIST_KEYS, &mut l.d);
        let mut numbers = HashSet::new();
        match fields.get("file") {
            None => fields.missing(
                "file",
                "the file of numbers, relative to the dialplan directory",
                &mut l.d,
            ),
            Some(f) => {
                if let Some(file) =
                    l.d.str(f, "a file name, relative to the dialplan directory")
                {
                    let path = l.base.join(file);
                    let shown = path.display().to_string();
                    match std::fs::read_to_string(&path) {
                        Ok(text) => numbers = list_numbers(&shown, &text, &mut l.d),
                        Err(e) => l.d.error(
                            &f.pos,
                            format!("list `{}`: {shown} cannot be read: {e}", s.name),
                        ),
                    }
                }
            }
        }
        l.plan.lists.push(NumberList {
            name: s.name.to_string(),
            numbers,
        });
    }
}

/// The numbers of a list file: one per line; a word starting with `#` starts a comment.
fn list_numbers(file: &str, text: &str, d: &mut Diags) -> HashSet<String> {
    let mut out = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let mut words = words(line).take_while(|(_, w)| !w.starts_with('#'));
        let at = |col: usize| Pos {
            file: file.to_string(),
            line: i + 1,
            column: col,
        };
        let Some((col, number)) = words.next() else {
            continue;
        };
        if is_number(number) {
            out.insert(number.to_string());
        } else {
            d.error(
                &at(col),
                format!("`{number}` is not a phone number; expected digits, `+`, `*` or `#`"),
            );
        }
        if let Some((col, extra)) = words.next() {
            d.error(
                &at(col),
                format!(
                    "unexpected `{extra}`; expected one number per line (`#` starts a comment)"
                ),
            );
        }
    }
    out
}

/// The whitespace-separated words of a line with their 1-based columns in characters.
fn words(line: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = line;
    let mut col = 1;
    std::iter::from_fn(move || {
        let skipped = rest.len() - rest.trim_start().len();
        col += rest[..skipped].chars().count();
        rest = &rest[skipped..];
        if rest.is_empty() {
            return None;
        }
        let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(len);
        let at = col;
        col += word.chars().count();
        rest = tail;
        Some((at, word))
    })
}

/// An optional string key with a default.
fn string_or(l: &mut Loader<'_>, fields: &Fields<'_>, key: &str, default: &str) -> String {
    fields
        .get(key)
        .and_then(|f| l.d.str(f, "a string"))
        .unwrap_or(default)
        .to_string()
}

/// Every `[queues.NAME]`; the prompts a queue plays without naming them (default music,
/// announcements) are checked at the first queue that needs them.
pub(super) fn queues(l: &mut Loader<'_>) {
    for (index, s) in l.decl.queues.decls.clone().into_iter().enumerate() {
        let fields = s.fields(format!("[queues.{}]", s.name));
        let mut allowed = QUEUE_KEYS.to_vec();
        allowed.push("escalate_to");
        fields.unknown_keys(&allowed, &mut l.d);
        if let Some(f) = fields.get("escalate_to") {
            l.d.error(
                &f.key_pos,
                "`escalate_to` is replaced by `overflow_to`; expected \
                 `overflow_to = [\"QUEUE\"]` with `overflow_after_s`",
            );
        }
        let mut q = QueueDecl::new(s.name);
        q.display = string_or(l, &fields, "name", s.name);
        q.skill = string_or(l, &fields, "skill", s.name);
        if let Some(n) = int(l, &fields, "min_level", 1, 5, "a skill level (1..=5)") {
            q.min_level = n as u8;
        }
        q.experts = bool_or(l, &fields, "experts", q.experts);
        if let Some(f) = fields.get("strategy") {
            match l.d.str(f, STRATEGIES) {
                Some("longest-idle") => q.strategy = Strategy::LongestIdle,
                Some("round-robin") => q.strategy = Strategy::RoundRobin,
                Some("ring-all") => q.strategy = Strategy::RingAll,
                Some(other) => l.d.error(
                    &f.pos,
                    format!("`strategy` must be {STRATEGIES}, found \"{other}\""),
                ),
                None => {}
            }
        }
        let secs = |l: &mut Loader<'_>, key: &str, lo: i64, hi: i64| {
            int(
                l,
                &fields,
                key,
                lo,
                hi,
                &format!("a number of seconds ({lo}..={hi})"),
            )
            .map(|n| Duration::from_secs(n as u64))
        };
        q.ring_timeout = secs(l, "ring_timeout_s", 5, 120).unwrap_or(q.ring_timeout);
        q.wrap_up = secs(l, "wrap_up_s", 0, 600).unwrap_or(q.wrap_up);
        q.overflow_after = secs(l, "overflow_after_s", 1, 3600);
        q.max_wait = secs(l, "max_wait_s", 10, 3600).unwrap_or(q.max_wait);
        q.overflow_to = overflow_to(l, s.src, &fields, index);
        q.overflow_experts = bool_or(l, &fields, "overflow_experts", q.overflow_experts);
        q.after_max_wait = fields
            .get("after_max_wait")
            .and_then(|f| l.node_ref(f, "after_max_wait"));
        match fields.get("music") {
            Some(f) => {
                q.music = l.prompts(s.src, f);
                if f.item.as_array().is_some_and(|a| a.is_empty()) {
                    // Silence makes a waiting caller think the line dropped.
                    l.d.error(
                        &f.pos,
                        "`music` is empty; expected at least one prompt, e.g. [\"queue/music\"]",
                    );
                }
            }
            None => {
                for name in q.music.clone() {
                    l.implied_prompt(&name, &s.pos);
                }
            }
        }
        if let Some(f) = fields.get("announce_every_s") {
            let expected = "a number of seconds: 0 (never) or 10..=600";
            match l.d.int(f, 0, 600, expected) {
                Some(0) => q.announce_every = None,
                Some(n @ 1..=9) => l.d.error(
                    &f.pos,
                    format!("`announce_every_s` must be {expected}, found {n}"),
                ),
                Some(n) => q.announce_every = Some(Duration::from_secs(n as u64)),
                None => {}
            }
        }
        q.record = bool_or(l, &fields, "record", q.record);
        overflow_checks(l, &fields, &q);
        if q.announce_every.is_some() {
            for name in ANNOUNCEMENT_PROMPTS {
                l.implied_prompt(name, &s.pos);
            }
        }
        // Any queue can take back a caller whose transfer failed, and says so.
        l.implied_prompt(TRANSFER_FAILED, &s.pos);
        l.plan.queues.push(q);
    }
}

/// An optional integer key in `lo..=hi`.
fn int(
    l: &mut Loader<'_>,
    fields: &Fields<'_>,
    key: &str,
    lo: i64,
    hi: i64,
    expected: &str,
) -> Option<i64> {
    let f = fields.get(key)?;
    l.d.int(f, lo, hi, expected)
}

/// An optional boolean key with a default.
fn bool_or(l: &mut Loader<'_>, fields: &Fields<'_>, key: &str, default: bool) -> bool {
    fields.get(key).and_then(|f| l.d.bool(f)).unwrap_or(default)
}

/// `overflow_to`: other declared queues, each once.
fn overflow_to(l: &mut Loader<'_>, src: &Src, fields: &Fields<'_>, own: usize) -> Vec<QueueId> {
    let Some(f) = fields.get("overflow_to") else {
        return Vec::new();
    };
    let expected = "a list of queue names, e.g. [\"general\"]";
    let Some(names) = l.d.strings(src, f, expected) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, pos) in names {
        let Some(id) = l.decl.queues.id(name) else {
            l.broken = true;
            l.d.error(
                &pos,
                format!("queue `{name}` is not declared in any [queues.NAME]"),
            );
            continue;
        };
        if id as usize == own {
            l.d.error(
                &pos,
                "`overflow_to` names the queue itself; expected other queues",
            );
        } else if out.contains(&QueueId(id)) {
            l.d.error(
                &pos,
                format!("queue `{name}` is named twice in `overflow_to`"),
            );
        } else {
            out.push(QueueId(id));
        }
    }
    out
}

/// `overflow_after_s` goes with somewhere to overflow to, and comes before `max_wait_s`.
fn overflow_checks(l: &mut Loader<'_>, fields: &Fields<'_>, q: &QueueDecl) {
    let somewhere = !q.overflow_to.is_empty() || q.overflow_experts;
    let after = fields.get("overflow_after_s");
    match (q.overflow_after, after) {
        (None, None) if somewhere => fields.missing(
            "overflow_after_s",
            "the seconds of waiting after which the call overflows (with `overflow_to` or \
             `overflow_experts = true`)",
            &mut l.d,
        ),
        (Some(_), Some(f)) if !somewhere => l.d.warning(
            &f.key_pos,
            "`overflow_after_s` has no effect without `overflow_to` or `overflow_experts = true`",
        ),
        (Some(overflow), Some(f)) if overflow >= q.max_wait => l.d.warning(
            &f.key_pos,
            format!(
                "`overflow_after_s` ({}) is not less than `max_wait_s` ({}): callers leave \
                 before the call overflows",
                overflow.as_secs(),
                q.max_wait.as_secs()
            ),
        ),
        _ => {}
    }
}

/// Every `[subcentres.NAME]`.
pub(super) fn subcentres(l: &mut Loader<'_>) {
    for s in l.decl.subcentres.decls.clone() {
        let fields = s.fields(format!("[subcentres.{}]", s.name));
        fields.unknown_keys(SUBCENTRE_KEYS, &mut l.d);
        let display = string_or(l, &fields, "name", s.name);
        let trunk_expected = "the PBX's SIP address as IP:port, e.g. \"10.0.0.5:5060\"";
        let trunk = match fields.get("trunk") {
            None => {
                fields.missing("trunk", trunk_expected, &mut l.d);
                None
            }
            Some(f) => l.d.str(f, trunk_expected).and_then(|t| {
                let addr = t.parse::<SocketAddr>().ok();
                if addr.is_none() {
                    l.d.error(
                        &f.pos,
                        format!("`trunk` must be {trunk_expected}, found \"{t}\""),
                    );
                }
                addr
            }),
        };
        let transport = match fields.get("transport") {
            None => TrunkTransport::Udp,
            Some(f) => match l.d.str(f, "\"udp\" or \"tcp\"") {
                Some("tcp") => TrunkTransport::Tcp,
                Some("udp") | None => TrunkTransport::Udp,
                Some(other) => {
                    l.d.error(
                        &f.pos,
                        format!("`transport` must be \"udp\" or \"tcp\", found \"{other}\""),
                    );
                    TrunkTransport::Udp
                }
            },
        };
        let number = fields.get("number").and_then(|f| {
            let expected = "the number sent to the trunk (digits, `+`, `*`, `#`)";
            let n = l.d.str(f, expected)?;
            if !is_number(n) {
                l.d.error(
                    &f.pos,
                    format!("`number` must be {expected}, found \"{n}\""),
                );
            }
            Some(n.to_string())
        });
        let username = string_or(l, &fields, "username", "");
        let password = string_or(l, &fields, "password", "");
        let always_open = fields
            .get("always_open")
            .and_then(|f| l.d.bool(f))
            .unwrap_or(true);
        let schedule = fields.get("schedule").and_then(|f| schedule_ref(l, f));
        match (always_open, fields.get("schedule")) {
            (true, Some(f)) => l.d.error(
                &f.key_pos,
                "`schedule` is only allowed with `always_open = false`",
            ),
            (false, None) => fields.missing(
                "schedule",
                "the schedule of its opening hours (with `always_open = false`)",
                &mut l.d,
            ),
            _ => {}
        }
        let dial_out = dial_out(l, s.src, &fields);
        let ring_timeout = int(
            l,
            &fields,
            "ring_timeout_s",
            5,
            300,
            "a number of seconds (5..=300)",
        )
        .map_or(DEFAULT_SUBCENTRE_RING, |n| Duration::from_secs(n as u64));
        let unanswered = fields.get("unanswered").and_then(|f| unanswered(l, f));
        l.plan.subcentres.push(SubCentre {
            name: s.name.to_string(),
            display,
            trunk: trunk.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
            transport,
            number,
            username,
            password,
            always_open,
            schedule,
            dial_out,
            ring_timeout,
            unanswered,
        });
    }
}

/// `dial_out`: the external numbers seats may transfer callers to over the trunk, each pattern
/// once.
fn dial_out(l: &mut Loader<'_>, src: &Src, fields: &Fields<'_>) -> Vec<DialPattern> {
    let Some(f) = fields.get("dial_out") else {
        return Vec::new();
    };
    let expected = "a list of number patterns, e.g. [\"0571*\", \"1??????????\"]";
    let Some(texts) = l.d.strings(src, f, expected) else {
        return Vec::new();
    };
    let mut out: Vec<DialPattern> = Vec::new();
    for (text, pos) in texts {
        match DialPattern::parse(text) {
            Err(why) => l.d.error(
                &pos,
                format!("`dial_out` pattern \"{text}\": {why}; expected {DIAL_PATTERN}"),
            ),
            Ok(_) if out.iter().any(|p| p.as_str() == text) => l.d.error(
                &pos,
                format!("pattern \"{text}\" is named twice in `dial_out`"),
            ),
            Ok(pattern) => out.push(pattern),
        }
    }
    out
}

/// `unanswered = "queue:NAME"`: a declared queue.
fn unanswered(l: &mut Loader<'_>, f: &Field<'_>) -> Option<QueueId> {
    let expected = "\"queue:NAME\" with a declared queue";
    let text = l.d.str(f, expected)?;
    let Some(name) = text.strip_prefix("queue:") else {
        l.d.error(
            &f.pos,
            format!("`unanswered` must be {expected}, found \"{text}\""),
        );
        return None;
    };
    let id = l.decl.queues.id(name);
    if id.is_none() {
        l.broken = true;
        l.d.error(
            &f.pos,
            format!("queue `{name}` is not declared in any [queues.NAME]"),
        );
    }
    id.map(QueueId)
}
