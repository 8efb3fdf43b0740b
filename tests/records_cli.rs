//! `hotline records`: a store written through the API, queried by the binary in each format.

#[path = "support/record_fixtures.rs"]
mod record_fixtures;

use record_fixtures::{at, record, visit};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hotline::tickets::record::{CallEnd, CallRecord, Callback};
use hotline::tickets::store::{self, Store};

/// The records of the tests, oldest first.
fn records() -> Vec<CallRecord> {
    // Answered 10 s after queueing, satisfied; a Chinese tag value.
    let mut a = record(
        "aaaaaaaa-0000-4000-8000-000000000001",
        "13800000001",
        "2025-03-01T01:00:00Z",
        Some(("caller", "bye")),
    );
    a.times.queued = Some(at("2025-03-01T01:00:10Z"));
    a.times.person_answered = Some(at("2025-03-01T01:00:20Z"));
    a.wait_s = 20.0;
    a.talk_s = 100.0;
    a.survey = Some(5);
    a.tags.insert("topic".to_owned(), "噪音".to_owned());
    // a1002 lets it ring out, a1001 answers.
    a.queues.push(visit(
        "general",
        "2025-03-01T01:00:10Z",
        Some(("2025-03-01T01:00:20Z", "answered")),
        &[
            (
                "a1002",
                "2025-03-01T01:00:10Z",
                Some(("2025-03-01T01:00:16Z", "no-answer")),
            ),
            (
                "a1001",
                "2025-03-01T01:00:16Z",
                Some(("2025-03-01T01:00:20Z", "answered")),
            ),
        ],
    ));
    // Abandoned in the queue, asked for a callback.
    let mut b = record(
        "bbbbbbbb-0000-4000-8000-000000000002",
        "13800000002",
        "2025-03-01T02:00:00Z",
        Some(("caller", "bye")),
    );
    b.times.queued = Some(at("2025-03-01T02:00:10Z"));
    b.wait_s = 45.5;
    b.callback = Some(Callback {
        number: "13800000002".to_owned(),
        requested: at("2025-03-01T02:00:30Z"),
    });
    // a1001 declines, the caller hangs up 35 s after queueing while a1002 rings.
    b.queues.push(visit(
        "general",
        "2025-03-01T02:00:10Z",
        Some(("2025-03-01T02:00:45Z", "abandoned")),
        &[
            (
                "a1001",
                "2025-03-01T02:00:10Z",
                Some(("2025-03-01T02:00:30Z", "declined")),
            ),
            (
                "a1002",
                "2025-03-01T02:00:30Z",
                Some(("2025-03-01T02:00:45Z", "caller-gone")),
            ),
        ],
    ));
    // Refused: no hotline; a tag with a comma and a quote.
    let mut d = record(
        "dddddddd-0000-4000-8000-000000000004",
        "13900000004",
        "2025-03-01T03:00:00Z",
        None,
    );
    d.dialled = "99999".to_owned();
    d.hotline = None;
    d.merge_mode = None;
    d.end = Some(CallEnd {
        by: "engine".to_owned(),
        cause: "refused".to_owned(),
        sip_status: Some(404),
    });
    d.tags.insert("note".to_owned(), "a,\"b\"".to_owned());
    // Still running (a progress row), on the next local day: a1001's phone rings.
    let mut c = record(
        "cccccccc-0000-4000-8000-000000000003",
        "13800000001",
        "2025-03-02T01:00:00Z",
        None,
    );
    c.times.queued = Some(at("2025-03-02T01:00:05Z"));
    c.queues.push(visit(
        "legal",
        "2025-03-02T01:00:05Z",
        None,
        &[("a1001", "2025-03-02T01:00:05Z", None)],
    ));
    vec![a, b, d, c]
}

/// A data directory with the store and a configuration file pointing at it.
struct Fixture {
    /// Keeps the directory.
    _dir: tempfile::TempDir,
    /// The configuration file.
    config: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("var");
    let mut store = Store::open(&store::path_in(&data)).expect("store");
    for record in records() {
        store.put(&record, &["tickets".to_owned()]).expect("put");
    }
    drop(store);
    let config = write_config(dir.path(), &data);
    Fixture { _dir: dir, config }
}

