//! A real softphone for loopback tests: baresip 1.0 (Debian `baresip-core`; `tests/install-deps.sh`
//! installs it), headless, calling the engine, recording what it hears and pressing keys.
//!
//! Facts this rig relies on, checked with baresip 1.0.0:
//! - `-e "/dial URI"` is typed into the `menu.so` UI once the modules are loaded (so `menu.so`
//!   must be loaded); `-t SECONDS` asks it to quit, but a quit waits for pending SIP
//!   transactions, so the rig still kills it when it outlives its deadline.
//! - No `stdio.so`: it would read the terminal. Output (stdout and stderr) goes to a file,
//!   written without delay.
//! - `audio_source aufile,FILE` reads a WAV as the microphone and hangs up at its end, so the
//!   file is a long silence; `audio_player alsa,null` plays to nothing.
//! - `sndfile.so` with `snd_path DIR` writes `dump-<time>-dec.wav` (what it decoded, 8 kHz mono
//!   S16) and `-enc.wav` (what it sent); the WAV header gets its sizes when the call ends.
//! - `ctrl_tcp.so` takes netstrings `{"command":"sndcode","params":"1","token":"t1"}` and answers
//!   `{"response":true,"ok":true,"data":"","token":"t1"}`; `sndcode` sends RFC 4733 events.
//! - A SIP port that is taken ends baresip at once ("ua: init failed (Address already in use)",
//!   exit code 98); a taken control port only logs "ctrl_tcp: failed to listen" and the call
//!   goes ahead, so the rig retries both with fresh ports.
//! - When the far end hangs up, it logs "session closed: Connection reset by peer" (libre
//!   reports a received BYE as ECONNRESET) and "Call with ... terminated".

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sampling rate of the silence file and of what G.711 decodes to.
pub const RATE: u32 = 8000;

/// Seconds of silence baresip sends as its microphone; it hangs up when the file ends.
const SILENCE_SECONDS: u32 = 60;

/// What baresip logs once it has sent the INVITE.
const DIALLING: &str = "call: connecting";

/// What baresip logs when the far end sent BYE (libre reports it as ECONNRESET).
pub const REMOTE_HANGUP: &str = "session closed: Connection reset by peer";

/// What baresip logs when a call is over, however it ended.
pub const CALL_OVER: &str = "terminated (duration:";

/// A baresip process placing one call; killed (and waited for) when dropped.
pub struct Baresip {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The port baresip's SIP listens on (UDP and TCP; TLS takes the next one).
    pub sip_port: u16,
    /// The port of its `ctrl_tcp` control socket.
    pub ctrl_port: u16,
}

