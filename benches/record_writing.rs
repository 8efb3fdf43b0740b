//! Sustained record writing: finished call records at a fixed rate through the real writer into
//! a real SQLite file (WAL), with the exporter pushing every one to a local HTTP sink, and the
//! time from hand-over to durable (the writer's acknowledgement) measured per record.
//!
//! `cargo bench --bench record_writing` (`RECORDS_RATE`, default 1000/s; `RECORDS_SECONDS`,
//! default 30). Prints the achieved rate, p50/p99/max hand-over-to-durable, and the exporter's
//! backlog at the end. Acknowledgements are read every 0.2 ms while pacing, so latencies carry
//! up to that much reading delay.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline::tickets::export::{backlog, Endpoint, Exporter, ExporterConfig};
use hotline::tickets::record::{CallEnd, CallRecord, Party};
use hotline::tickets::writer::{Durable, Writer, WriterConfig};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A minimal HTTP sink answering 200 to every POST; counts them.
fn sink(received: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let received = Arc::clone(&received);
            std::thread::spawn(move || {
                let Ok(mut writer) = stream.try_clone() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let header = line.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    received.fetch_add(1, Ordering::Relaxed);
                    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                    if writer.write_all(reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(port)
}

fn record(n: u64) -> CallRecord {
    let now = chrono::Utc::now();
    let mut record = CallRecord::new(
        uuid::Uuid::new_v4().to_string(),
        format!("bench-{n}@127.0.0.1"),
        Party {
            number: format!("138{n:08}"),
            display_name: None,
        },
        "12345".into(),
        now - chrono::Duration::seconds(60),
    );
    record.hotline = Some("12345".into());
    record.merge_mode = Some("unified".into());
    record.tags.insert("topic".into(), "housing".into());
    record.times.answered = Some(now - chrono::Duration::seconds(59));
    record.times.ended = Some(now);
    record.wait_s = 60.0;
    record.end = Some(CallEnd {
        by: "caller".into(),
        cause: "bye".into(),
        sip_status: None,
    });
    record
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo test --all-targets` runs benches without `--bench`: a one-second smoke run then.
    let measuring = std::env::args().any(|a| a == "--bench");
    let rate = env_u64("RECORDS_RATE", if measuring { 1000 } else { 200 });
    let seconds = env_u64("RECORDS_SECONDS", if measuring { 30 } else { 1 });
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("records.sqlite");
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let port = sink(Arc::clone(&received), Arc::clone(&stop))?;

    let (durable_tx, mut durable_rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = Writer::start(
        WriterConfig {
            path: path.clone(),
            capacity: 10_000,
            endpoints: vec!["sink".into()],
        },
        durable_tx,
    )?;
    let exporter = Exporter::start(ExporterConfig {
        path: path.clone(),
        endpoints: vec![Endpoint {
            name: "sink".into(),
            url: format!("http://127.0.0.1:{port}/records"),
            timeout: Duration::from_secs(5),
        }],
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_secs(2),
        poll: Duration::from_millis(100),
    })?;

    let total = rate * seconds;
    let mut submitted = std::collections::HashMap::with_capacity(total as usize);
    let mut latencies = Vec::with_capacity(total as usize);
    let start = Instant::now();
    for n in 0..total {
        let due = start + Duration::from_secs_f64(n as f64 / rate as f64);
        while Instant::now() < due {
            while let Ok(Durable::Record { id, .. }) = durable_rx.try_recv() {
                if let Some(at) = submitted.remove(&id) {
                    latencies.push(Instant::now().duration_since(at));
                }
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let record = record(n);
        submitted.insert(record.id.clone(), Instant::now());
        writer.submit(record).map_err(|_| "writer gone")?;
        if n % 256 == 0 {
            exporter.nudge();
        }
    }
    let sent_in = start.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !submitted.is_empty() && Instant::now() < deadline {
        match durable_rx.try_recv() {
            Ok(Durable::Record { id, .. }) => {
                if let Some(at) = submitted.remove(&id) {
                    latencies.push(Instant::now().duration_since(at));
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    exporter.nudge();
    let export_deadline = Instant::now() + Duration::from_secs(120);
    while received.load(Ordering::Relaxed) < total && Instant::now() < export_deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let exported_in = start.elapsed();
    latencies.sort();
    println!(
        "records: {total} submitted in {:.1} s ({:.0}/s), {} durable",
        sent_in.as_secs_f64(),
        total as f64 / sent_in.as_secs_f64(),
        latencies.len()
    );
    println!(
        "hand-over to durable: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        percentile(&latencies, 1.0).as_secs_f64() * 1000.0
    );
    println!(
        "exported: {} of {total} received by the sink, all within {:.1} s of the start",
        received.load(Ordering::Relaxed),
        exported_in.as_secs_f64()
    );
    for endpoint in backlog(&path)? {
        println!(
            "backlog {}: {} pending",
            endpoint.endpoint, endpoint.pending
        );
    }
    exporter.stop();
    writer.close();
    stop.store(true, Ordering::Relaxed);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let wal = std::fs::metadata(Path::new(&format!("{}-wal", path.display())))
        .map(|m| m.len())
        .unwrap_or(0);
    println!("store: {} kB (+ WAL {} kB)", size / 1024, wal / 1024);
    Ok(())
}
