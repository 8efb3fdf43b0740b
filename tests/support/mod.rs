//! Shared rig for loopback tests: the real `hotline` binary with a per-test configuration, SIPp
//! runs, and a small RTP peer that hears what the engine sends.
#![allow(dead_code)] // each test binary uses its own part of the rig

pub mod baresip;
pub mod capture;
pub mod records;
pub mod rtp;
pub mod seats;
pub mod sipp;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// The repository's shipped prompts.
pub fn prompts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts")
}

/// The shipped dialplans.
pub fn shipped_dialplans() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dialplans")
}

/// A copy of the shipped dialplans in `dir` whose sub-centre trunks point at `trunks`
/// (`(shipped address, test port)`), for tests where SIPp plays the sub-centre's PBX.
pub fn shipped_dialplans_with_trunks(dir: &Path, trunks: &[(&str, u16)]) -> PathBuf {
    let copy = dir.join("dialplans");
    let lists = copy.join("lists");
    fs::create_dir_all(&lists).expect("dialplan copy");
    for sub in ["", "lists"] {
        let from = shipped_dialplans().join(sub);
        for entry in fs::read_dir(&from).expect("shipped dialplans").flatten() {
            let path = entry.path();
            if path.is_file() {
                let mut text = fs::read_to_string(&path).expect("a dialplan file");
                for (shipped, port) in trunks {
                    text = text.replace(shipped, &format!("127.0.0.1:{port}"));
                }
                fs::write(copy.join(sub).join(entry.file_name()), text).expect("copy");
            }
        }
    }
    copy
}

/// The first call flow of the SIP-core tests as a dialplan: greeting, one key, read back, BYE.
pub fn first_flow_dialplan() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialplans/first-flow")
}

/// A tiny seeded xorshift64 generator.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The shipped prompts, loaded as the engine loads them.
pub fn prompts() -> hotline::media::prompt::PromptStore {
    match hotline::media::prompt::PromptStore::load_dir(prompts_dir()) {
        Ok(store) => store,
        Err(errors) => panic!("prompts: {errors:?}"),
    }
}

/// One shipped prompt.
pub fn prompt(
    store: &hotline::media::prompt::PromptStore,
    name: &str,
) -> std::sync::Arc<hotline::media::prompt::Prompt> {
    store
        .get(name)
        .unwrap_or_else(|| panic!("prompt {name} missing"))
}

/// A port free for both UDP and TCP on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
        let port = udp.local_addr().expect("probe address").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Hands each engine of this test binary its own RTP port range.
fn rtp_range(size: u16) -> (u16, u16) {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Test binaries run one after another; within one, ranges never overlap. The ranges sit
    // below the kernel's ephemeral ports, which SIPp and the rig's own sockets take.
    let base = 24000 + NEXT.fetch_add(size, Ordering::SeqCst);
    assert!(
        base + size < 32768,
        "test RTP ranges ran into the ephemeral ports"
    );
    (base, base + size - 1)
}

/// The engine under test, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Engine {
    child: Option<Child>,
    /// Where it listens for SIP (UDP and TCP).
    pub sip: SocketAddr,
    /// The engine's log file.
    pub log: PathBuf,
    dir: tempfile::TempDir,
}

impl Engine {
    /// Starts the engine on the first-flow dialplan with the defaults plus `extra` TOML (full
    /// sections, e.g. `[answer]`).
    pub fn start(extra: &str) -> Engine {
        Self::start_with_ports(extra, 200)
    }

    /// Starts the engine with an RTP range of `rtp_ports` ports.
    pub fn start_with_ports(extra: &str, rtp_ports: u16) -> Engine {
        Self::start_on(&first_flow_dialplan(), extra, rtp_ports)
    }

    /// Starts the engine on the dialplans in `dialplans`.
    pub fn start_on(dialplans: &Path, extra: &str, rtp_ports: u16) -> Engine {
        // A port found free can be taken by a concurrent test before the engine binds it:
        // then try another.
        for _ in 0..5 {
            if let Some(engine) = Self::try_start(dialplans, extra, rtp_ports) {
                return engine;
            }
        }
        panic!("the engine could not bind a SIP port in 5 tries");
    }