impl Baresip {
    /// Starts baresip calling `uri` (e.g. `sip:12345@127.0.0.1:5060`); it quits by itself after
    /// `limit_s` seconds. Returns once the INVITE is on its way.
    pub fn call(uri: &str, limit_s: u32) -> Baresip {
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_call(uri, limit_s) {
                Ok(phone) => return phone,
                // A port found free was taken before baresip bound it: try others.
                Err(output) => last = output,
            }
        }
        panic!("baresip could not bind its ports in 5 tries; last output:\n{last}");
    }

    fn try_call(uri: &str, limit_s: u32) -> Result<Baresip, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config");
        let recordings = dir.path().join("rec");
        fs::create_dir_all(&config).expect("config dir");
        fs::create_dir_all(&recordings).expect("recordings dir");
        let silence = dir.path().join("silence.wav");
        write_silence(&silence, SILENCE_SECONDS);
        let sip_port = sip_port();
        let ctrl_port = ctrl_port();
        fs::write(
            config.join("config"),
            config_text(sip_port, ctrl_port, &silence, &recordings),
        )
        .expect("write baresip config");
        // Outgoing calls only, no registrar; PCMA like the engine prefers.
        fs::write(
            config.join("accounts"),
            "<sip:caller@127.0.0.1>;regint=0;audio_codecs=PCMA\n",
        )
        .expect("write baresip accounts");
        let output = fs::File::create(dir.path().join("baresip.out")).expect("output file");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&config)
            .arg("-t")
            .arg(limit_s.to_string())
            .arg("-e")
            .arg(format!("/dial {uri}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(output.try_clone().expect("output file")))
            .stderr(Stdio::from(output))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start baresip ({e}); install it with tests/install-deps.sh")
            });
        let mut phone = Baresip {
            child: Some(child),
            dir,
            sip_port,
            ctrl_port,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = phone.output();
            if text.contains(DIALLING) {
                if text.contains("ctrl_tcp: failed") {
                    // The call went out but cannot be controlled: drop it, start another.
                    return Err(text);
                }
                return Ok(phone);
            }
            if let Some(status) = phone.exited() {
                if text.contains("Address already in use") {
                    return Err(text);
                }
                panic!("baresip exited ({status}) before dialling; output:\n{text}");
            }
            if Instant::now() > deadline {
                panic!("baresip did not dial within 15 s; output:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything baresip printed so far (its status line's `\r` turned into line breaks).
    pub fn output(&self) -> String {
        let raw = fs::read(self.dir.path().join("baresip.out")).unwrap_or_default();
        String::from_utf8_lossy(&raw).replace('\r', "\n")
    }

    /// Waits (at most `limit`) until the output contains `needle`.
    pub fn wait_output(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.output().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends one `ctrl_tcp` command and returns the response's JSON text; panics when the
    /// control socket does not answer within 5 s.
    pub fn command(&self, command: &str, params: &str) -> String {
        let mut stream = self.send_command(command, params);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // Events may come first on the same connection: look for the response.
            for message in netstrings(&received) {
                if message.contains(r#""response":true"#) {
                    return message;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "no ctrl_tcp response to {command} within 5 s (got {:?}); output:\n{}",
                    String::from_utf8_lossy(&received),
                    self.output()
                );
            }
            match stream.read(&mut buf) {
                Ok(0) => panic!("ctrl_tcp closed before answering {command}"),
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(_) => {} // read timeout: poll again until the deadline
            }
        }
    }

    /// Connects to `ctrl_tcp` and sends one command as a netstring.
    fn send_command(&self, command: &str, params: &str) -> TcpStream {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.ctrl_port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("ctrl_tcp {addr}: {e}; output:\n{}", self.output()));
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let json = format!(r#"{{"command":"{command}","params":"{params}","token":"t1"}}"#);
        stream
            .write_all(format!("{}:{json},", json.len()).as_bytes())
            .expect("write ctrl_tcp command");
        stream
    }

    /// Presses `key` (RFC 4733 telephone-event through `ctrl_tcp`'s `sndcode`).
    pub fn send_key(&self, key: char) {
        let response = self.command("sndcode", &key.to_string());
        assert!(
            response.contains(r#""ok":true"#),
            "sndcode {key} refused: {response}"
        );
    }

    /// Asks baresip to quit (through `ctrl_tcp`) and waits for it (bounded; killed otherwise).
    pub fn quit(&mut self) -> Option<ExitStatus> {
        if self.exited().is_none() {
            // It may exit before it answers: only the exit counts.
            drop(self.send_command("quit", ""));
        }
        self.wait(Duration::from_secs(10))
    }

    /// Waits at most `limit` for baresip to exit; kills it when it does not (then `None`).
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() > deadline {
                self.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The exit status, if it has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The decoded-audio recording (`dump-*-dec.wav`), once baresip created it.
    pub fn recording_path(&self) -> Option<PathBuf> {
        fs::read_dir(self.dir.path().join("rec"))
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("dump-") && n.ends_with("-dec.wav"))
            })
    }

    /// What baresip decoded so far, read while it is still writing (the WAV header's sizes are
    /// only filled in when the call ends, so this takes whatever follows the `data` tag).
    pub fn heard_so_far(&self) -> Vec<i16> {
        let Some(path) = self.recording_path() else {
            return Vec::new();
        };
        let bytes = fs::read(path).unwrap_or_default();
        let Some(data) = wav_data(&bytes) else {
            return Vec::new();
        };
        data.chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }

    /// The finished recording, read with hound (after the call ended).
    pub fn recording(&self) -> Vec<i16> {
        let path = self.recording_path().unwrap_or_else(|| {
            panic!(
                "baresip wrote no dump-*-dec.wav; output:\n{}",
                self.output()
            )
        });
        let mut reader =
            hound::WavReader::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let spec = reader.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (1, RATE, 16),
            "{}: unexpected format {spec:?}",
            path.display()
        );
        reader
            .samples::<i16>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The rig's scratch directory (config, recordings, output).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- baresip output ---\n{}", self.output());
        }
    }
}

