//! Loader tests: the model built from a valid set (ids, implied keys, defaults and fallbacks)
//! and the graph checks that keep callers from being trapped.

use std::path::Path;
use std::time::Duration;

use super::tests::{errors, errors_with, load_in, loads, MAIN};
use crate::dialplan::model::{
    Condition, MergeMode, NodeId, NodeKind, NumberPattern, ScheduleId, Start, SubCentreId,
};

const VALID: &str = r#"[[numbers]]
prefix = "0376"
mode = "dual"
line = "x"
start = "dual-menu"

[[numbers]]
prefix = "037612"
mode = "retired"
line = "y"
start = "main-menu"
notice = ["retired/merged"]
tags = { topic = "legal" }

[[numbers]]
number = "12366"
mode = "subcentre"
line = "税务"
subcentre = "tax"

[nodes.dual-menu]
menu = ["dual/menu"]
keys = { "0" = "busy", "1" = "enter-id", "2" = "rate" }
timeout_s = 7
fail = "busy"

[nodes.enter-id]
collect = ["common/enter-id"]
tag = "id-number"
min_digits = 15
max_digits = 18
next = "check"

[nodes.check]
branch = [{ open = "office", goto = "to-tax" }, { tag = "topic", is = "legal", goto = "operator" }]
else = "busy"

[nodes.to-tax]
transfer = "tax"

[nodes.rate]
survey = ["common/survey"]
next = "busy"
"#;

#[test]
fn a_valid_set_builds_the_model_with_defaults_and_implied_keys() {
    let loaded = loads(VALID);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let plan = loaded.dialplan;
    let id = |name: &str| plan.node_ids[name];
    for (i, node) in plan.nodes.iter().enumerate() {
        assert_eq!(plan.node_ids[&node.name], NodeId(i as u32));
    }
    assert_eq!(plan.exact["12345"], 0);
    assert_eq!(plan.exact["12366"], 3);
    assert_eq!(
        plan.prefixes,
        [("037612".to_string(), 2), ("0376".to_string(), 1)]
    );
    assert_eq!(
        plan.numbers[1].pattern,
        NumberPattern::Prefix("0376".into())
    );
    assert_eq!(plan.numbers[2].mode, MergeMode::Retired);
    assert_eq!(plan.numbers[2].notice, ["retired/merged"]);
    assert_eq!(
        plan.numbers[2].tags,
        [("topic".to_string(), "legal".to_string())]
    );
    assert_eq!(plan.numbers[2].start, Start::Node(id("main-menu")));
    assert_eq!(
        plan.numbers[3].start,
        Start::SubCentre {
            subcentre: SubCentreId(0),
            fallback: id("operator")
        }
    );
    assert_eq!(plan.numbers[3].origin.file, "dp/x.toml");
    assert_eq!(plan.numbers[3].origin.line, 15);

    let node = |name: &str| &plan.nodes[id(name).0 as usize].kind;
    let NodeKind::Menu(main) = node("main-menu") else {
        panic!("main-menu is a menu")
    };
    let keys: Vec<(&str, NodeId)> = main.keys.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    assert_eq!(
        keys,
        [
            ("1", id("operator")),
            ("9", id("main-menu")),
            ("0", id("operator"))
        ]
    );
    assert_eq!(main.fail, id("operator"));
    assert_eq!(main.attempts.timeout, Duration::from_secs(5));
    assert_eq!(main.attempts.inter_digit, Duration::from_secs(3));
    assert_eq!(main.attempts.retries, 3);
    assert!(main.attempts.invalid.is_empty() && main.attempts.no_input.is_empty());

    let NodeKind::Menu(dual) = node("dual-menu") else {
        panic!("dual-menu is a menu")
    };
    assert_eq!(dual.keys.len(), 3, "its own 0 is kept: {:?}", dual.keys);
    assert_eq!(dual.keys[0], ("0".to_string(), id("busy")));
    assert_eq!(dual.attempts.timeout, Duration::from_secs(7));
    assert_eq!(dual.fail, id("busy"));

    let NodeKind::Collect(c) = node("enter-id") else {
        panic!("enter-id is a collect")
    };
    assert_eq!(
        (c.min_digits, c.max_digits, c.terminator),
        (15, 18, Some('#'))
    );
    assert_eq!(
        (c.tag.as_str(), c.next, c.fail),
        ("id-number", id("check"), id("operator"))
    );

    let NodeKind::Survey(s) = node("rate") else {
        panic!("rate is a survey")
    };
    assert_eq!(s.tag, "satisfaction");

    let NodeKind::Branch { rules, otherwise } = node("check") else {
        panic!("check is a branch")
    };
    assert_eq!(rules[0].condition, Condition::Open(ScheduleId(0)));
    assert_eq!(rules[0].goto, id("to-tax"));
    assert_eq!(
        rules[1].condition,
        Condition::Tag {
            name: "topic".into(),
            value: "legal".into()
        }
    );
    assert_eq!(*otherwise, id("busy"));
    assert_eq!(
        *node("to-tax"),
        NodeKind::Transfer {
            subcentre: SubCentreId(0),
            fallback: id("operator")
        }
    );
    assert_eq!(
        *node("operator"),
        NodeKind::Queue {
            queue: crate::dialplan::model::QueueId(0),
            priority: 0,
            fallback: id("busy"),
            after: None
        }
    );
    let NodeKind::Play { barge_in, next, .. } = node("welcome") else {
        panic!("welcome plays")
    };
    assert_eq!((*barge_in, *next), (false, id("main-menu")));
    assert_eq!(plan.queues[0].display, "综合座席");
    assert_eq!(plan.subcentres[0].trunk.to_string(), "127.0.0.1:5070");
    assert!(plan.subcentres[0].always_open && plan.subcentres[0].number.is_none());
    assert!(plan.prompts.contains("retired/merged") && plan.prompts.contains("common/busy"));
}

