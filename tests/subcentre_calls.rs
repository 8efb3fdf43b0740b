//! Sub-centre numbers (分中心) on loopback: the engine passes the call to the sub-centre's
//! trunk (a SIPp UAS playing its PBX), bridges the two legs, and hangs up the caller when the
//! sub-centre does; a busy sub-centre sends the caller on to the dialplan's fallback. Where each
//! call ended up is read from the engine's `call ended` line.

mod support;

use std::thread;
use std::time::Duration;

use hotline::media::codec::Codec;
use support::records::records;
use support::rtp::RtpPeer;
use support::sipp::{
    calls_ended, keys_scenario, press, write_scenario, CallEnded, Press, Sipp, BUSY_PBX,
};
use support::{free_port, shipped_dialplans_with_trunks, Engine};

/// The PBX's answer once it takes the call: 200 with PCMA, the ACK, 2 s of talk, its BYE.
const PBX_ANSWERS: &str = r#"  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:pbx@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=pbx 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <pause milliseconds="2000"/>
  <send retrans="500">
    <![CDATA[
      BYE [$engine] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:12366@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
      To: [$caller]
      Call-ID: [call_id]
      CSeq: 1 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
"#;

/// The sub-centre's PBX: rings, answers with PCMA, talks 2 s, hangs up.
fn answers_then_hangs_up() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="sub-centre answers, then hangs up">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>
      <ereg regexp="sip:[^>]*" search_in="hdr" header="Contact:" assign_to="engine"/>
      <ereg regexp="^INVITE sip:12366@" search_in="msg" check_it="true" assign_to="ruri"/>
      <ereg regexp="m=audio [0-9]+ RTP/AVP 8 0 101" search_in="body" check_it="true" assign_to="offer"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:pbx@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
    ]]>
  </send>
{PBX_ANSWERS}  <Reference variables="ruri,offer"/>
</scenario>
"#
    )
}

/// The sub-centre's PBX as above, but its agent speaks: SIPp's bundled 7 s PCMA recording is
/// played to the engine right after the ACK, and the PBX hangs up when it is over.
fn speaking_pbx() -> String {
    answers_then_hangs_up().replace(
        r#"<pause milliseconds="2000"/>"#,
        r#"<nop><action><exec play_pcap_audio="/usr/share/sip-tester/g711a.pcap"/></action></nop>
  <pause milliseconds="8000"/>"#,
    )
}

/// The A-law payload of SIPp's `g711a.pcap` (Ethernet, IPv4, UDP, RTP: 54 bytes of headers).
fn recording() -> Vec<u8> {
    let data = std::fs::read("/usr/share/sip-tester/g711a.pcap").expect("sip-tester's pcap");
    let mut payload = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let length = u32::from_le_bytes([data[at + 8], data[at + 9], data[at + 10], data[at + 11]]);
        let packet = &data[at + 16..(at + 16 + length as usize).min(data.len())];
        payload.extend_from_slice(packet.get(54..).unwrap_or_default());
        at += 16 + length as usize;
    }
    payload
}

/// The sub-centre's PBX challenging the engine (SIPp checks the digest answer itself); a wrong
/// answer gets 403.
fn challenges() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="sub-centre asks for credentials">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 401 Unauthorized
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      WWW-Authenticate: Digest realm="tax.example", nonce="[pid][call_number]n", qop="auth"
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <recv request="INVITE" crlf="true">
    <action>
      <verifyauth assign_to="authorised" username="hotline" password="s3cret"/>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>
      <ereg regexp="sip:[^>]*" search_in="hdr" header="Contact:" assign_to="engine"/>
    </action>
  </recv>
  <nop test="authorised" next="answer"/>
  <send next="refused">
    <![CDATA[
      SIP/2.0 403 Forbidden
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <label id="answer"/>
{answers}  <label id="refused"/>
  <recv request="ACK" crlf="true"/>
  <label id="done"/>
</scenario>
"#,
        answers = PBX_ANSWERS.replace(
            r#"<recv response="200" crlf="true"/>"#,
            r#"<recv response="200" crlf="true" next="done"/>"#
        )
    )
}

/// A call to `number` (keys pressed as given) while SIPp plays the tax sub-centre with
/// `pbx_scenario`; returns the call's `call ended` line.
fn call_via_subcentre(pbx_scenario: &str, number: &str, keys: &[Press]) -> CallEnded {
    call_via_subcentre_with(pbx_scenario, number, keys, "")
}

