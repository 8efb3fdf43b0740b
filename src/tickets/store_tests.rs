//! Tests of the store, its migrations, the writer thread and the queries.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::*;
use crate::tickets::migrations::{self, STEPS};
use crate::tickets::query::{Figures, RecordFilter};
use crate::tickets::record::{CallEnd, Callback, Party, TransferAttempt};
use crate::tickets::writer::{Durable, Writer, WriterConfig};

/// An instant from RFC 3339.
fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test time")
        .with_timezone(&Utc)
}

/// A progress row for call `id` from `caller` to 12345 arriving `arrived`.
fn progress(id: &str, caller: &str, arrived: &str) -> CallRecord {
    let mut record = CallRecord::new(
        id.to_owned(),
        format!("{id}@sip"),
        Party {
            number: caller.to_owned(),
            display_name: None,
        },
        "12345".to_owned(),
        at(arrived),
    );
    record.hotline = Some("12345".to_owned());
    record.merge_mode = Some("unified".to_owned());
    record
}

/// `record` ended by `by` for `cause`.
fn ended(mut record: CallRecord, by: &str, cause: &str) -> CallRecord {
    record.times.ended = Some(record.times.arrived + chrono::Duration::seconds(60));
    record.end = Some(CallEnd {
        by: by.to_owned(),
        cause: cause.to_owned(),
        sip_status: None,
    });
    record
}

/// A finished record.
fn finished(id: &str, caller: &str, arrived: &str) -> CallRecord {
    ended(progress(id, caller, arrived), "caller", "bye")
}

/// A store in a fresh temporary directory.
fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&path_in(&dir.path().join("var"))).expect("open store");
    (dir, store)
}

