//! `[lists.NAME]` (number files), `[queues.NAME]` and `[subcentres.NAME]`.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::spans::{is_number, Diags, Fields, Pos};
use super::time::schedule_ref;
use super::{Kind, Loader};
use crate::dialplan::model::{NumberList, QueueDecl, QueueId, SubCentre, TrunkTransport};

/// The keys of a list.
const LIST_KEYS: &[&str] = &["file"];
/// The keys of a queue.
const QUEUE_KEYS: &[&str] = &["name", "skill", "experts", "escalate_to"];
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
];

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

/// Every `[queues.NAME]`.
pub(super) fn queues(l: &mut Loader<'_>) {
    for (index, s) in l.decl.queues.decls.clone().into_iter().enumerate() {
        let fields = s.fields(format!("[queues.{}]", s.name));
        fields.unknown_keys(QUEUE_KEYS, &mut l.d);
        let display = string_or(l, &fields, "name", s.name);
        let skill = string_or(l, &fields, "skill", s.name);
        let experts = fields
            .get("experts")
            .and_then(|f| l.d.bool(f))
            .unwrap_or(false);
        let escalate_to = fields.get("escalate_to").and_then(|f| {
            let id = l.resolve(Kind::Queue, f)?;
            if id as usize == index {
                l.d.error(
                    &f.pos,
                    "`escalate_to` names the queue itself; expected another queue",
                );
            }
            Some(QueueId(id))
        });
        l.plan.queues.push(QueueDecl {
            name: s.name.to_string(),
            display,
            skill,
            experts,
            escalate_to,
        });
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
        });
    }
}
