//! Loader tests: syntax, keys, types, nodes, references and duplicates, each with the exact
//! message and place an admin sees.

use std::path::Path;

use super::{load_files, Loaded, PromptSource, SourceFile};
use crate::dialplan::Severity;

/// Valid shared settings every test set starts from.
pub(super) const SHARED: &str = r#"[defaults]
operator = "operator"
queue_fallback = "busy"

[queues.general]
name = "综合座席"
skill = "general"

[subcentres.tax]
name = "税务分中心"
trunk = "127.0.0.1:5070"

[schedules.office]
hours = ["mon-fri 08:30-12:00"]

[nodes.operator]
queue = "general"

[nodes.busy]
hangup = ["common/busy"]
"#;

/// A valid unified number with a welcome and a menu.
pub(super) const MAIN: &str = r#"[[numbers]]
number = "12345"
mode = "unified"
line = "12345 政务服务便民热线"
start = "welcome"

[nodes.welcome]
play = ["12345/welcome"]
next = "main-menu"

[nodes.main-menu]
menu = ["12345/main-menu"]
keys = { "1" = "operator", "9" = "main-menu" }
"#;

/// `files` as source files.
pub(super) fn sources(files: &[(&str, &str)]) -> Vec<SourceFile> {
    files
        .iter()
        .map(|(name, text)| SourceFile {
            name: name.to_string(),
            text: text.to_string(),
        })
        .collect()
}

/// Loads `files` with prompts unchecked; list files are relative to `base`.
pub(super) fn load_in(base: &Path, files: &[(&str, &str)]) -> Result<Loaded, Vec<String>> {
    load_files(&sources(files), base, PromptSource::Unchecked)
        .map_err(|e| e.iter().map(ToString::to_string).collect())
}

/// The errors (not warnings) of `dp/shared.toml` + `dp/12345.toml` + `dp/x.toml`.
pub(super) fn errors(x: &str) -> Vec<String> {
    errors_with(SHARED, x)
}

/// The errors (not warnings) of `shared` + `dp/12345.toml` + `dp/x.toml`.
pub(super) fn errors_with(shared: &str, x: &str) -> Vec<String> {
    let files = sources(&[
        ("dp/12345.toml", MAIN),
        ("dp/shared.toml", shared),
        ("dp/x.toml", x),
    ]);
    match load_files(&files, Path::new("dp"), PromptSource::Unchecked) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(ToString::to_string)
            .collect(),
    }
}

/// Loads `dp/shared.toml` + `dp/12345.toml` + `dp/x.toml`, which must have no errors.
pub(super) fn loads(x: &str) -> Loaded {
    let files = [
        ("dp/12345.toml", MAIN),
        ("dp/shared.toml", SHARED),
        ("dp/x.toml", x),
    ];
    load_in(Path::new("dp"), &files).unwrap_or_else(|e| panic!("refused:\n{}", e.join("\n")))
}

