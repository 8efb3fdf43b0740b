//! The engine's configuration: one TOML file, every setting optional with a documented default.
//!
//! `hotline run` without `--config` uses [`Config::default()`], which equals loading an empty
//! file. `hotline.example.toml` at the top of the repository lists every setting with its
//! default and is the reference documentation; a test keeps it equal to the defaults.
//!
//! Errors are reported as `FILE:LINE:COL: message` and name the offending key: unknown keys,
//! wrong types and bad values all fail the load. Semantic checks that run after parsing (port
//! ranges, timer relations, codec lists, ...) are reported all at once.
//!
//! Relative paths in `[paths]` and `[seats] file` are resolved against the process's working
//! directory (not the directory of the configuration file).

mod error;
mod locate;
mod validate;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use error::{ConfigError, Diagnostic};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[sip]`: signalling transport and transaction settings.
    pub sip: SipConfig,
    /// `[media]`: RTP sockets, workers and codecs.
    pub media: MediaConfig,
    /// `[paths]`: where dialplans, prompts and data live.
    pub paths: PathsConfig,
    /// `[answer]`: how new calls are answered.
    pub answer: AnswerConfig,
    /// `[log]`: logging filter and privacy.
    pub log: LogConfig,
    /// `[shutdown]`: graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// `[records]`: the ticket store and where records are exported.
    pub records: RecordsConfig,
    /// `[api]`: the HTTP API.
    pub api: ApiConfig,
    /// `[seats]`: the seats file and phone registration.
    pub seats: SeatsConfig,
}

/// `[seats]`: where agent and expert seats are declared and how their phones register.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeatsConfig {
    /// The seats file (`docs/seats.md`); a missing file means no seats, with a warning.
    pub file: PathBuf,
    /// Digest realm the phones authenticate in (an `ha1` in the seats file depends on it).
    pub realm: String,
    /// Shortest registration accepted in seconds; shorter requests get 423 Interval Too Brief.
    pub register_min_expires_s: u32,
    /// Longest registration granted in seconds; longer requests are cut to this.
    pub register_max_expires_s: u32,
    /// Seconds a challenge's nonce stays fresh; older answers are challenged with stale=true.
    pub nonce_lifetime_s: u64,
    /// Wrong answers within `auth_failure_window_s` that lock a username and source IP.
    pub auth_failures: u32,
    /// The window in seconds in which `auth_failures` wrong answers lock.
    pub auth_failure_window_s: u64,
    /// Seconds a locked username and source IP are refused with 403.
    pub auth_lock_s: u64,
}

impl Default for SeatsConfig {
    fn default() -> Self {
        SeatsConfig {
            file: PathBuf::from("seats.toml"),
            realm: "hotline".to_owned(),
            register_min_expires_s: 60,
            register_max_expires_s: 3600,
            nonce_lifetime_s: 300,
            auth_failures: 5,
            auth_failure_window_s: 60,
            auth_lock_s: 300,
        }
    }
}

impl SeatsConfig {
    /// How long a nonce stays fresh.
    pub fn nonce_lifetime(&self) -> Duration {
        Duration::from_secs(self.nonce_lifetime_s)
    }

    /// The window in which wrong answers are counted.
    pub fn auth_failure_window(&self) -> Duration {
        Duration::from_secs(self.auth_failure_window_s)
    }

    /// How long a username and source IP stay locked.
    pub fn auth_lock(&self) -> Duration {
        Duration::from_secs(self.auth_lock_s)
    }
}

/// `[api]`: the HTTP API (records and figures today).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address (IP:port) the API listens on.
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// The bearer token every request must carry; empty keeps the API off.
    pub admin_token: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: String::new(),
        }
    }
}

/// `[records]`: call records in `<data>/records.sqlite` and their export.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordsConfig {
    /// Records waiting for the disk before the signalling loop waits for the writer.
    pub queue_capacity: usize,
    /// Webhooks that receive every finished record as JSON, in order, at least once.
    pub export: Vec<ExportEndpoint>,
    /// Record bridged calls (caller left, far party right) under `<data>/recordings/`.
    pub recordings: bool,
    /// Recordings older than this many days are deleted (checked hourly).
    pub recording_retention_days: u64,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            queue_capacity: 10_000,
            export: Vec::new(),
            recordings: true,
            recording_retention_days: 90,
        }
    }
}

/// `[[records.export]]`: one webhook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportEndpoint {
    /// A short name (the outbox keeps each endpoint's order and backlog under it).
    pub name: String,
    /// `http://host:port/path` that accepts a POST of the record's JSON.
    pub url: String,
    /// Seconds to wait for an answer before trying again later.
    #[serde(default = "default_export_timeout")]
    pub timeout_s: u64,
}

