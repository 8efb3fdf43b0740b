//! Runs SIPp (Debian `sip-tester`) against the engine and reports how its calls went.

use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// A scenario file under tests/sipp/ (an absolute path is taken as it is).
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

    /// SIPp answering as a UAS (a sub-centre's PBX) on `port`, for one call.
    pub fn uas(scenario_file: &str, port: u16) -> Sipp {
        let mut sipp = Sipp::new(scenario_file, SocketAddr::from(([127, 0, 0, 1], port)));
        // No remote target: a UAS waits; `args` keeps the last argument last.
        if let Some(last) = sipp.args.last_mut() {
            *last = "-trace_err".into();
        }
        if let Some(i) = sipp.args.iter().position(|a| a == "-p") {
            sipp.args[i + 1] = port.to_string();
        }
        sipp
    }

    /// Adds raw arguments.
    pub fn args(mut self, extra: &[&str]) -> Sipp {
        let target = self.args.pop();
        self.args.extend(extra.iter().map(|a| a.to_string()));
        self.args.extend(target);
        self
    }

    /// Lets SIPp run up to `seconds` (SIPp's own call timeout and the hard stop).
    pub fn within(mut self, seconds: u32) -> Sipp {
        if let Some(i) = self.args.iter().position(|a| a == "-timeout") {
            self.args[i + 1] = format!("{seconds}s");
        }
        self.limit_s = seconds + 10;
        self
    }

    /// Sets a scenario variable (`[$name]`).
    pub fn set(self, name: &str, value: &str) -> Sipp {
        self.args(&["-set", name, value])
    }

    /// Dials `number` (the Request-URI and To user of the scenarios, `[service]`).
    pub fn service(mut self, number: &str) -> Sipp {
        if let Some(i) = self.args.iter().position(|a| a == "-s") {
            self.args[i + 1] = number.to_string();
        }
        self
    }

    /// Runs SIPp in `dir` (its error trace goes there) and waits for it, bounded by `timeout`.
    pub fn run_in(self, dir: &Path) -> SippRun {
        self.spawn_in(dir).wait()
    }

    /// Starts SIPp in `dir` in the background; [`SippChild::wait`] collects the outcome. SIPp
    /// is stopped after its time limit, and killed when the handle is dropped unwaited.
    pub fn spawn_in(self, dir: &Path) -> SippChild {
        // The media port is this run's own: it names the output files.
        let stdout = dir.join(format!("sipp-{}.out", self.media_port));
        let stderr = dir.join(format!("sipp-{}.err", self.media_port));
        let child = Command::new("timeout")
            .args(["-k", "5", "-s", "INT", &self.limit_s.to_string(), "sipp"])
            .args(&self.args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("sipp stdout file"))
            .stderr(File::create(&stderr).expect("sipp stderr file"))
            // Its own process group, so that a drop can stop `timeout` and SIPp together.
            .process_group(0)
            .spawn()
            .expect("run sipp");
        SippChild {
            child: Some(child),
            deadline: Instant::now() + Duration::from_secs(u64::from(self.limit_s) + 15),
            dir: dir.to_path_buf(),
            stdout,
            stderr,
        }
    }
}

/// A SIPp run in progress.
pub struct SippChild {
    child: Option<Child>,
    deadline: Instant,
    dir: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl SippChild {
    /// Waits for SIPp to finish (bounded: its time limit plus a margin, then it is killed) and
    /// reads its final statistics.
    pub fn wait(mut self) -> SippRun {
        let mut child = self.child.take().expect("a SIPp child");
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < self.deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    kill_group(&child, "KILL");
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let text = format!(
            "{}\n{}",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        );
        let mut errors = String::new();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.contains("_errors.log") {
                    errors += &std::fs::read_to_string(entry.path()).unwrap_or_default();
                }
            }
        }
        SippRun {
            code: status.and_then(|s| s.code()),
            successful: stat(&text, "Successful call"),
            failed: stat(&text, "Failed call"),
            output: format!("{text}\n{errors}"),
        }
    }
}