#[test]
fn zero_to_operator_false_adds_no_key() {
    let shared = super::tests::SHARED.replace(
        "operator = \"operator\"\n",
        "operator = \"operator\"\nzero_to_operator = false\n",
    );
    let files = [("dp/12345.toml", MAIN), ("dp/shared.toml", shared.as_str())];
    let plan = load_in(Path::new("dp"), &files).expect("loads").dialplan;
    let NodeKind::Menu(main) = &plan.nodes[plan.node_ids["main-menu"].0 as usize].kind else {
        panic!("main-menu is a menu")
    };
    assert_eq!(main.keys.len(), 2);
}

#[test]
fn a_cycle_without_a_way_out_is_an_error_at_each_trapped_node() {
    let x = r#"[[numbers]]
number = "12399"
mode = "dual"
line = "x"
start = "loop-a"

[nodes.loop-a]
play = ["a"]
next = "loop-b"

[nodes.loop-b]
play = ["b"]
next = "loop-a"

[nodes.lead]
play = ["c"]
next = "loop-a"
"#;
    let trapped = "can never reach a person, a hang-up or a queue: callers would be trapped";
    assert_eq!(
        errors(x),
        [
            format!(
                "dp/x.toml:7:8: error: node `loop-a` {trapped} (cycle: loop-a → loop-b → loop-a)"
            ),
            format!(
                "dp/x.toml:11:8: error: node `loop-b` {trapped} (cycle: loop-b → loop-a → loop-b)"
            ),
            format!(
                "dp/x.toml:15:8: error: node `lead` {trapped} (it leads into the cycle loop-a → \
                 loop-b → loop-a)"
            ),
        ]
    );
}

#[test]
fn a_goto_cycle_that_never_waits_is_an_error() {
    let x = r#"[[numbers]]
number = "12399"
mode = "dual"
line = "x"
start = "spin-a"

[nodes.spin-a]
goto = "spin-b"

[nodes.spin-b]
branch = [{ open = "office", goto = "busy" }]
else = "spin-a"
"#;
    assert_eq!(
        errors(x),
        [
            "dp/x.toml:7:8: error: goto loop with no wait: spin-a → spin-b → spin-a; expected a \
          play, menu, collect or survey node in the loop"
        ]
    );
}

#[test]
fn the_operator_must_reach_a_person() {
    let shared = "[defaults]\noperator = \"operator\"\n\n[nodes.operator]\nplay = [\"sorry\"]\n\
                  next = \"bye\"\n\n[nodes.bye]\nhangup = [\"bye\"]\n";
    assert_eq!(
        errors_with(shared, ""),
        ["dp/shared.toml:2:12: error: `operator` node `operator` never reaches a person; expected a \
          queue or transfer node to be reachable from it"]
    );
}

#[test]
fn an_unreached_node_is_a_warning_and_the_set_still_loads() {
    let loaded = loads("[nodes.orphan]\nhangup = []\n");
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["dp/x.toml:1:8: warning: node `orphan` is not reached from any number"]
    );
    // Errors come with the warnings, in file order.
    let x = "[nodes.orphan]\nhangup = []\n\n[nodes.bad]\nhangup = 5\n";
    let all = load_in(
        Path::new("dp"),
        &[
            ("dp/12345.toml", MAIN),
            ("dp/shared.toml", super::tests::SHARED),
            ("dp/x.toml", x),
        ],
    )
    .unwrap_err();
    assert_eq!(
        all,
        [
            "dp/x.toml:1:8: warning: node `orphan` is not reached from any number",
            "dp/x.toml:4:8: warning: node `bad` is not reached from any number",
            "dp/x.toml:5:10: error: `hangup` must be a list of prompt names, e.g. \
             [\"12345/welcome\"], found an integer",
        ]
    );
}
