//! Seats on loopback: SIPp seat phones register with digest authentication and answer, seats
//! log in through the desk API, SIPp callers dial 12345 and wait in the `general` queue until a
//! seat takes them. What each side heard, the call records and the desk's statistics are checked
//! against what SIPp saw.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

use hotline::media::codec::Codec;
use support::records::records;
use support::rtp::{Heard, RtpPeer};
use support::seats::{desk_get, log_in_all, phones, register, seats_config, write_seats, TestSeat};
use support::sipp::{calls_ended, write_scenario, Sipp};
use support::{free_port, hotline_reload, Engine};

/// The seats test dialplan: 12345 straight to the `general` queue.
fn dialplans() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialplans/seats")
}

/// An engine with `seats`, their phones registered at a SIPp UAS on the returned port.
fn engine_with_seats(
    dir: &Path,
    seats: &[TestSeat],
    extra: &str,
) -> (Engine, std::net::SocketAddr, u16) {
    let seats_file = write_seats(dir, seats);
    let (config, api) = seats_config(&seats_file);
    let engine = Engine::start_on(&dialplans(), &format!("{config}\n{extra}"), 1000);
    let phone_port = free_port();
    register(engine.sip, dir, seats, phone_port).assert_all_succeeded(seats.len() as u64);
    (engine, api, phone_port)
}

/// 20 ms of a sine at `hz`, starting at sample `n`.
fn tone(hz: f64, n: usize) -> Vec<i16> {
    (n..n + 160)
        .map(|i| ((i as f64 * hz * std::f64::consts::TAU / 8000.0).sin() * 8000.0) as i16)
        .collect()
}

/// Signal power at `hz` (Goertzel) in A-law `codes`.
fn power_at(codes: &[u8], hz: f64) -> f64 {
    let mut samples = vec![0i16; codes.len()];
    Codec::Pcma.decode(codes, &mut samples);
    power_in(&samples, hz)
}

/// Signal power at `hz` (Goertzel) in `samples`.
fn power_in(samples: &[i16], hz: f64) -> f64 {
    let k = 2.0 * (std::f64::consts::TAU * hz / 8000.0).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = f64::from(x) + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - k * s1 * s2) / samples.len().max(1) as f64
}

