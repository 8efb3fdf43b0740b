//! A real softphone for loopback tests: baresip 1.0 (Debian `baresip-core`; `tests/install-deps.sh`
//! installs it), headless, calling the engine (or, as a seat's phone, registering at it and
//! answering its calls), recording what it hears and pressing keys.
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
//! - A seat's phone: the account `<sip:USER@ENGINE>;auth_pass=PW;regint=600;answermode=auto`
//!   REGISTERs at the AOR's host and port (Request-URI `sip:ENGINE`, Contact
//!   `<sip:USER-0x...@IP:PORT>`), answers the 401 digest challenge, and answers an INVITE at
//!   once (180, then "200 Answering"); it logs "Call established" when the ACK came and logs
//!   "baresip is ready." once its modules and accounts are up. `ctrl_tcp`'s `hangup` sends BYE;
//!   events (e.g. `CALL_CLOSED`) may come on the connection before the response.
//! - `rtp_ports 10000-19999` keeps its RTP out of the engines' test ranges (24000 and up) and
//!   the kernel's ephemeral ports, which the rig's other sockets take.
//! - `-s` prints the SIP trace (each message, headers and body) into the output.

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

/// What baresip logs when a call is up (it answered and got the ACK, or its INVITE was answered).
pub const ESTABLISHED: &str = "Call established";

/// What baresip logs once its modules and accounts are loaded (a seat's phone has sent its
/// first REGISTER by then).
const READY: &str = "baresip is ready.";

/// How one baresip is started.
struct Setup {
    /// The line of its `accounts` file.
    account: String,
    /// Its microphone (8 kHz mono S16 WAV); `None`: a long silence.
    source: Option<PathBuf>,
    /// Commands typed into it once started (`-e`).
    commands: Vec<String>,
    /// What its output shows once it is started as wanted.
    ready: &'static str,
    /// Print the SIP trace (`-s`) into the output.
    sip_trace: bool,
}

/// A baresip process placing one call, or a seat's phone; killed (and waited for) when dropped.
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
        Self::start(
            &Setup {
                // Outgoing calls only, no registrar; PCMA like the engine prefers.
                account: "<sip:caller@127.0.0.1>;regint=0;audio_codecs=PCMA".to_string(),
                source: None,
                commands: vec![format!("/dial {uri}")],
                ready: DIALLING,
                sip_trace: false,
            },
            limit_s,
        )
    }

    /// Starts baresip as a seat's phone: it registers at `registrar` (the engine's SIP address)
    /// as `username` with digest password `password`, answers every call at once, speaks
    /// `source` (an 8 kHz mono 16-bit WAV; the call ends when the file does), records what it
    /// hears and prints its SIP trace; it quits by itself after `limit_s` seconds. Returns once
    /// it is up (its first REGISTER is sent; whether it succeeded is the engine's to say).
    pub fn seat(
        registrar: SocketAddr,
        username: &str,
        password: &str,
        source: &Path,
        limit_s: u32,
    ) -> Baresip {
        Self::start(
            &Setup {
                account: format!(
                    "<sip:{username}@{registrar}>;auth_pass={password};regint=600;\
                     answermode=auto;audio_codecs=PCMA"
                ),
                source: Some(source.to_path_buf()),
                commands: Vec::new(),
                ready: READY,
                sip_trace: true,
            },
            limit_s,
        )
    }

    fn start(setup: &Setup, limit_s: u32) -> Baresip {
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(setup, limit_s) {
                Ok(phone) => return phone,
                // A port found free was taken before baresip bound it: try others.
                Err(output) => last = output,
            }
        }
        panic!("baresip could not bind its ports in 5 tries; last output:\n{last}");
    }

    fn try_start(setup: &Setup, limit_s: u32) -> Result<Baresip, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config");
        let recordings = dir.path().join("rec");
        fs::create_dir_all(&config).expect("config dir");
        fs::create_dir_all(&recordings).expect("recordings dir");
        let source = match &setup.source {
            Some(path) => path.clone(),
            None => {
                let silence = dir.path().join("silence.wav");
                write_silence(&silence, SILENCE_SECONDS);
                silence
            }
        };
        let sip_port = sip_port();
        let ctrl_port = ctrl_port();
        fs::write(
            config.join("config"),
            config_text(sip_port, ctrl_port, &source, &recordings),
        )
        .expect("write baresip config");
        fs::write(config.join("accounts"), format!("{}\n", setup.account))
            .expect("write baresip accounts");
        let output = fs::File::create(dir.path().join("baresip.out")).expect("output file");
        let mut command = Command::new("baresip");
        command
            .arg("-f")
            .arg(&config)
            .arg("-t")
            .arg(limit_s.to_string());
        if setup.sip_trace {
            command.arg("-s");
        }
        for typed in &setup.commands {
            command.arg("-e").arg(typed);
        }
        let child = command
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
            if text.contains(setup.ready) {
                if text.contains("ctrl_tcp: failed") {
                    // Started, but it cannot be controlled: drop it, start another.
                    return Err(text);
                }
                return Ok(phone);
            }
            if let Some(status) = phone.exited() {
                if text.contains("Address already in use") {
                    return Err(text);
                }
                panic!(
                    "baresip exited ({status}) before {:?}; output:\n{text}",
                    setup.ready
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "baresip did not get to {:?} within 15 s; output:\n{text}",
                    setup.ready
                );
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

    /// Hangs up its call (`ctrl_tcp`'s `hangup`: baresip sends BYE).
    pub fn hang_up(&self) {
        let response = self.command("hangup", "");
        assert!(
            response.contains(r#""ok":true"#),
            "hangup refused: {response}"
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
fn config_text(sip_port: u16, ctrl_port: u16, source: &Path, recordings: &Path) -> String {
    format!(
        "poll_method\t\tepoll\n\
         sip_listen\t\t127.0.0.1:{sip_port}\n\
         net_interface\t\t127.0.0.1\n\
         rtp_ports\t\t10000-19999\n\
         audio_player\t\talsa,null\n\
         audio_alert\t\talsa,null\n\
         audio_source\t\taufile,{source}\n\
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
        source = source.display(),
        recordings = recordings.display(),
    )
}

/// `seconds` of 8 kHz mono 16-bit silence.
pub fn write_silence(path: &Path, seconds: u32) {
    write_wav(path, (0..seconds * RATE).map(|_| 0));
}

/// `seconds` of a sine at `hz`, half full scale, 8 kHz mono 16-bit: a voice easy to recognise.
pub fn write_tone(path: &Path, hz: f64, seconds: u32) {
    let step = 2.0 * std::f64::consts::PI * hz / f64::from(RATE);
    write_wav(
        path,
        (0..seconds * RATE).map(|n| (16_000.0 * (step * f64::from(n)).sin()) as i16),
    );
}

/// An 8 kHz mono 16-bit WAV of `samples`.
fn write_wav(path: &Path, samples: impl ExactSizeIterator<Item = i16>) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let count = u32::try_from(samples.len()).expect("a WAV's worth of samples");
    let mut out = writer.get_i16_writer(count);
    for sample in samples {
        out.write_sample(sample);
    }
    out.flush().expect("write WAV samples");
    writer.finalize().expect("finish WAV");
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
