//! Calls placed by SIPp to the real engine on loopback, with the test's own RTP peer hearing
//! what a caller would hear.

mod support;

use std::thread;
use std::time::Duration;

use hotline::media::prompt::Prompt;
use support::capture::Capture;
use support::rtp::{Heard, RtpPeer};
use support::sipp::Sipp;
use support::{prompt, prompts, Engine};

/// The first second of a prompt, A-law: enough to know it is playing.
fn opening(p: &Prompt) -> Vec<u8> {
    p.pcma[..p.pcma.len().min(8000)].to_vec()
}

fn concat(parts: &[&Prompt]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.pcma.iter().copied()).collect()
}

fn assert_clean_stream(heard: &Heard) {
    assert_eq!(heard.ssrcs.len(), 1, "one SSRC for the whole call");
    assert_eq!(heard.payload_type, Some(8), "PCMA as offered first");
    assert!(
        heard.markers.first() == Some(&true),
        "marker on the first packet"
    );
    for pair in heard.sequences.windows(2) {
        assert_eq!(
            pair[1],
            pair[0].wrapping_add(1),
            "consecutive sequence numbers"
        );
    }
    for pair in heard.timestamps.windows(2) {
        assert_eq!(
            pair[1],
            pair[0].wrapping_add(160),
            "timestamps advance 160 per packet"
        );
    }
}

#[test]
fn greeting_reaches_the_caller_and_a_key_changes_the_flow() {
    let store = prompts();
    let greeting = prompt(&store, "greeting");
    let confirmation = concat(&[
        &prompt(&store, "you-pressed"),
        &prompt(&store, "digit-1"),
        &prompt(&store, "thanks-goodbye"),
    ]);
    let engine = Engine::start("");
    let mut rtp = RtpPeer::bind();
    let sipp = Sipp::new("uac_wait_bye.xml", engine.sip).set("rtp_port", &rtp.port().to_string());
    let dir = engine.dir().to_path_buf();
    let call = thread::spawn(move || sipp.run_in(&dir));

    let start = opening(&greeting);
    let (before, engine_rtp) = rtp.listen(Duration::from_secs(20), |h| h.contains(&start));
    assert!(before.contains(&start), "the greeting never arrived");
    let engine_rtp = engine_rtp.expect("engine RTP address");
    rtp.send_key('1', 101, engine_rtp);
    let (after, _) = rtp.listen(Duration::from_secs(30), |h| h.contains(&confirmation));
    call.join().expect("sipp thread").assert_all_succeeded(1);

    assert!(
        after.contains(&confirmation),
        "after key 1 the caller must hear 'you pressed one, thank you, goodbye'"
    );
    assert!(
        !after.contains(&opening(&prompt(&store, "no-input"))),
        "the no-input prompt must not play"
    );
    assert_clean_stream(&before);
}

#[test]
fn key_from_sipp_rfc4733_pcap_is_recognised() {
    let store = prompts();
    let confirmation = concat(&[&prompt(&store, "you-pressed"), &prompt(&store, "digit-1")]);
    let engine = Engine::start("");
    let sipp = Sipp::new("uac_pcap_key.xml", engine.sip);
    // What SIPp's media port received, as captured on the wire.
    let capture = Capture::start(engine.dir(), sipp.media_port);
    sipp.run_in(engine.dir()).assert_all_succeeded(1);
    let payloads = capture.rtp_payloads();
    let heard = Heard {
        payload: payloads.concat(),
        ..Heard::default()
    };
    assert!(
        heard.contains(&opening(&prompt(&store, "greeting"))),
        "greeting not in the capture ({} packets)",
        payloads.len()
    );
    assert!(
        heard.contains(&confirmation),
        "key 1 from the pcap was not recognised"
    );
}

#[test]
fn caller_hangs_up_and_calls_in_a_row_all_complete() {
    let engine = Engine::start("");
    Sipp::new("uac_caller_bye.xml", engine.sip)
        .args(&["-d", "1000"])
        .run_in(engine.dir())
        .assert_all_succeeded(1);
    Sipp::new("uac_caller_bye.xml", engine.sip)
        .args(&["-m", "100", "-r", "25", "-l", "25", "-d", "200"])
        .run_in(engine.dir())
        .assert_all_succeeded(100);
}

#[test]
fn calls_over_tcp_complete() {
    let engine = Engine::start("");
    Sipp::new("uac_caller_bye.xml", engine.sip)
        .args(&["-t", "t1", "-d", "500", "-m", "3", "-r", "3"])
        .run_in(engine.dir())
        .assert_all_succeeded(3);
}

#[test]
fn cancel_before_answer_gets_487() {
    let engine = Engine::start("[answer]\nring_ms = 5000\n");
    Sipp::new("uac_cancel.xml", engine.sip)
        .run_in(engine.dir())
        .assert_all_succeeded(1);
}

#[test]
fn late_offer_is_answered_in_the_ack() {
    let engine = Engine::start("");
    Sipp::new("uac_late_offer.xml", engine.sip)
        .run_in(engine.dir())
        .assert_all_succeeded(1);
}

#[test]
fn hold_and_resume_are_answered_recvonly_then_sendrecv() {
    let engine = Engine::start("");
    Sipp::new("uac_hold_resume.xml", engine.sip)
        .run_in(engine.dir())
        .assert_all_succeeded(1);
}

#[test]
fn offer_without_common_codec_gets_488() {
    let engine = Engine::start("");
    Sipp::new("uac_no_common_codec.xml", engine.sip)
        .run_in(engine.dir())
        .assert_all_succeeded(1);
}

#[test]
fn silent_caller_is_hung_up_after_the_media_timeout() {
    let engine = Engine::start("[media]\nmedia_timeout_s = 1\n");
    let rtp = RtpPeer::bind();
    Sipp::new("uac_media_timeout.xml", engine.sip)
        .set("rtp_port", &rtp.port().to_string())
        .run_in(engine.dir())
        .assert_all_succeeded(1);
}

#[test]
fn shutdown_ends_calls_in_progress_with_bye() {
    let store = prompts();
    let start = opening(&prompt(&store, "greeting"));
    let mut engine = Engine::start("");
    let rtp = RtpPeer::bind();
    let sipp = Sipp::new("uac_wait_bye.xml", engine.sip).set("rtp_port", &rtp.port().to_string());
    let dir = engine.dir().to_path_buf();
    let call = thread::spawn(move || sipp.run_in(&dir));
    let (heard, _) = rtp.listen(Duration::from_secs(20), |h| h.payload.len() >= 1600);
    assert!(!heard.payload.is_empty() && start.starts_with(&heard.payload[..160]));
    let status = engine.terminate().expect("engine exits after SIGTERM");
    assert!(status.success(), "clean exit, got {status:?}");
    call.join().expect("sipp thread").assert_all_succeeded(1);
}
