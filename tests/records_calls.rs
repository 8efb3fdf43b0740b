//! Call records left by real calls: SIPp callers on loopback against the real engine, the
//! records read back from `<paths.data>/records.sqlite` through the real `hotline records` CLI.
//!
//! - What a record says about each kind of call: served by the dialplan, refused, cancelled
//!   while ringing, abandoned in the menus, hung up for a media timeout.
//! - Crash safety: an engine killed (SIGKILL) under load leaves one row per call it took, the
//!   calls that had ended finished and the others unfinished; the next start reports them and
//!   leaves them as they are, and new calls get new records.
//! - Details that are easy to get wrong: rows of running calls and refused calls name their
//!   hotline, and times are to the millisecond.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hotline::tickets::{CallRecord, SCHEMA_VERSION};
use support::records::{log_events, records, records_json, records_matching};
use support::rtp::RtpPeer;
use support::sipp::{invite_step, keys_scenario, press, wait_for_log, write_scenario, Sipp};
use support::Engine;

/// How long the engine rings before answering in the record-content test (so that a CANCEL
/// can arrive while it rings).
const RING_MS: i64 = 1000;

/// The first-flow dialplan's line.
const LINE: &str = "12345 first flow (test)";

/// The caller number of the SIPp scenarios under tests/sipp and of `keys_scenario`.
const CALLER: &str = "13800000000";

/// A caller dialling a number that does not exist: 404, ACKed.
fn refused_scenario() -> String {
    let invite = invite_step(
        "13800000000",
        "z9hG4bK-[pid]-[call_number]-inv",
        "[media_port]",
        "",
    );
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="unknown number: 404">
{invite}  <recv response="100" optional="true"/>
  <recv response="404"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-[pid]-[call_number]-inv;rport
      From: "Caller" <sip:13800000000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
</scenario>
"#
    )
}

/// The prefix of the load callers' numbers: call `n` of the run calls from `LOAD_CALLER` + n.
const LOAD_CALLER: &str = "1390000";

/// A caller of the crash test: its own number (`LOAD_CALLER` + call number), listens 1 to 2.5 s
/// (uniformly drawn, so calls end at different times), then hangs up.
fn load_scenario() -> String {
    let invite = invite_step("1390000[call_number]", "[branch]", "[media_port]", "");
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="callers of their own numbers hang up after 1 to 2.5 s">
{invite}  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: "Caller" <sip:1390000[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      [routes]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:1390000[call_number]@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <pause distribution="uniform" min="1000" max="2500"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: "Caller" <sip:1390000[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      [routes]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"#
    )
}

/// Milliseconds from `from` to `to`.
fn ms(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_milliseconds()
}

/// What every finished record of a first-flow call must satisfy (no seats, queues, transfers or
/// tags in that dialplan), and one record per call: `calls` records with distinct ids (UUIDs)
/// and distinct caller Call-IDs. Returns the records by their caller's SIP Call-ID.
fn check_finished(records: &[CallRecord], calls: usize) -> HashMap<String, &CallRecord> {
    assert_eq!(
        records.len(),
        calls,
        "one record per call placed: {records:#?}"
    );
    let ids: HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), calls, "record ids are unique: {records:#?}");
    let mut by_call_id = HashMap::new();
    for r in records {
        assert_eq!(r.schema, SCHEMA_VERSION, "{r:#?}");
        assert!(uuid::Uuid::parse_str(&r.id).is_ok(), "id is a UUID: {r:#?}");
        let end = r.end.as_ref().unwrap_or_else(|| panic!("finished: {r:#?}"));
        assert!(!end.by.is_empty() && !end.cause.is_empty(), "{r:#?}");
        let ended = r.times.ended.unwrap_or_else(|| panic!("ended set: {r:#?}"));
        assert!(ended >= r.times.arrived, "ended >= arrived: {r:#?}");
        assert!(r.wait_s >= 0.0 && r.talk_s >= 0.0, "{r:#?}");
        assert!(
            (r.wait_s * 1000.0 - ms(r.times.arrived, ended) as f64).abs() <= 1.0,
            "no person answered: wait_s is arrival to end: {r:#?}"
        );
        if let Some(answered) = r.times.answered {
            assert!(
                r.times.arrived <= answered && answered <= ended,
                "answered between arrival and end: {r:#?}"
            );
        }
        for pair in r.navigation.windows(2) {
            assert!(pair[0].at <= pair[1].at, "navigation in order: {r:#?}");
        }
        for step in &r.navigation {
            let answered = r.times.answered.expect("navigation only after the answer");
            assert!(
                answered <= step.at && step.at <= ended,
                "navigation between answer and end: {r:#?}"
            );
        }
        assert_eq!(r.times.person_answered, None, "no seats yet: {r:#?}");
        assert_eq!(r.times.queued, None, "{r:#?}");
        assert_eq!(r.talk_s, 0.0, "{r:#?}");
        assert!(r.queues.is_empty() && r.transfers.is_empty(), "{r:#?}");
        assert!(r.recordings.is_empty() && r.tags.is_empty(), "{r:#?}");
        assert_eq!((r.survey, &r.callback), (None, &None), "{r:#?}");
        assert_eq!(r.caller.number, CALLER, "{r:#?}");
        assert_eq!(r.sip_call_ids.len(), 1, "one leg: {r:#?}");
        let previous = by_call_id.insert(r.sip_call_ids[0].clone(), r);
        assert!(previous.is_none(), "one record per Call-ID: {records:#?}");
    }
    by_call_id
}

