//! Calls placed by SIPp to the engine running the SHIPPED dialplans (dialplans/), with keys
//! sent as RFC 4733 events from SIPp's bundled pcaps; where each call ended up is read from the
//! engine's `call ended` log line.
//!
//! Until seats exist every queue hand-over finds no seat: the queue node's fallback (`all-busy`:
//! "lines busy", then BYE) runs, so each caller just waits for the engine's BYE.
//!
//! The skill-group routes (`to-*` nodes) depend on the clock: in office hours they queue for
//! the skill group, outside them `after-hours` hands the call to the general queue. The test
//! reads the shipped `office-hours` schedule with the engine's own loader and expects the branch
//! that schedule gives at the time of the call.

mod support;

use std::time::Duration;

use hotline::media::prompt::Prompt;
use support::rtp::RtpPeer;
use support::sipp::{
    calls_ended, invite_step, keys_scenario, press, write_scenario, CallEnded, Press, Sipp,
};
use support::{prompts_dir, shipped_dialplans, Engine};

/// A caller of an unknown number: it must hear the announcement as early media (183 with SDP;
/// the RTP goes to the test's own socket, `[$rtp_port]`), then get 404, which it ACKs on the
/// INVITE's branch.
fn unknown_number_scenario() -> String {
    let invite = invite_step(
        "13800000000",
        "z9hG4bK-[pid]-[call_number]-inv",
        "[$rtp_port]",
        " start_rtd=\"announce\"",
    );
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="unknown number: announcement as early media, then 404">
  <Global variables="rtp_port"/>
{invite}  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183">
    <action>
      <ereg regexp="application/sdp" search_in="hdr" header="Content-Type:" check_it="true" assign_to="ct"/>
      <ereg regexp="m=audio [0-9]+ RTP/AVP 8 101" search_in="body" check_it="true" assign_to="m"/>
    </action>
  </recv>
  <recv response="404" rtd="announce"/>
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
  <Reference variables="ct,m"/>
</scenario>
"#
    )
}

/// The one call's `call ended` record.
fn call_ended(engine: &Engine) -> CallEnded {
    let mut records = calls_ended(engine, 1, Duration::from_secs(10));
    assert_eq!(
        records.len(),
        1,
        "one call, one `call ended` line: {records:#?}"
    );
    records.remove(0)
}

/// Whether the shipped `office-hours` schedule is open now, by the engine's own loader and
/// schedule code (the shipped calendar and the `[clock]` offset included).
fn office_hours_open() -> bool {
    let loaded = hotline::dialplan::load::load_dir(&shipped_dialplans(), &prompts_dir())
        .unwrap_or_else(|errors| panic!("the shipped dialplans do not load: {errors:#?}"));
    let plan = loaded.dialplan;
    let schedule = plan
        .schedules
        .iter()
        .find(|s| s.name == "office-hours")
        .expect("a schedule office-hours in the shipped dialplans");
    let now =
        chrono::Utc::now().naive_utc() + chrono::Duration::seconds(i64::from(plan.utc_offset_s));
    schedule.is_open(&plan.calendars, now)
}

/// Where a skill-group route (`to-…` branch on office-hours) sends the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Staffed {
    /// In office hours: the skill group's queue node.
    Open,
    /// Outside them: after-hours, then the general (night desk) queue.
    Closed,
}

/// What the call record of a routed call must show.
struct Expect<'a> {
    dialled: &'a str,
    mode: &'a str,
    /// Nodes entered up to the route, in order (others may come between them).
    nodes: &'a [&'a str],
    /// Keys that must appear on the path, in this form (e.g. `main-menu[2]`).
    path_has: &'a [&'a str],
    /// Must not appear on the path.
    path_lacks: &'a [&'a str],
    tag: &'a str,
    /// The route's queue node and queue in office hours.
    skill_node: &'a str,
    skill_queue: &'a str,
}

/// Checks the record against `expect`; the route's branch must be the one the clock gave at the
/// start or at the end of the call (both, unless the schedule flipped meanwhile).
fn check_record(record: &CallEnded, expect: &Expect, staffed: &[Staffed]) {
    let line = &record.line;
    assert_eq!(
        record.get("why"),
        "FlowDone",
        "the dialplan hung up: {line}"
    );
    assert_eq!(record.get("dialled"), expect.dialled, "{line}");
    assert!(
        record.get("line").ends_with(&format!("({})", expect.mode)),
        "the line's merge mode is {}: {line}",
        expect.mode
    );
    let nodes = record.nodes();
    let mut at = 0;
    for node in expect.nodes {
        match nodes[at..].iter().position(|n| n == node) {
            Some(i) => at += i + 1,
            None => panic!("node {node} missing or out of order in the path: {line}"),
        }
    }
    let path = record.get("path");
    for part in expect.path_has {
        assert!(path.contains(part), "path lacks {part}: {line}");
    }
    for part in expect.path_lacks {
        assert!(!path.contains(part), "path must not contain {part}: {line}");
    }
    assert!(
        record.tags().contains(&expect.tag),
        "tags lack {}: {line}",
        expect.tag
    );
    assert_eq!(
        nodes.last().copied(),
        Some("all-busy"),
        "no seats yet: the queue fallback all-busy ends the call: {line}"
    );
    let skill_queue = format!("queue:{}=no-seat", expect.skill_queue);
    let taken = if nodes.contains(&expect.skill_node) {
        assert!(
            path.ends_with(&format!("{}[fallback]>all-busy", expect.skill_node)),
            "in office hours: the skill group's queue, its fallback: {line}"
        );
        assert_eq!(record.handovers(), [skill_queue.as_str()], "{line}");
        Staffed::Open
    } else {
        assert!(
            path.ends_with("after-hours>operator[fallback]>all-busy"),
            "outside office hours: after-hours, the general queue, its fallback: {line}"
        );
        assert_eq!(record.handovers(), ["queue:general=no-seat"], "{line}");
        Staffed::Closed
    };
    assert!(
        staffed.contains(&taken),
        "the route went {taken:?} but office-hours said {staffed:?}: {line}"
    );
}

