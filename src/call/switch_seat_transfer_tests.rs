//! Three-way and consult transfers to another seat (`seat:ID`) or to a ready seat of a skill
//! group (`queue:NAME`), in virtual time: the other seat's phone rings on the call's third leg,
//! the seat is held on-call in the ACD and released to wrap-up on every way out, and when the
//! first seat leaves, the seat brought in has the call. Every assertion is about what someone
//! would observe: the desk's answers and seat states, the SIP on the wire, the media plane's
//! commands and the call record.

use super::switch_seat_tests::{
    at_work, cancelled, picks_up, rings, talking, transfer, SeatPhone, EXPERT_SEAT, PLAN,
    TRANSFER_SEATS,
};
use super::switch_tests::{config, plan, secs, Phone, Sim};
use super::switch_transfer_tests::chain;
use crate::desk::{DeskCommand, TransferKind};
use crate::sip::fields::Fields;
use crate::sip::message::{HeaderName, Request};
use crate::tickets::record::TransferAttempt;

/// [`PLAN`] (12345 to `general`: 10 s of ringing, 30 s of wrap-up) with a `housing` group.
fn seat_transfer_plan() -> String {
    format!(
        "{PLAN}
[queues.housing]
name = \"住房\"
skill = \"housing\"
ring_timeout_s = 15
wrap_up_s = 20
announce_every_s = 0
"
    )
}

/// a1004, a second `housing` seat at a1002's level.
const SECOND_HOUSING_SEAT: &str = r#"
[seats.a1004]
name = "刘洋"
username = "1004"
password = "secret-1004"
token = "token-a1004-0123456789"
skills = { housing = 5 }
"#;

/// A caller talking to a1001, and the expert e2001 ready: the caller, a1001's phone and the
/// INVITE it answered, the expert's phone.
fn with_expert_ready() -> (Sim, Phone, SeatPhone, Request, SeatPhone) {
    let mut sim = Sim::with_plan(config(), plan(&[("12345.toml", &seat_transfer_plan())]));
    sim.load_seats(&format!(
        "{TRANSFER_SEATS}{SECOND_HOUSING_SEAT}{EXPERT_SEAT}"
    ));
    let mut caller = Phone::new(7);
    let mut phone = SeatPhone::new(11, "1001");
    let invite = talking(&mut sim, &mut caller, &mut phone);
    let mut expert = SeatPhone::new(21, "2001");
    at_work(&mut sim, &mut expert, "e2001");
    (sim, caller, phone, invite, expert)
}

/// The seats' states as the desk shows them: `a1001 on-call`...
fn states(sim: &mut Sim) -> Vec<String> {
    let seats = sim.desk_as("a1001", DeskCommand::Seats).expect("seats");
    let seats = seats.as_array().cloned().unwrap_or_default();
    seats
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            format!("{} {}", text("id"), text("state"))
        })
        .collect()
}

/// The state of `seat`.
fn state(sim: &mut Sim, seat: &str) -> String {
    let all = states(sim);
    let found = all.iter().find_map(|s| s.strip_prefix(&format!("{seat} ")));
    found.unwrap_or("unknown").to_string()
}

/// The caller hangs up (the engine BYEs a1001's `phone`): the final record's transfers as
/// `kind target outcome`.
fn final_chain(sim: &mut Sim, caller: &mut Phone, phone: &SeatPhone) -> Vec<String> {
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    sim.expect_response(caller, 200, "BYE");
    let bye = sim.request_to(phone.addr, "BYE");
    sim.send(phone.addr, phone.reply(&bye, 200));
    let records = sim.final_records();
    assert_eq!(records.len(), 1, "one record per caller call");
    let show = |t: &TransferAttempt| {
        let ended = if t.ended.is_some() { "ended" } else { "-" };
        let outcome = t.outcome.as_deref().unwrap_or("-");
        format!("{} {} {outcome} {ended}", t.kind, t.target)
    };
    records[0].transfers.iter().map(show).collect()
}