    fn try_start(dialplans: &Path, extra: &str, rtp_ports: u16) -> Option<Engine> {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let (min, max) = rtp_range(rtp_ports);
        let media = format!("[media]\nrtp_port_min = {min}\nrtp_port_max = {max}\n");
        // The test's own [media] settings join ours in one table.
        let extra = if extra.contains("[media]\n") {
            extra.replace("[media]\n", &media)
        } else {
            format!("{media}\n{extra}")
        };
        let config = format!(
            "[sip]\nlisten = \"127.0.0.1:{port}\"\n\n[paths]\ndialplans = \"{}\"\nprompts = \"{}\"\ndata = \"{}\"\n\n{extra}\n",
            dialplans.display(),
            prompts_dir().display(),
            dir.path().join("var").display(),
        );
        let config_path = dir.path().join("hotline.toml");
        fs::write(&config_path, config).expect("write config");
        let log = dir.path().join("engine.log");
        let log_file = fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_hotline"))
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "hotline=debug")
            .stdout(Stdio::from(log_file.try_clone().expect("log file")))
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("start hotline");
        let mut engine = Engine {
            child: Some(child),
            sip: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
            dir,
        };
        engine.wait_ready().then_some(engine)
    }

    /// Waits until the engine answers OPTIONS (bounded; fails the test if it never does);
    /// false when it could not bind its SIP port.
    fn wait_ready(&mut self) -> bool {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("probe socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut n = 0;
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                if self.log_text().contains("cannot bind") {
                    return false;
                }
                panic!("engine exited ({status}); log:\n{}", self.log_text());
            }
            n += 1;
            let probe = options_request(&socket, self.sip, n);
            let _ = socket.send_to(probe.as_bytes(), self.sip);
            let mut buf = [0u8; 4096];
            if let Ok((len, _)) = socket.recv_from(&mut buf) {
                if buf[..len].starts_with(b"SIP/2.0 200") {
                    return true;
                }
            }
        }
        panic!("engine never answered OPTIONS; log:\n{}", self.log_text());
    }

    /// The engine's log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Lines of the log that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        let Ok(file) = fs::File::open(&self.log) else {
            return Vec::new();
        };
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains(needle))
            .collect()
    }

    /// A scratch directory that lives as long as the engine.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The engine's process id while it runs (for signals such as SIGHUP).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGTERM and waits (bounded) for the engine to exit.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        self.child = None;
        None
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.terminate();
        }
        if std::thread::panicking() {
            eprintln!("--- engine log ---\n{}", self.log_text());
        }
    }
}

/// An OPTIONS request from `socket` to `to`.
pub fn options_request(socket: &UdpSocket, to: SocketAddr, n: u32) -> String {
    let local = socket.local_addr().expect("local address");
    format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKprobe{n}\r\n\
         From: <sip:probe@{local}>;tag=p{n}\r\nTo: <sip:{to}>\r\nCall-ID: probe-{n}@test\r\n\
         CSeq: {n} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Sends raw datagrams and reads the answers: the test's own minimal SIP peer.
pub struct RawSip {
    /// The socket.
    pub socket: UdpSocket,
    to: SocketAddr,
}

impl RawSip {
    /// A peer talking to `to`.
    pub fn new(to: SocketAddr) -> RawSip {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(1500)))
            .expect("timeout");
        RawSip { socket, to }
    }

    /// Our address, for Via and Contact.
    pub fn local(&self) -> SocketAddr {
        self.socket.local_addr().expect("local address")
    }

    /// Sends `text` (with `{local}` replaced by our address) and returns the first answer, if
    /// one comes within 1.5 s.
    pub fn exchange(&self, text: &str) -> Option<String> {
        self.send(text);
        self.recv()
    }

    /// Sends `text` (with `{local}` replaced by our address).
    pub fn send(&self, text: &str) {
        let text = text.replace("{local}", &self.local().to_string());
        self.socket.send_to(text.as_bytes(), self.to).expect("send");
    }

    /// The next datagram within 1.5 s.
    pub fn recv(&self) -> Option<String> {
        let mut buf = vec![0u8; 65536];
        let (n, _) = self.socket.recv_from(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}

/// The status code of a response.
pub fn status_of(response: &str) -> Option<u16> {
    response.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

/// Runs a command, bounded by `within` (killed after it).
pub fn run_bounded(command: &mut Command, within: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start command");
    let deadline = Instant::now() + within;
    while child.try_wait().expect("command status").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("command output");
            panic!(
                "{command:?} did not finish in {within:?}: {}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("command output")
}

/// `hotline reload --config <the engine's config>`: exit status and stdout.
pub fn hotline_reload(engine: &Engine) -> (Option<i32>, String) {
    let output = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_hotline"))
            .arg("reload")
            .arg("--config")
            .arg(engine.dir().join("hotline.toml")),
        Duration::from_secs(20),
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.trim().is_empty(), "hotline reload stderr: {stderr}");
    (output.status.code(), stdout)
}
