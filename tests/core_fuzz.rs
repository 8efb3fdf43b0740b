//! Hostile input against the whole sans-IO signalling core: mutated call flows, media events
//! and clock jumps from a seeded generator. The core must never panic, must keep answering a
//! clean call afterwards, and must end up with no calls once time has run out.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline::call::{Switch, SwitchConfig, SwitchOutput};
use hotline::dialplan::clock::WallClock;
use hotline::dialplan::load::{load_files, PromptSource, SourceFile};
use hotline::dialplan::Plan;
use hotline::media::control::{LegId, MediaCommand, MediaEvent};
use hotline::media::prompt::Prompt;
use hotline::sdp;
use hotline::sip::endpoint::{Endpoint, EndpointConfig};
use hotline::sip::peer::Peer;
use hotline::sip::transaction::TimerConfig;
use hotline::sip::uri::Uri;
use support::XorShift;

/// The first-flow dialplan with a 20 ms silent prompt for each prompt it names.
fn plan() -> Plan {
    let file = SourceFile {
        name: "12345.toml".into(),
        text: include_str!("dialplans/first-flow/12345.toml").into(),
    };
    let loaded = load_files(&[file], std::path::Path::new("."), PromptSource::Unchecked)
        .expect("the first-flow dialplan loads");
    let mut prompts = loaded.prompts;
    for name in &loaded.dialplan.prompts {
        prompts.insert(Prompt::from_pcm(name.as_str(), vec![0; 160]));
    }
    Plan {
        dialplan: loaded.dialplan,
        prompts,
    }
}

fn switch() -> Switch {
    let endpoint = Endpoint::new(
        EndpointConfig {
            via_host: "127.0.0.1".into(),
            via_port: 5060,
            timers: TimerConfig::default(),
            server_name: "hotline".into(),
        },
        7,
    );
    let config = SwitchConfig {
        ring: Duration::from_millis(300),
        max_calls: 50,
        media_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        contact: Uri::sip(Some("hotline"), "127.0.0.1", Some(5060)),
        codecs: vec![sdp::Codec::Pcma, sdp::Codec::Pcmu],
        redact_numbers: false,
        recordings: None,
        seats: Default::default(),
    };
    Switch::new(config, endpoint, Arc::new(plan()), WallClock::now())
}

/// A caller's messages for call `n`, in the order a real flow sends them.
fn flow(n: u32) -> Vec<String> {
    let head = |method: &str, cseq: u32, to_tag: &str, branch: &str| {
        format!(
            "{method} sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK{branch};rport\r\n\
             From: <sip:13800000000@10.0.0.1>;tag=f{n}\r\nTo: <sip:12345@127.0.0.1>{to_tag}\r\n\
             Call-ID: fuzz-{n}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContact: <sip:c@10.0.0.1:5070>\r\n"
        )
    };
    let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n";
    let with_body = |h: String, body: &str| {
        format!(
            "{h}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let empty = |h: String| format!("{h}Content-Length: 0\r\n\r\n");
    // The engine's To tag is unknown to the fuzzer; a plausible one still exercises the 481 path.
    vec![
        with_body(head("INVITE", 1, "", &format!("i{n}")), sdp),
        empty(head("CANCEL", 1, "", &format!("i{n}"))),
        empty(head("ACK", 1, ";tag=x", &format!("a{n}"))),
        format!(
            "{}Content-Type: application/dtmf-relay\r\nContent-Length: 10\r\n\r\nSignal=5\r\n",
            head("INFO", 2, ";tag=x", &format!("n{n}"))
        ),
        with_body(head("INVITE", 3, ";tag=x", &format!("r{n}")), sdp),
        empty(head("BYE", 4, ";tag=x", &format!("b{n}"))),
        format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx{n}\r\n\
             From: <sip:12345@127.0.0.1>;tag=x\r\nTo: <sip:13800000000@10.0.0.1>;tag=f{n}\r\n\
             Call-ID: fuzz-{n}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
        ),
    ]
}

fn mutate(rng: &mut XorShift, message: &str) -> Vec<u8> {
    let mut bytes = message.as_bytes().to_vec();
    for _ in 0..rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len());
        match rng.below(5) {
            0 => bytes[at] = rng.next() as u8,
            1 => bytes.truncate(at),
            2 => bytes.insert(at, b"\r\n:;<>\"@ ,"[rng.below(10)]),
            3 => {
                let end = (at + rng.below(20)).min(bytes.len());
                bytes.drain(at..end);
            }
            _ => {
                let copy = bytes[at..].to_vec();
                bytes.extend_from_slice(&copy[..copy.len().min(40)]);
            }
        }
    }
    bytes
}