#[test]
fn the_base_set_loads() {
    let loaded = loads("");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn toml_syntax_errors_are_located_and_the_other_files_still_checked() {
    let files = [
        ("dp/a.toml", "[nodes.x]\nplay = [\"a\"\n"),
        ("dp/b.toml", "[nodes]\nx = 5\n"),
    ];
    let errs = load_in(Path::new("dp"), &files).unwrap_err();
    assert_eq!(
        errs,
        [
            "dp/a.toml:3:1: error: TOML syntax error: invalid array; expected `]`",
            "dp/b.toml:2:5: error: node `x` must be a table, found an integer",
        ]
    );
}

#[test]
fn unknown_keys_name_the_keys_expected() {
    let x = "[nodes.welcome-2]\npromt = [\"a\"]\nplay = [\"a\"]\nnext = \"main-menu\"\n\n\
             [defaultz]\n";
    assert_eq!(
        errors(x),
        [
            "dp/x.toml:2:1: error: unknown key `promt` in node `welcome-2`; expected one of: \
             play, barge_in, next, tags",
            "dp/x.toml:6:2: error: unknown key `defaultz` in the file; expected one of: clock, \
             numbering, unknown, defaults, numbers, nodes, calendars, schedules, lists, queues, \
             subcentres",
        ]
    );
}

#[test]
fn wrong_types_and_ranges_say_what_was_expected() {
    let x = r#"[nodes.m]
menu = ["a"]
keys = { "1" = "busy" }
timeout_s = "5"
inter_digit_s = 0
retries = 10
barge_in = true
"#;
    assert_eq!(
        errors(x),
        [
            "dp/x.toml:4:13: error: `timeout_s` must be a number of seconds (1..=600), found a string",
            "dp/x.toml:5:17: error: `inter_digit_s` must be a number of seconds (1..=600), found 0",
            "dp/x.toml:6:11: error: `retries` must be a number of attempts (1..=9), found 10",
            "dp/x.toml:7:1: error: unknown key `barge_in` in node `m`; expected one of: menu, keys, \
             fail, timeout_s, inter_digit_s, retries, invalid, no_input, tags",
        ]
    );
}

#[test]
fn a_node_has_exactly_one_action() {
    let x = "[nodes.a]\nnext = \"busy\"\n\n[nodes.b]\nplay = [\"x\"]\nmenu = [\"y\"]\nnext = \"busy\"\n";
    let expected = "expected exactly one of: play, menu, collect, survey, branch, goto, queue, \
                    transfer, callback, hangup";
    assert_eq!(
        errors(x),
        [
            format!("dp/x.toml:1:8: error: node `a` has no action; {expected}"),
            format!("dp/x.toml:6:1: error: node `b` has both `play` and `menu`; {expected}"),
        ]
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let x = "[nodes.c]\nhangup = []\ntags = { name = \"中文中文\", topic = 5 }\n";
    assert_eq!(
        errors(x),
        ["dp/x.toml:3:33: error: `topic` must be a string, found an integer"]
    );
}

#[test]
fn undefined_references_name_where_the_name_must_be_declared() {
    let x = r#"[nodes.a]
goto = "main-menu2"

[nodes.b]
queue = "housing"

[nodes.c]
transfer = "customs"

[nodes.d]
branch = [
  { open = "nights", goto = "busy" },
  { caller_in = "vips", goto = "busy" },
  { tag = "topic", is = "tax", goto = "nowhere" },
]
else = "busy"
"#;
    assert_eq!(
        errors(x),
        [
            "dp/x.toml:2:8: error: goto to undefined node `main-menu2`",
            "dp/x.toml:5:9: error: queue `housing` is not declared in any [queues.NAME]",
            "dp/x.toml:8:12: error: sub-centre `customs` is not declared in any [subcentres.NAME]",
            "dp/x.toml:12:12: error: schedule `nights` is not declared in any [schedules.NAME]",
            "dp/x.toml:13:17: error: list `vips` is not declared in any [lists.NAME]",
            "dp/x.toml:14:39: error: goto to undefined node `nowhere`",
        ]
    );
}

#[test]
fn names_declared_twice_name_both_places() {
    let x = "[nodes.welcome]\nhangup = []\n\n[[numbers]]\nnumber = \"12345\"\nmode = \"retired\"\n\
             line = \"x\"\nstart = \"busy\"\n\n[defaults]\n";
    assert_eq!(
        errors(x),
        [
            "dp/x.toml:1:8: error: node `welcome` is declared twice; first at dp/12345.toml:7:8",
            "dp/x.toml:5:10: error: number 12345 is declared twice; first at dp/12345.toml:2:10",
            "dp/x.toml:10:2: error: [defaults] is declared twice; first at dp/shared.toml:1:2",
        ]
    );
}

#[test]
fn a_file_with_three_problems_reports_all_three() {
    let x = r#"[nodes.a]
play = ["Bad Name"]
next = "b"

[nodes.b]
goto = "c"
colour = "red"

[nodes.c]
queue = "general"
priority = 10
"#;
    assert_eq!(
        errors(x),
        [
            "dp/x.toml:2:9: error: `Bad Name` is not a valid prompt name; expected lower-case \
             letters, digits, `_` and `-` in parts separated by `/`, e.g. \"12345/welcome\"",
            "dp/x.toml:7:1: error: unknown key `colour` in node `b`; expected one of: goto, tags",
            "dp/x.toml:11:12: error: `priority` must be a whole number 0..=9 (higher is served \
             first), found 10",
        ]
    );
}

#[test]
fn menu_collect_and_survey_values_are_checked() {
    let x = r#"[nodes.m]
menu = []
keys = { "1a" = "busy" }

[nodes.c]
collect = ["enter-id"]
tag = "id"
min_digits = 15
max_digits = 12
terminator = "x"
next = "busy"

[nodes.s]
survey = ["rate"]
tag = "Rating"
next = "busy"

[nodes.n]
collect = ["x"]
next = "busy"

[nodes.bad-name_]
hangup = []
"#;
    assert_eq!(
        errors(x),
        [
            "dp/x.toml:2:8: error: `menu` is empty; expected at least one prompt, e.g. [\"12345/welcome\"]",
            "dp/x.toml:3:10: error: menu key \"1a\" is not valid; expected 1 to 8 of the characters \
             0-9, * and #",
            "dp/x.toml:9:14: error: `max_digits` (12) must not be less than `min_digits` (15)",
            "dp/x.toml:10:14: error: `terminator` must be \"#\", \"*\" or \"\" (none), found \"x\"",
            "dp/x.toml:15:7: error: `tag` must be a tag name (lower-case letters, digits, `_` and \
             `-`), found \"Rating\"",
            "dp/x.toml:18:8: error: node `n` has no `tag`; expected the tag that receives the digits",
            "dp/x.toml:22:8: error: node name `bad-name_` is not valid; expected lower-case letters, \
             digits and `-`",
        ]
    );
}

#[test]
fn branch_rules_have_one_condition_and_a_goto() {
    let x = r#"[nodes.b]
branch = [
  { goto = "busy" },
  { open = "office", closed = "office", goto = "busy" },
  { tag = "topic", goto = "busy" },
  { open = "office", is = "x" },
]
else = "busy"
"#;
    let one_of = "expected exactly one of: open, closed, caller_in, caller_not_in, tag (with `is`)";
    assert_eq!(
        errors(x),
        [
            format!("dp/x.toml:3:3: error: rule 1 of node `b` has no condition; {one_of}"),
            format!("dp/x.toml:4:22: error: rule 2 of node `b` has both `open` and `closed`; {one_of}"),
            "dp/x.toml:5:3: error: rule 3 of node `b` has no `is`; expected the value the tag must have"
                .to_string(),
            "dp/x.toml:6:3: error: rule 4 of node `b` has no `goto`; expected the node to go to when \
             the rule holds"
                .to_string(),
            "dp/x.toml:6:22: error: `is` is only allowed with `tag`".to_string(),
        ]
    );
}

#[test]
fn missing_defaults_are_reported_at_the_node_that_needs_them() {
    let shared = "[queues.general]\n[subcentres.tax]\ntrunk = \"127.0.0.1:5070\"\n\
                  [nodes.operator]\nqueue = \"general\"\nfallback = \"bye\"\n\
                  [nodes.bye]\nhangup = []\n";
    let x = "[nodes.q]\nqueue = \"general\"\n\n[nodes.t]\ntransfer = \"tax\"\n\n\
             [nodes.c]\ncollect = [\"id\"]\ntag = \"id\"\nnext = \"bye\"\n";
    assert_eq!(
        errors_with(shared, x),
        [
            "dp/12345.toml:11:8: error: node `main-menu` needs key 0 to go to the operator but \
             [defaults] has no `operator`; expected `operator = \"NODE\"` in [defaults], a \"0\" \
             in `keys`, or `zero_to_operator = false`",
            "dp/12345.toml:11:8: error: node `main-menu` has no `fail` and [defaults] has no \
             `operator`; expected `fail = \"NODE\"` or `operator = \"NODE\"` in [defaults]",
            "dp/x.toml:1:8: error: node `q` has no `fallback` and [defaults] has no \
             `queue_fallback`; expected `fallback = \"NODE\"` or `queue_fallback = \"NODE\"` in \
             [defaults]",
            "dp/x.toml:4:8: error: node `t` has no `fallback` and [defaults] has no `operator`; \
             expected `fallback = \"NODE\"` or `operator = \"NODE\"` in [defaults]",
            "dp/x.toml:7:8: error: node `c` has no `fail` and [defaults] has no `operator`; \
             expected `fail = \"NODE\"` or `operator = \"NODE\"` in [defaults]",
        ]
    );
}

#[test]
fn tags_must_be_named_and_valued_properly() {
    let x = "[nodes.t]\nhangup = []\ntags = { Topic = \"x\" }\n\n[nodes.u]\nhangup = []\ntags = \"x\"\n";
    assert_eq!(
        errors(x),
        [
            "dp/x.toml:3:10: error: tag name `Topic` is not valid; expected lower-case letters, \
             digits, `_` and `-`",
            "dp/x.toml:7:8: error: `tags` must be a table of tag names and values, e.g. \
             { topic = \"legal-aid\" }, found a string",
        ]
    );
}