/// As [`call_via_subcentre`], with `credentials` (TOML keys) added to the tax sub-centre.
fn call_via_subcentre_with(
    pbx_scenario: &str,
    number: &str,
    keys: &[Press],
    credentials: &str,
) -> CallEnded {
    let pbx_port = free_port();
    let scratch = tempfile::tempdir().expect("temp dir");
    let dialplans = shipped_dialplans_with_trunks(scratch.path(), &[("127.0.0.1:5070", pbx_port)]);
    if !credentials.is_empty() {
        let file = dialplans.join("subcentres.toml");
        let text = std::fs::read_to_string(&file).expect("subcentres.toml");
        let trunk = format!("trunk = \"127.0.0.1:{pbx_port}\"");
        let text = text.replacen(&trunk, &format!("{trunk}\n{credentials}"), 1);
        std::fs::write(&file, text).expect("credentials");
    }
    let engine = Engine::start_on(&dialplans, "", 200);
    let pbx_file = write_scenario(engine.dir(), "pbx.xml", pbx_scenario);
    let pbx = Sipp::uas(&pbx_file, pbx_port).spawn_in(scratch.path());
    let caller = keys_scenario(engine.dir(), keys);
    let caller = write_scenario(engine.dir(), "caller.xml", &caller);
    Sipp::new(&caller, engine.sip)
        .service(number)
        .run_in(engine.dir())
        .assert_all_succeeded(1);
    pbx.wait().assert_all_succeeded(1);
    let mut ended = calls_ended(&engine, 1, Duration::from_secs(10));
    ended.remove(0)
}

#[test]
fn a_subcentre_number_is_bridged_to_the_trunk_until_the_subcentre_hangs_up() {
    let call = call_via_subcentre(&answers_then_hangs_up(), "12366", &[]);
    let line = &call.line;
    assert_eq!(call.get("why"), "SubCentreHungUp", "{line}");
    assert_eq!(call.handovers(), ["transfer:tax=answered"], "{line}");
    assert_eq!(call.get("dialled"), "12366", "{line}");
    assert_eq!(call.tags(), ["topic=tax"], "{line}");
}

#[test]
fn a_busy_subcentre_sends_the_caller_to_the_fallback() {
    let call = call_via_subcentre(BUSY_PBX, "12366", &[]);
    let line = &call.line;
    assert_eq!(call.get("why"), "FlowDone", "{line}");
    assert_eq!(
        call.handovers(),
        ["transfer:tax=486", "queue:general=no-seat"],
        "{line}"
    );
    assert_eq!(
        call.get("path"),
        "[fallback]>operator[fallback]>all-busy",
        "{line}"
    );
}

#[test]
fn the_12345_tax_topic_reaches_the_subcentre_by_transfer() {
    // 4 during the welcome (barge-in), 4 in the "other" menu: 税务 → transfer to tax.
    let call = call_via_subcentre(
        &answers_then_hangs_up(),
        "12345",
        &[press(1500, '4'), press(3000, '4')],
    );
    let line = &call.line;
    assert_eq!(call.get("why"), "SubCentreHungUp", "{line}");
    assert_eq!(
        call.get("path"),
        "check-priority>welcome[4]>main-menu>other-menu[4]>topic-tax>transfer-tax",
        "{line}"
    );
    assert_eq!(call.handovers(), ["transfer:tax=answered"], "{line}");
}

#[test]
fn the_subcentre_agent_is_heard_by_the_caller_through_the_bridge() {
    let pbx_port = free_port();
    let scratch = tempfile::tempdir().expect("temp dir");
    let dialplans = shipped_dialplans_with_trunks(scratch.path(), &[("127.0.0.1:5070", pbx_port)]);
    let engine = Engine::start_on(&dialplans, "", 200);
    let pbx_file = write_scenario(engine.dir(), "pbx.xml", &speaking_pbx());
    let pbx = Sipp::uas(&pbx_file, pbx_port).spawn_in(scratch.path());
    let rtp = RtpPeer::bind();
    let caller = Sipp::new("uac_wait_bye.xml", engine.sip)
        .service("12366")
        .set("rtp_port", &rtp.port().to_string());
    let dir = engine.dir().to_path_buf();
    let call = thread::spawn(move || caller.run_in(&dir));

    // Two seconds from the middle of the recording must arrive whole: A-law decoded and
    // encoded again is the same bytes, whatever the frame boundaries.
    let recording = recording();
    let excerpt = &recording[16_000..32_000];
    let voiced = excerpt.iter().filter(|&&b| b != 0xD5 && b != 0x55).count();
    assert!(
        voiced > excerpt.len() / 2,
        "the excerpt must be speech, not silence"
    );
    let found = |payload: &[u8]| payload.windows(excerpt.len()).any(|w| w == excerpt);
    let (heard, _) = rtp.listen(Duration::from_secs(20), |h| found(&h.payload));
    call.join().expect("caller thread").assert_all_succeeded(1);
    pbx.wait().assert_all_succeeded(1);
    assert!(
        found(&heard.payload),
        "the sub-centre's audio did not reach the caller ({} bytes heard)",
        heard.payload.len()
    );
    assert_eq!(
        heard.payload_type,
        Some(8),
        "PCMA, as the caller offered first"
    );
    let ended = calls_ended(&engine, 1, Duration::from_secs(10));
    assert_eq!(ended[0].get("why"), "SubCentreHungUp", "{}", ended[0].line);
}