fn default_export_timeout() -> u64 {
    10
}

impl RecordsConfig {
    /// Where recordings go in the data directory (one folder per day).
    pub fn recordings_dir(data: &Path) -> PathBuf {
        data.join("recordings")
    }

    /// How long recordings are kept.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.recording_retention_days.saturating_mul(86_400))
    }

    /// The store file in the data directory.
    pub fn store_path(data: &Path) -> PathBuf {
        data.join("records.sqlite")
    }
}

/// `[sip]`: signalling transport and transaction settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// Address (IP:port) bound for both UDP and TCP.
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// Accept and send SIP over UDP.
    pub udp: bool,
    /// Accept and send SIP over TCP.
    pub tcp: bool,
    /// IP put in Via/Contact and SDP `o=`/`c=`; `None` (empty in the file) = the listen IP.
    #[serde(deserialize_with = "optional_ip")]
    pub advertised_address: Option<IpAddr>,
    /// Upper bound on one SIP message in bytes (TCP framing and UDP datagrams).
    pub max_message_bytes: usize,
    /// RFC 3261 T1 (RTT estimate) in milliseconds.
    pub t1_ms: u64,
    /// RFC 3261 T2 (maximum retransmit interval) in milliseconds.
    pub t2_ms: u64,
    /// RFC 3261 T4 (maximum time a message stays in the network) in milliseconds.
    pub t4_ms: u64,
    /// Value of our Server/User-Agent headers.
    pub user_agent: String,
    /// Concurrent calls allowed; new INVITEs beyond this get 503.
    pub max_calls: usize,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            udp: true,
            tcp: true,
            advertised_address: None,
            max_message_bytes: 65535,
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            user_agent: "hotline".to_owned(),
            max_calls: 10000,
        }
    }
}

impl SipConfig {
    /// RFC 3261 timer T1.
    pub fn t1(&self) -> Duration {
        Duration::from_millis(self.t1_ms)
    }

    /// RFC 3261 timer T2.
    pub fn t2(&self) -> Duration {
        Duration::from_millis(self.t2_ms)
    }

    /// RFC 3261 timer T4.
    pub fn t4(&self) -> Duration {
        Duration::from_millis(self.t4_ms)
    }

    /// The IP advertised in Via/Contact/SDP: `advertised_address`, else the listen IP.
    pub fn advertised_ip(&self) -> IpAddr {
        self.advertised_address.unwrap_or(self.listen.ip())
    }
}

/// `[media]`: RTP sockets, workers and codecs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// IP bound by RTP sockets; `None` (empty in the file) = the SIP listen IP.
    #[serde(deserialize_with = "optional_ip")]
    pub rtp_address: Option<IpAddr>,
    /// Lowest RTP port (inclusive).
    pub rtp_port_min: u16,
    /// Highest RTP port (inclusive).
    pub rtp_port_max: u16,
    /// Media worker threads; 0 = one per CPU core (see [`MediaConfig::worker_threads`]).
    pub workers: usize,
    /// Codecs offered and preferred, in order of preference.
    pub codecs: Vec<CodecName>,
    /// RTP payload type offered for RFC 4733 telephone-event.
    pub telephone_event_pt: u8,
    /// Seconds without RTP after which a call is ended (not while on hold); 0 = never.
    pub media_timeout_s: u64,
    /// In-band (audio tone) DTMF detection.
    pub inband_dtmf: InbandDtmf,
    /// SCHED_FIFO priority of the media threads (1–99); 0 = normal scheduling.
    pub realtime_priority: u8,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            rtp_address: None,
            rtp_port_min: 10000,
            rtp_port_max: 30000,
            workers: 0,
            codecs: vec![CodecName::Pcma, CodecName::Pcmu],
            telephone_event_pt: 101,
            media_timeout_s: 30,
            inband_dtmf: InbandDtmf::Auto,
            realtime_priority: 0,
        }
    }
}

impl MediaConfig {
    /// The RTP inactivity timeout, `None` when disabled (`media_timeout_s = 0`).
    pub fn media_timeout(&self) -> Option<Duration> {
        (self.media_timeout_s > 0).then(|| Duration::from_secs(self.media_timeout_s))
    }

    /// Number of media worker threads to start: `workers`, or one per CPU core when 0.
    pub fn worker_threads(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// The inclusive RTP port range.
    pub fn rtp_ports(&self) -> std::ops::RangeInclusive<u16> {
        self.rtp_port_min..=self.rtp_port_max
    }
}

/// A codec name as written in `media.codecs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum CodecName {
    /// G.711 A-law (static payload type 8).
    #[serde(rename = "PCMA")]
    Pcma,
    /// G.711 µ-law (static payload type 0).
    #[serde(rename = "PCMU")]
    Pcmu,
}

