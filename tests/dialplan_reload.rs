//! Reloading the dialplans under load: `hotline reload` and SIGHUP swap the version new calls
//! get, calls in progress finish on theirs, and a broken version is refused while the running
//! one keeps serving.
//!
//! The dialplan is the test's own, in a temp dir: a 12345 menu (the flat `greeting` prompt,
//! 14 s, with a long timeout) whose key 1 reaches a hang-up node named after the version
//! (`v1-bye`, `v2-bye`, ...), so each call's `call ended` record shows which version it ran on.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::sipp::{
    calls_ended, keys_scenario, press, wait_for_log, write_scenario, CallEnded, Sipp,
};
use support::{hotline_reload as reload, Engine};

/// Calls held in the menu while the dialplans are reloaded.
const CALLS: u64 = 50;

/// Settings shared by every version (another file of the set, to reload a set, not a file).
const SHARED: &str = r#"# Reload test: shared settings.
[defaults]
zero_to_operator = false   # no operator node in this small set
timeout_s = 30
retries = 1
"#;

/// Version `v` of 12345.toml: the menu's key 1 leads to `v{v}-bye`.
fn version(v: u32) -> String {
    format!(
        r#"# Reload test: version {v}.
[[numbers]]
number = "12345"
mode = "unified"
line = "12345 reload test v{v}"
start = "menu"

[nodes.menu]
menu = ["greeting"]
keys = {{ "1" = "v{v}-bye" }}
fail = "no-key"

[nodes.v{v}-bye]
hangup = ["thanks-goodbye"]

[nodes.no-key]
hangup = ["no-input"]
"#
    )
}

/// A broken version: key 1 leads to a goto to a node that does not exist.
const BROKEN: &str = r#"# Reload test: version 3, broken.
[[numbers]]
number = "12345"
mode = "unified"
line = "12345 reload test v3"
start = "menu"

[nodes.menu]
menu = ["greeting"]
keys = { "1" = "v3-hop" }
fail = "no-key"

[nodes.v3-hop]
goto = "v3-nowhere"

[nodes.no-key]
hangup = ["no-input"]
"#;

/// Replaces `dir/name` in one step (write aside, rename), as an admin's deploy should.
fn install(dir: &Path, name: &str, text: &str) {
    let aside = dir.join(format!(".{name}.new"));
    fs::write(&aside, text).expect("write dialplan");
    fs::rename(&aside, dir.join(name)).expect("install dialplan");
}

/// 1-based line and column where `needle` starts in `text`.
fn position(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).expect("needle in text");
    let line = text[..at].matches('\n').count() + 1;
    let column = at - text[..at].rfind('\n').map_or(0, |nl| nl + 1) + 1;
    (line, column)
}

/// The engine's log as plain lines (colour codes removed).
fn plain_log(engine: &Engine) -> Vec<String> {
    let text = engine.log_text();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut plain = String::with_capacity(line.len());
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(|c| c.is_ascii_alphabetic());
            } else {
                plain.push(c);
            }
        }
        out.push(plain);
    }
    out
}

/// Index of the first log line matching `pred`.
fn first_line(log: &[String], pred: impl Fn(&str) -> bool) -> Option<usize> {
    log.iter().position(|l| pred(l))
}

/// One new call to 12345 that presses 1 during the menu prompt and waits for the BYE; returns
/// its `call ended` record (the `nth` in the log, counting from 1).
fn new_call(engine: &Engine, scenario: &str, nth: usize) -> CallEnded {
    Sipp::new(scenario, engine.sip)
        .run_in(engine.dir())
        .assert_all_succeeded(1);
    let mut records = calls_ended(engine, nth, Duration::from_secs(10));
    assert_eq!(records.len(), nth, "{records:#?}");
    records.pop().expect("the new call's record")
}

fn assert_ended_on(record: &CallEnded, v: u32) {
    assert_eq!(record.get("why"), "FlowDone", "{}", record.line);
    assert_eq!(
        record.get("path"),
        format!("menu[1]>v{v}-bye"),
        "{}",
        record.line
    );
    assert_eq!(
        record.get("line"),
        format!("12345 reload test v{v} (unified)"),
        "{}",
        record.line
    );
}