/// Outbox rows as (endpoint, record_id), in seq order.
fn outbox(store: &Store) -> Vec<(String, String)> {
    let mut statement = store
        .conn
        .prepare("SELECT endpoint, record_id FROM outbox ORDER BY seq")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn endpoints() -> Vec<String> {
    vec!["tickets".to_owned(), "province".to_owned()]
}

#[test]
fn open_creates_directory_wal_file_and_schema() {
    let (dir, store) = temp_store();
    assert!(dir.path().join("var/records.sqlite").is_file());
    assert_eq!(store.schema_version().unwrap(), migrations::LATEST);
    let mode: String = store
        .conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = store
        .conn
        .pragma_query_value(None, "synchronous", |row| row.get(0))
        .unwrap();
    assert_eq!(sync, 1, "synchronous=NORMAL");
}

#[test]
fn round_trip_keeps_every_field() {
    let (_dir, mut store) = temp_store();
    let mut record = finished("r1", "13800138000", "2025-03-01T01:00:00.123Z");
    record.caller.display_name = Some("张三".to_owned());
    record.tags.insert("topic".to_owned(), "噪音".to_owned());
    record.survey = Some(5);
    record.wait_s = 12.5;
    record.callback = Some(Callback {
        number: "13800138000".to_owned(),
        requested: at("2025-03-01T01:00:30Z"),
    });
    store.put(&record, &[]).unwrap();
    assert_eq!(store.get("r1").unwrap(), Some(record.clone()));
    assert_eq!(store.get("missing").unwrap(), None);
    // The filter columns are copies of the record.
    let (arrived, ended, dialled, caller, hotline, done): (
        i64,
        Option<i64>,
        String,
        String,
        Option<String>,
        bool,
    ) = store
        .conn
        .query_row(
            "SELECT arrived_ms, ended_ms, dialled, caller, hotline, finished FROM calls",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(arrived, record.times.arrived.timestamp_millis());
    assert_eq!(ended, record.times.ended.map(|t| t.timestamp_millis()));
    assert_eq!(
        (dialled.as_str(), caller.as_str()),
        ("12345", "13800138000")
    );
    assert_eq!(hotline.as_deref(), Some("12345"));
    assert!(done);
}

#[test]
fn progress_row_then_final_row() {
    let (_dir, mut store) = temp_store();
    let mut record = progress("r1", "13800138000", "2025-03-01T01:00:00Z");
    store.put(&record, &endpoints()).unwrap();
    assert_eq!(store.get("r1").unwrap(), Some(record.clone()));
    assert_eq!(store.unfinished().unwrap(), vec![record.clone()]);
    assert!(outbox(&store).is_empty(), "no export of progress rows");

    record.tags.insert("topic".to_owned(), "traffic".to_owned());
    store.put(&record, &endpoints()).unwrap();
    assert_eq!(store.get("r1").unwrap(), Some(record.clone()));
    assert!(outbox(&store).is_empty());

    let record = ended(record, "caller", "bye");
    store.put(&record, &endpoints()).unwrap();
    assert_eq!(store.get("r1").unwrap(), Some(record.clone()));
    assert!(store.unfinished().unwrap().is_empty());
    assert_eq!(
        outbox(&store),
        [
            ("tickets".to_owned(), "r1".to_owned()),
            ("province".to_owned(), "r1".to_owned())
        ]
    );

    // A late progress row does not turn the final record back, and exports nothing.
    let mut late = progress("r1", "13800138000", "2025-03-01T01:00:00Z");
    late.tags.insert("late".to_owned(), "yes".to_owned());
    store.put(&late, &endpoints()).unwrap();
    assert_eq!(store.get("r1").unwrap(), Some(record));
    assert_eq!(outbox(&store).len(), 2);
    let count: i64 = store
        .conn
        .query_row("SELECT count(*) FROM calls", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1);
}

#[test]
fn a_store_that_gave_back_its_cache_reads_and_writes_as_before() {
    let (_dir, mut store) = temp_store();
    let records: Vec<CallRecord> = (0..500)
        .map(|i| finished(&format!("r{i}"), "13800138000", "2025-03-01T01:00:00Z"))
        .collect();
    store.put_all(&records, &endpoints()).unwrap();
    store.release_memory();
    for record in &records {
        assert_eq!(store.get(&record.id).unwrap().as_ref(), Some(record));
    }
    let late = finished("r500", "13900139000", "2025-03-01T02:00:00Z");
    store.put(&late, &endpoints()).unwrap();
    assert_eq!(store.get("r500").unwrap(), Some(late));
    assert_eq!(outbox(&store).len(), 2 * 501);
}

#[test]
fn outbox_rows_fresh_and_pending() {
    let (_dir, mut store) = temp_store();
    let before = Utc::now().timestamp_millis();
    store
        .put(&finished("r1", "1", "2025-03-01T01:00:00Z"), &endpoints())
        .unwrap();
    /// created_ms, attempts, next_attempt_ms, delivered_ms, last_error.
    type Row = (i64, i64, i64, Option<i64>, Option<String>);
    let rows: Vec<Row> = store
        .conn
        .prepare(
            "SELECT created_ms, attempts, next_attempt_ms, delivered_ms, last_error FROM outbox",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 2);
    for (created, attempts, next, delivered, error) in rows {
        assert!(created >= before && created <= Utc::now().timestamp_millis());
        assert_eq!((attempts, next, delivered, error), (0, created, None, None));
    }
}

#[test]
fn outbox_rows_are_in_the_same_transaction_as_the_final_row() {
    let (_dir, mut store) = temp_store();
    let first = progress("r1", "13800138000", "2025-03-01T01:00:00Z");
    store.put(&first, &endpoints()).unwrap();
    // Make the outbox insert fail: the final row must not be stored without its outbox rows.
    store
        .conn
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON outbox \
             WHEN NEW.endpoint = 'province' BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .unwrap();
    let last = ended(first.clone(), "caller", "bye");
    let error = store.put(&last, &endpoints()).unwrap_err();
    assert!(error.to_string().contains("records.sqlite"), "{error}");
    assert_eq!(store.get("r1").unwrap(), Some(first.clone()));
    assert!(outbox(&store).is_empty());

    // put_all: all records of the batch or none.
    let other = finished("r2", "1", "2025-03-01T02:00:00Z");
    assert!(store
        .put_all(
            [&other, &last],
            &["tickets".to_owned(), "province".to_owned()]
        )
        .is_err());
    assert_eq!(store.get("r2").unwrap(), None);

    store.conn.execute_batch("DROP TRIGGER refuse").unwrap();
    store.put(&last, &endpoints()).unwrap();
    assert_eq!(store.get("r1").unwrap(), Some(last));
    assert_eq!(outbox(&store).len(), 2);
}

#[test]
fn unfinished_rows_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    let running = progress("running", "13800138000", "2025-03-01T01:00:00Z");
    let earlier = progress("earlier", "13900139000", "2025-03-01T00:59:00Z");
    {
        let mut store = Store::open(&path).unwrap();
        store.put(&running, &endpoints()).unwrap();
        store.put(&earlier, &endpoints()).unwrap();
        store
            .put(&finished("done", "1", "2025-03-01T00:58:00Z"), &endpoints())
            .unwrap();
        // Like a crash: the connection goes away without the calls finishing; the -wal file
        // is left behind.
        std::mem::forget(store);
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.unfinished().unwrap(), vec![earlier.clone(), running]);
    // Listing them does not change them.
    assert_eq!(store.unfinished().unwrap().len(), 2);
    assert_eq!(store.get("earlier").unwrap(), Some(earlier));
}

#[test]
fn older_file_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    let old = finished("old", "13800138000", "2025-01-01T01:00:00Z");
    {
        // A file as written by an engine that knew only step 1.
        let mut conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        migrations::migrate_with(&mut conn, &STEPS[..1]).unwrap();
        assert_eq!(migrations::version(&conn).unwrap(), 1);
        conn.execute(
            "INSERT INTO calls (id, arrived_ms, ended_ms, dialled, caller, hotline, finished, \
             record) VALUES (?1, ?2, NULL, '12345', '13800138000', '12345', 1, ?3)",
            rusqlite::params![
                old.id,
                old.times.arrived.timestamp_millis(),
                serde_json::to_string(&old).unwrap()
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO outbox (endpoint, record_id, created_ms, next_attempt_ms) \
             VALUES ('tickets', 'old', 1, 1)",
            [],
        )
        .unwrap();
    }
    // The read-only view works on the older file without changing it.
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(reader.schema_version().unwrap(), 1);
    assert_eq!(reader.get("old").unwrap(), Some(old.clone()));
    drop(reader);

    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), migrations::LATEST);
    let indexes: i64 = store
        .conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' \
             AND name IN ('calls_dialled', 'calls_unfinished')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 2);
    assert_eq!(store.get("old").unwrap(), Some(old.clone()));
    assert_eq!(outbox(&store), [("tickets".to_owned(), "old".to_owned())]);
    store
        .put(&finished("new", "1", "2025-03-01T01:00:00Z"), &endpoints())
        .unwrap();
    let all = store
        .records(&RecordFilter {
            limit: 10,
            ..RecordFilter::default()
        })
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["new", "old"]
    );
}