impl CodecName {
    /// The SDP encoding name (`PCMA`, `PCMU`).
    pub fn as_str(self) -> &'static str {
        match self {
            CodecName::Pcma => "PCMA",
            CodecName::Pcmu => "PCMU",
        }
    }

    /// The static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            CodecName::Pcma => 8,
            CodecName::Pcmu => 0,
        }
    }
}

impl std::fmt::Display for CodecName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When to detect DTMF tones in the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InbandDtmf {
    /// Only on calls where RFC 4733 telephone-event was not negotiated.
    #[default]
    Auto,
    /// Always, in addition to RFC 4733.
    On,
    /// Never.
    Off,
}

/// `[paths]`: directories; relative paths are taken from the working directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    /// Directory of dialplan files.
    pub dialplans: PathBuf,
    /// Directory of prompt audio files.
    pub prompts: PathBuf,
    /// Directory for data the engine writes (recordings, state).
    pub data: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            dialplans: PathBuf::from("dialplans"),
            prompts: PathBuf::from("prompts"),
            data: PathBuf::from("var"),
        }
    }
}

/// `[answer]`: how new calls are answered (what callers hear then is the dialplans' job).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnswerConfig {
    /// Milliseconds to ring (180 Ringing) before answering; 0 answers at once.
    pub ring_ms: u64,
}

impl AnswerConfig {
    /// How long to ring before answering.
    pub fn ring(&self) -> Duration {
        Duration::from_millis(self.ring_ms)
    }
}

/// `[log]`: logging filter and privacy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A level (error|warn|info|debug|trace|off) or a tracing `EnvFilter` directive.
    pub level: String,
    /// Replace the middle digits of phone numbers in logs.
    pub redact_numbers: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            redact_numbers: false,
        }
    }
}

/// `[shutdown]`: graceful shutdown.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Seconds allowed for calls to end with BYE before the process exits.
    pub grace_s: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { grace_s: 5 }
    }
}

impl ShutdownConfig {
    /// The shutdown grace period.
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.grace_s)
    }
}

impl Config {
    /// Load and check the configuration file at `path`; errors name the file, line and key.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::NotFound {
                    path: path.to_owned(),
                }
            } else {
                ConfigError::Read {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
        let name = path.display().to_string();
        match std::str::from_utf8(&bytes) {
            Ok(text) => Config::from_str_named(text, &name),
            Err(e) => Err(error::not_utf8(&bytes, e, &name)),
        }
    }

    /// Load `path` when given, else return the built-in defaults (`hotline run` without `--config`).
    pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigError> {
        path.map_or_else(|| Ok(Config::default()), Config::load)
    }

    /// Parse and check configuration `text`; `file_name` is used in error messages.
    pub fn from_str_named(text: &str, file_name: &str) -> Result<Config, ConfigError> {
        let index =
            locate::KeyIndex::parse(text).map_err(|e| error::syntax_error(text, file_name, &e))?;
        let config: Config =
            toml::from_str(text).map_err(|e| error::schema_error(text, file_name, &index, &e))?;
        let problems = validate::check(&config);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(error::semantic_errors(text, file_name, &index, problems))
        }
    }

    /// The IP advertised in Via/Contact/SDP: `sip.advertised_address`, else the SIP listen IP.
    pub fn sip_advertised_ip(&self) -> IpAddr {
        self.sip.advertised_ip()
    }

    /// The IP RTP sockets bind to: `media.rtp_address`, else the SIP listen IP.
    pub fn rtp_ip(&self) -> IpAddr {
        self.media.rtp_address.unwrap_or(self.sip.listen.ip())
    }
}

/// Command-line options selecting the configuration file (flatten into a clap command).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// Configuration file (TOML); without it the built-in defaults are used.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    /// Load the file given with `--config`, or the defaults when none was given.
    pub fn load(&self) -> Result<Config, ConfigError> {
        Config::load_or_default(self.config.as_deref())
    }
}

/// Deserialize an `IP:port` string with an error that shows the expected form.
fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.trim().parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "`{text}` is not an IP:port address; write e.g. \"127.0.0.1:5060\", \
             \"0.0.0.0:5060\" or \"[::1]:5060\" (an IP address, not a host name)"
        ))
    })
}

/// Deserialize an IP address string where empty means `None`.
fn optional_ip<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    let text = String::deserialize(d)?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    trimmed.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "`{text}` is not an IP address; write e.g. \"192.0.2.10\" or \"2001:db8::10\" \
             (no port, not a host name), or \"\" for the default"
        ))
    })
}

#[cfg(test)]
mod tests;
