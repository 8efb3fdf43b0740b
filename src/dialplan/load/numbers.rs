//! `[[numbers]]`: the number plan, with the exact and prefix lookups filled in.

use std::collections::HashMap;

use super::decls::Section;
use super::nodes::operator_fallback;
use super::spans::{is_number, Field, Pos, Src};
use super::{Kind, Loader};
use crate::dialplan::model::{
    MergeMode, NodeId, NumberEntry, NumberPattern, Origin, Start, SubCentreId,
};

/// The keys of a `[[numbers]]` entry.
const NUMBER_KEYS: &[&str] = &[
    "number",
    "prefix",
    "mode",
    "line",
    "start",
    "notice",
    "tags",
    "subcentre",
    "fallback",
];
/// What `mode` must be.
const MODES: &str = "one of: unified, retired, dual, subcentre";
/// What `number` and `prefix` must be.
const PHONE: &str = "a phone number (digits, `+`, `*`, `#`)";

/// Numbers and prefixes already declared, with where.
#[derive(Default)]
struct Seen {
    exact: HashMap<String, Pos>,
    prefix: HashMap<String, Pos>,
    unified: bool,
    /// Some entry's mode could not be read: "no unified number" would be a guess.
    unreadable_mode: bool,
}

/// Every `[[numbers]]` entry; `first` is where "no unified number" is reported.
pub(super) fn numbers(l: &mut Loader<'_>, first: Option<&Src>, syntax_ok: bool) {
    let mut seen = Seen::default();
    for s in l.decl.numbers.clone() {
        let entry = entry(l, &s, &mut seen);
        l.plan.numbers.push(entry);
    }
    let mut prefixes: Vec<(String, usize)> = l
        .plan
        .numbers
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match &n.pattern {
            NumberPattern::Prefix(p) => Some((p.clone(), i)),
            NumberPattern::Exact(_) => None,
        })
        .collect();
    prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    l.plan.prefixes = prefixes;
    let complete = syntax_ok && !seen.unreadable_mode && !l.decl.broken;
    if let (false, true, Some(src)) = (seen.unified, complete, first) {
        l.d.error(
            &Pos::start_of(&src.name),
            "no [[numbers]] entry with mode = \"unified\"; expected at least one \
             (the 12345 number itself)",
        );
    }
}

fn entry(l: &mut Loader<'_>, s: &Section<'_>, seen: &mut Seen) -> NumberEntry {
    let what = match (
        s.table.get("number").and_then(|i| i.as_str()),
        s.table.get("prefix").and_then(|i| i.as_str()),
    ) {
        (Some(n), _) => format!("number {n}"),
        (None, Some(p)) => format!("prefix {p}"),
        (None, None) => "[[numbers]] entry".to_string(),
    };
    let fields = s.fields(what.clone());
    fields.unknown_keys(NUMBER_KEYS, &mut l.d);
    let pattern = match (fields.get("number"), fields.get("prefix")) {
        (Some(_), Some(p)) => {
            l.d.error(
                &p.key_pos,
                format!("{what} has both `number` and `prefix`; expected exactly one"),
            );
            None
        }
        (None, None) => {
            l.d.error(
                &s.pos,
                "[[numbers]] entry has neither `number` nor `prefix`; expected exactly one",
            );
            None
        }
        (Some(f), None) => phone(l, f).and_then(|n| declare(l, &mut seen.exact, f, n, "number")),
        (None, Some(f)) => phone(l, f).and_then(|p| declare(l, &mut seen.prefix, f, p, "prefix")),
    };
    let mode = match fields.get("mode") {
        None => {
            fields.missing("mode", MODES, &mut l.d);
            None
        }
        Some(f) => match l.d.str(f, MODES) {
            Some("unified") => Some(MergeMode::Unified),
            Some("retired") => Some(MergeMode::Retired),
            Some("dual") => Some(MergeMode::Dual),
            Some("subcentre") => Some(MergeMode::SubCentre),
            Some(other) => {
                l.d.error(&f.pos, format!("`mode` must be {MODES}, found \"{other}\""));
                None
            }
            None => None,
        },
    };
    seen.unified |= mode == Some(MergeMode::Unified);
    seen.unreadable_mode |= mode.is_none();
    let line = match fields.get("line") {
        None => {
            fields.missing(
                "line",
                "the hotline's name, e.g. \"12345 政务服务便民热线\"",
                &mut l.d,
            );
            String::new()
        }
        Some(f) => {
            l.d.str(f, "the hotline's name (a string)")
                .unwrap_or("")
                .to_string()
        }
    };
    let notice = match fields.get("notice") {
        Some(f) => l.prompts(s.src, f),
        None => Vec::new(),
    };
    let tags = l.tags(s.src, fields.get("tags"));
    let start = match mode {
        Some(MergeMode::SubCentre) => {
            if let Some(f) = fields.get("start") {
                l.d.error(
                    &f.key_pos,
                    "`start` is not allowed with mode = \"subcentre\"; the call goes to the \
                     sub-centre's trunk",
                );
            }
            let subcentre = match fields.get("subcentre") {
                Some(f) => l.resolve(Kind::SubCentre, f),
                None => {
                    fields.missing(
                        "subcentre",
                        "the sub-centre whose trunk takes the call (mode = \"subcentre\")",
                        &mut l.d,
                    );
                    l.broken = true;
                    None
                }
            };
            Start::SubCentre {
                subcentre: SubCentreId(subcentre.unwrap_or(0)),
                fallback: operator_fallback(l, &fields, "fallback"),
            }
        }
        Some(mode) => {
            for key in ["subcentre", "fallback"] {
                if let Some(f) = fields.get(key) {
                    l.d.error(
                        &f.key_pos,
                        format!("`{key}` is only allowed with mode = \"subcentre\""),
                    );
                }
            }
            let expected = format!("the first node of the call (mode = \"{}\")", mode.as_str());
            Start::Node(l.required_node(&fields, "start", &expected))
        }
        None => {
            l.broken = true;
            Start::Node(NodeId(0))
        }
    };
    let index = l.plan.numbers.len();
    if let Some(NumberPattern::Exact(n)) = &pattern {
        l.plan.exact.insert(n.clone(), index);
    }
    NumberEntry {
        pattern: pattern.unwrap_or(NumberPattern::Exact(String::new())),
        mode: mode.unwrap_or(MergeMode::Unified),
        line,
        notice,
        tags,
        start,
        origin: Origin {
            file: s.pos.file.clone(),
            line: s.pos.line,
        },
    }
}

/// `number` or `prefix`: a phone number string.
fn phone<'a>(l: &mut Loader<'_>, f: &Field<'a>) -> Option<&'a str> {
    let n = l.d.str(f, PHONE)?;
    if !is_number(n) {
        l.d.error(
            &f.pos,
            format!("`{}` must be {PHONE}, found \"{n}\"", f.key),
        );
        return None;
    }
    Some(n)
}

/// Records a number or prefix, or reports it as declared twice.
fn declare(
    l: &mut Loader<'_>,
    seen: &mut HashMap<String, Pos>,
    f: &Field<'_>,
    n: &str,
    word: &str,
) -> Option<NumberPattern> {
    if let Some(first) = seen.get(n) {
        l.d.error(
            &f.pos,
            format!("{word} {n} is declared twice; first at {first}"),
        );
        return None;
    }
    seen.insert(n.to_string(), f.pos.clone());
    Some(match word {
        "prefix" => NumberPattern::Prefix(n.to_string()),
        _ => NumberPattern::Exact(n.to_string()),
    })
}