impl Drop for SippChild {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            kill_group(&child, "KILL");
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// Sends `signal` to the process group led by `child` (`timeout` and its SIPp).
fn kill_group(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{}", child.id()))
        .stderr(Stdio::null())
        .status();
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

/// A key press of a generated caller scenario: wait `after_ms` (after the ACK, or after the
/// previous press), then play the key's RFC 4733 events.
#[derive(Clone, Copy, Debug)]
pub struct Press {
    /// Milliseconds after the ACK or the previous press.
    pub after_ms: u64,
    /// `0`-`9`, `*` or `#`.
    pub key: char,
}

/// A press of `key` `after_ms` after the ACK or the previous press.
pub fn press(after_ms: u64, key: char) -> Press {
    Press { after_ms, key }
}

/// SIPp's bundled RFC 4733 capture of `key` (payload type 101).
pub fn dtmf_pcap(key: char) -> PathBuf {
    let name = match key {
        '0'..='9' => key.to_string(),
        '*' => "star".to_string(),
        '#' => "pound".to_string(),
        other => panic!("no SIPp pcap for key {other:?}"),
    };
    let path = PathBuf::from(format!("/usr/share/sip-tester/dtmf_2833_{name}.pcap"));
    assert!(
        path.exists(),
        "{} missing: run `bash tests/install-deps.sh` (Debian sip-tester)",
        path.display()
    );
    path
}

/// Writes to `dir` a copy of SIPp's pcap of `key` whose RTP continues one stream: press `n` of
/// a call gets sequence numbers and an event timestamp after those of the presses before it.
///
/// SIPp replays a pcap's RTP headers as they are, so the same pcap played twice is the same
/// event twice to a receiver (RFC 4733 §2.5.1.3: same timestamp), and a second press of the
/// same key would rightly be ignored. A phone numbers its packets on; so do these copies.
pub fn dtmf_press_pcap(dir: &Path, key: char, n: usize) -> PathBuf {
    let mut bytes = std::fs::read(dtmf_pcap(key)).expect("read SIPp's pcap");
    assert_eq!(
        bytes.get(..4),
        Some(&[0xd4, 0xc3, 0xb2, 0xa1][..]),
        "a little-endian pcap"
    );
    assert_eq!(
        bytes.get(20..24),
        Some(&[1, 0, 0, 0][..]),
        "Ethernet frames"
    );
    let n16 = u16::try_from(n).expect("press number");
    let n32 = u32::from(n16);
    let mut first: Option<(u16, u32)> = None;
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let captured = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes"));
        let frame = at + 16;
        at = frame + captured as usize;
        let ip = frame + 14;
        let udp = ip + usize::from(bytes[ip] & 0x0f) * 4;
        let rtp = udp + 8;
        if rtp + 12 > at {
            continue;
        }
        // No UDP checksum (allowed over IPv4): the headers below change.
        bytes[udp + 6..udp + 8].copy_from_slice(&[0, 0]);
        let seq = u16::from_be_bytes([bytes[rtp + 2], bytes[rtp + 3]]);
        let ts = u32::from_be_bytes(bytes[rtp + 4..rtp + 8].try_into().expect("4 bytes"));
        let (seq0, ts0) = *first.get_or_insert((seq, ts));
        let seq = 1000u16
            .wrapping_add(n16.wrapping_mul(50))
            .wrapping_add(seq.wrapping_sub(seq0));
        // Presses 10 s apart in RTP time: each its own event.
        let ts = 8000u32
            .wrapping_add(n32.wrapping_mul(80_000))
            .wrapping_add(ts.wrapping_sub(ts0));
        bytes[rtp + 2..rtp + 4].copy_from_slice(&seq.to_be_bytes());
        bytes[rtp + 4..rtp + 8].copy_from_slice(&ts.to_be_bytes());
    }
    let name = match key {
        '*' => "star".to_string(),
        '#' => "pound".to_string(),
        digit => digit.to_string(),
    };
    let path = dir.join(format!("press-{n}-{name}.pcap"));
    std::fs::write(&path, bytes).expect("write pcap");
    path
}

/// A caller scenario's INVITE step: From and Contact user `caller`, `branch` for the top Via
/// (a fixed one when the scenario must ACK a failure on it), an offer of PCMA, PCMU and
/// telephone-event 101 with RTP at `media_port` (a SIPp token: `[media_port]`, `[$rtp_port]`);
/// `attributes` go on the `<send>` element (e.g. `start_rtd="x"`).
pub fn invite_step(caller: &str, branch: &str, media_port: &str, attributes: &str) -> String {
    format!(
        r#"  <send retrans="500"{attributes}>
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch};rport
      From: "Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{caller}@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio {media_port} RTP/AVP 8 0 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=ptime:20
    ]]>
  </send>
"#
    )
}