#[test]
fn a_subcentre_that_asks_for_credentials_gets_a_digest_answer() {
    let right = call_via_subcentre_with(
        &challenges(),
        "12366",
        &[],
        "username = \"hotline\"\npassword = \"s3cret\"",
    );
    assert_eq!(
        right.handovers(),
        ["transfer:tax=answered"],
        "{}",
        right.line
    );
    let wrong = call_via_subcentre_with(
        &challenges(),
        "12366",
        &[],
        "username = \"hotline\"\npassword = \"wrong\"",
    );
    assert_eq!(
        wrong.handovers(),
        ["transfer:tax=403", "queue:general=no-seat"],
        "{}",
        wrong.line
    );
}

/// The PBX as in [`answers_then_hangs_up`], with its media at the test's own RTP port
/// (`-set pbx_rtp`), in PCMU, hanging up after 3 s.
fn pbx_with_test_media() -> String {
    answers_then_hangs_up()
        .replace(
            "<scenario name=\"sub-centre answers, then hangs up\">",
            "<scenario name=\"sub-centre answers, then hangs up\">\n  <Global variables=\"pbx_rtp\"/>",
        )
        .replace(
            "m=audio [media_port] RTP/AVP 8 101\n      a=rtpmap:8 PCMA/8000",
            "m=audio [$pbx_rtp] RTP/AVP 0 101\n      a=rtpmap:0 PCMU/8000",
        )
        .replace(
            r#"<pause milliseconds="2000"/>"#,
            r#"<pause milliseconds="3000"/>"#,
        )
}

/// 20 ms of a sine at `hz`, starting at sample `n`.
fn tone(hz: f64, n: usize) -> Vec<i16> {
    (n..n + 160)
        .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / 8000.0).sin()) as i16)
        .collect()
}

/// The power of `samples` at `hz` (Goertzel).
fn power_at(samples: &[i16], hz: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * hz / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - k * s1 * s2
}

#[test]
fn a_bridged_call_is_recorded_caller_left_subcentre_right() {
    let pbx_port = free_port();
    let scratch = tempfile::tempdir().expect("temp dir");
    let dialplans = shipped_dialplans_with_trunks(scratch.path(), &[("127.0.0.1:5070", pbx_port)]);
    let mut engine = Engine::start_on(&dialplans, "", 200);
    let mut caller_rtp = RtpPeer::bind();
    let mut pbx_rtp = RtpPeer::bind();
    let pbx_file = write_scenario(engine.dir(), "pbx.xml", &pbx_with_test_media());
    let pbx = Sipp::uas(&pbx_file, pbx_port)
        .set("pbx_rtp", &pbx_rtp.port().to_string())
        .spawn_in(scratch.path());
    let caller = Sipp::new("uac_wait_bye.xml", engine.sip)
        .service("12366")
        .set("rtp_port", &caller_rtp.port().to_string());
    let dir = engine.dir().to_path_buf();
    let call = thread::spawn(move || caller.run_in(&dir));

    // Each side learns the engine's address from the first packet the bridge sends it.
    let heard = |h: &support::rtp::Heard| !h.payload.is_empty();
    let (_, to_caller_leg) = caller_rtp.listen(Duration::from_secs(10), heard);
    let (_, to_trunk_leg) = pbx_rtp.listen(Duration::from_secs(10), heard);
    let to_caller_leg = to_caller_leg.expect("the engine's caller leg");
    let to_trunk_leg = to_trunk_leg.expect("the engine's trunk leg");
    // 1.5 s of talk: the caller at 440 Hz, the sub-centre at 1000 Hz, sent in real time.
    for frame in 0..75 {
        caller_rtp.send_audio(&tone(440.0, frame * 160), Codec::Pcma, to_caller_leg);
        pbx_rtp.send_audio(&tone(1000.0, frame * 160), Codec::Pcmu, to_trunk_leg);
        thread::sleep(Duration::from_millis(20));
    }
    call.join().expect("caller thread").assert_all_succeeded(1);
    pbx.wait().assert_all_succeeded(1);
    let config = engine.dir().join("hotline.toml");
    assert!(engine.terminate().is_some_and(|s| s.success()));

    let records = records(&config);
    assert_eq!(records.len(), 1);
    let recording = &records[0].recordings[0];
    assert_eq!(recording.status, "ok", "{recording:?}");
    let wav = engine.dir().join("var").join(&recording.path);
    let mut reader = hound::WavReader::open(&wav).expect("the recording");
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap_or(0)).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let seconds = left.len() as f64 / 8000.0;
    assert!(
        (2.5..=6.0).contains(&seconds),
        "the talk lasted about 3 s: {seconds} s"
    );
    assert!(
        power_at(&left, 440.0) > 20.0 * power_at(&left, 1000.0),
        "the caller is on the left"
    );
    assert!(
        power_at(&right, 1000.0) > 20.0 * power_at(&right, 440.0),
        "the sub-centre is on the right"
    );
}
