//! `[nodes.NAME]`: one action per node, its keys, and the defaults it inherits.

use std::time::Duration;

use super::decls::Section;
use super::shared::{retries, seconds};
use super::spans::{is_tag_name, tables, Fields, Src};
use super::{Kind, Loader};
use crate::dialplan::model::{
    Attempts, CallbackNumber, CallbackOffer, Collect, Condition, ListId, Menu, Node, NodeId,
    NodeKind, Origin, QueueId, Rule, ScheduleId, SubCentreId, Survey,
};
use crate::dialplan::spoken::CALLBACK_PROMPTS;

/// The action keys; a node has exactly one.
const ACTIONS: &[&str] = &[
    "play", "menu", "collect", "survey", "branch", "goto", "queue", "transfer", "callback",
    "hangup",
];
/// Keys shared by menus, collects and surveys.
const ATTEMPT_KEYS: &[&str] = &[
    "timeout_s",
    "inter_digit_s",
    "retries",
    "invalid",
    "no_input",
];
/// The keys of a branch rule.
const RULE_KEYS: &[&str] = &[
    "open",
    "closed",
    "caller_in",
    "caller_not_in",
    "tag",
    "is",
    "goto",
];
/// The conditions of a branch rule; a rule has exactly one.
const CONDITIONS: &[&str] = &["open", "closed", "caller_in", "caller_not_in", "tag"];

/// The keys a node with this action may have.
fn allowed_keys(action: &str) -> Vec<&'static str> {
    let specific: &[&str] = match action {
        "play" => &["play", "barge_in", "next"],
        "menu" => &["menu", "keys", "fail"],
        "collect" => &[
            "collect",
            "tag",
            "min_digits",
            "max_digits",
            "terminator",
            "next",
            "fail",
        ],
        "survey" => &["survey", "tag", "next"],
        "branch" => &["branch", "else"],
        "goto" => &["goto"],
        "queue" => &["queue", "priority", "fallback", "after"],
        "transfer" => &["transfer", "fallback"],
        "callback" => &["callback", "prompts", "next", "fallback"],
        "hangup" => &["hangup"],
        _ => &[],
    };
    let attempts = if matches!(action, "menu" | "collect" | "survey" | "callback") {
        ATTEMPT_KEYS
    } else {
        &[]
    };
    let mut keys = specific.to_vec();
    keys.extend_from_slice(attempts);
    keys.push("tags");
    keys
}

