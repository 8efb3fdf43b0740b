//! Transfers from the desk on loopback: a SIPp caller waits in the `general` queue, a SIPp seat
//! phone answers, and the seat's desktop (the desk API) passes the call on — blind to another
//! skill group or to a sub-centre (a SIPp UAS playing its PBX), or three-way with the
//! sub-centre or another seat. Every party's media is the test's own RTP peer sending a tone of
//! its own in real time, so what each side heard is checked by frequency (Goertzel), then the
//! call record.

mod support;

use std::fs;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use hotline::media::codec::Codec;
use hotline::media::prompt::Prompt;
use hotline::rtp::RtpPacket;
use hotline::tickets::CallRecord;
use support::records::records;
use support::rtp::{Heard, RtpPeer};
use support::seats::{desk_post, log_in_all, register, seats_config, TestSeat};
use support::sipp::{
    bye_answered, calls_ended, wait_for_log, write_scenario, CallEnded, Sipp, SippChild, BUSY_PBX,
    OK_TO_LAST,
};
use support::{free_port, prompts_dir, Engine};

/// The caller's tone, Hz.
const CALLER_HZ: f64 = 500.0;
/// The seat's tone, Hz.
const SEAT_HZ: f64 = 1000.0;
/// The sub-centre's (or the second seat's) tone, Hz.
const OTHER_HZ: f64 = 1500.0;

/// The seats test dialplan (12345 straight to `general`) with a `housing` skill group, the
/// `tax` sub-centre, whose trunk is the test's PBX on `pbx_port`, and `city`, the same trunk
/// out to Hangzhou numbers and mobiles. Seats stay in wrap-up 30 s after a call, so a seat
/// that just passed a call on is not offered it again.
fn dialplans(dir: &Path, pbx_port: u16) -> PathBuf {
    let seats = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialplans/seats/12345.toml");
    let base = fs::read_to_string(seats).expect("the seats dialplan");
    assert!(
        base.contains("wrap_up_s = 1\n"),
        "the seats dialplan changed"
    );
    let text = format!(
        "{}\n[queues.housing]\nname = \"住房\"\nskill = \"housing\"\nring_timeout_s = 10\n\
         wrap_up_s = 30\nmax_wait_s = 120\n\n[subcentres.tax]\nname = \"税务分中心\"\n\
         trunk = \"127.0.0.1:{pbx_port}\"\ntransport = \"udp\"\nnumber = \"12366\"\n\
         always_open = true\n\n[subcentres.city]\nname = \"市话出局\"\n\
         trunk = \"127.0.0.1:{pbx_port}\"\ndial_out = [\"0571*\", \"1??????????\"]\n",
        base.replace("wrap_up_s = 1\n", "wrap_up_s = 30\n")
    );
    let plans = dir.join("dialplans");
    fs::create_dir_all(&plans).expect("dialplan dir");
    fs::write(plans.join("12345.toml"), text).expect("dialplan");
    plans
}

/// A seat and the one skill it has (at its level).
struct Desk<'a>(&'a TestSeat, &'a str);

/// Writes the seats file: each seat with its one skill.
fn write_seats(dir: &Path, desks: &[Desk]) -> PathBuf {
    let mut text = String::new();
    for Desk(seat, skill) in desks {
        text.push_str(&format!(
            "[seats.{}]\nname = \"Seat {}\"\nusername = \"{}\"\npassword = \"{}\"\n\
             token = \"{}\"\nskills = {{ {skill} = {} }}\n\n",
            seat.id,
            seat.username,
            seat.username,
            seat.password,
            seat.token(),
            seat.level
        ));
    }
    let path = dir.join("seats.toml");
    fs::write(&path, text).expect("seats file");
    path
}

/// The engine, its desk API, the port its sub-centre trunk calls, and a scratch directory.
struct Centre {
    engine: Engine,
    api: SocketAddr,
    pbx_port: u16,
    scratch: tempfile::TempDir,
}

impl Centre {
    /// An engine with `desks`; the first `registered` of them are at work: a phone registered,
    /// each at a port of its own (returned in the same order), and logged in ready.
    fn start(desks: &[Desk], registered: usize) -> (Centre, Vec<u16>) {
        let scratch = tempfile::tempdir().expect("temp dir");
        let pbx_port = free_port();
        let plans = dialplans(scratch.path(), pbx_port);
        let (config, api) = seats_config(&write_seats(scratch.path(), desks));
        let engine = Engine::start_on(&plans, &config, 200);
        let mut ports = Vec::new();
        for Desk(seat, _) in &desks[..registered] {
            let port = free_port();
            register(
                engine.sip,
                scratch.path(),
                std::slice::from_ref(*seat),
                port,
            )
            .assert_all_succeeded(1);
            ports.push(port);
        }
        let at_work: Vec<TestSeat> = desks[..registered]
            .iter()
            .map(|Desk(seat, _)| (*seat).clone())
            .collect();
        log_in_all(api, &at_work);
        let centre = Centre {
            engine,
            api,
            pbx_port,
            scratch,
        };
        (centre, ports)
    }

    /// An engine whose one seat, `s<username>` of `general`, is at work: the seat and the port
    /// of its phone.
    fn with_one_seat(username: u32) -> (Centre, TestSeat, u16) {
        let seat = TestSeat::new(username, 5);
        let (centre, ports) = Centre::start(&[Desk(&seat, "general")], 1);
        (centre, seat, ports[0])
    }

    fn dir(&self) -> &Path {
        self.scratch.path()
    }

    /// A caller dialling 12345 with its media at `voice`, hanging up when the engine does.
    fn caller(&self, voice: &Voice) -> SippChild {
        Sipp::new("uac_wait_bye.xml", self.engine.sip)
            .set("rtp_port", &voice.port().to_string())
            .within(40)
            .spawn_in(self.dir())
    }

    /// The tax sub-centre's PBX, acting out `scenario` (with its media at `voice`).
    fn pbx(&self, scenario: &str, voice: Option<&Voice>) -> SippChild {
        let file = write_scenario(self.dir(), "pbx.xml", scenario);
        let mut pbx = Sipp::uas(&file, self.pbx_port).within(40);
        if let Some(voice) = voice {
            pbx = pbx.set("pbx_rtp", &voice.port().to_string());
        }
        pbx.spawn_in(self.dir())
    }

