//! The RFC 4475 torture corpus (`tests/torture/*.sip`) against `tests/torture/expected.toml`,
//! round trips of the accepted messages, and no-panic runs over truncations, seeded mutations,
//! garbage and hostile Content-Length values.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use hotline::sip::framing::{Frame, StreamFramer};
use hotline::sip::parse::{parse, ParseErrorKind};
use hotline::sip::validate::check_request;
use hotline::sip::{Fields, HeaderName, Message, Method};
use support::XorShift;

/// What the engine does with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Parsed and, for a request, passed the UAS checks.
    Accept,
    /// Answered with this status.
    Answer(u16),
    /// Dropped without an answer.
    Drop,
}

fn outcome(bytes: &[u8]) -> Outcome {
    match parse(bytes) {
        Ok(Message::Request(request)) => match check_request(&request) {
            Ok(()) => Outcome::Accept,
            Err(rejection) => Outcome::Answer(rejection.status),
        },
        Ok(Message::Response(_)) => Outcome::Accept,
        Err(error) => match error.salvage() {
            Some(_) => Outcome::Answer(error.status()),
            None => Outcome::Drop,
        },
    }
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/torture")
}

/// Every `<name>.sip` in the corpus, by name.
fn corpus() -> BTreeMap<String, Vec<u8>> {
    let mut messages = BTreeMap::new();
    for entry in std::fs::read_dir(corpus_dir()).expect("corpus directory") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "sip") {
            let name = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned();
            messages.insert(name, std::fs::read(&path).expect("corpus file"));
        }
    }
    messages
}

fn expected() -> BTreeMap<String, Outcome> {
    let text = std::fs::read_to_string(corpus_dir().join("expected.toml")).expect("expected.toml");
    let table: toml::Table = text.parse().expect("expected.toml is TOML");
    let outcomes = table["outcomes"].as_table().expect("[outcomes] table");
    outcomes
        .iter()
        .map(|(name, value)| {
            let outcome = match value {
                toml::Value::String(s) if s == "accept" => Outcome::Accept,
                toml::Value::String(s) if s == "drop" => Outcome::Drop,
                toml::Value::Integer(status) => {
                    Outcome::Answer(u16::try_from(*status).expect("status code"))
                }
                other => panic!("bad expectation for {name}: {other}"),
            };
            (name.clone(), outcome)
        })
        .collect()
}