/// The configuration file: headless, loopback only, aufile in, nothing out, recordings on,
/// a control socket.
fn config_text(sip_port: u16, ctrl_port: u16, silence: &Path, recordings: &Path) -> String {
    format!(
        "poll_method\t\tepoll\n\
         sip_listen\t\t127.0.0.1:{sip_port}\n\
         net_interface\t\t127.0.0.1\n\
         audio_player\t\talsa,null\n\
         audio_alert\t\talsa,null\n\
         audio_source\t\taufile,{silence}\n\
         module_path\t\t/usr/lib/baresip/modules\n\
         module\t\t\tg711.so\n\
         module\t\t\taufile.so\n\
         module\t\t\talsa.so\n\
         module\t\t\tsndfile.so\n\
         snd_path\t\t{recordings}\n\
         module_app\t\taccount.so\n\
         module_app\t\tmenu.so\n\
         module_app\t\tctrl_tcp.so\n\
         ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}\n",
        silence = silence.display(),
        recordings = recordings.display(),
    )
}

/// `seconds` of 8 kHz mono 16-bit silence.
pub fn write_silence(path: &Path, seconds: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create silence WAV");
    let mut samples = writer.get_i16_writer(seconds * RATE);
    for _ in 0..seconds * RATE {
        samples.write_sample(0i16);
    }
    samples.flush().expect("write silence");
    writer.finalize().expect("finish silence WAV");
}

/// The bytes after a WAV file's `data` chunk header, whatever size the header claims.
fn wav_data(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.get(..4)? != b"RIFF" || bytes.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut at = 12;
    loop {
        let id = bytes.get(at..at + 4)?;
        let size = u32::from_le_bytes(bytes.get(at + 4..at + 8)?.try_into().ok()?) as usize;
        if id == b"data" {
            return bytes.get(at + 8..);
        }
        at = at.checked_add(8 + size + size % 2)?;
    }
}

/// The complete netstrings (`LEN:TEXT,`) at the start of `bytes`.
fn netstrings(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(colon) = rest.iter().position(|&b| b == b':') {
        let Some(len) = std::str::from_utf8(&rest[..colon])
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
        else {
            break;
        };
        let Some(text) = rest.get(colon + 1..colon + 1 + len) else {
            break;
        };
        out.push(String::from_utf8_lossy(text).into_owned());
        rest = rest.get(colon + 2 + len..).unwrap_or_default();
    }
    out
}

/// Ports handed out in this process: instances stay at least 2 apart (TLS takes port+1).
static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

fn take(ports: &[u16]) -> bool {
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let taken = taken.get_or_insert_with(HashSet::new);
    if ports.iter().any(|p| taken.contains(p)) {
        return false;
    }
    taken.extend(ports);
    true
}

fn free_now(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A SIP port whose next port (baresip's TLS) is free too.
fn sip_port() -> u16 {
    loop {
        let port = super::free_port();
        if port < u16::MAX && free_now(port + 1) && take(&[port, port + 1]) {
            return port;
        }
    }
}

/// A port for the control socket.
fn ctrl_port() -> u16 {
    loop {
        let port = super::free_port();
        if take(&[port]) {
            return port;
        }
    }
}