/// The expert's phone rings for a `kind` transfer: the INVITE, with the caller's details.
fn expert_rings(sim: &mut Sim, kind: TransferKind, expert: &SeatPhone) -> Request {
    transfer(sim, kind, "seat:e2001").expect("calling the expert in");
    let invite = rings(sim, expert);
    let header = |name: &str| {
        let value = invite.headers.get(&HeaderName::Other(name.into()));
        value.unwrap_or_default().to_string()
    };
    assert_eq!(
        header("X-Hotline-Queue"),
        "general",
        "in the origin queue's name"
    );
    assert_eq!(header("X-Hotline-Record"), sim.last_record().id);
    let from = invite.headers.get(&HeaderName::From).unwrap_or_default();
    assert!(
        from.contains("<sip:13800000000@"),
        "the caller's number: {from}"
    );
    invite
}

/// A three-way call between the caller, a1001 and the expert, who answered.
fn in_three_way_with_expert() -> (Sim, Phone, SeatPhone, Request, SeatPhone, Request) {
    let (mut sim, caller, phone, invite, expert) = with_expert_ready();
    let expert_invite = expert_rings(&mut sim, TransferKind::ThreeWay, &expert);
    assert_eq!(state(&mut sim, "e2001"), "on-call", "held while it rings");
    assert_eq!(sim.media(), ["open 1\""], "the expert gets the third leg");
    picks_up(&mut sim, &expert, &expert_invite);
    let media = sim.media();
    assert_eq!(
        media.last().map(String::as_str),
        Some("conference 1 1' 1\""),
        "caller, seat and expert each hear the other two: {media:?}"
    );
    assert!(media[0].starts_with("stream 1\" Pcma/8 to 203.0.113.21:42000"));
    assert_eq!(chain(&sim), ["three-way seat:e2001 answered"]);
    (sim, caller, phone, invite, expert, expert_invite)
}

#[test]
fn in_a_three_way_call_with_a_seat_the_first_seat_leaves_and_the_other_has_the_call() {
    let (mut sim, caller, mut phone, invite, mut expert, expert_invite) =
        in_three_way_with_expert();
    sim.send(phone.addr, phone.request(&invite, "BYE", None, None));
    sim.response_to(phone.addr, 200, "BYE");
    assert_eq!(
        sim.media(),
        ["stop 1", "bridge 1 1\"", "close 1'"],
        "caller and expert joined directly, the first seat's leg closed"
    );
    assert_eq!(state(&mut sim, "a1001"), "wrap-up");
    assert_eq!(state(&mut sim, "e2001"), "on-call");
    sim.assert_quiet();
    // The expert has the call: its desk hangs it up like its own.
    sim.desk_as("e2001", DeskCommand::HangUp)
        .expect("the expert's call");
    let bye = sim.request_to(expert.addr, "BYE");
    assert_eq!(bye.call_id(), expert_invite.call_id());
    sim.send(expert.addr, expert.reply(&bye, 200));
    assert_eq!(state(&mut sim, "e2001"), "wrap-up");
    let media = sim.media();
    assert!(
        media.iter().any(|m| m.contains("[survey]")),
        "the caller goes on to the survey: {media:?}"
    );
    let _ = (caller, &mut expert);
    let record = sim.last_record().clone();
    assert_eq!(chain(&sim), ["three-way seat:e2001 answered"]);
    assert!(record.transfers[0].answered.is_some());
    assert_eq!(record.queues.len(), 1, "one visit: {:?}", record.queues);
    assert_eq!(record.queues[0].seat.as_deref(), Some("a1001"));
}

#[test]
fn in_a_three_way_call_with_a_seat_the_first_seat_stays_until_the_caller_hangs_up() {
    let (mut sim, mut caller, phone, _invite, expert, _expert_invite) = in_three_way_with_expert();
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    sim.expect_response(&caller, 200, "BYE");
    sim.request_to(expert.addr, "BYE");
    sim.request_to(phone.addr, "BYE");
    assert_eq!(state(&mut sim, "a1001"), "wrap-up");
    assert_eq!(state(&mut sim, "e2001"), "wrap-up");
    let records = sim.final_records();
    assert_eq!(records.len(), 1, "one record per caller call");
    let record = records[0].clone();
    assert_eq!(record.end.as_ref().map(|e| e.by.as_str()), Some("caller"));
    let transfer = &record.transfers[0];
    assert_eq!(transfer.outcome.as_deref(), Some("answered"));
    assert!(transfer.ended.is_some());
}