#[test]
fn a_seat_phone_takes_the_call_and_caller_and_seat_hear_each_other() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let seat = TestSeat::new(2001, 5);
    let (mut engine, api, phone_port) =
        engine_with_seats(scratch.path(), std::slice::from_ref(&seat), "");
    log_in_all(api, std::slice::from_ref(&seat));
    let mut caller_rtp = RtpPeer::bind();
    let mut seat_rtp = RtpPeer::bind();
    let phone =
        phones(scratch.path(), phone_port, 3000, Some(seat_rtp.port()), 1).spawn_in(scratch.path());
    let caller =
        Sipp::new("uac_wait_bye.xml", engine.sip).set("rtp_port", &caller_rtp.port().to_string());
    let dir = engine.dir().to_path_buf();
    let call = thread::spawn(move || caller.run_in(&dir));

    // The seat side learns the engine's address from the first packet the bridge relays.
    let first = |h: &Heard| !h.payload.is_empty();
    let (_, to_caller_leg) = caller_rtp.listen(Duration::from_secs(10), first);
    let (_, to_seat_leg) = seat_rtp.listen(Duration::from_secs(10), first);
    let to_caller_leg = to_caller_leg.expect("the engine's caller leg");
    let to_seat_leg = to_seat_leg.expect("the engine's seat leg");
    // 1.5 s of talk in real time: the caller at 440 Hz, the seat at 1000 Hz.
    let mut heard_by_caller = Vec::new();
    let mut heard_by_seat = Vec::new();
    for frame in 0..75 {
        caller_rtp.send_audio(&tone(440.0, frame * 160), Codec::Pcma, to_caller_leg);
        seat_rtp.send_audio(&tone(1000.0, frame * 160), Codec::Pcma, to_seat_leg);
        let window = Duration::from_millis(20);
        let enough = |h: &Heard| !h.payload.is_empty();
        heard_by_caller.extend(caller_rtp.listen(window, enough).0.payload);
        heard_by_seat.extend(seat_rtp.listen(window, enough).0.payload);
    }
    call.join().expect("caller thread").assert_all_succeeded(1);
    phone.wait().assert_all_succeeded(1);
    // The last second of each side, well inside the talk.
    let tail = |v: &[u8]| v[v.len().saturating_sub(8000)..].to_vec();
    let (by_caller, by_seat) = (tail(&heard_by_caller), tail(&heard_by_seat));
    assert!(
        power_at(&by_caller, 1000.0) > 20.0 * power_at(&by_caller, 440.0),
        "the caller hears the seat, not itself"
    );
    assert!(
        power_at(&by_seat, 440.0) > 20.0 * power_at(&by_seat, 1000.0),
        "the seat hears the caller, not itself"
    );
    let ended = calls_ended(&engine, 1, Duration::from_secs(10));
    assert_eq!(ended[0].get("why"), "SeatHungUp", "{}", ended[0].line);
    let config = engine.dir().join("hotline.toml");
    assert!(engine.terminate().is_some_and(|s| s.success()));

    let records = records(&config);
    assert_eq!(records.len(), 1);
    let visit = &records[0].queues[0];
    assert_eq!(visit.queue, "general");
    assert_eq!(visit.outcome.as_deref(), Some("answered"), "{visit:?}");
    assert_eq!(visit.seat.as_deref(), Some("s2001"));
    assert_eq!(visit.offers.len(), 1);
    assert_eq!(visit.offers[0].outcome.as_deref(), Some("answered"));
    assert!(records[0].times.person_answered.is_some());
    let end = records[0].end.as_ref().expect("finished");
    assert_eq!((end.by.as_str(), end.cause.as_str()), ("seat", "bye"));
    assert!(
        (2.5..=4.5).contains(&records[0].talk_s),
        "talked about 3 s: {}",
        records[0].talk_s
    );
    // The recording: the caller on the left, the seat on the right.
    let recording = &records[0].recordings[0];
    assert_eq!(recording.status, "ok", "{recording:?}");
    let wav = engine.dir().join("var").join(&recording.path);
    let mut reader = hound::WavReader::open(&wav).expect("the recording");
    let samples: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap_or(0)).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    assert!(
        power_in(&left, 440.0) > 20.0 * power_in(&left, 1000.0),
        "the caller is on the left"
    );
    assert!(
        power_in(&right, 1000.0) > 20.0 * power_in(&right, 440.0),
        "the seat is on the right"
    );
}

#[test]
fn with_no_seat_logged_in_the_caller_goes_to_the_fallback_at_once() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let seat = TestSeat::new(2101, 5);
    let (engine, _api, _phone_port) =
        engine_with_seats(scratch.path(), std::slice::from_ref(&seat), "");
    // Registered but not logged in: no seat can take the call.
    let caller =
        Sipp::new("uac_wait_bye.xml", engine.sip).set("rtp_port", &free_port().to_string());
    caller.run_in(engine.dir()).assert_all_succeeded(1);
    let ended = calls_ended(&engine, 1, Duration::from_secs(10));
    assert_eq!(
        ended[0].get("path"),
        "general[fallback]>goodbye",
        "{}",
        ended[0].line
    );
    assert_eq!(
        ended[0].handovers(),
        ["queue:general=no-seat"],
        "{}",
        ended[0].line
    );
}

#[test]
fn a_wrong_password_is_challenged_again() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let seat = TestSeat::new(2201, 5);
    let seats_file = write_seats(scratch.path(), std::slice::from_ref(&seat));
    let (config, _api) = seats_config(&seats_file);
    let engine = Engine::start_on(&dialplans(), &config, 100);
    let mut wrong = seat.clone();
    wrong.password = "not-the-password".into();
    let xml = fs::read_to_string(support::sipp::scenario("seat_register.xml"))
        .expect("scenario")
        .replace(r#"<recv response="200"/>"#, r#"<recv response="401"/>"#);
    let file = write_scenario(scratch.path(), "wrong.xml", &xml);
    let csv = scratch.path().join("wrong.csv");
    fs::write(
        &csv,
        format!(
            "SEQUENTIAL\n{0};[authentication username={0} password={1}];\n",
            wrong.username, wrong.password
        ),
    )
    .expect("injection file");
    Sipp::new(&file, engine.sip)
        .args(&["-inf", &csv.display().to_string()])
        .set("phone_port", "5999")
        .run_in(scratch.path())
        .assert_all_succeeded(1);
}

