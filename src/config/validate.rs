//! Semantic checks that run after deserialisation; all problems are collected.

use super::Config;

/// Largest accepted `sip.max_message_bytes` (1 MiB).
const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Smallest accepted `sip.max_message_bytes` (one Ethernet MTU).
const MIN_MESSAGE_BYTES: usize = 1500;
/// Largest SCHED_FIFO priority Linux accepts.
const MAX_REALTIME_PRIORITY: u8 = 99;

/// Largest accepted `media.workers`.
const MAX_WORKERS: usize = 256;
/// Lowest port allowed for RTP (ports below are privileged).
const MIN_RTP_PORT: u16 = 1024;

/// One semantic problem: candidate `(dotted key, message)` pairs, the first one set in the file
/// is reported (so a conflict between two keys points at the one the admin actually wrote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// Alternatives in order of preference; never empty.
    candidates: Vec<(&'static str, String)>,
}

impl Problem {
    /// A problem about a single key.
    fn new(key: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            candidates: vec![(key, message.into())],
        }
    }

    /// A problem between two keys, phrased from either side.
    fn either(first: (&'static str, String), second: (&'static str, String)) -> Problem {
        Problem {
            candidates: vec![first, second],
        }
    }

    /// The first candidate whose key `present` says is in the file, else the first one.
    pub fn pick(&self, present: impl Fn(&str) -> bool) -> (&'static str, &str) {
        let chosen = self
            .candidates
            .iter()
            .find(|(k, _)| present(k))
            .or(self.candidates.first());
        chosen.map_or(("", ""), |(k, m)| (*k, m.as_str()))
    }
}

/// Check every cross-field and range rule; an empty result means the configuration is usable.
pub(crate) fn check(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_sip(config, &mut problems);
    check_media(config, &mut problems);
    check_rest(config, &mut problems);
    check_seats(config, &mut problems);
    problems
}

/// Rules for `[seats]`.
fn check_seats(config: &Config, out: &mut Vec<Problem>) {
    let seats = &config.seats;
    if seats.file.as_os_str().is_empty() {
        out.push(Problem::new("seats.file", "must not be empty"));
    }
    // The realm is sent inside a quoted header parameter.
    if seats.realm.trim().is_empty()
        || seats
            .realm
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        out.push(Problem::new(
            "seats.realm",
            "must be non-empty text without quotes, backslashes or control characters",
        ));
    }
    let (min, max) = (seats.register_min_expires_s, seats.register_max_expires_s);
    if min == 0 {
        out.push(Problem::new(
            "seats.register_min_expires_s",
            "must be at least 1",
        ));
    } else if min > max {
        out.push(Problem::either(
            (
                "seats.register_min_expires_s",
                format!("must not be above register_max_expires_s ({min} > {max})"),
            ),
            (
                "seats.register_max_expires_s",
                format!("must not be below register_min_expires_s ({max} < {min})"),
            ),
        ));
    }
    for (key, value) in [
        ("seats.nonce_lifetime_s", seats.nonce_lifetime_s),
        ("seats.auth_failures", u64::from(seats.auth_failures)),
        ("seats.auth_failure_window_s", seats.auth_failure_window_s),
        ("seats.auth_lock_s", seats.auth_lock_s),
    ] {
        if value == 0 {
            out.push(Problem::new(key, "must be at least 1"));
        }
    }
}

/// Rules for `[sip]`.
fn check_sip(config: &Config, out: &mut Vec<Problem>) {
    let sip = &config.sip;
    if sip.listen.port() == 0 {
        out.push(Problem::new(
            "sip.listen",
            format!(
                "port 0 is not allowed; give the port to listen on, e.g. \"{}:5060\"",
                sip.listen.ip()
            ),
        ));
    }
    match sip.advertised_address {
        Some(ip) if ip.is_unspecified() => out.push(Problem::new(
            "sip.advertised_address",
            format!("`{ip}` cannot be advertised; give the IP that phones and trunks reach"),
        )),
        None if sip.listen.ip().is_unspecified() => out.push(Problem::either(
            (
                "sip.advertised_address",
                format!(
                    "must be set when sip.listen is the wildcard address {}; give the IP \
                     that phones and trunks reach",
                    sip.listen.ip()
                ),
            ),
            (
                "sip.listen",
                format!(
                    "listening on the wildcard address {} needs sip.advertised_address set \
                     to the IP that phones and trunks reach",
                    sip.listen.ip()
                ),
            ),
        )),
        _ => {}
    }
    if !sip.udp && !sip.tcp {
        out.push(Problem::either(
            (
                "sip.udp",
                "both udp and tcp are false; enable at least one transport".to_owned(),
            ),
            (
                "sip.tcp",
                "both udp and tcp are false; enable at least one transport".to_owned(),
            ),
        ));
    }
    if sip.max_message_bytes < MIN_MESSAGE_BYTES {
        out.push(Problem::new(
            "sip.max_message_bytes",
            format!(
                "must be at least {MIN_MESSAGE_BYTES} (got {})",
                sip.max_message_bytes
            ),
        ));
    } else if sip.max_message_bytes > MAX_MESSAGE_BYTES {
        out.push(Problem::new(
            "sip.max_message_bytes",
            format!(
                "must be at most {MAX_MESSAGE_BYTES} (1 MiB) (got {})",
                sip.max_message_bytes
            ),
        ));
    }
    if sip.t1_ms == 0 {
        out.push(Problem::new(
            "sip.t1_ms",
            "must be above 0 (RFC 3261 recommends 500)",
        ));
    } else if sip.t2_ms < sip.t1_ms {
        out.push(Problem::either(
            (
                "sip.t2_ms",
                format!("must not be below t1_ms ({} < {})", sip.t2_ms, sip.t1_ms),
            ),
            (
                "sip.t1_ms",
                format!("must not be above t2_ms ({} > {})", sip.t1_ms, sip.t2_ms),
            ),
        ));
    }
    if sip.user_agent.trim().is_empty() || sip.user_agent.chars().any(char::is_control) {
        out.push(Problem::new(
            "sip.user_agent",
            "must be non-empty text without control characters (it is sent as a header)",
        ));
    }
}