#[test]
fn the_seat_brought_in_hanging_up_leaves_caller_and_first_seat_talking() {
    let (mut sim, _caller, _phone, _invite, mut expert, expert_invite) = in_three_way_with_expert();
    sim.send(
        expert.addr,
        expert.request(&expert_invite, "BYE", None, None),
    );
    sim.response_to(expert.addr, 200, "BYE");
    assert_eq!(sim.media(), ["close 1\"", "stop 1", "bridge 1 1'"]);
    assert_eq!(state(&mut sim, "a1001"), "on-call");
    assert_eq!(state(&mut sim, "e2001"), "wrap-up");
    sim.assert_quiet();
    assert_eq!(chain(&sim), ["three-way seat:e2001 answered"]);
}

#[test]
fn the_seat_brought_in_hanging_up_from_its_desk_leaves_caller_and_first_seat_talking() {
    let (mut sim, _caller, _phone, _invite, expert, expert_invite) = in_three_way_with_expert();
    // Its desk shows the call it was brought into: the first seat's call.
    let seats = sim.desk_as("e2001", DeskCommand::Seats).expect("seats");
    let listed = |id: &str| {
        let all = seats.as_array().map(Vec::as_slice).unwrap_or_default();
        all.iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    let (view, first) = (listed("e2001"), listed("a1001"));
    assert_eq!(view["state"], "on-call", "{view}");
    assert_eq!(view["call"]["hotline"], "12345", "{view}");
    assert!(view["call"]["record"].is_string(), "{view}");
    assert_eq!(view["call"], first["call"], "{first}");
    let view = sim
        .desk_as("e2001", DeskCommand::HangUp)
        .expect("the expert leaves");
    assert_eq!(view["state"], "wrap-up", "{view}");
    let bye = sim.request_to(expert.addr, "BYE");
    assert_eq!(bye.call_id(), expert_invite.call_id());
    sim.send(expert.addr, expert.reply(&bye, 200));
    assert_eq!(sim.media(), ["close 1\"", "stop 1", "bridge 1 1'"]);
    assert_eq!(state(&mut sim, "a1001"), "on-call");
    assert_eq!(state(&mut sim, "e2001"), "wrap-up");
    sim.assert_quiet();
    assert_eq!(chain(&sim), ["three-way seat:e2001 answered"]);
    // Its call is gone: hanging up again is refused.
    let again = sim.desk_as("e2001", DeskCommand::HangUp);
    assert_eq!(again.map_err(|e| e.status), Err(409));
}

/// A consult: the caller waits with music; the expert answered and talks to a1001.
fn consulting_expert() -> (Sim, Phone, SeatPhone, Request, SeatPhone, Request) {
    let (mut sim, caller, phone, invite, expert) = with_expert_ready();
    let expert_invite = expert_rings(&mut sim, TransferKind::Consult, &expert);
    assert_eq!(
        sim.media(),
        ["open 1\"", "unbridge 1", "play 1 #2 [queue/music]"],
        "the caller waits with music"
    );
    picks_up(&mut sim, &expert, &expert_invite);
    let media = sim.media();
    assert_eq!(
        media.last().map(String::as_str),
        Some("bridge 1' 1\""),
        "the seats talk, the caller keeps the music: {media:?}"
    );
    (sim, caller, phone, invite, expert, expert_invite)
}

#[test]
fn a_completed_consult_joins_the_caller_to_the_expert_who_has_the_call() {
    let (mut sim, mut caller, phone, _invite, expert, _expert_invite) = consulting_expert();
    sim.desk_as("a1001", DeskCommand::CompleteTransfer)
        .expect("completed");
    sim.request_to(phone.addr, "BYE");
    assert_eq!(sim.media(), ["stop 1", "bridge 1 1\"", "close 1'"]);
    assert_eq!(state(&mut sim, "a1001"), "wrap-up");
    assert_eq!(state(&mut sim, "e2001"), "on-call");
    // The caller hangs up on the expert, whose seat wraps up.
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    sim.expect_response(&caller, 200, "BYE");
    sim.request_to(expert.addr, "BYE");
    assert_eq!(state(&mut sim, "e2001"), "wrap-up");
    let records = sim.final_records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].transfers[0].kind, "consult");
    assert_eq!(records[0].transfers[0].target, "seat:e2001");
    assert_eq!(records[0].transfers[0].outcome.as_deref(), Some("answered"));
}