#[test]
fn empty_file_is_version_zero_and_gets_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(
        Store::open_read_only(&path),
        Err(StoreError::NotAStore { .. })
    ));
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), migrations::LATEST);
}

#[test]
fn bad_files_are_named_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    let missing = Store::open_read_only(&path).unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { .. }));
    assert!(missing.to_string().contains("records.sqlite"), "{missing}");

    std::fs::write(
        &path,
        b"this is not a database, it is a text file of some length",
    )
    .unwrap();
    let error = Store::open(&path).unwrap_err();
    assert!(error.to_string().contains("records.sqlite"), "{error}");
    let error = Store::open_read_only(&path).unwrap_err();
    assert!(error.to_string().contains("records.sqlite"), "{error}");

    let newer = dir.path().join("newer.sqlite");
    {
        let conn = Connection::open(&newer).unwrap();
        conn.pragma_update(None, "user_version", migrations::LATEST + 1)
            .unwrap();
    }
    for error in [
        Store::open(&newer).unwrap_err(),
        Store::open_read_only(&newer).unwrap_err(),
    ] {
        assert!(matches!(error, StoreError::TooNew { .. }), "{error}");
        assert!(error.to_string().contains("newer.sqlite"), "{error}");
    }

    // A row whose JSON is broken is reported, not unwrapped.
    let mut store = Store::open(&dir.path().join("other.sqlite")).unwrap();
    store
        .put(&finished("r1", "1", "2025-03-01T01:00:00Z"), &[])
        .unwrap();
    store
        .conn
        .execute(
            "UPDATE calls SET record = '{\"schema\": 1' WHERE id = 'r1'",
            [],
        )
        .unwrap();
    let error = store.get("r1").unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }));
    assert!(error.to_string().contains("other.sqlite") && error.to_string().contains("r1"));
}