/// Feeds the switch's media commands back as a media plane would, sometimes out of order.
/// Returns what went on the wire.
fn drain(
    switch: &mut Switch,
    rng: &mut XorShift,
    now: Instant,
    opened: &mut Vec<LegId>,
) -> Vec<String> {
    let mut wire = Vec::new();
    let mut rounds = 0;
    while rounds < 64 {
        rounds += 1;
        let mut events = Vec::new();
        while let Some(output) = switch.poll_output() {
            if let SwitchOutput::Transmit(transmit) = &output {
                wire.push(String::from_utf8_lossy(&transmit.bytes).into_owned());
            }
            // The store has each final record on disk at once.
            if let SwitchOutput::Record(record) = &output {
                if record.is_finished() {
                    switch.record_durable(&record.id);
                }
            }
            if let SwitchOutput::Media(command) = output {
                match command {
                    MediaCommand::Open { leg } if rng.below(10) > 0 => {
                        opened.push(leg);
                        events.push(MediaEvent::Opened {
                            leg,
                            local: SocketAddr::from(([127, 0, 0, 1], 10_000)),
                        });
                    }
                    MediaCommand::Open { leg } => events.push(MediaEvent::OpenFailed { leg }),
                    MediaCommand::Play { leg, play, .. } if rng.below(2) == 0 => {
                        events.push(MediaEvent::PlayFinished { leg, play })
                    }
                    _ => {}
                }
            }
        }
        if events.is_empty() {
            return wire;
        }
        for event in events {
            switch.handle_media_event(now, event);
        }
    }
    wire
}

#[test]
fn mutated_call_flows_never_panic_and_every_call_ends() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut switch = switch();
    let mut now = Instant::now();
    let mut opened = Vec::new();
    let source = Peer::udp(SocketAddr::from(([10, 0, 0, 1], 5070)));
    for round in 0..3_000u32 {
        let messages = flow(round % 40);
        let message = &messages[rng.below(messages.len())];
        let bytes = if rng.below(4) == 0 {
            message.as_bytes().to_vec()
        } else {
            mutate(&mut rng, message)
        };
        switch.handle_message(now, source, &bytes);
        if rng.below(8) == 0 && !opened.is_empty() {
            let leg = opened[rng.below(opened.len())];
            let event = match rng.below(3) {
                0 => MediaEvent::Digit {
                    leg,
                    digit: '1',
                    source: hotline::media::control::DigitSource::Rfc4733,
                },
                1 => MediaEvent::Timeout { leg },
                _ => MediaEvent::PlayFinished {
                    leg,
                    play: rng.next() % 50,
                },
            };
            switch.handle_media_event(now, event);
        }
        drain(&mut switch, &mut rng, now, &mut opened);
        // Time moves too: sometimes a little, sometimes past every timer.
        let span = if rng.below(50) == 0 { 40_000 } else { 300 };
        now += Duration::from_millis(rng.below(span) as u64);
        while let Some(at) = switch.poll_timeout().filter(|at| *at <= now) {
            switch.handle_timeout(at.max(now));
            drain(&mut switch, &mut rng, now, &mut opened);
        }
    }
    assert!(
        opened.len() > 20,
        "the fuzzer must reach answered calls ({})",
        opened.len()
    );
    // A clean call right after all that is answered.
    let before = opened.len();
    switch.handle_message(now, source, flow(1_000)[0].as_bytes());
    let mut wire = Vec::new();
    for _ in 0..10 {
        wire.extend(drain(&mut switch, &mut rng, now, &mut opened));
        now += Duration::from_millis(400);
        switch.handle_timeout(now);
    }
    assert!(opened.len() > before, "no port opened for the clean call");
    assert!(
        wire.iter()
            .any(|m| m.starts_with("SIP/2.0 200 OK") && m.contains("Call-ID: fuzz-1000")),
        "the clean call was not answered"
    );
    // Let every timer run out: no call may be left behind (each ends with BYE or a final answer).
    switch.shutdown(now);
    for _ in 0..200 {
        drain(&mut switch, &mut rng, now, &mut opened);
        match switch.poll_timeout() {
            Some(at) => {
                now = now.max(at);
                switch.handle_timeout(now);
            }
            None => break,
        }
    }
    assert_eq!(
        switch.active_calls(),
        0,
        "calls left after shutdown and all timers"
    );
    assert!(switch.is_idle(), "transactions left after all timers");
}