/// Rules for `[media]`.
fn check_media(config: &Config, out: &mut Vec<Problem>) {
    let media = &config.media;
    let (min, max) = (media.rtp_port_min, media.rtp_port_max);
    if min < MIN_RTP_PORT {
        out.push(Problem::new(
            "media.rtp_port_min",
            format!("must be {MIN_RTP_PORT} or above; lower ports are privileged (got {min})"),
        ));
    }
    if min >= max {
        out.push(Problem::either(
            (
                "media.rtp_port_min",
                format!("must be below rtp_port_max ({min} >= {max})"),
            ),
            (
                "media.rtp_port_max",
                format!("must be above rtp_port_min ({max} <= {min})"),
            ),
        ));
    }
    if media.workers > MAX_WORKERS {
        out.push(Problem::new(
            "media.workers",
            format!(
                "must be at most {MAX_WORKERS}, or 0 for one per CPU core (got {})",
                media.workers
            ),
        ));
    }
    if media.realtime_priority > MAX_REALTIME_PRIORITY {
        out.push(Problem::new(
            "media.realtime_priority",
            format!(
                "must be 1 to {MAX_REALTIME_PRIORITY}, or 0 for normal scheduling (got {})",
                media.realtime_priority
            ),
        ));
    }
    if media.codecs.is_empty() {
        out.push(Problem::new(
            "media.codecs",
            "must list at least one codec (PCMA, PCMU)",
        ));
    }
    for (i, codec) in media.codecs.iter().enumerate() {
        if media.codecs[..i].contains(codec) && !media.codecs[i + 1..].contains(codec) {
            out.push(Problem::new(
                "media.codecs",
                format!("lists {codec} more than once"),
            ));
        }
    }
    if !(96..=127).contains(&media.telephone_event_pt) {
        out.push(Problem::new(
            "media.telephone_event_pt",
            format!(
                "must be a dynamic payload type from 96 to 127 (got {})",
                media.telephone_event_pt
            ),
        ));
    }
}

/// Rules for `[paths]`, `[log]` and `[shutdown]`.
fn check_rest(config: &Config, out: &mut Vec<Problem>) {
    if config.records.recording_retention_days == 0 {
        out.push(Problem::new(
            "records.recording_retention_days",
            "must be at least 1",
        ));
    }
    if config.records.queue_capacity == 0 {
        out.push(Problem::new("records.queue_capacity", "must be at least 1"));
    }
    for (i, endpoint) in config.records.export.iter().enumerate() {
        if !endpoint.url.starts_with("http://") {
            out.push(Problem::new(
                "records.export",
                format!(
                    "entry {}: url must be an http:// URL, got \"{}\"",
                    i + 1,
                    endpoint.url
                ),
            ));
        }
    }
    for (key, path) in [
        ("paths.dialplans", &config.paths.dialplans),
        ("paths.prompts", &config.paths.prompts),
        ("paths.data", &config.paths.data),
    ] {
        if path.as_os_str().is_empty() {
            out.push(Problem::new(
                key,
                "must not be empty (use \".\" for the working directory)",
            ));
        }
    }
    if let Some(message) = log_level_problem(&config.log.level) {
        out.push(Problem::new("log.level", message));
    }
}

/// Why `level` is not a usable log filter, if it is not.
fn log_level_problem(level: &str) -> Option<String> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let trimmed = level.trim();
    if LEVELS.iter().any(|l| l.eq_ignore_ascii_case(trimmed)) {
        return None;
    }
    let hint = "expected error, warn, info, debug, trace, off, or an EnvFilter directive \
                such as \"info,hotline::sip=debug\"";
    // A bare word would be taken by EnvFilter as a target name: almost surely a typo'd level.
    if trimmed.is_empty() || trimmed.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Some(format!("unknown log level \"{level}\", {hint}"));
    }
    match tracing_subscriber::EnvFilter::builder().parse(trimmed) {
        Ok(_) => None,
        Err(e) => Some(format!("invalid filter \"{level}\" ({e}), {hint}")),
    }
}