#[test]
fn read_only_store_sees_the_writers_rows_and_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    let mut store = Store::open(&path).unwrap();
    store
        .put(&finished("r1", "1", "2025-03-01T01:00:00Z"), &[])
        .unwrap();
    let mut reader = Store::open_read_only(&path).unwrap();
    store
        .put(&finished("r2", "1", "2025-03-01T01:00:01Z"), &[])
        .unwrap();
    assert!(reader.get("r2").unwrap().is_some());
    assert!(reader
        .put(&finished("r3", "1", "2025-03-01T01:00:02Z"), &[])
        .is_err());
    drop(store);
    drop(reader);
    // After the writer closed (the -wal file is checkpointed and gone).
    let reader = Store::open_read_only(&path).unwrap();
    assert!(reader.get("r1").unwrap().is_some());
}

/// Records received on `rx` until every sender is gone.
fn collect(mut rx: tokio::sync::mpsc::UnboundedReceiver<Durable>) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    while let Some(Durable::Record { id, finished }) = rx.blocking_recv() {
        out.push((id, finished));
    }
    out
}

#[test]
fn writer_back_pressure_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = Writer::start(
        WriterConfig {
            path: path.clone(),
            capacity: 4,
            endpoints: vec!["tickets".to_owned()],
        },
        tx,
    )
    .unwrap();
    let receiver = std::thread::spawn(move || collect(rx));
    let ids: Vec<String> = (0..10_000).map(|i| format!("call-{i:05}")).collect();
    for id in &ids {
        writer
            .submit(finished(id, "13800138000", "2025-03-01T01:00:00Z"))
            .unwrap();
        assert!(writer.queued() <= 4);
    }
    writer.close();
    let durable = receiver.join().unwrap();
    let expected: Vec<(String, bool)> = ids.iter().map(|id| (id.clone(), true)).collect();
    assert_eq!(durable, expected, "one Durable per record, in order");

    let store = Store::open_read_only(&path).unwrap();
    let count: i64 = store
        .conn
        .query_row("SELECT count(*) FROM calls WHERE finished = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(count, 10_000);
    assert_eq!(outbox(&store).len(), 10_000);
}

#[test]
fn writer_retries_while_the_file_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = Writer::start(
        WriterConfig {
            path: path.clone(),
            capacity: 8,
            endpoints: vec!["tickets".to_owned()],
        },
        tx,
    )
    .unwrap();
    // Another connection holds the write lock for longer than the busy timeout.
    let locker = Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let locked_at = Instant::now();
    let hold = Duration::from_millis(2500);
    let unlock = std::thread::spawn(move || {
        std::thread::sleep(hold);
        locker.execute_batch("COMMIT").unwrap();
    });
    let receiver = std::thread::spawn(move || {
        let mut rx = rx;
        let first = rx.blocking_recv();
        let first_at = Instant::now();
        let mut rest = collect(rx);
        if let Some(Durable::Record { id, finished }) = first {
            rest.insert(0, (id, finished));
        }
        (first_at, rest)
    });

    // More records than the queue holds: submit blocks until the lock is released.
    let ids: Vec<String> = (0..200).map(|i| format!("call-{i:03}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let mut record = progress(id, "13800138000", "2025-03-01T01:00:00Z");
        writer.submit(record.clone()).unwrap();
        if i % 2 == 0 {
            record = ended(record, "caller", "bye");
            writer.submit(record).unwrap();
        }
    }
    assert!(
        locked_at.elapsed() >= hold - Duration::from_millis(100),
        "the full queue made submit wait for the store"
    );
    writer.close();
    unlock.join().unwrap();
    let (first_at, durable) = receiver.join().unwrap();
    assert!(
        first_at.duration_since(locked_at) >= hold - Duration::from_millis(100),
        "nothing was durable while the file was locked"
    );

    let store = Store::open_read_only(&path).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let record = store.get(id).unwrap().expect("every record landed");
        assert_eq!(record.is_finished(), i % 2 == 0, "{id}");
        // The last Durable of each call says how it was stored.
        let last = durable.iter().rev().find(|(d, _)| d == id).unwrap();
        assert_eq!(last.1, i % 2 == 0, "{id}");
    }
    assert_eq!(outbox(&store).len(), 100);
}

