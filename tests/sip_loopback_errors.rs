//! Bad and unusual requests sent to the real engine over UDP: each gets the answer RFC 3261
//! asks for (or is dropped), and a normal call placed right after still works.

mod support;

use support::sipp::Sipp;
use support::{status_of, Engine, RawSip};

fn request(method: &str, extra: &str, n: u32) -> String {
    format!(
        "{method} sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {{local}};branch=z9hG4bKt{n};rport\r\n\
         From: <sip:13800000000@127.0.0.1>;tag=f{n}\r\nTo: <sip:12345@127.0.0.1>\r\n\
         Call-ID: err-{n}@test\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn bad_requests_get_the_right_answer_and_the_engine_keeps_serving() {
    let engine = Engine::start("");
    let sip = RawSip::new(engine.sip);

    // Garbage and truncated messages cannot be answered: dropped.
    assert_eq!(sip.exchange("\u{1}\u{2}hello there\r\n\r\n"), None);
    assert_eq!(
        sip.exchange("INVITE sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2."),
        None
    );

    // Missing mandatory headers and impossible lengths: 400.
    let no_call_id = request("OPTIONS", "", 1).replace("Call-ID: err-1@test\r\n", "");
    assert_eq!(
        sip.exchange(&no_call_id).as_deref().and_then(status_of),
        Some(400)
    );
    let no_cseq = request("OPTIONS", "", 2).replace("CSeq: 1 OPTIONS\r\n", "");
    assert_eq!(
        sip.exchange(&no_cseq).as_deref().and_then(status_of),
        Some(400)
    );
    let huge = request("OPTIONS", "", 3).replace("Content-Length: 0", "Content-Length: 4294967296");
    assert_eq!(
        sip.exchange(&huge).as_deref().and_then(status_of),
        Some(400)
    );
    let longer = request("OPTIONS", "", 4).replace("Content-Length: 0", "Content-Length: 5000");
    assert_eq!(
        sip.exchange(&longer).as_deref().and_then(status_of),
        Some(400)
    );
    // Without a Via there is nowhere to answer: dropped.
    let no_via = request("OPTIONS", "", 5)
        .replace("Via: SIP/2.0/UDP {local};branch=z9hG4bKt5;rport\r\n", "");
    assert_eq!(sip.exchange(&no_via), None);

    // Protocol rules.
    assert_eq!(
        sip.exchange(&request("OPTIONS", "", 6))
            .as_deref()
            .and_then(status_of),
        Some(200),
        "OPTIONS keep-alive"
    );
    let unknown = sip
        .exchange(&request("FROBNICATE", "", 7))
        .unwrap_or_default();
    assert_eq!(status_of(&unknown), Some(501));
    assert!(
        unknown.contains("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"),
        "{unknown}"
    );
    let not_allowed = sip
        .exchange(&request("SUBSCRIBE", "", 8))
        .unwrap_or_default();
    assert_eq!(status_of(&not_allowed), Some(405));
    assert!(not_allowed.contains("Allow:"), "{not_allowed}");
    let stray_bye = request("BYE", "", 9).replace(
        "To: <sip:12345@127.0.0.1>",
        "To: <sip:12345@127.0.0.1>;tag=nope",
    );
    assert_eq!(
        sip.exchange(&stray_bye).as_deref().and_then(status_of),
        Some(481)
    );
    // An OPTIONS with Max-Forwards 0 is for us and answered (RFC 4475 zeromf); an INVITE is not.
    let hops = request("INVITE", "", 10).replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(
        sip.exchange(&hops).as_deref().and_then(status_of),
        Some(483)
    );
    let require = sip
        .exchange(&request("OPTIONS", "Require: teleportation\r\n", 11))
        .unwrap_or_default();
    assert_eq!(status_of(&require), Some(420));
    assert!(require.contains("Unsupported: teleportation"), "{require}");
    let wrong_number = sip
        .exchange(
            &request("INVITE", "", 12)
                .replace("sip:12345@127.0.0.1 SIP", "sip:99999@127.0.0.1 SIP"),
        )
        .unwrap_or_default();
    // A provisional 100 may come first.
    let wrong_number = if status_of(&wrong_number) == Some(100) {
        sip.recv().unwrap_or_default()
    } else {
        wrong_number
    };
    assert_eq!(status_of(&wrong_number), Some(404));

    // A retransmitted request is answered again from the transaction, not processed twice.
    let options = request("OPTIONS", "", 13);
    assert_eq!(
        sip.exchange(&options).as_deref().and_then(status_of),
        Some(200)
    );
    assert_eq!(
        sip.exchange(&options).as_deref().and_then(status_of),
        Some(200)
    );

    // And a normal call right after all that.
    Sipp::new("uac_caller_bye.xml", engine.sip)
        .args(&["-d", "300"])
        .run_in(engine.dir())
        .assert_all_succeeded(1);
}