#[test]
fn a_cancelled_consult_hangs_up_the_expert_and_brings_the_caller_back() {
    let (mut sim, mut caller, phone, _invite, expert, _expert_invite) = consulting_expert();
    sim.desk_as("a1001", DeskCommand::CancelTransfer)
        .expect("cancelled");
    sim.request_to(expert.addr, "BYE");
    assert_eq!(sim.media(), ["close 1\"", "stop 1", "bridge 1 1'"]);
    assert_eq!(state(&mut sim, "a1001"), "on-call");
    assert_eq!(state(&mut sim, "e2001"), "wrap-up");
    assert_eq!(
        final_chain(&mut sim, &mut caller, &phone),
        ["consult seat:e2001 answered ended"]
    );
}

#[test]
fn a_target_seat_not_ready_or_a_group_with_nobody_free_is_refused() {
    let (mut sim, _caller, _phone, _invite, _expert) = with_expert_ready();
    sim.desk_as(
        "e2001",
        DeskCommand::NotReady {
            reason: "break".into(),
        },
    )
    .expect("on a break");
    sim.desk_events();
    for kind in [TransferKind::ThreeWay, TransferKind::Consult] {
        let refused = transfer(&mut sim, kind, "seat:e2001").unwrap_err();
        assert_eq!(
            (refused.status, refused.message.as_str()),
            (409, "seat:e2001 is not ready")
        );
        let refused = transfer(&mut sim, kind, "queue:housing").unwrap_err();
        assert_eq!(
            (refused.status, refused.message.as_str()),
            (409, "no seat of housing is free")
        );
    }
    sim.assert_quiet();
    assert!(sim.last_record().transfers.is_empty());
    assert!(sim.desk_events().is_empty(), "nobody's state changed");
    assert_eq!(state(&mut sim, "a1001"), "on-call");
    assert_eq!(state(&mut sim, "e2001"), "not-ready");
}

#[test]
fn a_seat_declining_a_three_way_call_leaves_the_caller_with_the_first_seat() {
    let (mut sim, mut caller, phone, _invite, expert) = with_expert_ready();
    let expert_invite = expert_rings(&mut sim, TransferKind::ThreeWay, &expert);
    sim.media();
    sim.send(expert.addr, expert.respond(&expert_invite, 486));
    sim.request_to(expert.addr, "ACK");
    assert_eq!(sim.media(), ["close 1\""], "caller and seat keep talking");
    assert_eq!(state(&mut sim, "a1001"), "on-call");
    assert_eq!(state(&mut sim, "e2001"), "wrap-up");
    sim.assert_quiet();
    // The expert wraps up: not to be called in again until it is ready.
    let refused = transfer(&mut sim, TransferKind::ThreeWay, "seat:e2001").unwrap_err();
    assert_eq!(refused.message, "seat:e2001 is not ready", "in wrap-up");
    assert_eq!(
        final_chain(&mut sim, &mut caller, &phone),
        ["three-way seat:e2001 declined ended"]
    );
}

#[test]
fn a_seat_declining_a_consult_brings_the_caller_back_to_the_first_seat() {
    let (mut sim, mut caller, phone, _invite, expert) = with_expert_ready();
    let expert_invite = expert_rings(&mut sim, TransferKind::Consult, &expert);
    sim.media();
    sim.send(expert.addr, expert.respond(&expert_invite, 603));
    sim.request_to(expert.addr, "ACK");
    let media = sim.media();
    assert_eq!(media[..3], ["close 1\"", "stop 1", "bridge 1 1'"]);
    assert!(
        media[3].ends_with("[queue/transfer-failed]"),
        "back with the first seat, told so: {media:?}"
    );
    assert_eq!(state(&mut sim, "a1001"), "on-call");
    assert_eq!(state(&mut sim, "e2001"), "wrap-up");
    assert_eq!(
        final_chain(&mut sim, &mut caller, &phone),
        ["consult seat:e2001 declined ended"]
    );
}