#[test]
fn writer_coalesces_progress_rows_but_keeps_final_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = Writer::start(
        WriterConfig {
            path: path.clone(),
            capacity: 100,
            endpoints: vec![],
        },
        tx,
    )
    .unwrap();
    // Stall the writer so rows pile up in the queue.
    let locker = Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    writer
        .submit(progress("stall", "1", "2025-03-01T01:00:00Z"))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while writer.queued() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut record = progress("a", "1", "2025-03-01T01:00:00Z");
    for step in 0..50 {
        record
            .navigation
            .push(crate::tickets::record::NavigationStep {
                at: record.times.arrived,
                node: format!("menu-{step}"),
                input: None,
            });
        writer.submit(record.clone()).unwrap();
    }
    let last = ended(record, "caller", "bye");
    writer.submit(last.clone()).unwrap();
    writer
        .submit(progress("a", "1", "2025-03-01T01:00:00Z"))
        .unwrap();
    assert_eq!(writer.queued(), 1, "one queued row for call a");
    locker.execute_batch("COMMIT").unwrap();
    writer.close();
    assert_eq!(
        collect(rx),
        [("stall".to_owned(), false), ("a".to_owned(), true)]
    );
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(store.get("a").unwrap(), Some(last));
}

#[test]
fn submit_after_the_thread_is_gone_gives_the_record_back() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = Writer::start(
        WriterConfig {
            path: path_in(dir.path()),
            capacity: 1,
            endpoints: vec![],
        },
        tx,
    )
    .unwrap();
    // Simulate the thread having stopped.
    writer_alive(&writer, false);
    let gone = writer
        .submit(finished("r1", "1", "2025-03-01T01:00:00Z"))
        .unwrap_err();
    assert_eq!(gone.record.id, "r1");
    writer_alive(&writer, true);
    writer.close();
}

/// Flip the writer's `alive` flag (test hook).
fn writer_alive(writer: &Writer, alive: bool) {
    crate::tickets::writer::set_alive_for_test(writer, alive);
}

/// The hand-made set of the figures test (UTC offset +08:00, day 1 = 2025-03-01 local).
fn figures_set() -> Vec<CallRecord> {
    let mut out = Vec::new();
    // a: queued 10 s after arrival, answered 10 s later (within 15 s), satisfied.
    let mut a = finished("a", "13800000001", "2025-03-01T01:00:00Z");
    a.times.queued = Some(at("2025-03-01T01:00:10Z"));
    a.times.person_answered = Some(at("2025-03-01T01:00:20Z"));
    a.wait_s = 20.0;
    a.talk_s = 100.0;
    a.survey = Some(5);
    out.push(a);
    // b: answered 30 s after queueing (not within 15 s), not satisfied.
    let mut b = finished("b", "13800000002", "2025-03-01T02:00:00Z");
    b.times.queued = Some(at("2025-03-01T02:00:10Z"));
    b.times.person_answered = Some(at("2025-03-01T02:00:40Z"));
    b.wait_s = 40.0;
    b.talk_s = 200.0;
    b.survey = Some(3);
    out.push(b);
    // c: the caller gave up in the queue and asked for a callback: abandoned.
    let mut c = finished("c", "13800000003", "2025-03-01T03:00:00Z");
    c.times.queued = Some(at("2025-03-01T03:00:10Z"));
    c.wait_s = 50.0;
    c.callback = Some(Callback {
        number: "13800000003".to_owned(),
        requested: at("2025-03-01T03:00:20Z"),
    });
    out.push(c);
    // d: self-service; the dialplan ended the call: neither answered nor abandoned.
    let mut d = ended(
        progress("d", "13800000004", "2025-03-01T04:00:00Z"),
        "engine",
        "dialplan",
    );
    d.survey = Some(4);
    out.push(d);
    // e: still running (or left by a crash): offered only.
    out.push(progress("e", "13800000005", "2025-03-01T05:00:00Z"));
    // f1: 23:30 local: handed to a sub-centre that answered 7 s later.
    let mut f1 = finished("f1", "13800000006", "2025-03-01T15:30:00Z");
    f1.transfers.push(TransferAttempt {
        kind: "subcentre".to_owned(),
        target: "water".to_owned(),
        by: None,
        seat: None,
        started: at("2025-03-01T15:30:05Z"),
        answered: Some(at("2025-03-01T15:30:12Z")),
        ended: None,
        outcome: Some("answered".to_owned()),
    });
    f1.times.person_answered = Some(at("2025-03-01T15:30:12Z"));
    f1.wait_s = 12.0;
    f1.talk_s = 60.0;
    out.push(f1);
    // f2: 00:10 local on day 2 (still 2025-03-01 in UTC): hung up in the menu: abandoned.
    out.push(finished("f2", "13800000007", "2025-03-01T16:10:00Z"));
    // g: a number that is no hotline, refused.
    let mut g = progress("g", "13800000008", "2025-03-01T06:00:00Z");
    g.hotline = None;
    g.merge_mode = None;
    g.dialled = "99999".to_owned();
    g.end = Some(CallEnd {
        by: "engine".to_owned(),
        cause: "refused".to_owned(),
        sip_status: Some(404),
    });
    out.push(g);
    out
}