/// The record of the call with SIP Call-ID `call_id`.
fn record_of<'a>(by_call_id: &HashMap<String, &'a CallRecord>, call_id: &str) -> &'a CallRecord {
    by_call_id
        .get(call_id)
        .copied()
        .unwrap_or_else(|| panic!("no record with Call-ID {call_id}: {by_call_id:#?}"))
}

/// `(node, input)` of each navigation step.
fn walk(record: &CallRecord) -> Vec<(&str, Option<&str>)> {
    record
        .navigation
        .iter()
        .map(|s| (s.node.as_str(), s.input.as_deref()))
        .collect()
}

/// `(by, cause, sip_status)` of a finished record.
fn end_of(record: &CallRecord) -> (&str, &str, Option<u16>) {
    let end = record.end.as_ref().expect("a finished record");
    (end.by.as_str(), end.cause.as_str(), end.sip_status)
}

#[test]
fn each_call_leaves_one_record_saying_how_it_went() {
    let mut engine = Engine::start(&format!("[answer]\nring_ms = {RING_MS}\n"));
    let dir = engine.dir().to_path_buf();
    let keys = write_scenario(
        &dir,
        "press-7.xml",
        &keys_scenario(&dir, &[press(1000, '7')]),
    );
    let refused = write_scenario(&dir, "refused.xml", &refused_scenario());
    // Each caller has Call-IDs of its own (`-cid_str`), to find its record by.
    let calls = vec![
        // Presses 7 a second after the answer: the dialplan reads it back and hangs up.
        Sipp::new(&keys, engine.sip)
            .args(&["-cid_str", "key-%u@records"])
            .spawn_in(&dir),
        // A number the dialplan does not know.
        Sipp::new(&refused, engine.sip)
            .service("99999")
            .args(&["-cid_str", "unknown-%u@records"])
            .spawn_in(&dir),
        // Gives up while the engine rings.
        Sipp::new("uac_cancel.xml", engine.sip)
            .args(&["-cid_str", "cancel-%u@records"])
            .spawn_in(&dir),
        // Hangs up half a second into the greeting.
        Sipp::new("uac_caller_bye.xml", engine.sip)
            .args(&["-d", "500", "-cid_str", "abandon-%u@records"])
            .spawn_in(&dir),
    ];
    for call in calls {
        call.wait().assert_all_succeeded(1);
    }
    // Shutdown waits until every record is on disk.
    let status = engine.terminate().expect("the engine exits after SIGTERM");
    assert!(status.success(), "clean exit, got {status:?}");

    let stored = records(&engine.config_path());
    let by_call_id = check_finished(&stored, 4);

    let key = record_of(&by_call_id, "key-1@records");
    assert_eq!(end_of(key), ("engine", "dialplan", None), "{key:#?}");
    assert_eq!(key.hotline.as_deref(), Some(LINE), "{key:#?}");
    assert_eq!(key.merge_mode.as_deref(), Some("unified"), "{key:#?}");
    assert_eq!(key.dialled, "12345", "{key:#?}");
    assert_eq!(
        key.caller.display_name.as_deref(),
        Some("Caller"),
        "{key:#?}"
    );
    let answered = key.times.answered.expect("answered");
    assert!(
        ms(key.times.arrived, answered) >= RING_MS - 50,
        "answered after ringing {RING_MS} ms: {key:#?}"
    );
    assert_eq!(
        walk(key),
        [
            ("greeting", None),
            ("greeting", Some("7")),
            ("pressed-7", None)
        ],
        "{key:#?}"
    );
    assert!(key.times.navigation_ended.is_some(), "{key:#?}");

    let unknown = record_of(&by_call_id, "unknown-1@records");
    assert_eq!(
        end_of(unknown),
        ("engine", "refused", Some(404)),
        "{unknown:#?}"
    );
    assert_eq!(unknown.dialled, "99999", "{unknown:#?}");
    assert_eq!(
        (&unknown.hotline, &unknown.merge_mode),
        (&None, &None),
        "{unknown:#?}"
    );
    assert_eq!(unknown.times.answered, None, "{unknown:#?}");
    assert!(unknown.navigation.is_empty(), "{unknown:#?}");

    let cancel = record_of(&by_call_id, "cancel-1@records");
    assert_eq!(
        end_of(cancel),
        ("caller", "cancel", Some(487)),
        "{cancel:#?}"
    );
    assert_eq!(cancel.times.answered, None, "{cancel:#?}");
    assert_eq!(cancel.hotline.as_deref(), Some(LINE), "{cancel:#?}");
    assert!(cancel.navigation.is_empty(), "never answered: {cancel:#?}");
    assert!(
        cancel.wait_s * 1000.0 < RING_MS as f64,
        "cancelled while ringing: {cancel:#?}"
    );

    let abandoned = record_of(&by_call_id, "abandon-1@records");
    assert_eq!(end_of(abandoned), ("caller", "bye", None), "{abandoned:#?}");
    assert_eq!(abandoned.hotline.as_deref(), Some(LINE), "{abandoned:#?}");
    assert_eq!(abandoned.times.person_answered, None, "{abandoned:#?}");
    let answered = abandoned.times.answered.expect("answered");
    let ended = abandoned.times.ended.expect("ended");
    assert!(
        ms(answered, ended) >= 400,
        "the caller listened ~500 ms: {abandoned:#?}"
    );
    assert_eq!(walk(abandoned), [("greeting", None)], "{abandoned:#?}");

    // The log names the record of every call that got past the INVITE.
    let logged: HashSet<String> = log_events(&engine.log, "call ended")
        .iter()
        .map(|e| e.get("record").to_string())
        .collect();
    let expected: HashSet<String> = [key, cancel, abandoned]
        .iter()
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(logged, expected, "`call ended` lines name the records");
}