/// A configuration file in `dir` whose data directory is `data`.
fn write_config(dir: &Path, data: &Path) -> PathBuf {
    let config = dir.join("hotline.toml");
    let data = data.to_str().expect("utf-8 temp path");
    std::fs::write(&config, format!("[paths]\ndata = {}\n", toml_string(data))).expect("config");
    config
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Run `hotline records --config <config> <args>`.
fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
        .arg("records")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run hotline")
}

/// Run and expect success; stdout.
fn ok(fixture: &Fixture, args: &[&str]) -> String {
    let output = run(&fixture.config, args);
    assert!(
        output.status.success(),
        "hotline records {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Ids (first 8 characters) of table rows.
fn table_ids(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .map(|line| line.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

/// The column (in characters) where `needle` starts in `line`.
fn column(line: &str, needle: &str) -> usize {
    let byte = line
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in {line}"));
    line[..byte].chars().count()
}

#[test]
fn table_lists_newest_first_in_aligned_columns() {
    let fixture = fixture();
    let text = ok(&fixture, &[]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    let header = lines[0];
    for name in [
        "id", "arrived", "caller", "dialled", "hotline", "wait", "talk", "end", "tags",
    ] {
        assert!(header.split_whitespace().any(|h| h == name), "{header}");
    }
    assert_eq!(
        table_ids(&text),
        ["cccccccc", "dddddddd", "bbbbbbbb", "aaaaaaaa"]
    );
    // Local time (+08:00) and the aligned columns.
    let (c, d, b, a) = (lines[1], lines[2], lines[3], lines[4]);
    assert_eq!(column(c, "2025-03-02 09:00:00"), column(header, "arrived"));
    assert_eq!(column(a, "2025-03-01 09:00:00"), column(header, "arrived"));
    assert_eq!(column(d, "99999"), column(header, "dialled"));
    assert_eq!(column(d, "engine/refused/404"), column(header, "end"));
    assert_eq!(column(c, "unfinished"), column(header, "end"));
    assert_eq!(column(b, "caller/bye"), column(header, "end"));
    assert_eq!(column(a, "20.0s"), column(header, "wait"));
    assert_eq!(column(a, "100.0s"), column(header, "talk"));
    assert_eq!(column(a, "topic=噪音"), column(header, "tags"));
    assert_eq!(column(d, " - ") + 1, column(header, "hotline"));
}

#[test]
fn utc_offset_changes_the_times_shown() {
    let fixture = fixture();
    let text = ok(&fixture, &["--utc-offset", "+00:00", "--limit", "1"]);
    assert!(text.contains("2025-03-02 01:00:00"), "{text}");
    let text = ok(&fixture, &["--utc-offset", "-05:00", "--limit", "1"]);
    assert!(text.contains("2025-03-01 20:00:00"), "{text}");
}

#[test]
fn json_is_the_records_contract_form() {
    let fixture = fixture();
    let text = ok(&fixture, &["--format", "json"]);
    let parsed: Vec<CallRecord> = serde_json::from_str(&text).expect("a JSON array of records");
    let mut expected = records();
    expected.reverse();
    assert_eq!(parsed, expected);
}

#[test]
fn csv_has_a_header_and_quotes_fields() {
    let fixture = fixture();
    let text = ok(&fixture, &["--format", "csv", "--number", "99999"]);
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(
        lines,
        [
            "id,arrived,caller,dialled,hotline,merge_mode,wait_s,talk_s,person_answered,ended,\
             end_by,end_cause,sip_status,survey,callback,tags",
            "dddddddd-0000-4000-8000-000000000004,2025-03-01T11:00:00+08:00,13900000004,99999,,,\
             0.000,0.000,,,engine,refused,404,,,\"note=a,\"\"b\"\"\"",
        ]
    );
    let text = ok(&fixture, &["--format", "csv", "--number", "13800000002"]);
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(
        lines[1],
        "bbbbbbbb-0000-4000-8000-000000000002,2025-03-01T10:00:00+08:00,13800000002,12345,12345,\
         unified,45.500,0.000,,2025-03-01T10:02:30+08:00,caller,bye,,,13800000002,"
    );
}

#[test]
fn filters() {
    let fixture = fixture();
    let ids = |args: &[&str]| table_ids(&ok(&fixture, args));
    assert_eq!(ids(&["--number", "13800000001"]), ["cccccccc", "aaaaaaaa"]);
    assert_eq!(ids(&["--number", "99999"]), ["dddddddd"]);
    assert_eq!(
        ids(&[
            "--hotline",
            "12345",
            "--since",
            "2025-03-01",
            "--until",
            "2025-03-01"
        ]),
        ["bbbbbbbb", "aaaaaaaa"],
        "a date alone for --until includes that day"
    );
    assert_eq!(
        ids(&["--since", "2025-03-01 09:30"]),
        ["cccccccc", "dddddddd", "bbbbbbbb"]
    );
    assert_eq!(
        ids(&["--until", "2025-03-01 10:00"]),
        ["aaaaaaaa"],
        "--until with a time is exclusive"
    );
    assert_eq!(ids(&["--limit", "2"]), ["cccccccc", "dddddddd"]);
    assert_eq!(ids(&["--limit", "0"]).len(), 4);
    assert_eq!(
        ok(&fixture, &["--number", "000"]),
        "no call records match\n"
    );
    assert_eq!(
        ok(&fixture, &["--number", "000", "--format", "json"]),
        "[]\n"
    );
}

#[test]
fn figures_in_each_format() {
    let fixture = fixture();
    let text = ok(&fixture, &["--figures", "--format", "csv"]);
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(
        lines,
        [
            "day,hotline,offered,answered,abandoned,answered_within_15s,connection_rate,\
             average_wait_s,average_talk_s,satisfaction_rate,callbacks_pending",
            "2025-03-01,,1,0,0,0,0.0000,0.000,0.000,,0",
            "2025-03-01,12345,2,1,1,1,0.5000,20.000,100.000,1.0000,1",
            "2025-03-02,12345,1,0,0,0,0.0000,0.000,0.000,,0",
        ]
    );

    let text = ok(&fixture, &["--figures", "--hotline", "12345"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let header = lines[0];
    assert!(header.starts_with("day"), "{header}");
    let row = lines[1];
    assert!(row.starts_with("2025-03-01  12345"), "{row}");
    assert_eq!(column(row, "50.0%"), column(header, "connection"));
    assert_eq!(column(row, "100.0%"), column(header, "satisfaction"));
    let satisfaction = column(header, "satisfaction");
    assert_eq!(lines[2].chars().nth(satisfaction), Some('-'), "{text}");

    let text = ok(
        &fixture,
        &["--figures", "--format", "json", "--since", "2025-03-02"],
    );
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        value,
        serde_json::json!([{
            "day": "2025-03-02",
            "hotline": "12345",
            "offered": 1,
            "answered": 0,
            "abandoned": 0,
            "answered_within_15s": 0,
            "connection_rate": 0.0,
            "average_wait_s": 0.0,
            "average_talk_s": 0.0,
            "satisfaction_rate": null,
            "callbacks_pending": 0
        }])
    );

    // At -12:00 the local days move back.
    let text = ok(
        &fixture,
        &["--figures", "--format", "csv", "--utc-offset", "-12:00"],
    );
    assert!(text.contains("\r\n2025-02-28,12345,2,"), "{text}");
}

#[test]
fn figures_per_seat_in_each_format() {
    let fixture = fixture();
    let text = ok(&fixture, &["--figures", "--by", "seat", "--format", "csv"]);
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(
        lines,
        [
            "day,seat,offered,answered,no_answer,declined,answered_within_15s,average_wait_s,\
             average_talk_s,satisfaction_rate",
            "2025-03-01,a1001,2,1,0,1,1,20.000,100.000,1.0000",
            "2025-03-01,a1002,2,0,1,0,0,0.000,0.000,",
            "2025-03-02,a1001,1,0,0,0,0,0.000,0.000,",
        ]
    );

    let text = ok(
        &fixture,
        &["--figures", "--by", "seat", "--until", "2025-03-01"],
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let header = lines[0];
    for name in [
        "day",
        "seat",
        "offered",
        "answered",
        "no_answer",
        "declined",
        "within_15s",
        "avg_wait",
        "avg_talk",
        "satisfaction",
    ] {
        assert!(header.split_whitespace().any(|h| h == name), "{header}");
    }
    assert!(
        !header.contains("callbacks"),
        "no callbacks per seat: {header}"
    );
    let (a1001, a1002) = (lines[1], lines[2]);
    assert!(a1001.starts_with("2025-03-01  a1001"), "{text}");
    assert_eq!(column(a1001, "20.0s"), column(header, "avg_wait"));
    assert_eq!(column(a1001, "100.0s"), column(header, "avg_talk"));
    assert_eq!(column(a1001, "100.0%"), column(header, "satisfaction"));
    let satisfaction = column(header, "satisfaction");
    assert_eq!(a1002.chars().nth(satisfaction), Some('-'), "{text}");

    let text = ok(
        &fixture,
        &[
            "--figures",
            "--by",
            "seat",
            "--format",
            "json",
            "--since",
            "2025-03-02",
        ],
    );
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        value,
        serde_json::json!([{
            "day": "2025-03-02",
            "seat": "a1001",
            "offered": 1,
            "answered": 0,
            "no_answer": 0,
            "declined": 0,
            "answered_within_15s": 0,
            "average_wait_s": 0.0,
            "average_talk_s": 0.0,
            "satisfaction_rate": null
        }])
    );

    assert_eq!(
        ok(
            &fixture,
            &["--figures", "--by", "seat", "--hotline", "99999"]
        ),
        "no calls were offered to a seat in this period\n"
    );
}

#[test]
fn figures_per_queue_in_each_format() {
    let fixture = fixture();
    let text = ok(&fixture, &["--figures", "--by", "queue", "--format", "csv"]);
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(
        lines,
        [
            "day,queue,offered,answered,abandoned,answered_within_15s,connection_rate,\
             average_wait_s,longest_wait_s",
            "2025-03-01,general,2,1,1,1,0.5000,10.000,35.000",
            "2025-03-02,legal,1,0,0,0,0.0000,0.000,0.000",
        ]
    );

    let text = ok(
        &fixture,
        &["--figures", "--by", "queue", "--hotline", "12345"],
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let header = lines[0];
    let general = lines[1];
    assert!(general.starts_with("2025-03-01  general"), "{text}");
    assert_eq!(column(general, "50.0%"), column(header, "connection"));
    assert_eq!(column(general, "10.0s"), column(header, "avg_wait"));
    assert_eq!(column(general, "35.0s"), column(header, "longest_wait"));

    let text = ok(
        &fixture,
        &["--figures", "--by", "queue", "--format", "json"],
    );
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(value[0]["queue"], "general");
    assert_eq!(value[0]["abandoned"], 1);
    assert_eq!(value[1]["queue"], "legal");

    // At -12:00 the first day's calls move back a day; the next day's stay apart.
    let text = ok(
        &fixture,
        &[
            "--figures",
            "--by",
            "queue",
            "--format",
            "csv",
            "--utc-offset",
            "-12:00",
        ],
    );
    assert!(text.contains("\r\n2025-02-28,general,2,1,1,"), "{text}");
    assert!(text.contains("\r\n2025-03-01,legal,1,0,"), "{text}");

    assert_eq!(
        ok(&fixture, &["--figures", "--by", "hotline"]),
        ok(&fixture, &["--figures"]),
        "per hotline is the default"
    );
}

#[test]
fn errors_name_the_problem() {
    let fixture = fixture();
    let output = run(&fixture.config, &["--since", "yesterday"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--since") && stderr.contains("yesterday"),
        "{stderr}"
    );

    let output = run(&fixture.config, &["--figures", "--number", "1"]);
    assert!(
        !output.status.success(),
        "--number does not apply to figures"
    );

    let output = run(&fixture.config, &["--utc-offset", "8"]);
    assert!(!output.status.success());

    let output = run(&fixture.config, &["--by", "seat"]);
    assert!(!output.status.success(), "--by needs --figures");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--figures"), "{stderr}");

    let output = run(&fixture.config, &["--figures", "--by", "agent"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("agent") && stderr.contains("seat") && stderr.contains("queue"),
        "{stderr}"
    );

    // A data directory without a store.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &dir.path().join("empty"));
    let output = run(&config, &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("records.sqlite"), "{stderr}");
    assert!(
        !dir.path().join("empty/records.sqlite").exists(),
        "not created"
    );
}
