//! Loader tests: `[queues.NAME]` with its distribution and waiting rules, and `callback` nodes.

use std::time::Duration;

use super::tests::{errors, loads};
use crate::dialplan::model::{
    CallbackNumber, NodeKind, QueueDecl, QueueId, Strategy, CALLBACK_MAX_DIGITS,
};
use crate::dialplan::spoken::{ANNOUNCEMENT_PROMPTS, CALLBACK_PROMPTS};

/// The warnings of `dp/shared.toml` + `dp/12345.toml` + `dp/x.toml`, which must load.
fn warnings(x: &str) -> Vec<String> {
    loads(x).warnings.iter().map(ToString::to_string).collect()
}

#[test]
fn queue_keys_have_documented_defaults() {
    let plan = loads("").dialplan;
    let expected = QueueDecl {
        display: "综合座席".into(),
        ..QueueDecl::new("general")
    };
    assert_eq!(plan.queues[0], expected);
    assert_eq!(expected.min_level, 1);
    assert_eq!(expected.strategy, Strategy::LongestIdle);
    assert_eq!(expected.ring_timeout, Duration::from_secs(20));
    assert_eq!(expected.wrap_up, Duration::from_secs(30));
    assert_eq!(expected.max_wait, Duration::from_secs(300));
    assert_eq!(expected.announce_every, Some(Duration::from_secs(30)));
    assert!(expected.record && expected.overflow_to.is_empty() && !expected.overflow_experts);
    assert!(plan.prompts.contains("queue/music"));
    for name in ANNOUNCEMENT_PROMPTS {
        assert!(plan.prompts.contains(*name), "{name} is checked");
    }
}

#[test]
fn queue_keys_are_read() {
    let x = r#"[queues.housing]
name = "住房"
skill = "housing"
min_level = 3
experts = true
strategy = "ring-all"
ring_timeout_s = 15
wrap_up_s = 0
overflow_after_s = 60
overflow_to = ["general"]
overflow_experts = true
max_wait_s = 600
after_max_wait = "busy"
music = ["hold/erhu", "hold/guzheng"]
announce_every_s = 0
record = false

[queues.quiet]
strategy = "round-robin"
"#;
    let plan = loads(x).dialplan;
    let busy = plan.node_ids["busy"];
    assert_eq!(
        plan.queues[1],
        QueueDecl {
            name: "housing".into(),
            display: "住房".into(),
            skill: "housing".into(),
            min_level: 3,
            experts: true,
            strategy: Strategy::RingAll,
            ring_timeout: Duration::from_secs(15),
            wrap_up: Duration::ZERO,
            overflow_after: Some(Duration::from_secs(60)),
            overflow_to: vec![QueueId(0)],
            overflow_experts: true,
            max_wait: Duration::from_secs(600),
            after_max_wait: Some(busy),
            music: vec!["hold/erhu".into(), "hold/guzheng".into()],
            announce_every: None,
            record: false,
        }
    );
    assert_eq!(plan.queues[2].strategy, Strategy::RoundRobin);
    assert_eq!(plan.queues[2].skill, "quiet", "skill defaults to the name");
}

#[test]
fn queue_values_are_checked_where_they_are() {
    let x = r#"[queues.housing]
min_level = 0
strategy = "random"
ring_timeout_s = 2
wrap_up_s = 601
max_wait_s = 5
announce_every_s = 5
music = []
overflow_after_s = 0
overflow_to = ["housing", "nowhere", "general", "general"]
after_max_wait = "nowhere"
escalate_to = "general"
"#;
    assert_eq!(
        errors(x),
        [
            "dp/x.toml:2:13: error: `min_level` must be a skill level (1..=5), found 0",
            "dp/x.toml:3:12: error: `strategy` must be \"longest-idle\", \"round-robin\" or \
             \"ring-all\", found \"random\"",
            "dp/x.toml:4:18: error: `ring_timeout_s` must be a number of seconds (5..=120), \
             found 2",
            "dp/x.toml:5:13: error: `wrap_up_s` must be a number of seconds (0..=600), found 601",
            "dp/x.toml:6:14: error: `max_wait_s` must be a number of seconds (10..=3600), found 5",
            "dp/x.toml:7:20: error: `announce_every_s` must be a number of seconds: 0 (never) or \
             10..=600, found 5",
            "dp/x.toml:8:9: error: `music` is empty; expected at least one prompt, e.g. \
             [\"queue/music\"]",
            "dp/x.toml:9:20: error: `overflow_after_s` must be a number of seconds (1..=3600), \
             found 0",
            "dp/x.toml:10:16: error: `overflow_to` names the queue itself; expected other queues",
            "dp/x.toml:10:27: error: queue `nowhere` is not declared in any [queues.NAME]",
            "dp/x.toml:10:49: error: queue `general` is named twice in `overflow_to`",
            "dp/x.toml:11:18: error: after_max_wait to undefined node `nowhere`",
            "dp/x.toml:12:1: error: `escalate_to` is replaced by `overflow_to`; expected \
             `overflow_to = [\"QUEUE\"]` with `overflow_after_s`",
        ]
    );
}

