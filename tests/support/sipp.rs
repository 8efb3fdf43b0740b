//! Runs SIPp (Debian `sip-tester`) against the engine and reports how its calls went.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::free_port;

/// A scenario file under tests/sipp/.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// What a SIPp run ended with.
#[derive(Debug)]
pub struct SippRun {
    /// SIPp's exit code: 0 when every call succeeded.
    pub code: Option<i32>,
    /// Successful calls (from the final statistics).
    pub successful: u64,
    /// Failed calls.
    pub failed: u64,
    /// stdout and stderr, for failure messages.
    pub output: String,
}

impl SippRun {
    /// Panics with SIPp's output unless all `calls` succeeded.
    pub fn assert_all_succeeded(&self, calls: u64) {
        assert!(
            self.code == Some(0) && self.successful == calls && self.failed == 0,
            "SIPp: exit {:?}, {} successful, {} failed (wanted {calls}):\n{}",
            self.code,
            self.successful,
            self.failed,
            self.output
        );
    }
}

/// A SIPp run being built.
pub struct Sipp {
    args: Vec<String>,
    limit_s: u32,
    /// SIPp's own RTP port (`-mp`, `[media_port]` in scenarios).
    pub media_port: u16,
}

impl Sipp {
    /// SIPp playing `scenario_file` against `engine`, one call, on UDP.
    pub fn new(scenario_file: &str, engine: SocketAddr) -> Sipp {
        if Command::new("sipp").arg("-v").output().is_err() {
            panic!("sipp is not installed: run `bash tests/install-deps.sh` (Debian sip-tester)");
        }
        let media_port = free_port();
        let args = vec![
            "-sf".to_string(),
            scenario(scenario_file).display().to_string(),
            "-s".into(),
            "12345".into(),
            "-i".into(),
            "127.0.0.1".into(),
            "-mi".into(),
            "127.0.0.1".into(),
            "-p".into(),
            free_port().to_string(),
            "-mp".into(),
            media_port.to_string(),
            "-m".into(),
            "1".into(),
            "-timeout".into(),
            "60s".into(),
            "-timeout_error".into(),
            "-nostdin".into(),
            "-trace_err".into(),
            engine.to_string(),
        ];
        Sipp {
            args,
            limit_s: 70,
            media_port,
        }
    }

    /// Adds raw arguments.
    pub fn args(mut self, extra: &[&str]) -> Sipp {
        let target = self.args.pop();
        self.args.extend(extra.iter().map(|a| a.to_string()));
        self.args.extend(target);
        self
    }

    /// Sets a scenario variable (`[$name]`).
    pub fn set(self, name: &str, value: &str) -> Sipp {
        self.args(&["-set", name, value])
    }

    /// Runs SIPp in `dir` (its error trace goes there) and waits for it, bounded by `timeout`.
    pub fn run_in(self, dir: &Path) -> SippRun {
        let output = Command::new("timeout")
            .args(["-k", "5", "-s", "INT", &self.limit_s.to_string(), "sipp"])
            .args(&self.args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .expect("run sipp");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let mut errors = String::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.contains("_errors.log") {
                    errors += &std::fs::read_to_string(entry.path()).unwrap_or_default();
                }
            }
        }
        SippRun {
            code: output.status.code(),
            successful: stat(&text, "Successful call"),
            failed: stat(&text, "Failed call"),
            output: format!("{text}\n{errors}"),
        }
    }
}

/// The cumulative figure of a line of SIPp's final statistics screen.
fn stat(text: &str, label: &str) -> u64 {
    text.lines()
        .rev()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