/// Every key any node may have.
fn all_node_keys() -> Vec<&'static str> {
    let mut keys: Vec<&str> = Vec::new();
    for action in ACTIONS {
        for k in allowed_keys(action) {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    keys
}

/// Builds every `[nodes.NAME]`, in declaration order (the order of their ids).
pub(super) fn nodes(l: &mut Loader<'_>) {
    for s in l.decl.nodes.decls.clone() {
        let node = node(l, &s);
        l.plan
            .node_ids
            .insert(s.name.to_string(), NodeId(l.plan.nodes.len() as u32));
        l.plan.nodes.push(node);
        l.node_pos.push(s.pos);
    }
}

fn node(l: &mut Loader<'_>, s: &Section<'_>) -> Node {
    let fields = s.fields(format!("node `{}`", s.name));
    let actions: Vec<&str> = fields
        .iter()
        .map(|f| f.key)
        .filter(|k| ACTIONS.contains(k))
        .collect();
    let expected = format!("expected exactly one of: {}", ACTIONS.join(", "));
    let kind = match actions[..] {
        [action] => {
            fields.unknown_keys(&allowed_keys(action), &mut l.d);
            Some(kind(l, s.src, &fields, action))
        }
        [] => {
            fields.unknown_keys(&all_node_keys(), &mut l.d);
            l.d.error(
                &s.pos,
                format!("node `{}` has no action; {expected}", s.name),
            );
            None
        }
        [first, second, ..] => {
            fields.unknown_keys(&all_node_keys(), &mut l.d);
            let at = fields.get(second).map_or(&s.pos, |f| &f.key_pos);
            l.d.error(
                at,
                format!(
                    "node `{}` has both `{first}` and `{second}`; {expected}",
                    s.name
                ),
            );
            None
        }
    };
    let tags = l.tags(s.src, fields.get("tags"));
    let kind = kind.unwrap_or_else(|| {
        l.broken = true;
        NodeKind::Hangup {
            prompts: Vec::new(),
        }
    });
    Node {
        name: s.name.to_string(),
        tags,
        kind,
        origin: Origin {
            file: s.pos.file.clone(),
            line: s.pos.line,
        },
    }
}

/// The node's action.
fn kind(l: &mut Loader<'_>, src: &Src, fields: &Fields<'_>, action: &str) -> NodeKind {
    let next = "the name of the node that comes next";
    match action {
        "play" => NodeKind::Play {
            prompts: prompts(l, src, fields, "play", true),
            barge_in: fields
                .get("barge_in")
                .and_then(|f| l.d.bool(f))
                .unwrap_or(false),
            next: l.required_node(fields, "next", next),
        },
        "menu" => NodeKind::Menu(menu(l, src, fields)),
        "collect" => NodeKind::Collect(collect(l, src, fields)),
        "survey" => NodeKind::Survey(Survey {
            prompts: prompts(l, src, fields, "survey", true),
            tag: tag(l, fields, Some("satisfaction")),
            attempts: attempts(l, src, fields),
            next: l.required_node(fields, "next", next),
        }),
        "branch" => NodeKind::Branch {
            rules: rules(l, src, fields),
            otherwise: l.required_node(fields, "else", "the node to go to when no rule holds"),
        },
        "goto" => NodeKind::Goto(l.required_node(fields, "goto", "a node name")),
        "queue" => queue(l, fields),
        "transfer" => transfer(l, fields),
        "callback" => NodeKind::Callback(callback(l, src, fields)),
        _ => NodeKind::Hangup {
            prompts: prompts(l, src, fields, "hangup", false),
        },
    }
}

/// The action's prompt list; `non_empty` requires at least one.
fn prompts(
    l: &mut Loader<'_>,
    src: &Src,
    fields: &Fields<'_>,
    key: &str,
    non_empty: bool,
) -> Vec<String> {
    let Some(f) = fields.get(key) else {
        return Vec::new();
    };
    let list = l.prompts(src, f);
    if non_empty && f.item.as_array().is_some_and(|a| a.is_empty()) {
        l.d.error(
            &f.pos,
            format!("`{key}` is empty; expected at least one prompt, e.g. [\"12345/welcome\"]"),
        );
    }
    list
}

/// Timing and retries: the node's own values, else `[defaults]`.
fn attempts(l: &mut Loader<'_>, src: &Src, fields: &Fields<'_>) -> Attempts {
    let timeout = seconds(l, fields, "timeout_s").unwrap_or(l.defaults.timeout_s);
    let inter_digit = seconds(l, fields, "inter_digit_s").unwrap_or(l.defaults.inter_digit_s);
    let retries = retries(l, fields).unwrap_or(l.defaults.retries);
    let invalid = match fields.get("invalid") {
        Some(f) => l.prompts(src, f),
        None => l.defaults.invalid.clone(),
    };
    let no_input = match fields.get("no_input") {
        Some(f) => l.prompts(src, f),
        None => l.defaults.no_input.clone(),
    };
    Attempts {
        timeout: Duration::from_secs(timeout),
        inter_digit: Duration::from_secs(inter_digit),
        retries,
        invalid,
        no_input,
    }
}

/// Whether `key` is a menu key: 1 to 8 of `0-9*#`.
fn is_menu_key(key: &str) -> bool {
    (1..=8).contains(&key.len())
        && key
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
}

fn menu(l: &mut Loader<'_>, src: &Src, fields: &Fields<'_>) -> Menu {
    let prompts = prompts(l, src, fields, "menu", true);
    let mut keys = Vec::new();
    let expected = "a table of keys and nodes, e.g. { \"1\" = \"social\", \"2\" = \"housing\" }";
    match fields.get("keys") {
        None => fields.missing("keys", expected, &mut l.d),
        Some(f) => {
            if let Some(table) = l.d.table(f, expected) {
                let entries = Fields::of(src, table, "`keys`".into(), f.pos.clone());
                for e in entries.iter() {
                    if !is_menu_key(e.key) {
                        l.d.error(
                            &e.key_pos,
                            format!(
                                "menu key \"{}\" is not valid; expected 1 to 8 of the characters 0-9, * and #",
                                e.key
                            ),
                        );
                    }
                    if let Some(id) = l.node_ref(e, &format!("key \"{}\"", e.key)) {
                        keys.push((e.key.to_string(), id));
                    }
                }
            }
        }
    }
    let keys_table = fields.get("keys").and_then(|f| f.item.as_table_like());
    let zero_needed =
        l.defaults.zero_to_operator && !keys_table.is_some_and(|t| t.contains_key("0"));
    let operator = l.defaults.operator.as_ref().map(|(id, _)| *id);
    match (zero_needed, operator) {
        (true, Some(id)) => keys.push(("0".to_string(), id)),
        (true, None) => {
            l.broken = true;
            l.d.error(
                &fields.here,
                format!(
                    "{} needs key 0 to go to the operator but [defaults] has no `operator`; \
                     expected `operator = \"NODE\"` in [defaults], a \"0\" in `keys`, \
                     or `zero_to_operator = false`",
                    fields.what
                ),
            );
        }
        (false, _) => {
            if keys_table.is_some_and(|t| t.is_empty()) {
                l.d.error(
                    &fields.here,
                    format!(
                        "{} has no keys; expected at least one in `keys`",
                        fields.what
                    ),
                );
            }
        }
    }
    Menu {
        prompts,
        keys,
        attempts: attempts(l, src, fields),
        fail: operator_fallback(l, fields, "fail"),
    }
}

/// `tag`: required when `default` is `None`.
fn tag(l: &mut Loader<'_>, fields: &Fields<'_>, default: Option<&str>) -> String {
    let expected = "a tag name (lower-case letters, digits, `_` and `-`)";
    let Some(f) = fields.get("tag") else {
        if default.is_none() {
            fields.missing("tag", "the tag that receives the digits", &mut l.d);
        }
        return default.unwrap_or_default().to_string();
    };
    let Some(name) = l.d.str(f, expected) else {
        return String::new();
    };
    if !is_tag_name(name) {
        l.d.error(
            &f.pos,
            format!("`tag` must be {expected}, found \"{name}\""),
        );
    }
    name.to_string()
}

fn collect(l: &mut Loader<'_>, src: &Src, fields: &Fields<'_>) -> Collect {
    let digits = "a number of digits (1..=32)";
    let min_digits = fields
        .get("min_digits")
        .and_then(|f| l.d.int(f, 1, 32, digits))
        .unwrap_or(1) as usize;
    let max_digits = match fields.get("max_digits") {
        None => 32,
        Some(f) => {
            match l.d.int(f, 1, 32, digits) {
                Some(max) if (max as usize) < min_digits => {
                    l.d.error(
                    &f.pos,
                    format!("`max_digits` ({max}) must not be less than `min_digits` ({min_digits})"),
                );
                    min_digits
                }
                Some(max) => max as usize,
                None => 32,
            }
        }
    };
    let terminator = match fields.get("terminator") {
        None => Some('#'),
        Some(f) => {
            let expected = "\"#\", \"*\" or \"\" (none)";
            match l.d.str(f, expected) {
                Some("") | None => None,
                Some("#") => Some('#'),
                Some("*") => Some('*'),
                Some(other) => {
                    l.d.error(
                        &f.pos,
                        format!("`terminator` must be {expected}, found \"{other}\""),
                    );
                    None
                }
            }
        }
    };
    Collect {
        prompts: prompts(l, src, fields, "collect", true),
        tag: tag(l, fields, None),
        min_digits,
        max_digits,
        terminator,
        attempts: attempts(l, src, fields),
        next: l.required_node(fields, "next", "the node that receives the entry"),
        fail: operator_fallback(l, fields, "fail"),
    }
}

/// `branch = [ { open = "…", goto = "…" }, … ]`.
fn rules(l: &mut Loader<'_>, src: &Src, fields: &Fields<'_>) -> Vec<Rule> {
    let Some(f) = fields.get("branch") else {
        return Vec::new();
    };
    let expected = "a list of rules, e.g. [{ open = \"office-hours\", goto = \"main-menu\" }]";
    let Some(list) = tables(src, f, expected, &mut l.d) else {
        l.broken = true;
        return Vec::new();
    };
    let mut rules = Vec::new();
    for (i, (table, pos)) in list.into_iter().enumerate() {
        let rule = Fields::of(
            src,
            table,
            format!("rule {} of {}", i + 1, fields.what),
            pos,
        );
        rule.unknown_keys(RULE_KEYS, &mut l.d);
        let condition = condition(l, &rule);
        let goto = l.required_node(&rule, "goto", "the node to go to when the rule holds");
        match condition {
            Some(condition) => rules.push(Rule { condition, goto }),
            None => l.broken = true,
        }
    }
    rules
}

/// The one condition of a rule.
fn condition(l: &mut Loader<'_>, rule: &Fields<'_>) -> Option<Condition> {
    let present: Vec<&str> = rule
        .iter()
        .map(|f| f.key)
        .filter(|k| CONDITIONS.contains(k))
        .collect();
    let expected = format!(
        "expected exactly one of: {} (with `is`)",
        CONDITIONS.join(", ")
    );
    if let (Some(f), false) = (rule.get("is"), present.contains(&"tag")) {
        l.d.error(&f.key_pos, "`is` is only allowed with `tag`");
    }
    let key = match present[..] {
        [key] => key,
        [] => {
            l.d.error(
                &rule.here,
                format!("{} has no condition; {expected}", rule.what),
            );
            return None;
        }
        [first, second, ..] => {
            let at = rule.get(second).map_or(&rule.here, |f| &f.key_pos);
            l.d.error(
                at,
                format!(
                    "{} has both `{first}` and `{second}`; {expected}",
                    rule.what
                ),
            );
            return None;
        }
    };
    let f = rule.get(key)?;
    Some(match key {
        "open" => Condition::Open(ScheduleId(l.resolve(Kind::Schedule, f)?)),
        "closed" => Condition::Closed(ScheduleId(l.resolve(Kind::Schedule, f)?)),
        "caller_in" => Condition::CallerIn(ListId(l.resolve(Kind::List, f)?)),
        "caller_not_in" => Condition::CallerNotIn(ListId(l.resolve(Kind::List, f)?)),
        _ => {
            let name = tag(l, rule, Some(""));
            let value = match rule.get("is") {
                Some(is) => l.d.str(is, "the value the tag must have (a string)")?,
                None => {
                    rule.missing("is", "the value the tag must have", &mut l.d);
                    return None;
                }
            };
            Condition::Tag {
                name,
                value: value.to_string(),
            }
        }
    })
}

fn queue(l: &mut Loader<'_>, fields: &Fields<'_>) -> NodeKind {
    let queue = fields
        .get("queue")
        .and_then(|f| l.resolve(Kind::Queue, f))
        .map_or(QueueId(0), QueueId);
    let priority = fields
        .get("priority")
        .and_then(|f| {
            l.d.int(f, 0, 9, "a whole number 0..=9 (higher is served first)")
        })
        .unwrap_or(0) as u8;
    let fallback = match fields.get("fallback") {
        Some(f) => l.node_ref(f, "fallback"),
        None if l.defaults.queue_fallback.is_some() => l.defaults.queue_fallback,
        None => {
            l.broken = true;
            l.d.error(
                &fields.here,
                format!(
                    "{} has no `fallback` and [defaults] has no `queue_fallback`; expected \
                     `fallback = \"NODE\"` or `queue_fallback = \"NODE\"` in [defaults]",
                    fields.what
                ),
            );
            None
        }
    };
    let after = fields.get("after").and_then(|f| l.node_ref(f, "after"));
    NodeKind::Queue {
        queue,
        priority,
        fallback: fallback.unwrap_or(NodeId(0)),
        after,
    }
}

fn transfer(l: &mut Loader<'_>, fields: &Fields<'_>) -> NodeKind {
    let subcentre = fields
        .get("transfer")
        .and_then(|f| l.resolve(Kind::SubCentre, f))
        .map_or(SubCentreId(0), SubCentreId);
    NodeKind::Transfer {
        subcentre,
        fallback: operator_fallback(l, fields, "fallback"),
    }
}

/// `callback = "caller" | "ask"`, its prompts and ways out; the prompts it plays besides its
/// own are checked at the first callback node.
fn callback(l: &mut Loader<'_>, src: &Src, fields: &Fields<'_>) -> CallbackOffer {
    let expected = "\"caller\" (propose the caller's number) or \"ask\" (ask for one)";
    let propose = match fields.get("callback").map(|f| (f, l.d.str(f, expected))) {
        Some((_, Some("ask"))) => CallbackNumber::Ask,
        Some((f, Some(other))) if other != "caller" => {
            l.d.error(
                &f.pos,
                format!("`callback` must be {expected}, found \"{other}\""),
            );
            CallbackNumber::Caller
        }
        _ => CallbackNumber::Caller,
    };
    if fields.get("prompts").is_none() {
        fields.missing(
            "prompts",
            "the prompts played before the proposed number, e.g. [\"queue/callback-offer\"]",
            &mut l.d,
        );
    }
    for name in CALLBACK_PROMPTS {
        l.implied_prompt(name, &fields.here);
    }
    CallbackOffer {
        propose,
        prompts: prompts(l, src, fields, "prompts", true),
        attempts: attempts(l, src, fields),
        next: l.required_node(
            fields,
            "next",
            "the node that comes once the number is confirmed",
        ),
        // No operator default: a callback is offered when the seats are busy.
        fallback: l.required_node(
            fields,
            "fallback",
            "the node to go to when no number is confirmed, e.g. a goodbye",
        ),
    }
}

/// `key` (`fail` or `fallback`), else `defaults.operator`, else an error at `fields`.
pub(super) fn operator_fallback(l: &mut Loader<'_>, fields: &Fields<'_>, key: &str) -> NodeId {
    if let Some(f) = fields.get(key) {
        return l.node_ref(f, key).unwrap_or(NodeId(0));
    }
    if let Some((id, _)) = &l.defaults.operator {
        return *id;
    }
    l.broken = true;
    l.d.error(
        &fields.here,
        format!(
            "{} has no `{key}` and [defaults] has no `operator`; expected \
             `{key} = \"NODE\"` or `operator = \"NODE\"` in [defaults]",
            fields.what
        ),
    );
    NodeId(0)
}