#[test]
fn a_silent_caller_leaves_a_media_timeout_record() {
    let mut engine = Engine::start("[media]\nmedia_timeout_s = 2\n");
    // The caller's RTP goes to a port that never sends.
    let rtp = RtpPeer::bind();
    Sipp::new("uac_media_timeout.xml", engine.sip)
        .set("rtp_port", &rtp.port().to_string())
        .args(&["-cid_str", "silent-%u@records"])
        .run_in(engine.dir())
        .assert_all_succeeded(1);
    let status = engine.terminate().expect("the engine exits after SIGTERM");
    assert!(status.success(), "clean exit, got {status:?}");

    let stored = records(&engine.config_path());
    let by_call_id = check_finished(&stored, 1);
    let silent = record_of(&by_call_id, "silent-1@records");
    assert_eq!(
        end_of(silent),
        ("engine", "media-timeout", None),
        "{silent:#?}"
    );
    assert_eq!(silent.hotline.as_deref(), Some(LINE), "{silent:#?}");
    let answered = silent.times.answered.expect("answered");
    let ended = silent.times.ended.expect("ended");
    let silence = ms(answered, ended);
    assert!(
        (1900..10_000).contains(&silence),
        "hung up ~2 s after the answer, got {silence} ms: {silent:#?}"
    );
    // Still in the greeting (it is longer than the timeout): no key, no timeout step.
    assert_eq!(walk(silent), [("greeting", None)], "{silent:#?}");
}

