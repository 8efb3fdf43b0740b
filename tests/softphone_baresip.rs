//! A real softphone (baresip) calls 12345 on loopback: what it hears is recorded and compared
//! with the prompts the engine sends, and the key it presses (RFC 4733) changes the flow.

mod support;

use std::time::{Duration, Instant};

use hotline::media::g711::alaw_decode;
use hotline::media::prompt::Prompt;
use support::baresip::{Baresip, CALL_OVER, RATE, REMOTE_HANGUP};
use support::{prompt, prompts, Engine};

/// Correlation required to say a prompt is in the recording (a clean loopback gives ~0.9999).
const MATCH: f64 = 0.9;

/// Samples in the short segment used to find candidate alignments (20 ms).
const ANCHOR: usize = 160;

/// Candidate alignments confirmed with the whole window, best anchors first.
const CANDIDATES: usize = 32;

/// The first second (or all, when shorter) of what the engine sends for `p`: its A-law frames
/// decoded to linear, as a G.711 receiver decodes them.
fn opening(p: &Prompt) -> Vec<i16> {
    p.pcma[..p.samples.min(RATE as usize)]
        .iter()
        .map(|&c| alaw_decode(c))
        .collect()
}

/// Normalised cross-correlation of two equally long signals.
fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0i64, 0i64, 0i64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (i64::from(x), i64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0 || bb == 0 {
        return 0.0;
    }
    ab as f64 / ((aa as f64) * (bb as f64)).sqrt()
}

