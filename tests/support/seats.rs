//! Seats for loopback tests: a seats file, SIPp phones that register with digest
//! authentication and answer, and the desk API to log them in.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::free_port;
use super::sipp::{write_scenario, Sipp, SippRun};

/// The admin token of the engines these tests start.
pub const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789";

/// One test seat: id `s<username>`, SIP username, password `pw-<username>`.
#[derive(Clone, Debug)]
pub struct TestSeat {
    /// The seat id.
    pub id: String,
    /// The SIP username.
    pub username: String,
    /// The digest password.
    pub password: String,
    /// The seat's skill level in `general`.
    pub level: u8,
}

impl TestSeat {
    /// Seat `username` with `general` at `level`.
    pub fn new(username: u32, level: u8) -> TestSeat {
        TestSeat {
            id: format!("s{username}"),
            username: username.to_string(),
            password: format!("pw-{username}"),
            level,
        }
    }

    /// Its desk token.
    pub fn token(&self) -> String {
        format!("token-{}-0123456789abcdef", self.username)
    }
}

/// Writes `seats` as a seats file in `dir`; returns its path.
pub fn write_seats(dir: &Path, seats: &[TestSeat]) -> PathBuf {
    let mut text = String::new();
    for seat in seats {
        text.push_str(&format!(
            "[seats.{}]\nname = \"Seat {}\"\nusername = \"{}\"\npassword = \"{}\"\ntoken = \"{}\"\nskills = {{ general = {} }}\n\n",
            seat.id, seat.username, seat.username, seat.password, seat.token(), seat.level
        ));
    }
    let path = dir.join("seats.toml");
    fs::write(&path, text).expect("seats file");
    path
}

/// The engine configuration for seats: the seats file and the API with [`ADMIN_TOKEN`];
/// returns the TOML and the API's address.
pub fn seats_config(seats_file: &Path) -> (String, SocketAddr) {
    let api = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let toml = format!(
        "[seats]\nfile = \"{}\"\n\n[api]\nlisten = \"{api}\"\nadmin_token = \"{ADMIN_TOKEN}\"\n",
        seats_file.display()
    );
    (toml, api)
}

/// A SIPp phone per seat registers at `engine` with its contact at `127.0.0.1:phone_port`
/// (where one SIPp UAS answers for all of them), answering the digest challenge.
pub fn register(engine: SocketAddr, dir: &Path, seats: &[TestSeat], phone_port: u16) -> SippRun {
    let mut csv = String::from("SEQUENTIAL\n");
    for seat in seats {
        // SIPp reads the authentication keyword whole from the injection file.
        csv.push_str(&format!(
            "{};[authentication username={} password={}];\n",
            seat.username, seat.username, seat.password
        ));
    }
    let csv_path = dir.join(format!("seats-{phone_port}.csv"));
    fs::write(&csv_path, csv).expect("injection file");
    Sipp::new("seat_register.xml", engine)
        .args(&[
            "-inf",
            &csv_path.display().to_string(),
            "-m",
            &seats.len().to_string(),
            "-r",
            "50",
        ])
        .set("phone_port", &phone_port.to_string())
        .run_in(dir)
}

/// The phones' side: a SIPp UAS on `port` that answers every INVITE (180, then 200 with
/// PCMA at `rtp`, or SIPp's own media port when `None`), talks `talk_ms` and hangs up.
pub fn phones(dir: &Path, port: u16, talk_ms: u64, rtp: Option<u16>, calls: usize) -> Sipp {
    let media = match rtp {
        Some(port) => port.to_string(),
        None => "[media_port]".to_string(),
    };
    let xml = include_str!("../sipp/seat_answers.xml")
        .replace("TALK_MS", &talk_ms.to_string())
        .replace("MEDIA_PORT", &media);
    let file = write_scenario(dir, &format!("phones-{port}.xml"), &xml);
    Sipp::uas(&file, port).args(&[
        "-m",
        &calls.to_string(),
        // Many calls at once: SIPp's default limit would hold them back.
        "-l",
        "1000",
    ])
}

/// POSTs to the desk API as the admin; returns the status and the body.
pub fn desk_post(api: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let response = ureq::post(&format!("http://{api}{path}"))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .set("Content-Type", "application/json")
        .timeout(Duration::from_secs(10))
        .send_string(body);
    read(response)
}

/// GETs from the desk API as the admin.
pub fn desk_get(api: SocketAddr, path: &str) -> (u16, String) {
    let response = ureq::get(&format!("http://{api}{path}"))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .timeout(Duration::from_secs(10))
        .call();
    read(response)
}

fn read(response: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match response {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(status, r)) => (status, r.into_string().unwrap_or_default()),
        Err(e) => panic!("desk API unreachable: {e}"),
    }
}

/// Logs every seat in, ready.
pub fn log_in_all(api: SocketAddr, seats: &[TestSeat]) {
    for seat in seats {
        let (status, body) = desk_post(
            api,
            &format!("/seats/{}/login", seat.id),
            r#"{"ready": true}"#,
        );
        assert_eq!(status, 200, "log in {}: {body}", seat.id);
    }
}