#[test]
fn reload_swaps_the_dialplan_for_new_calls_and_refuses_a_broken_one() {
    let plans = tempfile::tempdir().expect("dialplan dir");
    install(plans.path(), "shared.toml", SHARED);
    install(plans.path(), "12345.toml", &version(1));
    let engine = Engine::start_on(plans.path(), "", 200);

    // 50 calls at once; each waits 4 s in the menu, presses 1 and waits for the BYE.
    let held = keys_scenario(engine.dir(), &[press(4000, '1')]);
    let held = write_scenario(engine.dir(), "held.xml", &held);
    let calls = CALLS.to_string();
    let running = Sipp::new(&held, engine.sip)
        .args(&["-m", &calls, "-l", &calls, "-r", &calls])
        .spawn_in(engine.dir());
    let arrived = wait_for_log(
        &engine,
        "incoming call",
        CALLS as usize,
        Duration::from_secs(20),
    );
    assert_eq!(arrived.len(), CALLS as usize, "not all calls arrived");

    // Version 2 while they are in the menu.
    install(plans.path(), "12345.toml", &version(2));
    let (code, out) = reload(&engine);
    assert_eq!(code, Some(0), "reload of version 2: {out}");
    assert!(out.starts_with("ok: "), "reload of version 2: {out}");

    // A broken version 3: refused with the exact place and reason; version 2 keeps serving.
    install(plans.path(), "12345.toml", BROKEN);
    let (line, column) = position(BROKEN, "\"v3-nowhere\"");
    let error = format!(
        "{}:{line}:{column}: error: goto to undefined node `v3-nowhere`",
        plans.path().join("12345.toml").display()
    );
    let (code, out) = reload(&engine);
    assert_eq!(code, Some(1), "reload of the broken version 3: {out}");
    assert!(
        out.starts_with("refused: "),
        "reload of the broken version 3: {out}"
    );
    assert!(
        out.lines().any(|l| l == error),
        "the refusal must name the place: want `{error}` in:\n{out}"
    );

    // Every call held in the menu finished on version 1.
    running.wait().assert_all_succeeded(CALLS);
    let records = calls_ended(&engine, CALLS as usize, Duration::from_secs(10));
    assert_eq!(records.len(), CALLS as usize, "{records:#?}");
    for record in &records {
        assert_ended_on(record, 1);
    }
    // The reloads really happened while every call was in the menu: after all arrived, before
    // any key.
    let log = plain_log(&engine);
    let reloaded = first_line(&log, |l| l.contains("dialplans reloaded")).expect("reload logged");
    let refused =
        first_line(&log, |l| l.contains("dialplan reload refused")).expect("refusal logged");
    let last_arrival = log
        .iter()
        .rposition(|l| l.contains("incoming call"))
        .expect("arrivals logged");
    let first_key =
        first_line(&log, |l| l.contains("hotline::call::switch: key ")).expect("keys logged");
    assert!(
        last_arrival < reloaded && reloaded < refused && refused < first_key,
        "arrivals (to line {last_arrival}), reload ({reloaded}), refusal ({refused}), first key \
         ({first_key}) out of order"
    );
    assert!(
        log[refused + 1..].iter().any(|l| l.ends_with(&error)),
        "the engine logs the error too"
    );

    // A call placed after both reloads runs on version 2.
    let quick = keys_scenario(engine.dir(), &[press(1000, '1')]);
    let quick = write_scenario(engine.dir(), "quick.xml", &quick);
    assert_ended_on(&new_call(&engine, &quick, CALLS as usize + 1), 2);
}

#[test]
fn sighup_reloads_the_dialplans() {
    let plans = tempfile::tempdir().expect("dialplan dir");
    install(plans.path(), "shared.toml", SHARED);
    install(plans.path(), "12345.toml", &version(1));
    let engine = Engine::start_on(plans.path(), "", 200);
    let quick = keys_scenario(engine.dir(), &[press(1000, '1')]);
    let quick = write_scenario(engine.dir(), "quick.xml", &quick);
    assert_ended_on(&new_call(&engine, &quick, 1), 1);

    install(plans.path(), "12345.toml", &version(4));
    let pid = engine.pid().expect("the engine runs");
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success(), "kill -HUP {pid}: {status}");
    let reloaded = wait_for_log(&engine, "dialplans reloaded", 1, Duration::from_secs(10));
    assert_eq!(reloaded.len(), 1, "no reload logged after SIGHUP");

    assert_ended_on(&new_call(&engine, &quick, 2), 4);
}