#[test]
fn a_seat_letting_a_three_way_call_ring_out_is_cancelled_and_released() {
    let (mut sim, mut caller, phone, _invite, expert) = with_expert_ready();
    let expert_invite = expert_rings(&mut sim, TransferKind::ThreeWay, &expert);
    sim.media();
    sim.advance(secs(9.9));
    sim.assert_quiet();
    sim.advance(secs(0.2));
    cancelled(&mut sim, &expert, &expert_invite);
    assert_eq!(sim.media(), ["close 1\""]);
    assert_eq!(state(&mut sim, "a1001"), "on-call");
    assert_eq!(state(&mut sim, "e2001"), "wrap-up");
    // Wrap-up ends by itself after the queue's 30 s.
    sim.advance(secs(30.0));
    assert_eq!(state(&mut sim, "e2001"), "ready");
    assert_eq!(
        final_chain(&mut sim, &mut caller, &phone),
        ["three-way seat:e2001 no-answer ended"]
    );
}

#[test]
fn the_caller_hanging_up_while_the_seat_rings_cancels_it_and_frees_both_seats() {
    let (mut sim, mut caller, phone, _invite, expert) = with_expert_ready();
    let expert_invite = expert_rings(&mut sim, TransferKind::ThreeWay, &expert);
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    sim.expect_response(&caller, 200, "BYE");
    let cancel = sim.request_to(expert.addr, "CANCEL");
    let bye = sim.request_to(phone.addr, "BYE");
    sim.send(phone.addr, phone.reply(&bye, 200));
    sim.send(expert.addr, expert.reply(&cancel, 200));
    sim.send(expert.addr, expert.respond(&expert_invite, 487));
    sim.request_to(expert.addr, "ACK");
    assert_eq!(state(&mut sim, "a1001"), "wrap-up");
    assert_eq!(state(&mut sim, "e2001"), "wrap-up");
    let records = sim.final_records();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].transfers[0].outcome.as_deref(),
        Some("caller-gone")
    );
}

#[test]
fn a_three_way_call_to_a_group_rings_its_longest_idle_ready_seat() {
    let (mut sim, _caller, mut phone, invite, _expert) = with_expert_ready();
    let mut a1004 = SeatPhone::new(14, "1004");
    at_work(&mut sim, &mut a1004, "a1004");
    sim.advance(secs(5.0));
    let mut a1002 = SeatPhone::new(12, "1002");
    at_work(&mut sim, &mut a1002, "a1002");
    transfer(&mut sim, TransferKind::ThreeWay, "queue:housing").expect("calling housing in");
    let ringing = rings(&mut sim, &a1004);
    let queue = ringing
        .headers
        .get(&HeaderName::Other("X-Hotline-Queue".into()));
    assert_eq!(queue, Some("housing"));
    assert_eq!(state(&mut sim, "a1004"), "on-call");
    assert_eq!(state(&mut sim, "a1002"), "ready", "gets other callers");
    picks_up(&mut sim, &a1004, &ringing);
    assert!(sim.media().contains(&"conference 1 1' 1\"".to_string()));
    sim.send(phone.addr, phone.request(&invite, "BYE", None, None));
    sim.response_to(phone.addr, 200, "BYE");
    assert_eq!(state(&mut sim, "a1001"), "wrap-up");
    assert_eq!(state(&mut sim, "a1004"), "on-call");
    // a1004 hangs up: its wrap-up is housing's 20 s.
    sim.send(a1004.addr, a1004.request(&ringing, "BYE", None, None));
    sim.response_to(a1004.addr, 200, "BYE");
    assert_eq!(state(&mut sim, "a1004"), "wrap-up");
    sim.advance(secs(20.5));
    assert_eq!(state(&mut sim, "a1004"), "ready");
    assert_eq!(chain(&sim), ["three-way queue:housing answered"]);
    let transfer = &sim.last_record().transfers[0];
    let names = (transfer.by.as_deref(), transfer.seat.as_deref());
    assert_eq!(
        names,
        (Some("a1001"), Some("a1004")),
        "by a1001, a1004 called in"
    );
}