#[test]
fn overflow_needs_a_time_and_somewhere_to_go() {
    let x = "[queues.a]\noverflow_to = [\"general\"]\n\n[queues.b]\noverflow_experts = true\n";
    let needs = "has no `overflow_after_s`; expected the seconds of waiting after which the call \
                 overflows (with `overflow_to` or `overflow_experts = true`)";
    assert_eq!(
        errors(x),
        [
            format!("dp/x.toml:1:9: error: [queues.a] {needs}"),
            format!("dp/x.toml:4:9: error: [queues.b] {needs}"),
        ]
    );
    let x = "[queues.a]\noverflow_after_s = 60\n\n[queues.b]\noverflow_after_s = 300\n\
             overflow_experts = true\n";
    assert_eq!(
        warnings(x),
        [
            "dp/x.toml:2:1: warning: `overflow_after_s` has no effect without `overflow_to` or \
             `overflow_experts = true`",
            "dp/x.toml:5:1: warning: `overflow_after_s` (300) is not less than `max_wait_s` \
             (300): callers leave before the call overflows",
        ]
    );
}

#[test]
fn after_max_wait_is_a_way_on_from_every_queue_node_of_its_queue() {
    let x = "[queues.housing]\nafter_max_wait = \"sorry\"\n\n[nodes.q]\nqueue = \"housing\"\n\n\
             [nodes.sorry]\nhangup = []\n\n[[numbers]]\nnumber = \"12319\"\nmode = \"dual\"\n\
             line = \"x\"\nstart = \"q\"\n";
    assert_eq!(warnings(x), Vec::<String>::new(), "sorry is reached");
}

const CALLBACK: &str = r#"[nodes.offer]
callback = "caller"
prompts = ["queue/callback-offer"]
retries = 2
next = "thanks"
fallback = "busy"

[nodes.ask]
callback = "ask"
prompts = ["ask-number"]
next = "thanks"
fallback = "busy"

[nodes.thanks]
hangup = ["thanks"]

[queues.housing]
after_max_wait = "offer"

[queues.other]
after_max_wait = "ask"

[nodes.q]
queue = "housing"

[nodes.q2]
queue = "other"

[[numbers]]
number = "12319"
mode = "dual"
line = "x"
start = "q"

[[numbers]]
number = "12320"
mode = "dual"
line = "y"
start = "q2"
"#;

#[test]
fn callback_nodes_are_read_with_their_fixed_prompts() {
    let loaded = loads(CALLBACK);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let plan = loaded.dialplan;
    let id = |name: &str| plan.node_ids[name];
    let Some(NodeKind::Callback(offer)) = plan.kind(id("offer")) else {
        panic!("offer is a callback node")
    };
    assert_eq!(offer.propose, CallbackNumber::Caller);
    assert_eq!(offer.prompts, ["queue/callback-offer"]);
    assert_eq!((offer.next, offer.fallback), (id("thanks"), id("busy")));
    assert_eq!(offer.attempts.retries, 2);
    assert_eq!(offer.attempts.timeout, Duration::from_secs(5), "[defaults]");
    let Some(NodeKind::Callback(ask)) = plan.kind(id("ask")) else {
        panic!("ask is a callback node")
    };
    assert_eq!(ask.propose, CallbackNumber::Ask);
    for name in CALLBACK_PROMPTS {
        assert!(plan.prompts.contains(*name), "{name} is checked");
    }
    assert_eq!(CALLBACK_MAX_DIGITS, 20);
}

#[test]
fn callback_nodes_are_checked() {
    let x = "[nodes.a]\ncallback = \"someone\"\nprompts = []\nnext = \"busy\"\n\n\
             [nodes.b]\ncallback = \"caller\"\nkeys = { \"1\" = \"busy\" }\n";
    assert_eq!(
        errors(x),
        [
            "dp/x.toml:1:8: error: node `a` has no `fallback`; expected the node to go to when \
             no number is confirmed, e.g. a goodbye",
            "dp/x.toml:2:12: error: `callback` must be \"caller\" (propose the caller's number) \
             or \"ask\" (ask for one), found \"someone\"",
            "dp/x.toml:3:11: error: `prompts` is empty; expected at least one prompt, e.g. \
             [\"12345/welcome\"]",
            "dp/x.toml:6:8: error: node `b` has no `prompts`; expected the prompts played before \
             the proposed number, e.g. [\"queue/callback-offer\"]",
            "dp/x.toml:6:8: error: node `b` has no `next`; expected the node that comes once the \
             number is confirmed",
            "dp/x.toml:6:8: error: node `b` has no `fallback`; expected the node to go to when \
             no number is confirmed, e.g. a goodbye",
            "dp/x.toml:8:1: error: unknown key `keys` in node `b`; expected one of: callback, \
             prompts, next, fallback, timeout_s, inter_digit_s, retries, invalid, no_input, tags",
        ]
    );
}