/// Calls whose `incoming call` line was written this long before the kill must have a row:
/// the row is committed by the writer thread just after the line is logged, and a kill between
/// the two (a window of about a millisecond) legitimately leaves the call without one.
const ROW_WINDOW_MS: i64 = 250;

/// Calls whose `call ended` line was written this long before the kill must be finished.
const FINISHED_WINDOW_MS: i64 = 1000;

#[test]
fn a_killed_engine_leaves_every_call_finished_or_unfinished_and_the_next_run_reports_them() {
    let mut engine = Engine::start("");
    let dir = engine.dir().to_path_buf();
    let load = write_scenario(&dir, "load.xml", &load_scenario());
    // 60 calls at 20 a second, each ending 1 to 2.5 s after its answer.
    let sipp = Sipp::new(&load, engine.sip)
        .args(&["-m", "60", "-r", "20", "-l", "60"])
        .args(&["-cid_str", "crash-%u@records"])
        .spawn_in(&dir);
    let ended_lines = wait_for_log(&engine, "call ended", 15, Duration::from_secs(30));
    assert!(
        ended_lines.len() >= 15,
        "15 calls never ended ({} did)",
        ended_lines.len()
    );
    let killed_at = engine.kill_hard();
    // Nothing more may reach the engine's port, nor the next engine on it.
    drop(sipp);

    let incoming = log_events(&engine.log, "incoming call");
    let ended = log_events(&engine.log, "call ended");
    let rows = records(&engine.config_path());
    let caller_of_call: HashMap<&str, &str> = incoming
        .iter()
        .map(|e| (e.get("call"), e.get("caller")))
        .collect();
    assert_eq!(caller_of_call.len(), incoming.len(), "call numbers unique");
    let row_of_caller: HashMap<&str, &CallRecord> =
        rows.iter().map(|r| (r.caller.number.as_str(), r)).collect();
    assert_eq!(row_of_caller.len(), rows.len(), "one row per caller");
    let ids: HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "row ids unique");

    // Every row is a call the engine took, finished or unfinished, and nothing in between.
    for row in &rows {
        let n = row
            .caller
            .number
            .strip_prefix(LOAD_CALLER)
            .unwrap_or_else(|| panic!("a load caller: {row:#?}"));
        assert_eq!(
            row.sip_call_ids,
            [format!("crash-{n}@records")],
            "the caller's Call-ID: {row:#?}"
        );
        assert!(
            caller_of_call.values().any(|c| *c == row.caller.number),
            "a row for a call the engine never logged: {row:#?}"
        );
        assert_eq!(row.end.is_some(), row.times.ended.is_some(), "{row:#?}");
        assert_eq!(row.dialled, "12345", "{row:#?}");
    }

    // Every call the engine logged has a row (but those it took in the last moment).
    let mut too_late = Vec::new();
    for event in &incoming {
        let caller = event.get("caller");
        if !row_of_caller.contains_key(caller) {
            assert!(
                ms(event.at, killed_at) < ROW_WINDOW_MS,
                "call {} ({caller}) arrived {} ms before the kill and has no row:\n{}",
                event.get("call"),
                ms(event.at, killed_at),
                event.line
            );
            too_late.push(event.line.clone());
        }
    }
    if !too_late.is_empty() {
        eprintln!("calls taken in the last {ROW_WINDOW_MS} ms before the kill ({killed_at}) without a row: {too_late:#?}");
    }

    // Calls that had ended are finished (those ended a moment before the kill may not be
    // yet); every finished row is a call the log says ended, as the log says it ended.
    let ended_by_record: HashMap<&str, &support::records::LogEvent> =
        ended.iter().map(|e| (e.get("record"), e)).collect();
    for event in &ended {
        let caller = caller_of_call[event.get("call")];
        let row = row_of_caller
            .get(caller)
            .unwrap_or_else(|| panic!("an ended call without a row:\n{}", event.line));
        assert_eq!(
            row.id,
            event.get("record"),
            "the logged record id: {row:#?}"
        );
        if ms(event.at, killed_at) >= FINISHED_WINDOW_MS {
            assert!(
                row.end.is_some(),
                "ended {} ms before the kill but unfinished:\n{}\n{row:#?}",
                ms(event.at, killed_at),
                event.line
            );
        }
    }
    for row in rows.iter().filter(|r| r.end.is_some()) {
        let event = ended_by_record
            .get(row.id.as_str())
            .unwrap_or_else(|| panic!("finished but no `call ended` line: {row:#?}"));
        assert_eq!(event.get("why"), "CallerHungUp", "{}", event.line);
        assert_eq!(end_of(row), ("caller", "bye", None), "{row:#?}");
        assert!(row.times.answered.is_some(), "{row:#?}");
        assert_eq!(row.hotline.as_deref(), Some(LINE), "{row:#?}");
        assert_eq!(row.merge_mode.as_deref(), Some("unified"), "{row:#?}");
    }
    let unfinished: Vec<&CallRecord> = rows.iter().filter(|r| r.end.is_none()).collect();
    let finished = rows.len() - unfinished.len();
    assert!(
        finished >= 1 && !unfinished.is_empty(),
        "both kinds: {finished} finished, {} unfinished",
        unfinished.len()
    );
    eprintln!(
        "killed with {} calls logged, {} ended; store: {finished} finished, {} unfinished rows",
        incoming.len(),
        ended.len(),
        unfinished.len()
    );

    // The next run on the same data says how many calls were cut off and leaves their rows.
    let mut engine = engine.restart();
    let warning = "calls were in progress when the engine last stopped: their records stay \
                   unfinished";
    wait_for_log(&engine, warning, 1, Duration::from_secs(10));
    let warnings = log_events(&engine.log, warning);
    assert_eq!(
        warnings.len(),
        1,
        "one warning at start:\n{}",
        engine.log_text()
    );
    assert_eq!(
        warnings[0].get("calls"),
        unfinished.len().to_string(),
        "{}",
        warnings[0].line
    );
    assert_eq!(
        records(&engine.config_path()),
        rows,
        "starting again changes no row"
    );

    // A new call gets a new record; the old rows stay as they were.
    Sipp::new("uac_caller_bye.xml", engine.sip)
        .args(&["-d", "300", "-cid_str", "after-restart-%u@records"])
        .run_in(engine.dir())
        .assert_all_succeeded(1);
    let status = engine.terminate().expect("the engine exits after SIGTERM");
    assert!(status.success(), "clean exit, got {status:?}");
    let after = records(&engine.config_path());
    assert_eq!(after.len(), rows.len() + 1, "one more record");
    let new: Vec<&CallRecord> = after
        .iter()
        .filter(|r| !ids.contains(r.id.as_str()))
        .collect();
    assert_eq!(new.len(), 1, "one new id: {new:#?}");
    let new = new[0];
    assert_eq!(new.sip_call_ids, ["after-restart-1@records"], "{new:#?}");
    assert_eq!(end_of(new), ("caller", "bye", None), "{new:#?}");
    assert_eq!(new.caller.number, CALLER, "{new:#?}");
    for old in &rows {
        let now = after
            .iter()
            .find(|r| r.id == old.id)
            .unwrap_or_else(|| panic!("row gone after the restart: {old:#?}"));
        assert_eq!(now, old, "rows of the killed run stay as they were");
    }
}