/// Places one call to `number` pressing `keys`, waits for the engine's BYE, and returns the
/// call record with the schedule states seen before and after the call.
fn routed_call(number: &str, keys: &[Press]) -> (CallEnded, Vec<Staffed>) {
    let engine = Engine::start_on(&shipped_dialplans(), "", 200);
    let xml = keys_scenario(engine.dir(), keys);
    let scenario = write_scenario(engine.dir(), "keys.xml", &xml);
    let staffed = |open| match open {
        true => Staffed::Open,
        false => Staffed::Closed,
    };
    let before = staffed(office_hours_open());
    Sipp::new(&scenario, engine.sip)
        .service(number)
        .run_in(engine.dir())
        .assert_all_succeeded(1);
    let after = staffed(office_hours_open());
    let record = call_ended(&engine);
    let mut states = vec![before, after];
    states.dedup();
    (record, states)
}

#[test]
fn unified_12345_keys_through_the_menus_to_the_housing_fund_route() {
    // 2 during the welcome (barge-in: it becomes the main menu's first key), then 1 while the
    // housing menu prompt plays (menus are interruptible).
    let (record, staffed) = routed_call("12345", &[press(2000, '2'), press(3000, '1')]);
    check_record(
        &record,
        &Expect {
            dialled: "12345",
            mode: "unified",
            nodes: &[
                "check-priority",
                "welcome",
                "main-menu",
                "housing-menu",
                "topic-housing-fund",
                "to-housing-fund",
            ],
            path_has: &["welcome[2]", "housing-menu[1]"],
            path_lacks: &["[-]", "[!]"],
            tag: "topic=housing-fund",
            skill_node: "q-housing-fund",
            skill_queue: "housing-fund",
        },
        &staffed,
    );
}

#[test]
fn retired_12336_plays_its_notice_then_the_housing_menu() {
    // The notice (12336/notice, 5.06 s) is not interruptible: a 4 pressed during it is
    // ignored. 2 (不动产) comes after it, during the housing menu prompt (6.97 s).
    let (record, staffed) = routed_call("12336", &[press(1500, '4'), press(5000, '2')]);
    check_record(
        &record,
        &Expect {
            dialled: "12336",
            mode: "retired",
            nodes: &["housing-menu", "topic-real-estate", "to-natural-resources"],
            path_has: &["housing-menu[2]"],
            path_lacks: &["[4]", "welcome", "main-menu", "[-]", "[!]"],
            // The line's preset topic (land-resources) is refined by the menu choice.
            tag: "topic=real-estate",
            skill_node: "q-natural-resources",
            skill_queue: "natural-resources",
        },
        &staffed,
    );
    assert!(
        record.get("path").starts_with("housing-menu"),
        "a retired line starts at its own start node: {}",
        record.line
    );
}

#[test]
fn dual_12333_uses_its_own_menu_and_skill_group() {
    // The greeting (4.24 s) and menu prompt (7.03 s) play out; 2 (就业) is pressed while the
    // menu waits for a key (timeout 5 s).
    let (record, staffed) = routed_call("12333", &[press(13000, '2')]);
    check_record(
        &record,
        &Expect {
            dialled: "12333",
            mode: "dual",
            nodes: &[
                "hr-greeting",
                "hr-menu",
                "hr-employment",
                "to-social-security",
            ],
            path_has: &["hr-menu[2]"],
            path_lacks: &["welcome", "main-menu", "[-]", "[!]"],
            tag: "topic=employment",
            skill_node: "q-social-security",
            skill_queue: "social-security",
        },
        &staffed,
    );
}

#[test]
fn unknown_number_hears_the_announcement_as_early_media_then_404() {
    let announcement = Prompt::load(&prompts_dir().join("common/unknown-number.wav"))
        .expect("prompts/common/unknown-number.wav");
    // The whole announcement (to its last full 20 ms frame), in order.
    let whole = &announcement.pcma[..announcement.pcma.len() / 160 * 160];
    let engine = Engine::start_on(&shipped_dialplans(), "", 200);
    let rtp = RtpPeer::bind();
    let scenario = write_scenario(engine.dir(), "unknown.xml", &unknown_number_scenario());
    let call = Sipp::new(&scenario, engine.sip)
        .service("12399")
        .set("rtp_port", &rtp.port().to_string())
        .spawn_in(engine.dir());
    let (heard, _) = rtp.listen(Duration::from_secs(20), |h| h.contains(whole));
    call.wait().assert_all_succeeded(1);
    assert!(
        heard.contains(&whole[..8000]),
        "the announcement never reached the caller ({} bytes heard)",
        heard.payload.len()
    );
    assert!(
        heard.contains(whole),
        "the announcement was cut short: {} bytes heard, the prompt has {}",
        heard.payload.len(),
        whole.len()
    );

    let record = call_ended(&engine);
    assert_eq!(record.get("dialled"), "12399", "{}", record.line);
    assert_eq!(record.get("why"), "Refused(404)", "{}", record.line);
    assert_eq!(record.get("line"), "", "{}", record.line);
}
