//! Call records as the engine left them: read back through the real `hotline records` CLI, the
//! engine's log lines with their times, and engines killed and started again on the same data
//! directory.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use hotline::tickets::CallRecord;

use super::sipp::strip_ansi;
use super::{free_port, Engine};

/// Every record in the store of the engine configured by `config`, newest first, as
/// `hotline records --config <config> --format json --limit 0` prints them.
pub fn records(config: &Path) -> Vec<CallRecord> {
    records_matching(config, &[])
}

/// The records `hotline records --config <config> --format json --limit 0 <filters>` prints.
pub fn records_matching(config: &Path, filters: &[&str]) -> Vec<CallRecord> {
    let json = records_json(config, filters);
    serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("hotline records printed no record list ({e}):\n{json}"))
}

/// What `hotline records --config <config> --format json --limit 0 <filters>` prints.
pub fn records_json(config: &Path, filters: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .arg("records")
        .arg("--config")
        .arg(config)
        .args(["--format", "json", "--limit", "0"])
        .args(filters)
        .stdin(Stdio::null())
        .output()
        .expect("run hotline records");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "hotline records failed ({}):\n{}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// One line of the engine's log: when it was written and its `name=value` fields.
#[derive(Debug, Clone)]
pub struct LogEvent {
    /// The line's timestamp (the engine's clock, UTC).
    pub at: DateTime<Utc>,
    /// The line, colour codes removed.
    pub line: String,
    fields: HashMap<String, String>,
}

impl LogEvent {
    /// A field's value (panics when the line has none).
    pub fn get(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no `{name}` in: {}", self.line))
    }
}

/// The lines of the log at `log` whose message is `message` (e.g. `incoming call`), in order.
pub fn log_events(log: &Path, message: &str) -> Vec<LogEvent> {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| parse_line(&strip_ansi(line), message))
        .collect()
}

/// `TIME  LEVEL target: message name=value ...` when the message is `message`.
fn parse_line(line: &str, message: &str) -> Option<LogEvent> {
    let (time, rest) = line.split_once(' ')?;
    let at = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
    let (_, rest) = rest.split_once(": ")?;
    let fields = rest.strip_prefix(message)?;
    if !(fields.is_empty() || fields.starts_with(' ')) {
        return None;
    }
    Some(LogEvent {
        at,
        line: line.to_string(),
        fields: parse_fields(fields),
    })
}

/// tracing's `name=value` pairs (quoted values may hold spaces); other words are skipped (a
/// `Debug` value such as `Number { entry: 0 }` keeps only its first word).
fn parse_fields(text: &str) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return fields;
        }
        let mut name = String::new();
        let mut has_value = false;
        while let Some(&c) = chars.peek() {
            chars.next();
            if c == '=' {
                has_value = true;
                break;
            }
            if c.is_whitespace() {
                break;
            }
            name.push(c);
        }
        if !has_value {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        fields.insert(name, value);
    }
}

impl Engine {
    /// The engine's configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("hotline.toml")
    }

    /// Whether the engine process is still running (false once it exited or was stopped).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kills the engine with SIGKILL (no shutdown of any kind) and reaps it; returns the wall
    /// clock time just before the signal was sent.
    pub fn kill_hard(&mut self) -> DateTime<Utc> {
        let mut child = self.child.take().expect("the engine is running");
        let at = Utc::now();
        child.kill().expect("SIGKILL the engine");
        let status = child.wait().expect("reap the engine");
        assert!(!status.success(), "killed, not exited: {status:?}");
        at
    }

    /// Starts the engine again, after it stopped, on the same configuration file and data
    /// directory (the scratch directory moves to the new engine). The new run logs to a file of
    /// its own (`engine-2.log`, ...) next to the old log. If its SIP port was taken in the
    /// meantime, the configuration is changed to a free one.
    pub fn restart(mut self) -> Engine {
        assert!(
            !self.is_running(),
            "restart() is for an engine that has stopped"
        );
        self.child = None;
        let mut dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        let config = dir.path().join("hotline.toml");
        let mut sip = self.sip;
        for _ in 0..5 {
            let log = (2..)
                .map(|run| dir.path().join(format!("engine-{run}.log")))
                .find(|log| !log.exists())
                .expect("a log name");
            let log_file = fs::File::create(&log).expect("log file");
            let child = Command::new(env!("CARGO_BIN_EXE_hotline"))
                .arg("run")
                .arg("--config")
                .arg(&config)
                .env("RUST_LOG", "hotline=debug")
                .stdout(Stdio::from(log_file.try_clone().expect("log file")))
                .stderr(Stdio::from(log_file))
                .spawn()
                .expect("start hotline again");
            let mut engine = Engine {
                child: Some(child),
                sip,
                log,
                dir,
            };
            if engine.wait_ready() {
                return engine;
            }
            // The port was taken while the engine was down: move to another one.
            dir = std::mem::replace(&mut engine.dir, tempfile::tempdir().expect("temp dir"));
            let port = free_port();
            let text = fs::read_to_string(&config).expect("read config");
            let text = text.replace(
                &format!("listen = \"{sip}\""),
                &format!("listen = \"127.0.0.1:{port}\""),
            );
            fs::write(&config, text).expect("write config");
            sip.set_port(port);
        }
        panic!("the engine could not bind a SIP port in 5 tries");
    }
}