/// Waits (polling, bounded by `within`) until `done` holds; panics naming `what` if it never does.
fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_unfinished_row_names_its_hotline() {
    let mut engine = Engine::start("");
    let dir = engine.dir().to_path_buf();
    let waits = write_scenario(&dir, "waits.xml", &keys_scenario(&dir, &[]));
    let call = Sipp::new(&waits, engine.sip)
        .args(&["-cid_str", "cut-off-%u@records"])
        .spawn_in(&dir);
    let config = engine.config_path();
    wait_until(Duration::from_secs(20), "the call's row", || {
        records(&config).len() == 1
    });
    engine.kill_hard();
    drop(call);

    let rows = records(&config);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let row = &rows[0];
    assert_eq!(row.end, None, "unfinished: {row:#?}");
    assert_eq!(row.sip_call_ids, ["cut-off-1@records"], "{row:#?}");
    assert_eq!(row.dialled, "12345", "{row:#?}");
    // The number was routed before the row was written: its line is known.
    assert_eq!(row.hotline.as_deref(), Some(LINE), "{row:#?}");
    assert_eq!(row.merge_mode.as_deref(), Some("unified"), "{row:#?}");
    assert_eq!(
        records_matching(&config, &["--hotline", LINE]).len(),
        1,
        "listed under its hotline"
    );
}

