use std::time::Duration;

use super::*;

const MIN: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(300);

#[test]
fn backoff_doubles_from_min_and_stops_at_max() {
    let plain: Vec<u64> = (0..12)
        .map(|a| backoff(MIN, MAX, a, 0.0).as_secs())
        .collect();
    assert_eq!(plain, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    // Any number of attempts, even absurd ones from a damaged row, stays at the maximum.
    assert_eq!(backoff(MIN, MAX, 10_000, 0.0), MAX);
    assert_eq!(backoff(MIN, MAX, i64::MAX, 0.0), MAX);
    assert_eq!(backoff(MIN, MAX, -5, 0.0), MIN);
}

#[test]
fn backoff_jitter_is_twenty_percent_either_way() {
    assert_eq!(backoff(MIN, MAX, 0, -1.0), Duration::from_millis(800));
    assert_eq!(backoff(MIN, MAX, 0, 1.0), Duration::from_millis(1200));
    assert_eq!(backoff(MIN, MAX, 20, 1.0), Duration::from_secs(360));
    // Out-of-range jitter is clamped.
    assert_eq!(backoff(MIN, MAX, 0, 7.0), Duration::from_millis(1200));
}

fn config(url: &str) -> ExporterConfig {
    ExporterConfig::new(
        "/nonexistent/records.sqlite",
        vec![Endpoint::new("ticket", url)],
    )
}

#[test]
fn configuration_is_checked_before_the_store_is_opened() {
    let refuse = |config: ExporterConfig, part: &str| match Exporter::start(config) {
        Err(ExportError::Config(msg)) => assert!(msg.contains(part), "{msg}"),
        other => panic!("expected a configuration error about {part}, got {other:?}"),
    };
    refuse(config("https://tickets.example/records"), "tls");
    refuse(config("ftp://tickets.example/records"), "scheme");
    refuse(config("not a url"), "bad URL");
    let mut twice = config("http://127.0.0.1:1/");
    twice
        .endpoints
        .push(Endpoint::new("ticket", "http://127.0.0.1:2/"));
    refuse(twice, "twice");
    let mut backwards = config("http://127.0.0.1:1/");
    backwards.backoff_max = Duration::from_millis(10);
    refuse(backwards, "backoff");
    let mut unnamed = config("http://127.0.0.1:1/");
    unnamed.endpoints[0].name.clear();
    refuse(unnamed, "no name");
}

#[test]
fn a_missing_store_file_is_an_error_not_a_new_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("records.sqlite");
    let mut config = config("http://127.0.0.1:1/");
    config.path = path.clone();
    assert!(matches!(
        Exporter::start(config),
        Err(ExportError::Store { .. })
    ));
    assert!(!path.exists());
    assert!(matches!(backlog(&path), Err(ExportError::Store { .. })));
}

#[test]
fn no_endpoints_starts_and_stops() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("records.sqlite");
    Connection::open(&path).expect("create");
    let exporter = Exporter::start(ExporterConfig::new(&path, Vec::new())).expect("start");
    exporter.nudge();
    exporter.stop();
}
