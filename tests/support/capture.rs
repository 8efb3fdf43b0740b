//! A packet capture on loopback with tshark: what really went over the wire to one UDP port.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running capture of UDP packets to one port.
pub struct Capture {
    child: Child,
    file: PathBuf,
    port: u16,
}

impl Capture {
    /// Starts tshark on `lo` for UDP packets to `port` and waits until it is capturing.
    pub fn start(dir: &std::path::Path, port: u16) -> Capture {
        if Command::new("tshark").arg("-v").output().is_err() {
            panic!("tshark is not installed: run `bash tests/install-deps.sh`");
        }
        let file = dir.join(format!("capture-{port}.pcapng"));
        let mut child = Command::new("tshark")
            .args(["-i", "lo", "-f", &format!("udp dst port {port}"), "-w"])
            .arg(&file)
            .args(["-a", "duration:120", "-q"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tshark");
        // tshark says "Capturing on 'Loopback: lo'" once packets are being taken.
        let stderr = child.stderr.take().expect("tshark stderr");
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("Capturing on") => break,
                Some(Ok(_)) if Instant::now() < deadline => continue,
                other => {
                    let _ = child.kill();
                    panic!("tshark did not start capturing: {other:?}");
                }
            }
        }
        // Keep draining stderr so tshark never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Capture { child, file, port }
    }

    /// Stops the capture and returns the RTP payloads sent to the port, in capture order.
    pub fn rtp_payloads(mut self) -> Vec<Vec<u8>> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let output = Command::new("tshark")
            .arg("-r")
            .arg(&self.file)
            .args(["-d", &format!("udp.port=={},rtp", self.port)])
            .args(["-T", "fields", "-e", "rtp.payload"])
            .output()
            .expect("read capture");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let hex: String = l.chars().filter(|c| c.is_ascii_hexdigit()).collect();
                (0..hex.len() / 2)
                    .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                    .collect()
            })
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