#[test]
fn record_times_are_rfc3339_to_the_millisecond() {
    let mut engine = Engine::start("");
    Sipp::new("uac_caller_bye.xml", engine.sip)
        .args(&["-d", "300"])
        .run_in(engine.dir())
        .assert_all_succeeded(1);
    let status = engine.terminate().expect("the engine exits after SIGTERM");
    assert!(status.success(), "clean exit, got {status:?}");

    let json = records_json(&engine.config_path(), &[]);
    let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let mut times = Vec::new();
    timestamps(&value, "", &mut times);
    // arrived, answered, navigation_ended, ended and the greeting's step.
    assert!(times.len() >= 5, "{times:?}\n{json}");
    for (path, text) in &times {
        let fraction = text
            .strip_suffix('Z')
            .unwrap_or_else(|| panic!("{path} = {text}: in UTC"))
            .split_once('.')
            .map_or("", |(_, f)| f);
        assert!(
            fraction.len() <= 3,
            "{path} = {text}: more than millisecond precision\n{json}"
        );
    }
}

#[test]
fn a_call_refused_for_its_offer_names_its_hotline() {
    let mut engine = Engine::start("");
    Sipp::new("uac_no_common_codec.xml", engine.sip)
        .args(&["-cid_str", "g729-%u@records"])
        .run_in(engine.dir())
        .assert_all_succeeded(1);
    let status = engine.terminate().expect("the engine exits after SIGTERM");
    assert!(status.success(), "clean exit, got {status:?}");

    let stored = records(&engine.config_path());
    let by_call_id = check_finished(&stored, 1);
    let refused = record_of(&by_call_id, "g729-1@records");
    assert_eq!(
        end_of(refused),
        ("engine", "refused", Some(488)),
        "{refused:#?}"
    );
    assert_eq!(refused.dialled, "12345", "{refused:#?}");
    // 12345 is a declared hotline: the refusal was for the codecs, not the number.
    assert_eq!(refused.hotline.as_deref(), Some(LINE), "{refused:#?}");
    assert_eq!(
        refused.merge_mode.as_deref(),
        Some("unified"),
        "{refused:#?}"
    );
}

/// Every string in `value` that reads as an RFC 3339 time, with its path.
fn timestamps(value: &serde_json::Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::String(text) if DateTime::parse_from_rfc3339(text).is_ok() => {
            out.push((path.to_string(), text.clone()));
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                timestamps(item, &format!("{path}[{i}]"), out);
            }
        }
        serde_json::Value::Object(fields) => {
            for (name, item) in fields {
                timestamps(item, &format!("{path}.{name}"), out);
            }
        }
        _ => {}
    }
}