    /// `POST /seats/{seat}/transfer` with `kind` and `to`.
    fn transfer(&self, seat: &TestSeat, kind: &str, to: &str) -> (u16, String) {
        desk_post(
            self.api,
            &format!("/seats/{}/transfer", seat.id),
            &format!(r#"{{"kind": "{kind}", "to": "{to}"}}"#),
        )
    }

    /// Stops the engine and reads back the one call's record.
    fn record(mut self) -> CallRecord {
        let config = self.engine.dir().join("hotline.toml");
        assert!(
            self.engine.terminate().is_some_and(|s| s.success()),
            "the engine stops cleanly"
        );
        let mut records = records(&config);
        assert_eq!(records.len(), 1, "{records:#?}");
        records.remove(0)
    }

    /// The call's `call ended` line, which must say it ended `why` (`SeatHungUp`, ...).
    fn call_ended(&self, why: &str) -> CallEnded {
        let mut ended = calls_ended(&self.engine, 1, Duration::from_secs(10));
        assert_eq!(ended[0].get("why"), why, "{}", ended[0].line);
        ended.remove(0)
    }
}

/// What a seat phone does once it answered.
enum Then {
    /// Talks this many ms, then hangs up (its BYE).
    HangsUpAfter(u64),
    /// Waits for the engine's BYE and answers it.
    WaitsForBye,
}

/// A seat phone (SIPp UAS on `port`) for one call: rings `ring_ms`, answers with PCMA at
/// `voice`, then does `then`.
fn seat_phone(dir: &Path, port: u16, voice: &Voice, ring_ms: u64, then: Then) -> SippChild {
    let xml =
        include_str!("sipp/seat_answers.xml").replace("MEDIA_PORT", &voice.port().to_string());
    // The 180, then the 200 after `ring_ms`.
    let ringing = "    ]]>\n  </send>\n  <send retrans=\"500\">";
    assert!(xml.contains(ringing), "seat_answers.xml changed");
    let xml = xml.replacen(
        ringing,
        &format!(
            "    ]]>\n  </send>\n  <pause milliseconds=\"{}\"/>\n  <send retrans=\"500\">",
            ring_ms.max(1)
        ),
        1,
    );
    let talk = "  <pause milliseconds=\"TALK_MS\"/>";
    let xml = match then {
        Then::HangsUpAfter(ms) => xml.replace("TALK_MS", &ms.to_string()),
        Then::WaitsForBye => {
            let (head, _) = xml.split_once(talk).expect("seat_answers.xml changed");
            // It never sends a BYE of its own: the variables it took from the INVITE go unused.
            let bye = bye_answered(30000);
            format!("{head}{bye}  <Reference variables=\"caller,engine\"/>\n</scenario>\n")
        }
    };
    let file = write_scenario(dir, &format!("phone-{port}.xml"), &xml);
    Sipp::uas(&file, port).within(40).spawn_in(dir)
}

/// The sub-centre's PBX: the INVITE must ask for 12366; it rings `ring_ms`, answers with PCMU
/// at the test's RTP port (`-set pbx_rtp`), talks `talk_ms` and hangs up.
fn pbx_answers(ring_ms: u64, talk_ms: u64) -> String {
    pbx_answers_for("12366", ring_ms, talk_ms)
}

/// [`pbx_answers`] for an INVITE that must ask for `user` (digits).
fn pbx_answers_for(user: &str, ring_ms: u64, talk_ms: u64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="sub-centre answers, talks, hangs up">
  <Global variables="pbx_rtp"/>
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>
      <ereg regexp="sip:[^>]*" search_in="hdr" header="Contact:" assign_to="engine"/>
      <ereg regexp="^INVITE sip:{user}@" search_in="msg" check_it="true" assign_to="ruri"/>
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
  <pause milliseconds="{ring_ms}"/>
  <send retrans="500">
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
      m=audio [$pbx_rtp] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <pause milliseconds="{talk_ms}"/>
  <send retrans="500">
    <![CDATA[
      BYE [$engine] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
      To: [$caller]
      Call-ID: [call_id]
      CSeq: 1 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
  <Reference variables="ruri"/>
</scenario>
"#,
        ring_ms = ring_ms.max(1)
    )
}

/// One party's media: the test's RTP socket, saying its tone to the engine's leg and keeping
/// what the engine sends it.
struct Voice {
    name: &'static str,
    peer: RtpPeer,
    hz: f64,
    codec: Codec,
    /// The engine's leg, once it sent something.
    engine: Option<SocketAddr>,
    /// Samples said so far (the tone goes on without a jump).
    said: usize,
}

impl Voice {
    fn new(name: &'static str, hz: f64, codec: Codec) -> Voice {
        Voice {
            name,
            peer: RtpPeer::bind(),
            hz,
            codec,
            engine: None,
            said: 0,
        }
    }

    fn port(&self) -> u16 {
        self.peer.port()
    }

    /// Waits (up to `within`) for the engine's first packet on this leg: its media is up.
    fn hears_engine(&mut self, within: Duration) {
        let (_, from) = self.peer.listen(within, |h| !h.payload.is_empty());
        let from =
            from.unwrap_or_else(|| panic!("{}: no RTP from the engine in {within:?}", self.name));
        self.engine = Some(from);
    }

    /// Listens (up to `within`) until `audio` (A-law) arrived whole.
    fn hears_prompt(&self, audio: &[u8], within: Duration) -> bool {
        let (heard, _) = self.peer.listen(within, |h: &Heard| h.contains(audio));
        heard.contains(audio)
    }

    /// Throws away what arrived so far.
    fn forget(&self) {
        let _ = self.collect();
    }

    /// Says the next 20 ms of its tone.
    fn say(&mut self) {
        let Some(to) = self.engine else {
            return;
        };
        let samples: Vec<i16> = (self.said..self.said + 160)
            .map(|i| ((i as f64 * self.hz * std::f64::consts::TAU / 8000.0).sin() * 8000.0) as i16)
            .collect();
        self.said += 160;
        self.peer.send_audio(&samples, self.codec, to);
    }

    /// The audio that arrived and has not been read yet (G.711 decoded; other payloads are
    /// skipped).
    fn collect(&self) -> Vec<i16> {
        let socket = &self.peer.socket;
        socket.set_nonblocking(true).expect("non-blocking");
        let mut samples = Vec::new();
        let mut buf = [0u8; 2048];
        loop {
            match socket.recv_from(&mut buf) {
                Ok((n, _)) => {
                    let Ok(packet) = RtpPacket::parse(&buf[..n]) else {
                        continue;
                    };
                    let Some(codec) = Codec::from_payload_type(packet.payload_type) else {
                        continue;
                    };
                    let mut frame = vec![0i16; packet.payload.len()];
                    codec.decode(packet.payload, &mut frame);
                    samples.extend_from_slice(&frame);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{}: RTP socket: {e}", self.name),
            }
        }
        socket.set_nonblocking(false).expect("blocking");
        samples
    }
}

/// The `voices` talk together for `frames` × 20 ms in real time (a voice whose leg the engine
/// has not opened only listens); returns what each heard during that time, in order.
fn talk(voices: &mut [&mut Voice], frames: u32) -> Vec<Vec<i16>> {
    for voice in voices.iter() {
        voice.forget();
    }
    let mut heard = vec![Vec::new(); voices.len()];
    let start = Instant::now();
    for frame in 1..=frames {
        for voice in voices.iter_mut() {
            voice.say();
        }
        let tick = start + Duration::from_millis(20) * frame;
        loop {
            for (voice, heard) in voices.iter().zip(heard.iter_mut()) {
                heard.extend(voice.collect());
            }
            let now = Instant::now();
            if now >= tick {
                break;
            }
            thread::sleep((tick - now).min(Duration::from_millis(5)));
        }
    }
    heard
}

/// The last second of `samples`.
fn last_second(samples: &[i16]) -> &[i16] {
    &samples[samples.len().saturating_sub(8000)..]
}

/// Signal power at `hz` (Goertzel) in `samples`.
fn power_at(samples: &[i16], hz: f64) -> f64 {
    let k = 2.0 * (std::f64::consts::TAU * hz / 8000.0).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = f64::from(x) + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - k * s1 * s2) / samples.len().max(1) as f64
}

/// Asserts that the last second `who` heard has each of `hears` at least 20 times stronger
/// than each of `not`.
fn assert_hears(who: &str, heard: &[i16], hears: &[f64], not: &[f64]) {
    assert!(
        heard.len() >= 8000,
        "{who} heard only {} samples, wanted a second at least",
        heard.len()
    );
    let tail = last_second(heard);
    let report = || {
        [CALLER_HZ, SEAT_HZ, OTHER_HZ]
            .iter()
            .map(|hz| format!("{hz} Hz: {:.3e}", power_at(tail, *hz)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for &yes in hears {
        for &no in not {
            assert!(
                power_at(tail, yes) > 20.0 * power_at(tail, no),
                "{who} must hear {yes} Hz and not {no} Hz; heard {}",
                report()
            );
        }
    }
}

/// A seat's desk answers the transfer request with 200.
fn assert_transferred(answer: (u16, String)) {
    assert_eq!(answer.0, 200, "the transfer is accepted: {}", answer.1);
}

/// The first second of a shipped prompt (`queue/music`, say), A-law: enough to know it plays.
fn opening(name: &str) -> Vec<u8> {
    let path = prompts_dir().join(format!("{name}.wav"));
    let p = Prompt::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    p.pcma[..p.pcma.len().min(8000)].to_vec()
}

/// Waits for a SIPp run and asserts its one call succeeded.
fn completes(who: &str, sipp: SippChild) {
    let run = sipp.wait();
    assert!(
        run.code == Some(0) && run.successful == 1 && run.failed == 0,
        "{who}'s SIPp did not complete its call:\n{}",
        run.output
    );
}

/// The caller and `other` talk 1.5 s while the `gone` (hung up) only listen: each of the two
/// hears the other's tone and neither its own nor the seat's, and the gone hear nothing.
fn the_caller_talks_with(caller: &mut Voice, other: &mut Voice, gone: &mut [&mut Voice]) {
    let (caller_hz, other_hz) = (caller.hz, other.hz);
    let mut voices: Vec<&mut Voice> = vec![caller, other];
    for voice in gone.iter_mut() {
        voice.engine = None;
        voices.push(&mut **voice);
    }
    let heard = talk(&mut voices, 75);
    assert_hears(
        voices[0].name,
        &heard[0],
        &[other_hz],
        &[caller_hz, SEAT_HZ],
    );
    assert_hears(
        voices[1].name,
        &heard[1],
        &[caller_hz],
        &[other_hz, SEAT_HZ],
    );
    for (voice, heard) in voices.iter().zip(&heard).skip(2) {
        assert!(
            heard.is_empty(),
            "{} is hung up, yet its leg got {} samples",
            voice.name,
            heard.len()
        );
    }
}

/// The three `voices` (caller, seat, third party) talk 2 s together, ending before the seat's
/// phone hangs up at `seat_leaves`: in the last second each hears the other two, not itself.
fn the_three_talk(mut voices: [&mut Voice; 3], seat_leaves: Instant) {
    let who: Vec<(&str, f64)> = voices.iter().map(|v| (v.name, v.hz)).collect();
    let heard = talk(&mut voices, 100);
    let left = seat_leaves.saturating_duration_since(Instant::now());
    assert!(
        left > Duration::from_millis(500),
        "the test was too slow: the conference was measured until {left:?} before the seat's \
         phone hangs up"
    );
    for (i, (name, hz)) in who.iter().enumerate() {
        let others: Vec<f64> = who
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, (_, other))| *other)
            .collect();
        assert_hears(name, &heard[i], &others, &[*hz]);
    }
}

/// The first seat gone, the caller and the second seat talk alone; then the second seat's
/// phone hangs up and the engine hangs up the caller.
fn the_second_seat_ends_the_call(
    centre: &Centre,
    caller: SippChild,
    caller_voice: &mut Voice,
    second_phone: SippChild,
    second_voice: &mut Voice,
    first_voice: &mut Voice,
) {
    the_caller_talks_with(caller_voice, second_voice, &mut [first_voice]);
    completes("the second seat's phone", second_phone);
    completes("the caller", caller);
    centre.call_ended("SeatHungUp");
}

/// Asserts the record's one transfer: `kind` to `target`, ended `outcome` (an answered one
/// with its answer time).
fn assert_transfer(record: &CallRecord, kind: &str, target: &str, outcome: &str) {
    assert_eq!(record.transfers.len(), 1, "{record:#?}");
    let transfer = &record.transfers[0];
    assert_eq!(transfer.kind, kind, "{transfer:?}");
    assert_eq!(transfer.target, target, "{transfer:?}");
    assert_eq!(transfer.outcome.as_deref(), Some(outcome), "{transfer:?}");
    if outcome == "answered" {
        assert!(transfer.answered.is_some(), "{transfer:?}");
    }
}

/// A queue visit as (queue, outcome, seat).
type Visit<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

/// The record's queue visits.
fn visits(record: &CallRecord) -> Vec<Visit<'_>> {
    record
        .queues
        .iter()
        .map(|v| (v.queue.as_str(), v.outcome.as_deref(), v.seat.as_deref()))
        .collect()
}

/// A visit to `queue` that `seat` answered.
fn answered_in<'a>(queue: &'a str, seat: &'a TestSeat) -> Visit<'a> {
    (queue, Some("answered"), Some(seat.id.as_str()))
}

/// Asserts that `by` (`seat`, `subcentre`) ended the call with its BYE.
fn assert_ended_by(record: &CallRecord, by: &str) {
    let end = record.end.as_ref().expect("finished");
    assert_eq!(
        (end.by.as_str(), end.cause.as_str()),
        (by, "bye"),
        "{end:?}"
    );
}

#[test]
fn three_way_caller_seat_and_subcentre_hear_the_other_two_then_go_on_without_the_seat() {
    // The seat phone hangs up SEAT_TALK_MS after answering; the conference is measured well
    // before that, and the sub-centre stays on long enough after it.
    const SEAT_TALK_MS: u64 = 5000;
    let (centre, seat, port) = Centre::with_one_seat(4101);
    let mut caller_voice = Voice::new("the caller", CALLER_HZ, Codec::Pcma);
    let mut seat_voice = Voice::new("the seat", SEAT_HZ, Codec::Pcma);
    let mut pbx_voice = Voice::new("the sub-centre", OTHER_HZ, Codec::Pcmu);
    let phone = seat_phone(
        centre.dir(),
        port,
        &seat_voice,
        0,
        Then::HangsUpAfter(SEAT_TALK_MS),
    );
    let pbx = centre.pbx(&pbx_answers(0, 8000), Some(&pbx_voice));
    let caller = centre.caller(&caller_voice);

    caller_voice.hears_engine(Duration::from_secs(10));
    seat_voice.hears_engine(Duration::from_secs(10));
    let answered = Instant::now();
    assert_transferred(centre.transfer(&seat, "three-way", "subcentre:tax"));
    pbx_voice.hears_engine(Duration::from_secs(10));

    the_three_talk(
        [&mut caller_voice, &mut seat_voice, &mut pbx_voice],
        answered + Duration::from_millis(SEAT_TALK_MS),
    );

    // The seat's phone hangs up (its BYE, answered): caller and sub-centre go on.
    completes("the seat phone", phone);
    the_caller_talks_with(&mut caller_voice, &mut pbx_voice, &mut [&mut seat_voice]);

    // The sub-centre hangs up; the engine hangs up the caller.
    the_trunk_hangs_up(centre, &seat, pbx, caller, "three-way", "subcentre:tax");
}

#[test]
fn three_way_to_another_seat_the_three_talk_then_that_seat_has_the_call() {
    // The first seat's phone hangs up FIRST_TALK_MS after answering: the conference is
    // measured well before that. The second seat's phone stays SECOND_TALK_MS after its own
    // answer, long enough to talk with the caller alone.
    const FIRST_TALK_MS: u64 = 5000;
    const SECOND_TALK_MS: u64 = 8000;
    let (first, second) = (TestSeat::new(5101, 5), TestSeat::new(5102, 3));
    let (centre, ports) = Centre::start(&[Desk(&first, "general"), Desk(&second, "housing")], 2);
    let mut caller_voice = Voice::new("the caller", CALLER_HZ, Codec::Pcma);
    let mut first_voice = Voice::new("the first seat", SEAT_HZ, Codec::Pcma);
    let mut second_voice = Voice::new("the second seat", OTHER_HZ, Codec::Pcma);
    let first_phone = seat_phone(
        centre.dir(),
        ports[0],
        &first_voice,
        0,
        Then::HangsUpAfter(FIRST_TALK_MS),
    );
    let second_phone = seat_phone(
        centre.dir(),
        ports[1],
        &second_voice,
        0,
        Then::HangsUpAfter(SECOND_TALK_MS),
    );
    let caller = centre.caller(&caller_voice);

    caller_voice.hears_engine(Duration::from_secs(10));
    first_voice.hears_engine(Duration::from_secs(10));
    let answered = Instant::now();
    let to = format!("seat:{}", second.id);
    assert_transferred(centre.transfer(&first, "three-way", &to));
    second_voice.hears_engine(Duration::from_secs(10));

    the_three_talk(
        [&mut caller_voice, &mut first_voice, &mut second_voice],
        answered + Duration::from_millis(FIRST_TALK_MS),
    );

    // The first seat's phone hangs up: the second seat has the caller to itself.
    completes("the first seat's phone", first_phone);
    the_second_seat_ends_the_call(
        &centre,
        caller,
        &mut caller_voice,
        second_phone,
        &mut second_voice,
        &mut first_voice,
    );

    let record = centre.record();
    assert_transfer(&record, "three-way", &to, "answered");
    let transfer = &record.transfers[0];
    assert_eq!(
        transfer.by.as_deref(),
        Some(first.id.as_str()),
        "{transfer:?}"
    );
    assert_eq!(
        transfer.seat.as_deref(),
        Some(second.id.as_str()),
        "{transfer:?}"
    );
    assert_eq!(
        visits(&record),
        [answered_in("general", &first)],
        "the visit names the seat that answered it: {record:#?}"
    );
    assert_ended_by(&record, "seat");
}

#[test]
fn blind_to_a_subcentre_the_seat_leaves_at_once_and_the_caller_talks_with_the_subcentre() {
    let (centre, seat, port) = Centre::with_one_seat(4201);
    let mut caller_voice = Voice::new("the caller", CALLER_HZ, Codec::Pcma);
    let mut seat_voice = Voice::new("the seat", SEAT_HZ, Codec::Pcma);
    let mut pbx_voice = Voice::new("the sub-centre", OTHER_HZ, Codec::Pcmu);
    let phone = seat_phone(centre.dir(), port, &seat_voice, 0, Then::WaitsForBye);
    // The PBX rings 2 s: the caller hears music meanwhile.
    let pbx = centre.pbx(&pbx_answers(2000, 3000), Some(&pbx_voice));
    let caller = centre.caller(&caller_voice);

    caller_voice.hears_engine(Duration::from_secs(10));
    seat_voice.hears_engine(Duration::from_secs(10));
    // Caller and seat talk briefly; what the caller heard so far is put aside.
    talk(&mut [&mut caller_voice, &mut seat_voice], 10);
    let asked = Instant::now();
    assert_transferred(centre.transfer(&seat, "blind", "subcentre:tax"));
    // The seat's phone gets the engine's BYE at once, while the sub-centre still rings.
    completes("the seat phone", phone);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "the seat's phone was hung up only after {:?}",
        asked.elapsed()
    );
    assert!(
        caller_voice.hears_prompt(&opening("queue/music"), Duration::from_secs(5)),
        "the caller hears music while the sub-centre rings"
    );
    pbx_voice.hears_engine(Duration::from_secs(10));
    // The seat's phone is gone: its side only listens from now on.
    the_caller_talks_with(&mut caller_voice, &mut pbx_voice, &mut [&mut seat_voice]);
    the_trunk_hangs_up(centre, &seat, pbx, caller, "blind", "subcentre:tax");
}

#[test]
fn blind_to_a_busy_subcentre_sends_the_caller_back_to_the_queue_and_another_seat() {
    the_second_seat_takes_the_caller(4301, "general", Some(BUSY_PBX), "subcentre:tax", "486");
}

#[test]
fn blind_to_another_skill_group_rings_its_seat() {
    the_second_seat_takes_the_caller(4401, "housing", None, "queue:housing", "queued");
}

/// Seat `s<first>` (general, level 5: it gets the call first) answers the caller and passes it
/// on blind to `target`; seat `s<first + 1>` (of `skill`, level 3) rings 2 s, answers, talks
/// 4 s and hangs up. With a `refusing_pbx` (the sub-centre's PBX saying no), the caller is
/// told the transfer failed while the second seat rings. The record shows the transfer ended
/// `outcome` and both seats' answers, the second's in `skill`'s queue.
fn the_second_seat_takes_the_caller(
    first: u32,
    skill: &str,
    refusing_pbx: Option<&str>,
    target: &str,
    outcome: &str,
) {
    let (first, second) = (TestSeat::new(first, 5), TestSeat::new(first + 1, 3));
    let (centre, ports) = Centre::start(&[Desk(&first, "general"), Desk(&second, skill)], 2);
    let mut caller_voice = Voice::new("the caller", CALLER_HZ, Codec::Pcma);
    let mut first_voice = Voice::new("the first seat", SEAT_HZ, Codec::Pcma);
    let mut second_voice = Voice::new("the second seat", OTHER_HZ, Codec::Pcma);
    let first_phone = seat_phone(centre.dir(), ports[0], &first_voice, 0, Then::WaitsForBye);
    let second_phone = seat_phone(
        centre.dir(),
        ports[1],
        &second_voice,
        2000,
        Then::HangsUpAfter(4000),
    );
    let pbx = refusing_pbx.map(|scenario| centre.pbx(scenario, None));
    let caller = centre.caller(&caller_voice);

    caller_voice.hears_engine(Duration::from_secs(10));
    first_voice.hears_engine(Duration::from_secs(10));
    caller_voice.forget();
    assert_transferred(centre.transfer(&first, "blind", target));
    completes("the first seat's phone", first_phone);
    if let Some(pbx) = pbx {
        completes("the refusing sub-centre's PBX", pbx);
        assert!(
            caller_voice.hears_prompt(&opening("queue/transfer-failed"), Duration::from_secs(10)),
            "the caller is told the transfer failed"
        );
    }
    // The second seat's phone rings and answers.
    second_voice.hears_engine(Duration::from_secs(10));
    the_second_seat_ends_the_call(
        &centre,
        caller,
        &mut caller_voice,
        second_phone,
        &mut second_voice,
        &mut first_voice,
    );

    let record = centre.record();
    assert_transfer(&record, "blind", target, outcome);
    assert_eq!(
        visits(&record),
        [answered_in("general", &first), answered_in(skill, &second)],
        "{record:#?}"
    );
    assert_ended_by(&record, "seat");
}

#[test]
fn undeclared_or_unstaffed_targets_are_refused_and_the_call_stays_with_the_seat() {
    let seat = TestSeat::new(4501, 5);
    // A housing seat is declared but not at work.
    let housing = TestSeat::new(4502, 5);
    let (centre, ports) = Centre::start(&[Desk(&seat, "general"), Desk(&housing, "housing")], 1);
    let mut caller_voice = Voice::new("the caller", CALLER_HZ, Codec::Pcma);
    let mut seat_voice = Voice::new("the seat", SEAT_HZ, Codec::Pcma);
    let phone = seat_phone(
        centre.dir(),
        ports[0],
        &seat_voice,
        0,
        Then::HangsUpAfter(4000),
    );
    let caller = centre.caller(&caller_voice);

    caller_voice.hears_engine(Duration::from_secs(10));
    seat_voice.hears_engine(Duration::from_secs(10));
    for (kind, to) in [
        ("blind", "sip:110@1.2.3.4"),
        ("three-way", "sip:110@1.2.3.4"),
        ("blind", "subcentre:nowhere"),
        ("blind", "queue:nowhere"),
    ] {
        let (status, body) = centre.transfer(&seat, kind, to);
        assert_eq!(status, 403, "{kind} to {to}: {body}");
    }
    let (status, body) = centre.transfer(&seat, "blind", "queue:housing");
    assert_eq!(status, 409, "nobody of housing is at work: {body}");

    // Caller and seat still talk.
    let heard = talk(&mut [&mut caller_voice, &mut seat_voice], 75);
    assert_hears("the caller", &heard[0], &[SEAT_HZ], &[CALLER_HZ]);
    assert_hears("the seat", &heard[1], &[CALLER_HZ], &[SEAT_HZ]);
    let ended = the_seat_hangs_up_the_call_it_kept(centre, &seat, phone, caller);
    let handover = format!("queue:general=answered@{}", seat.id);
    assert_eq!(ended.handovers(), [handover], "{}", ended.line);
}

/// The seat phone that kept its caller hangs up: both SIPps complete, the call ends
/// `SeatHungUp`, and its record has no transfer, only the seat's answer in `general`.
fn the_seat_hangs_up_the_call_it_kept(
    centre: Centre,
    seat: &TestSeat,
    phone: SippChild,
    caller: SippChild,
) -> CallEnded {
    completes("the seat phone", phone);
    completes("the caller", caller);
    let ended = centre.call_ended("SeatHungUp");
    let record = centre.record();
    assert!(record.transfers.is_empty(), "{record:#?}");
    assert_eq!(
        visits(&record),
        [answered_in("general", seat)],
        "{record:#?}"
    );
    assert_ended_by(&record, "seat");
    ended
}

#[test]
fn blind_to_an_allowed_number_the_caller_talks_with_it_over_the_trunk() {
    let (centre, seat, port) = Centre::with_one_seat(4701);
    let mut caller_voice = Voice::new("the caller", CALLER_HZ, Codec::Pcma);
    let mut seat_voice = Voice::new("the seat", SEAT_HZ, Codec::Pcma);
    let mut far_voice = Voice::new("the number", OTHER_HZ, Codec::Pcmu);
    let phone = seat_phone(centre.dir(), port, &seat_voice, 0, Then::WaitsForBye);
    // The trunk must be asked for the number itself; it rings 1 s, talks 3 s.
    let pbx = centre.pbx(
        &pbx_answers_for("057187654321", 1000, 3000),
        Some(&far_voice),
    );
    let caller = centre.caller(&caller_voice);

    caller_voice.hears_engine(Duration::from_secs(10));
    seat_voice.hears_engine(Duration::from_secs(10));
    // Numbers no sub-centre's `dial_out` allows are refused; nothing is dialled.
    for (kind, to) in [
        ("blind", "number:0088612345678"),
        ("three-way", "number:110"),
        ("consult", "number:0572123456"),
    ] {
        let (status, body) = centre.transfer(&seat, kind, to);
        assert_eq!(status, 403, "{kind} to {to}: {body}");
        assert!(body.contains("dial_out"), "{kind} to {to}: {body}");
    }
    assert_transferred(centre.transfer(&seat, "blind", "number:057187654321"));
    completes("the seat phone", phone);
    far_voice.hears_engine(Duration::from_secs(10));
    the_caller_talks_with(&mut caller_voice, &mut far_voice, &mut [&mut seat_voice]);
    completes("the trunk (the number's side)", pbx);
    completes("the caller", caller);
    centre.call_ended("SubCentreHungUp");

    let record = centre.record();
    assert_eq!(
        record.transfers.len(),
        1,
        "only the allowed number: {record:#?}"
    );
    assert_transfer(&record, "blind", "number:057187654321", "answered");
    assert_eq!(
        visits(&record),
        [answered_in("general", &seat)],
        "{record:#?}"
    );
}

/// What a seat phone that sends REFER does, step by step, after it answered.
#[derive(Clone, Copy)]
enum PhoneStep<'a> {
    /// Waits this many ms.
    Pause(u64),
    /// Sends REFER with `Refer-To: <target>` (SIPp keywords allowed; `[$engine_host]` is the
    /// engine's host:port) in its dialog with the engine and expects its final answer `status`.
    Refer { target: &'a str, status: u16 },
    /// Receives the engine's NOTIFY of the REFER's progress, checks it (Event `refer`, a
    /// `message/sipfrag;version=2.0` body starting with `sipfrag`, Subscription-State starting
    /// with `state`) and answers 200.
    Notified {
        sipfrag: &'static str,
        state: &'static str,
    },
    /// Receives the engine's BYE and answers 200.
    HungUpByEngine,
    /// Hangs up itself (its BYE, answered 200).
    HangsUp,
    /// Puts the caller on hold: a re-INVITE offering `a=sendonly` (its media still at the
    /// phone's voice), which must be answered 200 with `a=recvonly`; ACKs it.
    Holds,
    /// Writes its dialog with the engine to [`dialog_log`] (see [`LineOne`]), for another
    /// SIPp to send a request in it; the CSeq it names is taken from the phone's own count.
    TellsDialog,
}

/// The engine's first NOTIFY of a REFER it took: trying, the subscription active.
const NOTIFIED_TRYING: PhoneStep = PhoneStep::Notified {
    sipfrag: "SIP/2.0 100 Trying",
    state: "active",
};

/// The engine's last NOTIFY of a REFER that went through: 200, the subscription terminated.
const NOTIFIED_OK: PhoneStep = PhoneStep::Notified {
    sipfrag: "SIP/2.0 200 OK",
    state: "terminated",
};

/// A seat phone (SIPp UAS on `port`) for one call: answers at once with PCMA at `voice`,
/// then acts out `steps`. Its requests are in the dialog the engine's INVITE made: the phone's
/// tag on From, the engine's From (with its tag) as To, CSeq counting up from 1.
fn referring_phone(dir: &Path, port: u16, voice: &Voice, steps: &[PhoneStep]) -> SippChild {
    let xml =
        include_str!("sipp/seat_answers.xml").replace("MEDIA_PORT", &voice.port().to_string());
    let talk = "  <pause milliseconds=\"TALK_MS\"/>";
    let (head, _) = xml.split_once(talk).expect("seat_answers.xml changed");
    // The engine's host and port, from its Contact, for the Refer-To URIs (`[$engine_host]`):
    // a UAS's `[remote_ip]` is empty.
    let contact = r#"assign_to="engine"/>"#;
    assert!(head.contains(contact), "seat_answers.xml changed");
    let head = head.replacen(
        contact,
        &format!(
            "{contact}\n      <ereg regexp=\"@([^;>]*)\" search_in=\"hdr\" header=\"Contact:\" \
             check_it=\"true\" assign_to=\"engine_at,engine_host\"/>"
        ),
        1,
    );
    let mut body = head;
    let mut checks = vec!["engine_at".to_string()];
    let mut cseq = 0;
    // A request of the phone's own in the dialog; `extra` are further header lines.
    let request = |method: &str, cseq: u32, extra: &str| {
        format!(
            r#"  <send retrans="500">
    <![CDATA[
      {method} [$engine] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:seat@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
      To: [$caller]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Contact: <sip:seat@[local_ip]:[local_port];transport=[transport]>
{extra}      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"#
        )
    };
    for step in steps {
        match step {
            PhoneStep::Pause(ms) => body += &format!("  <pause milliseconds=\"{ms}\"/>\n"),
            PhoneStep::Refer { target, status } => {
                cseq += 1;
                let headers = format!(
                    "      Refer-To: <{target}>\n      \
                     Referred-By: <sip:seat@[local_ip]:[local_port]>\n"
                );
                body += &request("REFER", cseq, &headers);
                body += &format!("  <recv response=\"{status}\" timeout=\"10000\"/>\n");
            }
            PhoneStep::Notified { sipfrag, state } => {
                let n = checks.len();
                let check = |what: &str, regexp: &str, search: &str| {
                    format!(
                        "      <ereg regexp=\"{regexp}\" {search} check_it=\"true\" \
                         assign_to=\"n{n}_{what}\"/>\n"
                    )
                };
                body += "  <recv request=\"NOTIFY\" timeout=\"10000\">\n    <action>\n";
                body += &check("event", "^ *refer$", r#"search_in="hdr" header="Event:""#);
                body += &check(
                    "type",
                    "^ *message/sipfrag;version=2.0$",
                    r#"search_in="hdr" header="Content-Type:""#,
                );
                body += &check(
                    "state",
                    &format!("^ *{state}"),
                    r#"search_in="hdr" header="Subscription-State:""#,
                );
                body += &check("frag", &format!("^{sipfrag}"), r#"search_in="body""#);
                body += "    </action>\n  </recv>\n";
                body += OK_TO_LAST;
                checks
                    .extend(["event", "type", "state", "frag"].map(|what| format!("n{n}_{what}")));
            }
            PhoneStep::HungUpByEngine => body += &bye_answered(30000),
            PhoneStep::HangsUp => {
                cseq += 1;
                body += &request("BYE", cseq, "");
                body += "  <recv response=\"200\" timeout=\"10000\"/>\n";
            }
            PhoneStep::Holds => {
                cseq += 1;
                let n = checks.len();
                body += &hold_reinvite(cseq, voice.port(), &format!("n{n}_held"));
                checks.push(format!("n{n}_held"));
            }
            PhoneStep::TellsDialog => {
                cseq += 1;
                body += &format!(
                    "  <nop>\n    <action>\n      \
                     <log message=\"call_id [call_id]\"/>\n      \
                     <log message=\"phone_uri sip:seat@[local_ip]:[local_port]\"/>\n      \
                     <log message=\"phone_tag [pid]SIPpTag01[call_number]\"/>\n      \
                     <log message=\"engine_from [$caller]\"/>\n      \
                     <log message=\"engine [$engine]\"/>\n      \
                     <log message=\"cseq {cseq}\"/>\n    </action>\n  </nop>\n"
                );
            }
        }
    }
    // `engine_host` goes unused by a phone that sends no REFER itself.
    checks.extend(["caller", "engine", "engine_host"].map(String::from));
    body += &format!(
        "  <Reference variables=\"{}\"/>\n</scenario>\n",
        checks.join(",")
    );
    let file = write_scenario(dir, &format!("phone-{port}.xml"), &body);
    let mut phone = Sipp::uas(&file, port).within(40);
    if steps.iter().any(|s| matches!(s, PhoneStep::TellsDialog)) {
        let log = dialog_log(dir, port).display().to_string();
        phone = phone.args(&["-trace_logs", "-log_file", &log]);
    }
    phone.spawn_in(dir)
}

#[test]
fn a_refer_from_the_seat_phone_to_a_subcentre_number_is_notified_and_passes_the_caller_on() {
    a_refer_passes_the_caller_over_the_trunk(4601, "12366", "the sub-centre", "subcentre:tax");
}

#[test]
fn a_refer_from_the_seat_phone_to_an_allowed_number_calls_it_over_the_trunk() {
    a_refer_passes_the_caller_over_the_trunk(
        4702,
        "13912345678",
        "the mobile",
        "number:13912345678",
    );
}

/// 1.5 s after answering, the phone of seat `username` REFERs its caller to `number`, which
/// the trunk carries (`far` answers there after 1 s and hangs up 3 s later): the phone is told
/// (202, NOTIFY 100, NOTIFY 200) and hung up, caller and `far` talk, and the record shows the
/// seat's answer and a blind transfer to `target`, answered.
fn a_refer_passes_the_caller_over_the_trunk(
    username: u32,
    number: &str,
    far: &'static str,
    target: &str,
) {
    let (centre, seat, port) = Centre::with_one_seat(username);
    let mut caller_voice = Voice::new("the caller", CALLER_HZ, Codec::Pcma);
    let mut seat_voice = Voice::new("the seat", SEAT_HZ, Codec::Pcma);
    let mut far_voice = Voice::new(far, OTHER_HZ, Codec::Pcmu);
    let refer_to = format!("sip:{number}@[$engine_host]");
    let phone = referring_phone(
        centre.dir(),
        port,
        &seat_voice,
        &[
            PhoneStep::Pause(1500),
            PhoneStep::Refer {
                target: &refer_to,
                status: 202,
            },
            NOTIFIED_TRYING,
            NOTIFIED_OK,
            PhoneStep::HungUpByEngine,
        ],
    );
    let pbx = centre.pbx(&pbx_answers_for(number, 1000, 3000), Some(&far_voice));
    let caller = centre.caller(&caller_voice);

    caller_voice.hears_engine(Duration::from_secs(10));
    seat_voice.hears_engine(Duration::from_secs(10));
    // REFER, 202, both NOTIFYs answered, the engine's BYE answered.
    completes("the seat phone", phone);
    far_voice.hears_engine(Duration::from_secs(10));
    the_caller_talks_with(&mut caller_voice, &mut far_voice, &mut [&mut seat_voice]);
    the_trunk_hangs_up(centre, &seat, pbx, caller, "blind", target);
}

/// The far end on the trunk, which the seat passed its caller to, hangs up: both SIPps
/// complete, the call ends `SubCentreHungUp`, and its record shows the seat's answer and one
/// transfer, `kind` to `target`, answered.
fn the_trunk_hangs_up(
    centre: Centre,
    seat: &TestSeat,
    trunk: SippChild,
    caller: SippChild,
    kind: &str,
    target: &str,
) {
    completes("the trunk", trunk);
    completes("the caller", caller);
    centre.call_ended("SubCentreHungUp");
    let record = centre.record();
    assert_transfer(&record, kind, target, "answered");
    assert_eq!(
        visits(&record),
        [answered_in("general", seat)],
        "{record:#?}"
    );
    assert_ended_by(&record, "subcentre");
}

/// The phone of `seat` (on `port`) answers, and 1.5 s later acts out `refer`, which the engine
/// refuses (or reports failed): after the engine logged `logged`, caller and seat still talk
/// together, then the seat hangs up (`TALK_AFTER_MS` after its last REFER step) and the call
/// ends with no transfer on record.
fn the_seat_keeps_the_caller(
    centre: Centre,
    seat: &TestSeat,
    port: u16,
    refer: &[PhoneStep],
    logged: &str,
) {
    let mut caller_voice = Voice::new("the caller", CALLER_HZ, Codec::Pcma);
    let mut seat_voice = Voice::new("the seat", SEAT_HZ, Codec::Pcma);
    let mut steps = vec![PhoneStep::Pause(1500)];
    steps.extend_from_slice(refer);
    steps.extend([PhoneStep::Pause(TALK_AFTER_MS), PhoneStep::HangsUp]);
    let phone = referring_phone(centre.dir(), port, &seat_voice, &steps);
    let caller = centre.caller(&caller_voice);
    caller_voice.hears_engine(Duration::from_secs(10));
    seat_voice.hears_engine(Duration::from_secs(10));
    let refused = wait_for_log(&centre.engine, logged, 1, Duration::from_secs(10));
    if refused.is_empty() {
        // What the phone saw tells why.
        panic!(
            "the engine never logged {logged:?}; the seat phone:\n{}",
            phone.wait().output
        );
    }
    let since = Instant::now();
    let heard = talk(&mut [&mut caller_voice, &mut seat_voice], 75);
    assert!(
        since.elapsed() < Duration::from_millis(TALK_AFTER_MS - 500),
        "the test was too slow: the seat hangs up {TALK_AFTER_MS} ms after the refusal, the \
         talk was measured until {:?} after it",
        since.elapsed()
    );
    assert_hears("the caller", &heard[0], &[SEAT_HZ], &[CALLER_HZ]);
    assert_hears("the seat", &heard[1], &[CALLER_HZ], &[SEAT_HZ]);
    the_seat_hangs_up_the_call_it_kept(centre, seat, phone, caller);
}

/// How long a seat phone whose REFER was refused talks on before it hangs up, ms.
const TALK_AFTER_MS: u64 = 5000;

#[test]
fn a_refer_from_the_seat_phone_to_an_undeclared_number_is_refused() {
    let (centre, seat, port) = Centre::with_one_seat(4701);
    // 110 is no target the dialplan declares: no toll fraud through the engine.
    let refer = [PhoneStep::Refer {
        target: "sip:110@[$engine_host]",
        status: 403,
    }];
    the_seat_keeps_the_caller(
        centre,
        &seat,
        port,
        &refer,
        "REFER to an undeclared target refused",
    );
}

#[test]
fn a_refer_from_the_seat_phone_to_a_group_with_nobody_at_work_is_notified_failed() {
    let seat = TestSeat::new(4801, 5);
    // A housing seat is declared but not at work.
    let housing = TestSeat::new(4802, 5);
    let (centre, ports) = Centre::start(&[Desk(&seat, "general"), Desk(&housing, "housing")], 1);
    let refer = [
        PhoneStep::Refer {
            target: "sip:housing@[$engine_host]",
            status: 202,
        },
        NOTIFIED_TRYING,
        PhoneStep::Notified {
            sipfrag: "SIP/2.0 503 Service Unavailable",
            state: "terminated",
        },
    ];
    the_seat_keeps_the_caller(
        centre,
        &seat,
        ports[0],
        &refer,
        "transfer asked by REFER refused",
    );
}

/// A seat phone's re-INVITE putting the caller on hold (`a=sendonly`, its media at
/// `media_port`), CSeq `cseq`: the 200 must answer `a=recvonly` (checked into `check`); ACKed.
fn hold_reinvite(cseq: u32, media_port: u16, check: &str) -> String {
    format!(
        r#"  <send retrans="500">
    <![CDATA[
      INVITE [$engine] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:seat@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
      To: [$caller]
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:seat@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=seat 1 2 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio {media_port} RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=sendonly
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200" timeout="10000">
    <action>
      <ereg regexp="a=recvonly" search_in="body" check_it="true" assign_to="{check}"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      ACK [$engine] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:seat@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
      To: [$caller]
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"#
    )
}

/// Where a seat phone on `port` writes its dialog ([`PhoneStep::TellsDialog`]).
fn dialog_log(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("phone-{port}-dialog.log"))
}

/// Waits (up to `within`, reading the file as it grows) until the SIPp `<log>` file at `path`
/// has a `KEY value` line for each of `keys`; their values, in the order of `keys`.
fn logged(path: &Path, keys: &[&str], within: Duration) -> Option<Vec<String>> {
    let deadline = Instant::now() + within;
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        let values: Vec<Option<String>> = keys
            .iter()
            .map(|key| {
                // Whole lines only: SIPp may be writing the last one.
                text.split_inclusive('\n').find_map(|line| {
                    let (k, v) = line.strip_suffix('\n')?.split_once(' ')?;
                    (k == *key).then(|| v.trim().to_string())
                })
            })
            .collect();
        if values.iter().all(Option::is_some) {
            return Some(values.into_iter().flatten().collect());
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The seat phone's first line (the engine's call to it), as its phone wrote it down.
struct LineOne {
    call_id: String,
    /// The phone's From: its URI and tag.
    phone_uri: String,
    phone_tag: String,
    /// The engine's From (with its tag): the To of the phone's requests.
    engine_from: String,
    /// The engine's Contact: the Request-URI of the phone's requests.
    engine: String,
    /// The CSeq for the next request of the phone's.
    cseq: String,
}

impl LineOne {
    /// Waits (up to `within`) for the phone's [`PhoneStep::TellsDialog`] in `log`.
    fn told(log: &Path, within: Duration) -> Option<LineOne> {
        let keys = [
            "call_id",
            "phone_uri",
            "phone_tag",
            "engine_from",
            "engine",
            "cseq",
        ];
        let mut values = logged(log, &keys, within)?.into_iter();
        let mut next = || values.next().expect("one value per key");
        Some(LineOne {
            call_id: next(),
            phone_uri: next(),
            phone_tag: next(),
            engine_from: next(),
            engine: next(),
            cseq: next(),
        })
    }
}

/// The seat phone's second line: a new call (SIPp UAC from 127.0.0.1, where the phone
/// registered) as `seat` to `number` at the engine with PCMA at `voice`. It answers the
/// digest challenge (401, realm `hotline`) with the seat's password, must hear 180 and then
/// 200 with PCMA, ACKs, writes `call_id`, `from_tag` and `to_tag` of the dialog to the returned
/// log, and then waits for the engine's BYE.
fn second_line(
    centre: &Centre,
    seat: &TestSeat,
    number: &str,
    voice: &Voice,
) -> (SippChild, PathBuf) {
    let dir = centre.dir();
    let csv = dir.join("second-line.csv");
    // SIPp reads the authentication keyword whole from the injection file.
    fs::write(
        &csv,
        format!(
            "SEQUENTIAL\n{};[authentication username={} password={}];\n",
            seat.username, seat.username, seat.password
        ),
    )
    .expect("injection file");
    let from = "From: <sip:[field0]@[remote_ip]>;tag=[pid]SIPpTag02[call_number]";
    // The first INVITE's branch: its 401 is ACKed in the same transaction.
    let branch = "z9hG4bK-line2-[pid]-1";
    let invite = |cseq: u32, branch: &str, auth: &str| {
        format!(
            r#"  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch}
      {from}
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>
{auth}      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=seat 2 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio {media} RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
    ]]>
  </send>
"#,
            media = voice.port()
        )
    };
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="the seat phone's second line calls a sub-centre">
{first}  <recv response="100" optional="true"/>
  <recv response="401" auth="true" timeout="10000">
    <action>
      <ereg regexp="^ *Digest .*realm=.hotline." search_in="hdr" header="WWW-Authenticate:" check_it="true" assign_to="challenge"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch}
      {from}
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
{second}  <recv response="100" optional="true"/>
  <recv response="180" timeout="10000"/>
  <recv response="200" rrs="true" timeout="15000">
    <action>
      <ereg regexp=";tag=([^;>]*)" search_in="hdr" header="To:" check_it="true" assign_to="to,to_tag"/>
      <ereg regexp="m=audio [0-9]+ RTP/AVP 8" search_in="body" check_it="true" assign_to="m"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      {from}
      [last_To:]
      [routes]
      Call-ID: [call_id]
      CSeq: 2 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <nop>
    <action>
      <log message="call_id [call_id]"/>
      <log message="from_tag [pid]SIPpTag02[call_number]"/>
      <log message="to_tag [$to_tag]"/>
    </action>
  </nop>
{bye}  <Reference variables="challenge,to,m"/>
</scenario>
"#,
        first = invite(1, branch, ""),
        second = invite(2, "[branch]", "      [field1]\n"),
        bye = bye_answered(20000),
    );
    let file = write_scenario(dir, "second-line.xml", &xml);
    let log = dir.join("second-line.log");
    // SIPp's digest uri is `sip:IP:PORT` unless told: the engine wants the Request-URI's.
    let digest_uri = format!("{number}@{}", centre.engine.sip);
    let line = Sipp::new(&file, centre.engine.sip)
        .service(number)
        .args(&[
            "-auth_uri",
            &digest_uri,
            "-inf",
            &csv.display().to_string(),
            "-trace_logs",
            "-log_file",
            &log.display().to_string(),
        ])
        .within(30)
        .spawn_in(dir);
    (line, log)
}

/// The seat phone's REFER in its first line (sent by a SIPp of its own, as `line` names the
/// dialog) with `Refer-To: <refer_to>`; it must be answered 202. The NOTIFYs go to the phone.
fn refer_in_line_one(centre: &Centre, line: &LineOne, refer_to: &str) -> SippChild {
    let xml = r#"<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="the seat phone's REFER in its first line">
  <Global variables="engine,engine_from,phone_uri,phone_tag,cseq,refer_to"/>
  <send retrans="500">
    <![CDATA[
      REFER [$engine] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <[$phone_uri]>;tag=[$phone_tag]
      To: [$engine_from]
      Call-ID: [call_id]
      CSeq: [$cseq] REFER
      Contact: <[$phone_uri];transport=[transport]>
      Refer-To: <[$refer_to]>
      Referred-By: <[$phone_uri]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="202" timeout="10000"/>
</scenario>
"#;
    let file = write_scenario(centre.dir(), "refer.xml", xml);
    Sipp::new(&file, centre.engine.sip)
        // The first line's Call-ID is this SIPp call's own, so that the 202 finds it.
        .args(&["-cid_str", &line.call_id.replace('%', "%%")])
        .set("engine", &line.engine)
        .set("engine_from", &line.engine_from)
        .set("phone_uri", &line.phone_uri)
        .set("phone_tag", &line.phone_tag)
        .set("cseq", &line.cseq)
        .set("refer_to", refer_to)
        .within(20)
        .spawn_in(centre.dir())
}

/// `text` escaped for a header value inside a SIP URI (RFC 3261 §25: `hvalue`).
fn uri_escaped(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' | '!' | '~' | '*' | '\'' => {
                c.to_string()
            }
            '(' | ')' | '[' | ']' | '/' | '?' | ':' | '+' | '$' => c.to_string(),
            _ => c.to_string().bytes().map(|b| format!("%{b:02X}")).collect(),
        })
        .collect()
}

#[test]
fn an_attended_transfer_made_on_the_seat_phone_joins_the_caller_to_the_subcentre_it_consulted() {
    // The sub-centre talks PBX_TALK_MS after it answered, then hangs up; the consult, the
    // REFER and the caller's talk with it are all over well before.
    const PBX_TALK_MS: u64 = 7000;
    // The phone talks this long on line 1 before it puts the caller on hold.
    const TALK_BEFORE_HOLD_MS: u64 = 2500;
    let (centre, seat, port) = Centre::with_one_seat(4901);
    let mut caller_voice = Voice::new("the caller", CALLER_HZ, Codec::Pcma);
    let mut seat_voice = Voice::new("the seat's line 1", SEAT_HZ, Codec::Pcma);
    let mut line2_voice = Voice::new("the seat's line 2", SEAT_HZ, Codec::Pcma);
    let mut pbx_voice = Voice::new("the sub-centre", OTHER_HZ, Codec::Pcmu);
    // Line 1: answers, talks, holds the caller, tells the test its dialog; then the REFER's
    // NOTIFYs (made by another SIPp in this dialog) and the engine's BYE.
    let phone = referring_phone(
        centre.dir(),
        port,
        &seat_voice,
        &[
            PhoneStep::Pause(TALK_BEFORE_HOLD_MS),
            PhoneStep::Holds,
            PhoneStep::TellsDialog,
            NOTIFIED_TRYING,
            NOTIFIED_OK,
            PhoneStep::HungUpByEngine,
        ],
    );
    let pbx = centre.pbx(&pbx_answers(1000, PBX_TALK_MS), Some(&pbx_voice));
    let caller = centre.caller(&caller_voice);

    caller_voice.hears_engine(Duration::from_secs(10));
    seat_voice.hears_engine(Duration::from_secs(10));
    let answered = Instant::now();
    let heard = talk(&mut [&mut caller_voice, &mut seat_voice], 60);
    assert!(
        answered.elapsed() < Duration::from_millis(TALK_BEFORE_HOLD_MS - 500),
        "the test was too slow: the phone holds {TALK_BEFORE_HOLD_MS} ms after answering, the \
         talk was measured until {:?}",
        answered.elapsed()
    );
    assert_hears("the caller", &heard[0], &[SEAT_HZ], &[CALLER_HZ]);
    assert_hears("the seat", &heard[1], &[CALLER_HZ], &[SEAT_HZ]);

    // The phone holds: the caller hears music.
    assert!(
        caller_voice.hears_prompt(&opening("queue/music"), Duration::from_secs(10)),
        "the caller hears music once the seat put it on hold"
    );
    let Some(line_one) = LineOne::told(&dialog_log(centre.dir(), port), Duration::from_secs(5))
    else {
        panic!("the phone never told its line 1:\n{}", phone.wait().output);
    };

    // Line 2: the phone calls 12366; the sub-centre answers and talks with the seat there.
    let (line2, line2_log) = second_line(&centre, &seat, "12366", &line2_voice);
    // Line 2 writes down its dialog once the 200 came and was ACKed.
    let Some(line_two) = logged(
        &line2_log,
        &["call_id", "to_tag", "from_tag"],
        Duration::from_secs(10),
    ) else {
        panic!("line 2 was not answered:\n{}", line2.wait().output);
    };
    pbx_voice.hears_engine(Duration::from_secs(10));
    let pbx_answered = Instant::now();
    line2_voice.hears_engine(Duration::from_secs(10));
    let heard = talk(
        &mut [&mut caller_voice, &mut line2_voice, &mut pbx_voice],
        75,
    );
    assert_hears(
        "the seat's line 2",
        &heard[1],
        &[OTHER_HZ],
        &[SEAT_HZ, CALLER_HZ],
    );
    assert_hears(
        "the sub-centre",
        &heard[2],
        &[SEAT_HZ],
        &[OTHER_HZ, CALLER_HZ],
    );
    // The caller, on hold, hears neither (at least 20 times weaker than they hear each other).
    let (caller_heard, seat_heard, pbx_heard) = (
        last_second(&heard[0]),
        last_second(&heard[1]),
        last_second(&heard[2]),
    );
    assert!(
        caller_heard.len() >= 8000,
        "the caller on hold heard only {} samples",
        caller_heard.len()
    );
    for (hz, by) in [(OTHER_HZ, seat_heard), (SEAT_HZ, pbx_heard)] {
        assert!(
            power_at(caller_heard, hz) * 20.0 < power_at(by, hz),
            "the caller on hold hears the consult: {hz} Hz at {:.3e}, against {:.3e}",
            power_at(caller_heard, hz),
            power_at(by, hz)
        );
    }

    // The phone joins them: REFER in line 1 replacing line 2.
    let replaces = format!(
        "{};to-tag={};from-tag={}",
        line_two[0], line_two[1], line_two[2]
    );
    let refer_to = format!(
        "sip:12366@{}?Replaces={}",
        centre.engine.sip,
        uri_escaped(&replaces)
    );
    let refer = refer_in_line_one(&centre, &line_one, &refer_to);
    completes("the REFER", refer);
    // Line 1: NOTIFY 100 (active), NOTIFY 200 (terminated), the engine's BYE; line 2: BYE.
    completes("the seat phone's line 1", phone);
    completes("the seat phone's line 2", line2);
    seat_voice.engine = None;
    line2_voice.engine = None;
    let heard = talk(
        &mut [
            &mut caller_voice,
            &mut pbx_voice,
            &mut seat_voice,
            &mut line2_voice,
        ],
        75,
    );
    assert!(
        pbx_answered.elapsed() < Duration::from_millis(PBX_TALK_MS - 500),
        "the test was too slow: the sub-centre hangs up {PBX_TALK_MS} ms after answering, the \
         talk was measured until {:?}",
        pbx_answered.elapsed()
    );
    assert_hears("the caller", &heard[0], &[OTHER_HZ], &[CALLER_HZ, SEAT_HZ]);
    assert_hears(
        "the sub-centre",
        &heard[1],
        &[CALLER_HZ],
        &[OTHER_HZ, SEAT_HZ],
    );
    for (line, heard) in [("line 1", &heard[2]), ("line 2", &heard[3])] {
        assert!(
            heard.is_empty(),
            "the seat's {line} is closed: it got {} samples",
            heard.len()
        );
    }
    the_trunk_hangs_up(centre, &seat, pbx, caller, "consult", "subcentre:tax");
}