/// Where `needle` best matches in `hay` (sample offset of its start) and how well.
///
/// Brute-force correlation of the whole needle at every lag would cost seconds on a long
/// recording; instead the needle's loudest 20 ms is correlated at every lag (with running
/// energies), and only the best few lags are confirmed with the whole needle.
fn locate(hay: &[i16], needle: &[i16]) -> Option<(usize, f64)> {
    if needle.len() < ANCHOR || hay.len() < needle.len() {
        return None;
    }
    let energy = |s: &[i16]| s.iter().map(|&x| i64::from(x).pow(2)).sum::<i64>();
    let anchor_at = (0..=needle.len() - ANCHOR)
        .step_by(ANCHOR / 4)
        .max_by_key(|&at| energy(&needle[at..at + ANCHOR]))?;
    let anchor = &needle[anchor_at..anchor_at + ANCHOR];
    let anchor_energy = energy(anchor) as f64;
    assert!(anchor_energy > 0.0, "the needle is silent");
    // prefix[i] = energy of hay[..i]
    let mut prefix = Vec::with_capacity(hay.len() + 1);
    prefix.push(0i64);
    for &x in hay {
        prefix.push(prefix.last().copied().unwrap_or(0) + i64::from(x).pow(2));
    }
    let mut candidates: Vec<(f64, usize)> = (0..=hay.len() - needle.len())
        .filter_map(|lag| {
            let at = lag + anchor_at;
            let e = (prefix[at + ANCHOR] - prefix[at]) as f64;
            if e == 0.0 {
                return None;
            }
            let dot: i64 = hay[at..at + ANCHOR]
                .iter()
                .zip(anchor)
                .map(|(&x, &y)| i64::from(x) * i64::from(y))
                .sum();
            let c = dot as f64 / (e * anchor_energy).sqrt();
            (c > 0.5).then_some((c, lag))
        })
        .collect();
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
    candidates
        .iter()
        .take(CANDIDATES)
        .map(|&(_, lag)| (lag, correlation(&hay[lag..lag + needle.len()], needle)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Where the opening of `p` is in `recording` and how well it matched; fails the test when
/// it is not there.
fn find(recording: &[i16], p: &Prompt) -> (usize, f64) {
    match locate(recording, &opening(p)) {
        Some((at, c)) if c >= MATCH => (at, c),
        best => panic!(
            "prompt {} not in the recording ({:.1} s); best match {best:?}",
            p.name,
            recording.len() as f64 / f64::from(RATE)
        ),
    }
}

/// Log text without the ANSI colour codes the engine's log may carry.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Polls `condition` every 50 ms until it holds or `limit` passes.
fn poll(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn softphone_hears_the_greeting_and_its_key_is_confirmed() {
    let store = prompts();
    let greeting = prompt(&store, "greeting");
    let you_pressed = prompt(&store, "you-pressed");
    let digit = prompt(&store, "digit-1");
    let goodbye = prompt(&store, "thanks-goodbye");
    let no_input = prompt(&store, "no-input");

    let engine = Engine::start("");
    let started = Instant::now();
    let mut phone = Baresip::call(&format!("sip:12345@{}", engine.sip), 90);

    assert!(
        poll(Duration::from_secs(10), || !engine
            .log_lines("incoming call")
            .is_empty()),
        "the engine never saw baresip's call"
    );
    // Press only once the greeting is audibly playing: its first second is in the recording.
    let greeting_start = opening(&greeting);
    assert!(
        poll(Duration::from_secs(20), || {
            locate(&phone.heard_so_far(), &greeting_start).is_some_and(|(_, c)| c >= MATCH)
        }),
        "the greeting's first second never reached baresip's recording"
    );
    let pressed = started.elapsed();
    phone.send_key('1');

    // The engine confirms the key, says goodbye and hangs up.
    assert!(
        phone.wait_output(CALL_OVER, Duration::from_secs(30)),
        "the call did not end within 30 s of the key"
    );
    let ended = started.elapsed();
    let output = phone.output();
    assert!(
        output.contains(REMOTE_HANGUP),
        "baresip did not see the engine hang up (BYE)"
    );
    assert!(
        engine.log_lines("caller hung up").is_empty(),
        "baresip, not the engine, ended the call"
    );
    let status = phone.quit();
    assert!(
        status.is_some_and(|s| s.success()),
        "baresip did not quit cleanly: {status:?}"
    );

    // The engine recognised baresip's RFC 4733 events as key 1.
    let keys: Vec<String> = engine.log_lines("key").iter().map(|l| plain(l)).collect();
    let keys: Vec<&String> = keys.iter().filter(|l| l.contains(" key ")).collect();
    assert_eq!(keys.len(), 1, "one key logged: {keys:#?}");
    assert!(
        keys[0].contains("digit=1") && keys[0].contains("source=Rfc4733"),
        "key 1 by RFC 4733 expected: {}",
        keys[0]
    );
    assert_eq!(
        engine.log_lines("incoming call").len(),
        1,
        "exactly one call"
    );

    let recording = phone.recording();
    let seconds = |samples: usize| samples as f64 / f64::from(RATE);
    let parts = [&greeting, &you_pressed, &digit, &goodbye];
    let found: Vec<(usize, f64)> = parts.iter().map(|p| find(&recording, p)).collect();
    let report: Vec<String> = parts
        .iter()
        .zip(&found)
        .map(|(p, (at, c))| format!("{} at {:.3} s (r={c:.4})", p.name, seconds(*at)))
        .collect();
    eprintln!(
        "recording {:.2} s: {}; key pressed {:.2} s and call over {:.2} s after baresip started",
        seconds(recording.len()),
        report.join(", "),
        pressed.as_secs_f64(),
        ended.as_secs_f64(),
    );
    let [started_at, confirmed_at, digit_at, goodbye_at] = [0, 1, 2, 3].map(|i| found[i].0);
    assert!(
        started_at < confirmed_at,
        "'you pressed' must follow the greeting's start"
    );
    assert!(
        confirmed_at < started_at + greeting.samples,
        "the key must interrupt the greeting (barge-in)"
    );
    // Back to back as sent; a jitter buffer may only add silence in between.
    assert!(
        digit_at >= confirmed_at + you_pressed.samples,
        "'one' must follow 'you pressed'"
    );
    assert!(
        goodbye_at >= digit_at + digit.samples,
        "'thank you, goodbye' must follow 'one'"
    );
    assert!(
        locate(&recording, &opening(&no_input)).is_none_or(|(_, c)| c < MATCH),
        "the no-input prompt must not play after a key"
    );
}