/// Per caller, SIPp's time from its INVITE to the engine's BYE (rtd 1), in ms.
fn invite_to_bye_ms(dir: &Path) -> Vec<f64> {
    let mut times = Vec::new();
    for entry in fs::read_dir(dir).expect("sipp dir").flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with("callers_") || !name.ends_with("_rtt.csv") {
            continue;
        }
        let text = fs::read_to_string(entry.path()).expect("rtt file");
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split(';').collect();
            if let Some(ms) = fields.get(1).and_then(|v| v.trim().parse::<f64>().ok()) {
                times.push(ms);
            }
        }
    }
    times
}

#[test]
fn fifty_seats_serve_two_hundred_callers_arriving_over_a_minute() {
    const SEATS: u32 = 50;
    const CALLERS: usize = 200;
    const TALK_MS: u64 = 15_000;
    let scratch = tempfile::tempdir().expect("temp dir");
    // Half the seats are the best-skilled: longest-idle among the best-skilled prefers them.
    let seats: Vec<TestSeat> = (0..SEATS)
        .map(|i| TestSeat::new(3000 + i, if i % 2 == 0 { 5 } else { 3 }))
        .collect();
    let (mut engine, api, phone_port) =
        engine_with_seats(scratch.path(), &seats, "[media]\nmedia_timeout_s = 0\n");
    log_in_all(api, &seats);
    let phone = phones(scratch.path(), phone_port, TALK_MS, None, CALLERS)
        .within(200)
        .spawn_in(scratch.path());
    // The callers' SIPp measures INVITE → the engine's BYE for each call.
    let xml = fs::read_to_string(support::sipp::scenario("uac_wait_bye.xml"))
        .expect("scenario")
        .replace(
            r#"<recv response="200" rtd="true" rrs="true">"#,
            r#"<recv response="200" rrs="true">"#,
        )
        .replace(
            r#"<recv request="BYE" timeout="60000"/>"#,
            r#"<recv request="BYE" timeout="120000" rtd="true"/>"#,
        );
    let file = write_scenario(scratch.path(), "callers.xml", &xml);
    let callers = Sipp::new(&file, engine.sip)
        .set("rtp_port", &free_port().to_string())
        .args(&[
            "-m",
            &CALLERS.to_string(),
            // 200 callers over 60 s.
            "-r",
            "10",
            "-rp",
            "3000",
            "-l",
            "300",
            "-trace_rtt",
            "-rtt_freq",
            "1",
        ])
        .within(200);
    let dir = scratch.path().to_path_buf();
    let run = thread::spawn(move || callers.run_in(&dir));
    let run = run.join().expect("callers");
    run.assert_all_succeeded(CALLERS as u64);
    phone.wait().assert_all_succeeded(CALLERS as u64);
    let (status, stats) = desk_get(api, "/stats");
    assert_eq!(status, 200, "{stats}");
    let stats: serde_json::Value = serde_json::from_str(&stats).expect("stats JSON");
    let config = engine.dir().join("hotline.toml");
    assert!(engine.terminate().is_some_and(|s| s.success()));

    // Every caller reached a seat, and no seat held two calls at once.
    let records = records(&config);
    assert_eq!(records.len(), CALLERS);
    let mut by_seat: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for record in &records {
        let visit = &record.queues[0];
        assert_eq!(visit.outcome.as_deref(), Some("answered"), "{record:?}");
        let seat = visit.seat.clone().expect("a seat");
        let from = record
            .times
            .person_answered
            .expect("answered")
            .timestamp_millis();
        let to = record.times.ended.expect("ended").timestamp_millis();
        by_seat.entry(seat).or_default().push((from, to));
    }
    for (seat, mut talks) in by_seat.clone() {
        talks.sort();
        for pair in talks.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "{seat} held two calls at once: {talks:?}"
            );
        }
    }
    // Longest idle among the best-skilled: while every seat is free (the first 50 callers
    // arrive within 15 s, before the first talk ends), the first 25 callers go to the 25
    // level-5 seats, the next 25 to the level-3 seats; each seat gets one of them.
    let mut arrivals: Vec<_> = records.iter().collect();
    arrivals.sort_by_key(|r| r.times.arrived);
    let level = |seat: &str| seats.iter().find(|s| s.id == seat).map(|s| s.level);
    let first: Vec<&str> = arrivals[..50]
        .iter()
        .filter_map(|r| r.queues[0].seat.as_deref())
        .collect();
    for (i, seat) in first.iter().enumerate() {
        let expected = if i < 25 { 5 } else { 3 };
        assert_eq!(
            level(seat),
            Some(expected),
            "caller {i} went to {seat}: {first:?}"
        );
    }
    let distinct: std::collections::BTreeSet<_> = first.iter().collect();
    assert_eq!(
        distinct.len(),
        50,
        "each of the first 50 callers to its own seat"
    );

    // The engine's wait statistics match what the callers saw: INVITE → BYE less the talk.
    let waits: Vec<f64> = invite_to_bye_ms(scratch.path())
        .iter()
        .map(|ms| (ms - TALK_MS as f64) / 1000.0)
        .collect();
    assert_eq!(waits.len(), CALLERS, "one measurement per caller");
    let sipp_mean = waits.iter().sum::<f64>() / waits.len() as f64;
    let sipp_max = waits.iter().cloned().fold(0.0, f64::max);
    let overall = &stats["live"]["overall"];
    assert_eq!(overall["answered"], CALLERS as u64, "{overall}");
    let engine_mean = overall["avg_answer_wait_s"].as_f64().expect("average wait");
    let engine_max = overall["longest_wait_s"].as_f64().expect("longest wait");
    assert!(
        (engine_mean - sipp_mean).abs() < 0.25,
        "average wait: engine {engine_mean:.3} s, SIPp {sipp_mean:.3} s"
    );
    assert!(
        (engine_max - sipp_max).abs() < 0.25,
        "longest wait: engine {engine_max:.3} s, SIPp {sipp_max:.3} s"
    );
    println!(
        "{CALLERS} callers, {SEATS} seats: average wait {engine_mean:.2} s (SIPp {sipp_mean:.2} s), longest {engine_max:.2} s (SIPp {sipp_max:.2} s)"
    );
}