/// A caller scenario for `[service]`: INVITE offering PCMA, PCMU and telephone-event 101, ACK
/// the 200 (which must pick PCMA and 101), make `presses` (RFC 4733 from pcaps written to
/// `dir`), then wait up to 60 s for the engine's BYE and answer it.
pub fn keys_scenario(dir: &Path, presses: &[Press]) -> String {
    let mut steps = String::new();
    for (n, p) in presses.iter().enumerate() {
        steps += &format!(
            "  <pause milliseconds=\"{}\"/>\n  <nop>\n    <action>\n      \
             <exec play_pcap_audio=\"{}\"/>\n    </action>\n  </nop>\n",
            p.after_ms,
            dtmf_press_pcap(dir, p.key, n).display()
        );
    }
    let invite = invite_step("13800000000", "[branch]", "[media_port]", "");
    let bye = bye_answered(60000);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- Generated by tests/support/sipp.rs keys_scenario: {presses:?} -->
<scenario name="caller presses keys">
{invite}  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true" rrs="true">
    <action>
      <ereg regexp="m=audio [0-9]+ RTP/AVP 8 101" search_in="body" check_it="true" assign_to="m"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: "Caller" <sip:13800000000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      [routes]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:13800000000@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
{steps}{bye}  <Reference variables="m"/>
</scenario>
"#
    )
}

/// A scenario step: the last request received, answered 200 OK with no body.
pub const OK_TO_LAST: &str = r#"  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
"#;

/// Scenario steps: the engine's BYE, within `timeout_ms`, answered 200.
pub fn bye_answered(timeout_ms: u32) -> String {
    format!("  <recv request=\"BYE\" timeout=\"{timeout_ms}\"/>\n{OK_TO_LAST}")
}

/// Writes a generated scenario to `dir/name`; returns its absolute path, for [`Sipp::new`].
pub fn write_scenario(dir: &Path, name: &str, xml: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, xml).expect("write scenario");
    path.display().to_string()
}

/// The record a call leaves in the engine's log: its `call ended` line, fields parsed
/// (tracing's `name=value`; string values are quoted).
#[derive(Debug)]
pub struct CallEnded {
    fields: std::collections::HashMap<String, String>,
    /// The line, colour codes removed.
    pub line: String,
}

impl CallEnded {
    /// Parses a `call ended` line.
    pub fn parse(line: &str) -> CallEnded {
        let text = strip_ansi(line);
        let (_, rest) = text
            .split_once("call ended")
            .unwrap_or_else(|| panic!("not a `call ended` line: {line}"));
        let mut fields = std::collections::HashMap::new();
        let mut chars = rest.trim_start().chars().peekable();
        while chars.peek().is_some() {
            let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
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
                value = chars.by_ref().take_while(|c| !c.is_whitespace()).collect();
            }
            fields.insert(name.trim().to_string(), value);
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        }
        CallEnded { fields, line: text }
    }

    /// A field's value (panics when the line has no such field).
    pub fn get(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no `{name}` in: {}", self.line))
    }

    /// The nodes entered, in order (keys, timeouts and fallbacks stripped from the path).
    pub fn nodes(&self) -> Vec<&str> {
        self.get("path")
            .split('>')
            .map(|step| step.split('[').next().unwrap_or_default())
            .collect()
    }

    /// The tags, `name=value` each.
    pub fn tags(&self) -> Vec<&str> {
        self.get("tags")
            .split(',')
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// The hand-overs, `queue:NAME` or `transfer:NAME` each.
    pub fn handovers(&self) -> Vec<&str> {
        self.get("handovers")
            .split(',')
            .filter(|h| !h.is_empty())
            .collect()
    }
}

/// Removes terminal colour codes, should a log have them (tracing writes them to files too).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, then a letter.
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

/// Waits (bounded by `within`, polling the log file) until `engine`'s log has at least `count`
/// lines containing `needle`; returns the lines found, however many.
pub fn wait_for_log(
    engine: &super::Engine,
    needle: &str,
    count: usize,
    within: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let lines = engine.log_lines(needle);
        if lines.len() >= count || Instant::now() >= deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `call ended` records in `engine`'s log, once there are `count` (bounded by `within`).
pub fn calls_ended(engine: &super::Engine, count: usize, within: Duration) -> Vec<CallEnded> {
    wait_for_log(engine, "call ended", count, within)
        .iter()
        .map(|line| CallEnded::parse(line))
        .collect()
}

/// A sub-centre's PBX that answers every INVITE 486 Busy Here.
pub const BUSY_PBX: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="sub-centre busy">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
</scenario>
"#;
