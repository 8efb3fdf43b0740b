//! Transfers to the targets beyond a skill group and a sub-centre, in virtual time: an external
//! number over a sub-centre's trunk (its `dial_out`), a sub-centre's own ring timeout and
//! `unanswered` queue, and one seat (an expert's, say). The seat's desktop asks through
//! `handle_desk`, its phone with REFER; every assertion is about what someone would observe:
//! the desk's answer, the SIP sent to the trunk and to the seats' phones, the media plane's
//! commands, and the call record's transfer chain.

use std::net::SocketAddr;

use super::switch_seat_tests::{
    at_work, notified, offers, passed_on, picks_up, refer, rings, seat_hung_up, talking_on,
    told_the_transfer_failed, transfer, trunk_answers, SeatPhone, EXPERT_SEAT, TRANSFER_SEATS,
};
use super::switch_tests::{pbx_reply, secs, Phone, Sim};
use crate::desk::{DeskCommand, TransferKind};
use crate::sip::fields::Fields;
use crate::sip::message::{Message, Request, Response};
use crate::tickets::record::TransferAttempt;

/// The seat tests' transfer plan (12345 to the `general` queue, 10 s ring timeout; a `housing`
/// queue; the `tax` sub-centre on the PBX at 198.51.100.9:5062), with more for `tax`: 12 s of
/// ringing, the callers it does not take go to `housing`, and 057188… numbers; and `city`, the
/// same trunk out to Hangzhou numbers and mobiles.
fn transfer_plan() -> String {
    let base = super::switch_seat_tests::transfer_plan();
    // What follows goes on the `tax` sub-centre's table, which must be the last.
    assert!(
        base.ends_with("number = \"12366\"\nalways_open = true\n"),
        "the seat tests' transfer plan no longer ends with `tax`: {base}"
    );
    format!(
        "{base}ring_timeout_s = 12
unanswered = \"queue:housing\"
dial_out = [\"057188*\"]

[subcentres.city]
name = \"市话出局\"
trunk = \"198.51.100.9:5062\"
dial_out = [\"0571*\", \"1??????????\"]
"
    )
}

/// Besides [`TRANSFER_SEATS`] (a1001 in `general`, a1002 in `housing`): a1003 in `general`
/// too, and e2001, an expert of another skill.
const MORE_SEATS: &str = r#"
[seats.a1003]
name = "李娜"
username = "1003"
password = "secret-1003"
token = "token-a1003-0123456789"
skills = { general = 3 }
"#;

/// The sub-centres' PBX.
fn pbx() -> SocketAddr {
    Phone::new(9).addr
}

/// A caller talking to a1001 on [`transfer_plan`] with every seat: the seat phone and its
/// INVITE.
fn talking_to_a1001() -> (Sim, Phone, SeatPhone, Request) {
    talking_on(
        &transfer_plan(),
        &format!("{TRANSFER_SEATS}{MORE_SEATS}{EXPERT_SEAT}"),
    )
}

/// The record's transfers as `kind target outcome`.
pub(super) fn chain(sim: &Sim) -> Vec<String> {
    let show = |t: &TransferAttempt| {
        format!(
            "{} {} {}",
            t.kind,
            t.target,
            t.outcome.as_deref().unwrap_or("-")
        )
    };
    sim.last_record().transfers.iter().map(show).collect()
}

/// The record's queue visits as `queue outcome seat`.
fn visits(sim: &Sim) -> Vec<String> {
    let record = sim.last_record();
    record
        .queues
        .iter()
        .map(|v| {
            format!(
                "{} {} {}",
                v.queue,
                v.outcome.as_deref().unwrap_or("-"),
                v.seat.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// External numbers over a sub-centre's trunk.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_blind_transfer_to_an_allowed_number_calls_it_over_the_trunk() {
    let (mut sim, _caller, phone, _invite) = talking_to_a1001();
    let reply = transfer(&mut sim, TransferKind::Blind, "number:13912345678");
    assert_eq!(
        reply.expect("transferred")["transferred"],
        "number:13912345678"
    );
    seat_hung_up(&mut sim, &phone);
    let invite = sim.request_to(pbx(), "INVITE");
    assert_eq!(
        invite.uri.to_string(),
        "sip:13912345678@198.51.100.9:5062",
        "the number itself, on the trunk that allows it"
    );
    assert_eq!(
        invite.to_header().unwrap().uri.user.as_deref(),
        Some("13912345678")
    );
    let media = sim.media();
    assert!(
        media.contains(&"play 1 #2 [queue/music]".to_string()),
        "music while it rings: {media:?}"
    );
    sim.send(pbx(), pbx_reply(&invite, 200));
    sim.request_to(pbx(), "ACK");
    let media = sim.media();
    assert!(media.contains(&"bridge 1 1'".to_string()), "{media:?}");
    sim.assert_quiet();
    assert_eq!(chain(&sim), ["blind number:13912345678 answered"]);
    let transfer = &sim.last_record().transfers[0];
    let names = (transfer.by.as_deref(), transfer.seat.as_deref());
    assert_eq!(names, (Some("a1001"), None), "no seat called");
    assert!(sim.last_record().transfers[0].answered.is_some());
}

#[test]
fn a_three_way_transfer_to_an_allowed_number_puts_it_in_a_conference() {
    let (mut sim, _caller, _phone, _invite) = talking_to_a1001();
    let reply = transfer(&mut sim, TransferKind::ThreeWay, "number:0571876543");
    assert_eq!(reply.expect("calling")["transferring"], "number:0571876543");
    assert_eq!(sim.media(), ["open 1\""], "the number gets the third leg");
    let invite = trunk_answers(&mut sim);
    assert_eq!(invite.uri.user.as_deref(), Some("0571876543"));
    assert_eq!(
        sim.media(),
        [
            "stream 1\" Pcmu/0 to 198.51.100.9:41000 te=Some(101) send recv",
            "conference 1 1' 1\"",
        ]
    );
    sim.assert_quiet();
    assert_eq!(chain(&sim), ["three-way number:0571876543 answered"]);
}

#[test]
fn a_consult_transfer_to_an_allowed_number_holds_the_caller_then_joins_them() {
    let (mut sim, _caller, phone, seat_invite) = talking_to_a1001();
    transfer(&mut sim, TransferKind::Consult, "number:13912345678").expect("calling");
    assert_eq!(
        sim.media(),
        ["open 1\"", "unbridge 1", "play 1 #2 [queue/music]"]
    );
    let invite = trunk_answers(&mut sim);
    assert_eq!(invite.uri.user.as_deref(), Some("13912345678"));
    assert_eq!(
        sim.media(),
        [
            "stream 1\" Pcmu/0 to 198.51.100.9:41000 te=Some(101) send recv",
            "bridge 1' 1\"",
        ],
        "the seat talks to the number; the caller keeps the music"
    );
    sim.desk_as("a1001", DeskCommand::CompleteTransfer)
        .expect("completed");
    let bye = sim.request_to(phone.addr, "BYE");
    assert_eq!(bye.call_id(), seat_invite.call_id());
    assert_eq!(sim.media(), ["stop 1", "bridge 1 1\"", "close 1'"]);
    assert_eq!(chain(&sim), ["consult number:13912345678 answered"]);
}

#[test]
fn a_number_no_dial_out_allows_is_refused_and_nothing_is_dialled() {
    let (mut sim, _caller, _phone, _invite) = talking_to_a1001();
    for kind in [
        TransferKind::Blind,
        TransferKind::ThreeWay,
        TransferKind::Consult,
    ] {
        for (to, why) in [
            (
                "number:0088612345678",
                "no sub-centre's dial_out allows this number",
            ),
            (
                "number:1391234567",
                "no sub-centre's dial_out allows this number",
            ),
            (
                "number:139123456789",
                "no sub-centre's dial_out allows this number",
            ),
            ("number:057", "no sub-centre's dial_out allows this number"),
            ("number:+8613912345678", "a number is 1 to 24 digits"),
            ("number:", "a number is 1 to 24 digits"),
            ("sip:13912345678@198.51.100.200", "not a declared target"),
        ] {
            let refused = transfer(&mut sim, kind, to).unwrap_err();
            assert_eq!(refused.status, 403, "{to} {kind:?}: {refused}");
            assert!(refused.message.contains(why), "{to} {kind:?}: {refused}");
        }
    }
    sim.assert_quiet();
    assert!(
        sim.last_record().transfers.is_empty(),
        "a refused target is no attempt"
    );
    // The seat still has its caller.
    transfer(&mut sim, TransferKind::ThreeWay, "number:13912345678").expect("still talking");
}

#[test]
fn the_first_subcentre_whose_dial_out_allows_a_number_carries_it() {
    // 0571 88… is allowed by `tax` (declared first, 12 s of ringing) and by `city`.
    let (mut sim, mut caller, _phone, _invite) = talking_to_a1001();
    transfer(&mut sim, TransferKind::ThreeWay, "number:057188123456").expect("calling");
    sim.media();
    let invite = sim.request_to(pbx(), "INVITE");
    assert_eq!(invite.uri.user.as_deref(), Some("057188123456"));
    sim.send(pbx(), pbx_reply(&invite, 180));
    sim.advance(secs(11.9));
    sim.assert_quiet();
    sim.advance(secs(0.1));
    cancelled_by_engine(&mut sim, &invite);
    assert_eq!(
        sim.media(),
        ["close 1\""],
        "three-way: the caller stays with the seat, not sent to `unanswered`"
    );
    sim.assert_quiet();
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    sim.expect_response(&caller, 200, "BYE");
    assert!(sim.last_record().is_finished());
    assert_eq!(chain(&sim), ["three-way number:057188123456 no-answer"]);
    assert_eq!(visits(&sim), ["general answered a1001"]);
}

/// The PBX's 200 to the engine's `request` (a CANCEL).
fn pbx_ok(request: &Request) -> Vec<u8> {
    Message::Response(Response::to(request, 200)).to_bytes()
}

/// The engine gives up on the trunk's `invite`: CANCEL, answered 200, then 487 (ACKed).
fn cancelled_by_engine(sim: &mut Sim, invite: &Request) {
    let cancel = sim.request_to(pbx(), "CANCEL");
    assert_eq!(cancel.call_id(), invite.call_id());
    sim.send(pbx(), pbx_ok(&cancel));
    sim.send(pbx(), pbx_reply(invite, 487));
    sim.request_to(pbx(), "ACK");
}

#[test]
fn a_refer_to_an_allowed_number_transfers_the_caller_blind() {
    let (mut sim, _caller, mut phone, invite) = talking_to_a1001();
    sim.send(
        phone.addr,
        refer(&mut phone, &invite, "sip:13912345678@192.0.2.1"),
    );
    sim.response_to(phone.addr, 202, "REFER");
    assert_eq!(notified(&mut sim, &phone), "SIP/2.0 100 Trying");
    assert_eq!(notified(&mut sim, &phone), "SIP/2.0 200 OK");
    seat_hung_up(&mut sim, &phone);
    let trunk_invite = sim.request_to(pbx(), "INVITE");
    assert_eq!(trunk_invite.uri.user.as_deref(), Some("13912345678"));
    assert_eq!(chain(&sim), ["blind number:13912345678 -"]);

    // A number no `dial_out` allows is refused outright.
    let (mut sim, _caller, mut phone, invite) = talking_to_a1001();
    sim.send(
        phone.addr,
        refer(&mut phone, &invite, "sip:13912345@192.0.2.1"),
    );
    sim.response_to(phone.addr, 403, "REFER");
    sim.assert_quiet();
    assert!(sim.last_record().transfers.is_empty());
}

// ---------------------------------------------------------------------------------------------
// A sub-centre's ring timeout and `unanswered` queue.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_subcentre_rings_its_own_timeout_then_the_caller_goes_to_its_unanswered_queue() {
    let (mut sim, _caller, phone, _invite) = talking_to_a1001();
    let mut housing = SeatPhone::new(12, "1002");
    at_work(&mut sim, &mut housing, "a1002");
    passed_on(&mut sim, &phone, "subcentre:tax");
    let invite = sim.request_to(pbx(), "INVITE");
    assert_eq!(invite.uri.user.as_deref(), Some("12366"));
    sim.send(pbx(), pbx_reply(&invite, 180));
    sim.media();
    sim.desk_events();
    sim.advance(secs(11.9));
    sim.assert_quiet();
    sim.advance(secs(0.1));
    let cancel = sim.request_to(pbx(), "CANCEL");
    assert_eq!(cancel.call_id(), invite.call_id());
    // The caller does not wait for the CANCEL: told, then waiting in `housing`, whose seat
    // rings.
    let offered = rings(&mut sim, &housing);
    let media = sim.media();
    assert!(
        media.contains(&"play 1 #4 [queue/transfer-failed queue/music]".to_string()),
        "{media:?}"
    );
    sim.send(pbx(), pbx_ok(&cancel));
    sim.send(pbx(), pbx_reply(&invite, 487));
    sim.request_to(pbx(), "ACK");
    picks_up(&mut sim, &housing, &offered);
    let media = sim.media();
    assert!(media.contains(&"bridge 1 1'".to_string()), "{media:?}");
    assert_eq!(chain(&sim), ["blind subcentre:tax no-answer"]);
    assert_eq!(
        visits(&sim),
        ["general answered a1001", "housing answered a1002"]
    );
}

#[test]
fn a_busy_subcentre_sends_a_blind_caller_to_its_unanswered_queue() {
    let (mut sim, _caller, phone, _invite) = talking_to_a1001();
    let mut housing = SeatPhone::new(12, "1002");
    at_work(&mut sim, &mut housing, "a1002");
    passed_on(&mut sim, &phone, "subcentre:tax");
    let invite = sim.request_to(pbx(), "INVITE");
    sim.media();
    sim.send(pbx(), pbx_reply(&invite, 486));
    sim.request_to(pbx(), "ACK");
    rings(&mut sim, &housing);
    let media = sim.media();
    assert!(
        media.contains(&"play 1 #4 [queue/transfer-failed queue/music]".to_string()),
        "{media:?}"
    );
    assert_eq!(chain(&sim), ["blind subcentre:tax 486"]);
    assert_eq!(visits(&sim), ["general answered a1001", "housing - -"]);
}

#[test]
fn a_subcentre_without_its_own_timeout_rings_thirty_seconds() {
    let (mut sim, _caller, phone, _invite) = talking_to_a1001();
    passed_on(&mut sim, &phone, "number:13912345678");
    let on_break = DeskCommand::NotReady {
        reason: "break".into(),
    };
    sim.desk_as("a1001", on_break)
        .expect("a break after the wrap-up");
    let invite = sim.request_to(pbx(), "INVITE");
    sim.send(pbx(), pbx_reply(&invite, 180));
    sim.media();
    sim.desk_events();
    sim.advance(secs(29.9));
    sim.assert_quiet();
    sim.advance(secs(0.1));
    sim.request_to(pbx(), "CANCEL");
    // `city` names no `unanswered` queue: back to `general`, where nobody is ready (a1001
    // is on a break), told so.
    let media = sim.media();
    assert!(
        media.contains(&"play 1 #4 [queue/transfer-failed queue/music]".to_string()),
        "{media:?}"
    );
    assert_eq!(chain(&sim), ["blind number:13912345678 no-answer"]);
    assert_eq!(visits(&sim), ["general answered a1001", "general - -"]);
}

// ---------------------------------------------------------------------------------------------
// One seat.
// ---------------------------------------------------------------------------------------------

/// a1001 talking to the caller; a1003 (of `general` too) and the expert e2001 at work.
fn with_expert_at_work() -> (Sim, Phone, SeatPhone, SeatPhone, SeatPhone) {
    let (mut sim, caller, phone, _invite) = talking_to_a1001();
    let mut colleague = SeatPhone::new(13, "1003");
    at_work(&mut sim, &mut colleague, "a1003");
    let mut expert = SeatPhone::new(21, "2001");
    at_work(&mut sim, &mut expert, "e2001");
    (sim, caller, phone, colleague, expert)
}

#[test]
fn a_blind_transfer_to_a_seat_rings_that_seat_only_and_it_answers() {
    let (mut sim, _caller, phone, _colleague, expert) = with_expert_at_work();
    let reply = transfer(&mut sim, TransferKind::Blind, "seat:e2001");
    assert_eq!(reply.expect("transferred")["transferred"], "seat:e2001");
    seat_hung_up(&mut sim, &phone);
    // The expert's phone rings, not a1003's, although a1003 is of the caller's queue.
    let offered = rings(&mut sim, &expert);
    assert_eq!(offered.uri.to_string(), "sip:2001@203.0.113.21:5060");
    assert_eq!(
        sim.media(),
        [
            "unbridge 1",
            "close 1'",
            "play 1 #2 [queue/music]",
            "open 1'"
        ],
        "the caller waits for the expert with music"
    );
    sim.assert_quiet();
    let events = sim.desk_events();
    assert!(events.contains(&"offer e2001".to_string()), "{events:?}");
    assert!(!events.contains(&"offer a1003".to_string()), "{events:?}");
    picks_up(&mut sim, &expert, &offered);
    let media = sim.media();
    assert!(media.contains(&"bridge 1 1'".to_string()), "{media:?}");
    assert_eq!(sim.desk_events(), ["answered e2001", "e2001 on-call"]);
    assert_eq!(chain(&sim), ["blind seat:e2001 answered"]);
    let transfer = &sim.last_record().transfers[0];
    let names = (transfer.by.as_deref(), transfer.seat.as_deref());
    assert_eq!(names, (Some("a1001"), Some("e2001")));
    assert_eq!(
        visits(&sim),
        ["general answered a1001", "general answered e2001"]
    );
    assert_eq!(
        offers(sim.last_record().queues.last().unwrap()),
        ["e2001 answered"]
    );
}

#[test]
fn a_seat_declining_a_transfer_sends_the_caller_back_to_its_queue() {
    let (mut sim, _caller, phone, colleague, expert) = with_expert_at_work();
    passed_on(&mut sim, &phone, "seat:e2001");
    let offered = rings(&mut sim, &expert);
    sim.media();
    sim.send(expert.addr, expert.respond(&offered, 486));
    sim.request_to(expert.addr, "ACK");
    // Back in `general`, told so; a1003 is offered the caller now.
    let next = rings(&mut sim, &colleague);
    told_the_transfer_failed(&mut sim);
    picks_up(&mut sim, &colleague, &next);
    assert_eq!(chain(&sim), ["blind seat:e2001 declined"]);
    assert_eq!(
        visits(&sim),
        [
            "general answered a1001",
            "general not-taken -",
            "general answered a1003"
        ]
    );
    assert_eq!(offers(&sim.last_record().queues[1]), ["e2001 declined"]);
}

#[test]
fn a_seat_letting_a_transfer_ring_out_sends_the_caller_back_to_its_queue() {
    let (mut sim, _caller, phone, colleague, expert) = with_expert_at_work();
    passed_on(&mut sim, &phone, "seat:e2001");
    let offered = rings(&mut sim, &expert);
    sim.media();
    sim.desk_events();
    // `general` rings a seat for 10 s.
    sim.advance(secs(9.9));
    sim.assert_quiet();
    sim.advance(secs(0.1));
    let cancel = sim.request_to(expert.addr, "CANCEL");
    // At once back in `general`, where a1003 is offered the caller.
    let next = rings(&mut sim, &colleague);
    sim.send(expert.addr, expert.reply(&cancel, 200));
    sim.send(expert.addr, expert.respond(&offered, 487));
    sim.request_to(expert.addr, "ACK");
    let events = sim.desk_events();
    assert!(
        events.contains(&"e2001 not-ready no-answer".to_string()),
        "{events:?}"
    );
    told_the_transfer_failed(&mut sim);
    picks_up(&mut sim, &colleague, &next);
    assert_eq!(chain(&sim), ["blind seat:e2001 no-answer"]);
    assert_eq!(offers(&sim.last_record().queues[1]), ["e2001 no-answer"]);
}

#[test]
fn a_caller_waits_for_a_seat_on_a_break_within_the_queues_ring_timeout() {
    let (mut sim, _caller, phone, _colleague, expert) = with_expert_at_work();
    let on_break = DeskCommand::NotReady {
        reason: "break".into(),
    };
    sim.desk_as("e2001", on_break.clone()).expect("on a break");
    passed_on(&mut sim, &phone, "seat:e2001");
    sim.desk_events();
    let media = sim.media();
    assert!(
        media.contains(&"play 1 #2 [queue/music]".to_string()),
        "the caller waits with music: {media:?}"
    );
    // Back within the 10 s, the expert is offered the caller at once.
    sim.advance(secs(6.0));
    sim.assert_quiet();
    sim.desk_as("e2001", DeskCommand::Ready).expect("ready");
    let offered = rings(&mut sim, &expert);
    picks_up(&mut sim, &expert, &offered);
    assert_eq!(chain(&sim), ["blind seat:e2001 answered"]);

    // Another caller, and the expert stays on its break: after 10 s, back to the queue.
    let (mut sim, _caller, phone, colleague, _expert) = with_expert_at_work();
    sim.desk_as("e2001", on_break).expect("on a break");
    passed_on(&mut sim, &phone, "seat:e2001");
    sim.media();
    sim.desk_events();
    sim.advance(secs(9.9));
    sim.assert_quiet();
    sim.advance(secs(0.1));
    rings(&mut sim, &colleague);
    told_the_transfer_failed(&mut sim);
    assert_eq!(chain(&sim), ["blind seat:e2001 not-ready"]);
    assert!(offers(&sim.last_record().queues[1]).is_empty());
}

#[test]
fn a_seat_logging_out_while_a_caller_waits_for_it_sends_the_caller_back_to_its_queue() {
    let (mut sim, _caller, phone, colleague, _expert) = with_expert_at_work();
    let on_break = DeskCommand::NotReady {
        reason: "break".into(),
    };
    sim.desk_as("e2001", on_break).expect("on a break");
    passed_on(&mut sim, &phone, "seat:e2001");
    sim.media();
    sim.advance(secs(3.0));
    sim.assert_quiet();
    sim.desk_as("e2001", DeskCommand::LogOut)
        .expect("logged out");
    rings(&mut sim, &colleague);
    told_the_transfer_failed(&mut sim);
    assert_eq!(chain(&sim), ["blind seat:e2001 logged-out"]);
    assert_eq!(
        visits(&sim),
        [
            "general answered a1001",
            "general not-taken -",
            "general - -"
        ]
    );
}

#[test]
fn transfers_to_a_seat_not_logged_in_unknown_or_on_the_call_are_refused() {
    let (mut sim, _caller, _phone, _invite) = talking_to_a1001();
    let refused = transfer(&mut sim, TransferKind::Blind, "seat:e2001").unwrap_err();
    assert_eq!(
        (refused.status, refused.message.as_str()),
        (409, "seat:e2001 is not logged in")
    );
    let refused = transfer(&mut sim, TransferKind::Blind, "seat:x9999").unwrap_err();
    assert_eq!(refused.status, 403, "{refused}");
    let refused = transfer(&mut sim, TransferKind::Blind, "seat:a1001").unwrap_err();
    assert_eq!(
        (refused.status, refused.message.as_str()),
        (409, "seat:a1001 is the seat on the call")
    );
    sim.assert_quiet();
    assert!(sim.last_record().transfers.is_empty());
    assert!(sim.desk_events().is_empty(), "nobody's state changed");
}

#[test]
fn a_refer_to_a_seats_username_transfers_the_caller_to_that_seat() {
    let (mut sim, _caller, mut phone, invite) = talking_to_a1001();
    let mut expert = SeatPhone::new(21, "2001");
    at_work(&mut sim, &mut expert, "e2001");
    sim.send(phone.addr, refer(&mut phone, &invite, "sip:2001@192.0.2.1"));
    sim.response_to(phone.addr, 202, "REFER");
    assert_eq!(notified(&mut sim, &phone), "SIP/2.0 100 Trying");
    assert_eq!(notified(&mut sim, &phone), "SIP/2.0 200 OK");
    seat_hung_up(&mut sim, &phone);
    let offered = rings(&mut sim, &expert);
    picks_up(&mut sim, &expert, &offered);
    assert_eq!(chain(&sim), ["blind seat:e2001 answered"]);
}