#[test]
fn reloading_the_seats_file_adds_and_removes_seats_and_refuses_a_broken_one() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let first = TestSeat::new(2301, 5);
    let (engine, api, phone_port) =
        engine_with_seats(scratch.path(), std::slice::from_ref(&first), "");
    let seats_file = scratch.path().join("seats.toml");

    // A broken file: refused with where and what, and the running seats stay.
    let good = fs::read_to_string(&seats_file).expect("seats file");
    fs::write(&seats_file, good.replace("general = 5", "general = 9")).expect("broken file");
    let (code, out) = hotline_reload(&engine);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("refused"), "{out}");
    let at = format!("{}:6:22: error:", seats_file.display());
    assert!(out.contains(&at), "names the place: {out}");
    let (_, seats) = desk_get(api, "/seats");
    assert!(seats.contains(r#""id":"s2301""#), "{seats}");

    // The first seat removed, a second added: the second registers, the first cannot.
    let second = TestSeat::new(2302, 4);
    write_seats(scratch.path(), std::slice::from_ref(&second));
    let (code, out) = hotline_reload(&engine);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 seats loaded"), "{out}");
    register(
        engine.sip,
        scratch.path(),
        std::slice::from_ref(&second),
        phone_port,
    )
    .assert_all_succeeded(1);
    let xml = fs::read_to_string(support::sipp::scenario("seat_register.xml"))
        .expect("scenario")
        .replace(r#"<recv response="200"/>"#, r#"<recv response="401"/>"#);
    let file = write_scenario(scratch.path(), "removed.xml", &xml);
    let csv = scratch.path().join("removed.csv");
    fs::write(
        &csv,
        format!(
            "SEQUENTIAL\n{0};[authentication username={0} password={1}];\n",
            first.username, first.password
        ),
    )
    .expect("injection file");
    Sipp::new(&file, engine.sip)
        .args(&["-inf", &csv.display().to_string()])
        .set("phone_port", &phone_port.to_string())
        .run_in(scratch.path())
        .assert_all_succeeded(1);
    let (_, seats) = desk_get(api, "/seats");
    assert!(!seats.contains(r#""id":"s2301""#), "{seats}");
    assert!(seats.contains(r#""id":"s2302""#), "{seats}");
}