#[test]
fn corpus_matches_expectations() {
    let corpus = corpus();
    let expected = expected();
    assert_eq!(
        corpus.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "every corpus file has exactly one expectation"
    );
    assert!(corpus.len() >= 48);
    let mut wrong = Vec::new();
    for (name, bytes) in &corpus {
        let got = outcome(bytes);
        if got != expected[name] {
            wrong.push(format!(
                "{name}: got {got:?}, expected {:?}",
                expected[name]
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn corpus_files_are_byte_exact() {
    let corpus = corpus();
    // CRLF line endings survived checkout (tests/torture/.gitattributes: -text).
    assert!(corpus["wsinv"].windows(4).any(|w| w == b"0.33"));
    assert!(corpus["wsinv"].ends_with(b"a=rtpmap:31 LPC\r\n"));
    for (name, bytes) in &corpus {
        let bare_lf = bytes.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r');
        // mpart01 carries a binary body: only its headers must use CRLF.
        if name != "mpart01" {
            assert!(!bare_lf, "{name} has a bare LF");
        }
    }
    // Special bytes from the RFC's <hex> notation.
    assert!(corpus["intmeth"].windows(4).any(|w| w == b"\\\x00 D"));
    assert_eq!(corpus["mpart01"].len(), 1290);
    assert!(corpus["trws"].starts_with(b"OPTIONS sip:remote-target@example.com SIP/2.0  \r\n"));
}

#[test]
fn valid_messages_read_as_the_rfc_describes() {
    let corpus = corpus();
    let Ok(Message::Request(wsinv)) = parse(&corpus["wsinv"]) else {
        panic!("wsinv is a request");
    };
    assert_eq!(wsinv.headers.get_all(&HeaderName::Via).count(), 3);
    assert_eq!(
        wsinv.top_via().expect("top Via").branch(),
        Some("390skdjuw")
    );
    assert_eq!(wsinv.cseq().expect("CSeq").seq, 9);
    assert_eq!(wsinv.to_header().expect("To").tag(), Some("1918181833n"));
    assert_eq!(wsinv.from_header().expect("From").tag(), Some("98asjd8"));
    assert_eq!(
        wsinv
            .headers
            .get(&HeaderName::Other("NewFangledHeader".into())),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(wsinv.body.len(), 150);

    let Ok(Message::Request(longreq)) = parse(&corpus["longreq"]) else {
        panic!("longreq is a request");
    };
    assert_eq!(longreq.headers.get_all(&HeaderName::Via).count(), 34);

    let Ok(Message::Request(dblreq)) = parse(&corpus["dblreq"]) else {
        panic!("dblreq is a request");
    };
    assert_eq!(dblreq.method, Method::Register);
    assert!(dblreq.body.is_empty());

    let Ok(Message::Request(esc02)) = parse(&corpus["esc02"]) else {
        panic!("esc02 is a request");
    };
    assert_eq!(esc02.method, Method::Other("RE%47IST%45R".into()));
    assert_eq!(esc02.headers.get_all(&HeaderName::Contact).count(), 2);

    let Ok(Message::Request(mpart)) = parse(&corpus["mpart01"]) else {
        panic!("mpart01 is a request");
    };
    assert_eq!(mpart.body.len(), 553);
    assert!(mpart.body.contains(&0));

    let Ok(Message::Response(noreason)) = parse(&corpus["noreason"]) else {
        panic!("noreason is a response");
    };
    assert_eq!((noreason.status, noreason.reason.as_str()), (100, ""));
}

#[test]
fn answers_carry_what_the_rfc_requires() {
    let corpus = corpus();
    let error = parse(&corpus["badvers"]).expect_err("badvers");
    assert_eq!(error.kind(), ParseErrorKind::Version);
    let response = error.response().expect("505 can be formed");
    assert_eq!(response.status, 505);
    assert_eq!(
        response.headers.get(&HeaderName::CallId),
        Some("badvers.31417@c.example.com")
    );

    let Ok(Message::Request(bext01)) = parse(&corpus["bext01"]) else {
        panic!("bext01 is a request");
    };
    let rejection = check_request(&bext01).expect_err("420");
    assert_eq!(
        rejection.extra_headers,
        vec![(
            HeaderName::Unsupported,
            "nothingSupportsThis, nothingSupportsThisEither".to_string()
        )]
    );

    // baddn is refused for its display name too, once its header section is terminated.
    let mut baddn = corpus["baddn"].clone();
    baddn.extend_from_slice(b"\r\n");
    let Ok(Message::Request(baddn)) = parse(&baddn) else {
        panic!("terminated baddn parses");
    };
    assert_eq!(check_request(&baddn).map_err(|r| r.status), Err(400));

    // zeromf's Max-Forwards 0 is refused once the request is one the B2BUA would forward.
    let zeromf = String::from_utf8(corpus["zeromf"].clone()).expect("text");
    let invite = zeromf
        .replacen("OPTIONS sip:", "INVITE sip:", 1)
        .replace("39234321 OPTIONS", "39234321 INVITE");
    assert_eq!(outcome(invite.as_bytes()), Outcome::Answer(483));
}

#[test]
fn accepted_messages_round_trip() {
    for (name, bytes) in corpus() {
        if let Ok(message) = parse(&bytes) {
            let printed = message.to_bytes();
            assert_eq!(parse(&printed).as_ref(), Ok(&message), "{name}");
            assert_eq!(
                printed,
                parse(&printed).expect("reparse").to_bytes(),
                "{name}"
            );
        }
    }
}

#[test]
fn stream_framing_reassembles_the_corpus() {
    // Every corpus message that parses, re-printed (so it carries a Content-Length), sent over
    // one stream in awkward chunks with keep-alives between them, comes out whole.
    let messages: Vec<Vec<u8>> = corpus()
        .values()
        .filter_map(|bytes| parse(bytes).ok())
        .map(|m| m.to_bytes())
        .collect();
    let mut stream = Vec::new();
    for message in &messages {
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(message);
    }
    for chunk in [1, 7, 1000] {
        let mut framer = StreamFramer::new();
        let mut got = Vec::new();
        let mut pings = 0;
        for piece in stream.chunks(chunk) {
            framer.push(piece);
            while let Some(frame) = framer.pop().expect("frames") {
                match frame {
                    Frame::Message(bytes) => got.push(bytes),
                    Frame::Ping => pings += 1,
                    Frame::Pong => panic!("no single CRLF was sent"),
                }
            }
        }
        assert_eq!(got, messages, "chunk {chunk}");
        assert_eq!(pings, messages.len());
    }
}

/// Runs everything a received message goes through; must never panic.
fn exercise(bytes: &[u8]) {
    match parse(bytes) {
        Ok(message) => {
            if let Message::Request(request) = &message {
                if let Err(rejection) = check_request(request) {
                    let _ = rejection.to_response(request).to_bytes();
                }
                let _ = (
                    request.top_via(),
                    request.from_header(),
                    request.to_header(),
                );
                let _ = (request.cseq(), request.call_id(), request.contact());
            }
            let _ = parse(&message.to_bytes());
        }
        Err(error) => {
            let _ = (error.status(), error.reason().len());
            if let Some(response) = error.response() {
                let _ = parse(&response.to_bytes());
            }
        }
    }
    let mut framer = StreamFramer::with_limits(4096, 4096);
    framer.push(bytes);
    while let Ok(Some(_)) = framer.pop() {}
}

#[test]
fn no_panic_on_truncations() {
    for bytes in corpus().values() {
        for end in 0..=bytes.len() {
            exercise(&bytes[..end]);
        }
    }
}

#[test]
fn no_panic_on_mutations() {
    let messages: Vec<Vec<u8>> = corpus().into_values().collect();
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    const SPECIAL: &[u8] = b" \t:;,<>\"\\%@/=?\r\n\x00\xff";
    for _ in 0..5000 {
        let mut bytes = messages[rng.below(messages.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(5) {
                0 if !bytes.is_empty() => bytes[at] = rng.next() as u8,
                1 if !bytes.is_empty() => bytes[at] = SPECIAL[rng.below(SPECIAL.len())],
                2 => {
                    bytes.insert(at.min(bytes.len()), b'\n');
                    bytes.insert(at.min(bytes.len()), b'\r');
                }
                3 => {
                    let end = (at + rng.below(40)).min(bytes.len());
                    bytes.drain(at.min(end)..end);
                }
                _ => {
                    let copy: Vec<u8> =
                        bytes.iter().skip(at).take(rng.below(30)).copied().collect();
                    let to = rng.below(bytes.len() + 1);
                    bytes.splice(to..to, copy);
                }
            }
        }
        exercise(&bytes);
    }
}

#[test]
fn no_panic_on_garbage() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    const WORDS: &[&[u8]] = &[
        b"SIP/2.0",
        b"INVITE",
        b"sip:",
        b"@",
        b" ",
        b"\r\n",
        b"\r\n\r\n",
        b"Via: ",
        b"v:",
        b"SIP/2.0/UDP h",
        b";branch=",
        b"Content-Length:",
        b"l: ",
        b"9",
        b"<",
        b">",
        b"\"",
        b",",
        b";",
        b"\t",
        b"\\",
        b"CSeq: 1 INVITE",
        b"\x00",
        b"\xc3",
        b"%",
    ];
    for _ in 0..5000 {
        let mut bytes = Vec::new();
        for _ in 0..rng.below(60) {
            if rng.below(3) == 0 {
                bytes.push(rng.next() as u8);
            } else {
                bytes.extend_from_slice(WORDS[rng.below(WORDS.len())]);
            }
        }
        exercise(&bytes);
    }
    exercise(&vec![b'a'; 70_000]);
    exercise(&[b"\r\n".repeat(40_000), b"x".to_vec()].concat());
    exercise(&b",".repeat(10_000));
}

#[test]
fn hostile_content_lengths_are_answered_400() {
    for length in [
        "4294967296",
        "99999999",
        "18446744073709551616",
        "-1",
        "0x10",
        "1 1",
    ] {
        let message = format!(
            "INVITE sip:12345@example.gov SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
From: <sip:a@example.net>;tag=1\r\nTo: <sip:12345@example.gov>\r\nCall-ID: cl\r\n\
CSeq: 1 INVITE\r\nContent-Length: {length}\r\n\r\nv=0\r\n"
        );
        exercise(message.as_bytes());
        assert_eq!(
            outcome(message.as_bytes()),
            Outcome::Answer(400),
            "{length}"
        );
        let mut framer = StreamFramer::new();
        framer.push(message.as_bytes());
        assert!(framer.pop().is_err(), "{length}");
    }
}

#[test]
fn missing_mandatory_headers() {
    let full = [
        "OPTIONS sip:12345@example.gov SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
        "From: <sip:a@example.net>;tag=1",
        "To: <sip:12345@example.gov>",
        "Call-ID: m1",
        "CSeq: 1 OPTIONS",
        "Max-Forwards: 70",
        "Content-Length: 0",
    ];
    let build = |skip: &str| {
        let mut text: String = full
            .iter()
            .filter(|line| !line.starts_with(skip))
            .map(|line| format!("{line}\r\n"))
            .collect();
        text.push_str("\r\n");
        text
    };
    assert_eq!(outcome(build("X-none").as_bytes()), Outcome::Accept);
    // Without a Via there is nowhere to send an answer.
    assert_eq!(outcome(build("Via").as_bytes()), Outcome::Drop);
    for header in ["CSeq", "Call-ID", "From", "To"] {
        let message = build(header);
        exercise(message.as_bytes());
        assert_eq!(
            outcome(message.as_bytes()),
            Outcome::Answer(400),
            "{header}"
        );
    }
}