#[test]
fn figures_per_local_day_and_hotline() {
    let (_dir, mut store) = temp_store();
    store.put_all(&figures_set(), &[]).unwrap();
    let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    let figures = store.figures(None, None, 8 * 3600).unwrap();
    let expected = vec![
        Figures {
            day: day("2025-03-01"),
            hotline: String::new(),
            offered: 1,
            answered: 0,
            abandoned: 0,
            answered_within_15s: 0,
            connection_rate: 0.0,
            average_wait_s: 0.0,
            average_talk_s: 0.0,
            satisfaction_rate: None,
            callbacks_pending: 0,
        },
        Figures {
            day: day("2025-03-01"),
            hotline: "12345".to_owned(),
            offered: 6,
            answered: 3,
            abandoned: 1,
            answered_within_15s: 2,
            connection_rate: 0.5,
            average_wait_s: 24.0,
            average_talk_s: 120.0,
            satisfaction_rate: Some(2.0 / 3.0),
            callbacks_pending: 1,
        },
        Figures {
            day: day("2025-03-02"),
            hotline: "12345".to_owned(),
            offered: 1,
            answered: 0,
            abandoned: 1,
            answered_within_15s: 0,
            connection_rate: 0.0,
            average_wait_s: 0.0,
            average_talk_s: 0.0,
            satisfaction_rate: None,
            callbacks_pending: 0,
        },
    ];
    assert_eq!(figures, expected);

    // In UTC everything is on 2025-03-01.
    let utc = store.figures(None, None, 0).unwrap();
    assert_eq!(utc.len(), 2);
    assert_eq!(utc[1].offered, 7);
    assert_eq!(utc[1].abandoned, 2);

    // since/until select by arrival.
    let day2 = store
        .figures(Some(at("2025-03-01T16:00:00Z")), None, 8 * 3600)
        .unwrap();
    assert_eq!(day2, expected[2..].to_vec());
    let morning = store
        .figures(None, Some(at("2025-03-01T02:30:00Z")), 8 * 3600)
        .unwrap();
    assert_eq!(morning.len(), 1);
    assert_eq!((morning[0].offered, morning[0].answered), (2, 2));
}

#[test]
fn records_filters_newest_first() {
    let (_dir, mut store) = temp_store();
    store.put_all(&figures_set(), &[]).unwrap();
    let ids = |filter: RecordFilter| -> Vec<String> {
        store
            .records(&filter)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(
        ids(RecordFilter::default()),
        ["f2", "f1", "g", "e", "d", "c", "b", "a"]
    );
    assert_eq!(
        ids(RecordFilter {
            limit: 3,
            ..RecordFilter::default()
        }),
        ["f2", "f1", "g"]
    );
    assert_eq!(
        ids(RecordFilter {
            number: Some("13800000002".to_owned()),
            ..RecordFilter::default()
        }),
        ["b"]
    );
    assert_eq!(
        ids(RecordFilter {
            number: Some("99999".to_owned()),
            ..RecordFilter::default()
        }),
        ["g"],
        "the dialled number matches too"
    );
    assert_eq!(
        ids(RecordFilter {
            hotline: Some("12345".to_owned()),
            since: Some(at("2025-03-01T03:00:00Z")),
            until: Some(at("2025-03-01T15:30:00Z")),
            ..RecordFilter::default()
        }),
        ["e", "d", "c"],
        "since inclusive, until exclusive"
    );
}
