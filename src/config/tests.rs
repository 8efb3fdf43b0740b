//! Unit tests for configuration parsing, defaults and error messages.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::*;

/// Load `text` as `t.toml`, expecting failure; return the rendered diagnostics.
fn errors(text: &str) -> Vec<String> {
    match Config::from_str_named(text, "t.toml") {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(e) => e.diagnostics().iter().map(ToString::to_string).collect(),
    }
}

/// Load `text` as `t.toml`, expecting success.
fn load(text: &str) -> Config {
    match Config::from_str_named(text, "t.toml") {
        Ok(config) => config,
        Err(e) => panic!("expected success, got:\n{e}"),
    }
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = Config::default();
    assert_eq!(
        c.sip.listen,
        "127.0.0.1:5060".parse::<SocketAddr>().unwrap()
    );
    assert!(c.sip.udp && c.sip.tcp);
    assert_eq!(c.sip.advertised_address, None);
    assert_eq!(c.sip.max_message_bytes, 65535);
    assert_eq!(c.sip.t1(), Duration::from_millis(500));
    assert_eq!(c.sip.t2(), Duration::from_millis(4000));
    assert_eq!(c.sip.t4(), Duration::from_millis(5000));
    assert_eq!(c.sip.user_agent, "hotline");
    assert_eq!(c.sip.max_calls, 10000);
    assert_eq!(c.media.rtp_address, None);
    assert_eq!(c.media.rtp_ports(), 10000..=30000);
    assert_eq!(c.media.workers, 0);
    assert!(c.media.worker_threads() >= 1);
    assert_eq!(c.media.codecs, vec![CodecName::Pcma, CodecName::Pcmu]);
    assert_eq!(c.media.telephone_event_pt, 101);
    assert_eq!(c.media.media_timeout(), Some(Duration::from_secs(30)));
    assert_eq!(c.media.inband_dtmf, InbandDtmf::Auto);
    assert_eq!(c.paths.dialplans, PathBuf::from("dialplans"));
    assert_eq!(c.paths.prompts, PathBuf::from("prompts"));
    assert_eq!(c.paths.data, PathBuf::from("var"));
    assert_eq!(c.answer.ring(), Duration::ZERO);
    assert_eq!(c.log.level, "info");
    assert!(!c.log.redact_numbers);
    assert_eq!(c.shutdown.grace(), Duration::from_secs(5));
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    assert_eq!(c.sip_advertised_ip(), localhost);
    assert_eq!(c.rtp_ip(), localhost);
}

#[test]
fn empty_file_equals_defaults() {
    assert_eq!(load(""), Config::default());
    assert_eq!(
        load("# only a comment\n\n[sip]\n[media]\n"),
        Config::default()
    );
}

#[test]
fn example_file_equals_defaults() {
    assert_eq!(
        load(include_str!("../../hotline.example.toml")),
        Config::default()
    );
}

#[test]
fn values_are_read() {
    let c = load(
        "[sip]\nlisten = \"0.0.0.0:5080\"\nadvertised_address = \"192.0.2.7\"\nudp = false\n\
         [media]\nrtp_address = \"10.0.0.2\"\ncodecs = [\"PCMU\"]\ninband_dtmf = \"off\"\n\
         media_timeout_s = 0\n[log]\nlevel = \"info,hotline::sip=debug\"\n",
    );
    assert_eq!(c.sip.listen.port(), 5080);
    assert!(!c.sip.udp && c.sip.tcp);
    assert_eq!(
        c.sip_advertised_ip(),
        "192.0.2.7".parse::<IpAddr>().unwrap()
    );
    assert_eq!(c.rtp_ip(), "10.0.0.2".parse::<IpAddr>().unwrap());
    assert_eq!(c.media.codecs, vec![CodecName::Pcmu]);
    assert_eq!(c.media.inband_dtmf, InbandDtmf::Off);
    assert_eq!(c.media.media_timeout(), None);
}

#[test]
fn rtp_ip_defaults_to_listen_ip() {
    let c = load("[sip]\nlisten = \"192.0.2.1:5060\"\n");
    assert_eq!(c.rtp_ip(), "192.0.2.1".parse::<IpAddr>().unwrap());
    assert_eq!(c.sip_advertised_ip(), c.rtp_ip());
}

#[test]
fn unknown_key_names_key_section_and_line() {
    let e = errors("# c\n\n[sip]\nudp = true\n\n\nlistn = \"1.2.3.4:5\"\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("t.toml:7:1: unknown key `listn` in [sip], expected one of listen, udp,"),
        "{}",
        e[0]
    );
}

#[test]
fn unknown_top_level_key() {
    let e = errors("[sipp]\nlisten = \"1.2.3.4:5\"\n");
    assert!(
        e[0].starts_with("t.toml:1:2: unknown key `sipp` at top level, expected one of sip,"),
        "{}",
        e[0]
    );
}

#[test]
fn unknown_key_in_dotted_and_inline_forms() {
    let e = errors("media.rtp_port = 1\n");
    assert!(
        e[0].starts_with("t.toml:1:7: unknown key `rtp_port` in [media]"),
        "{}",
        e[0]
    );
    let e = errors("\nlog = { level = \"info\", colour = true }\n");
    assert!(
        e[0].starts_with("t.toml:2:25: unknown key `colour` in [log]"),
        "{}",
        e[0]
    );
}

#[test]
fn wrong_type_names_key_and_line() {
    let e = errors("[sip]\n\nudp = \"yes\"\n");
    assert_eq!(
        e,
        vec!["t.toml:3:7: sip.udp: expected a boolean, found string \"yes\"".to_owned()]
    );
}

#[test]
fn out_of_range_integer() {
    let e = errors("[media]\nrtp_port_max = 70000\n");
    assert_eq!(
        e,
        vec![
            "t.toml:2:16: media.rtp_port_max: expected a whole number from 0 to 65535, \
             found integer `70000`"
                .to_owned()
        ]
    );
    let e = errors("[shutdown]\ngrace_s = -1\n");
    assert!(e[0].starts_with("t.toml:2:11: shutdown.grace_s: expected a whole number"));
}

#[test]
fn unknown_enum_values() {
    let e = errors("[media]\ncodecs = [\"PCMA\",\n  \"G729\"]\n");
    assert_eq!(
        e,
        vec!["t.toml:3:3: media.codecs: unknown value `G729`, expected PCMA or PCMU".to_owned()]
    );
    let e = errors("[media]\ninband_dtmf = \"yes\"\n");
    assert_eq!(
        e,
        vec![
            "t.toml:2:15: media.inband_dtmf: unknown value `yes`, expected one of auto, on, off"
                .to_owned()
        ]
    );
}

#[test]
fn section_must_be_a_table() {
    let e = errors("sip = 5\n");
    assert_eq!(
        e,
        vec!["t.toml:1:7: sip: must be a table ([sip] section), found integer `5`".to_owned()]
    );
}

#[test]
fn bad_listen_address() {
    let e = errors("[sip]\nlisten = \"127.0.0.1\"\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("t.toml:2:10: sip.listen: `127.0.0.1` is not an IP:port address"),
        "{}",
        e[0]
    );
    let e = errors("[sip]\nlisten = \"pbx.example:5060\"\n");
    assert!(e[0].starts_with("t.toml:2:10: sip.listen: `pbx.example:5060` is not"));
    let e = errors("[sip]\nlisten = \"127.0.0.1:0\"\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("t.toml:2:10: sip.listen: port 0 is not allowed"),
        "{}",
        e[0]
    );
}

#[test]
fn bad_ip_address() {
    let e = errors("[media]\nrtp_address = \"10.0.0.256\"\n");
    assert!(e[0].starts_with("t.toml:2:15: media.rtp_address: `10.0.0.256` is not an IP address"));
}

#[test]
fn syntax_errors_are_located() {
    let e = errors("[sip]\nudp = tru\n");
    assert!(
        e[0].starts_with("t.toml:2:7: sip.udp: TOML syntax error: invalid value"),
        "{}",
        e[0]
    );
    let e = errors("[sip\nudp = true\n");
    assert!(
        e[0].starts_with("t.toml:1:5: TOML syntax error: invalid table header"),
        "{}",
        e[0]
    );
    let e = errors("[sip]\nudp = true\nudp = false\n");
    assert!(
        e[0].starts_with("t.toml:3:1: TOML syntax error: duplicate key `udp`"),
        "{}",
        e[0]
    );
}

#[test]
fn rtp_range_message_matches_the_documented_form() {
    let text = "[sip]\n\n\n\n\n\n\n\n\n\n[media]\nrtp_port_min = 20000\nrtp_port_max = 10000\n";
    let e = errors(text);
    assert_eq!(
        e,
        vec![
            "t.toml:12:16: media.rtp_port_min: must be below rtp_port_max (20000 >= 10000)"
                .to_owned()
        ]
    );
}

#[test]
fn conflict_with_a_default_points_at_the_key_written() {
    let e = errors("[media]\nrtp_port_max = 5000\n");
    assert_eq!(
        e,
        vec![
            "t.toml:2:16: media.rtp_port_max: must be above rtp_port_min (5000 <= 10000)"
                .to_owned()
        ]
    );
    let e = errors("[sip]\nt1_ms = 5000\n");
    assert_eq!(
        e,
        vec!["t.toml:2:9: sip.t1_ms: must not be above t2_ms (5000 > 4000)".to_owned()]
    );
}

#[test]
fn all_semantic_errors_are_reported_together() {
    let text = "[sip]\nudp = false\ntcp = false\nt1_ms = 0\nmax_message_bytes = 100\n\
                [media]\nrtp_port_min = 80\nworkers = 1000\ncodecs = [\"PCMA\", \"PCMA\"]\n\
                [log]\nlevel = \"verbose\"\n";
    let e = errors(text);
    assert_eq!(
        e,
        vec![
            "t.toml:2:7: sip.udp: both udp and tcp are false; enable at least one transport",
            "t.toml:4:9: sip.t1_ms: must be above 0 (RFC 3261 recommends 500)",
            "t.toml:5:21: sip.max_message_bytes: must be at least 1500 (got 100)",
            "t.toml:7:16: media.rtp_port_min: must be 1024 or above; lower ports are privileged (got 80)",
            "t.toml:8:11: media.workers: must be at most 256, or 0 for one per CPU core (got 1000)",
            "t.toml:9:10: media.codecs: lists PCMA more than once",
            "t.toml:11:9: log.level: unknown log level \"verbose\", expected error, warn, info, \
             debug, trace, off, or an EnvFilter directive such as \"info,hotline::sip=debug\"",
        ]
    );
}

#[test]
fn more_semantic_rules() {
    let e = errors("[media]\ncodecs = []\ntelephone_event_pt = 8\nrealtime_priority = 120\n");
    assert_eq!(
        e,
        vec![
            "t.toml:2:10: media.codecs: must list at least one codec (PCMA, PCMU)",
            "t.toml:3:22: media.telephone_event_pt: must be a dynamic payload type from 96 to 127 (got 8)",
            "t.toml:4:21: media.realtime_priority: must be 1 to 99, or 0 for normal scheduling (got 120)",
        ]
    );
    let e = errors("[sip]\nmax_message_bytes = 2000000\nuser_agent = \"\"\n");
    assert_eq!(e.len(), 2);
    assert!(e[0].starts_with("t.toml:2:21: sip.max_message_bytes: must be at most 1048576"));
    assert!(e[1].starts_with("t.toml:3:14: sip.user_agent: must be non-empty"));
    let e = errors("[paths]\ndata = \"\"\nprompts = \"\"\n");
    assert_eq!(e.len(), 2);
    assert!(e[0].starts_with("t.toml:2:8: paths.data: must not be empty"));
    assert!(e[1].starts_with("t.toml:3:11: paths.prompts: must not be empty"));
}

#[test]
fn wildcard_listen_needs_an_advertised_address() {
    let e = errors("[sip]\nlisten = \"0.0.0.0:5060\"\n");
    assert!(
        e[0].starts_with("t.toml:2:10: sip.listen: listening on the wildcard address 0.0.0.0"),
        "{}",
        e[0]
    );
    let e = errors("[sip]\nlisten = \"0.0.0.0:5060\"\nadvertised_address = \"\"\n");
    assert!(
        e[0].starts_with("t.toml:3:22: sip.advertised_address: must be set"),
        "{}",
        e[0]
    );
    let c = load("[sip]\nlisten = \"0.0.0.0:5060\"\nadvertised_address = \"192.0.2.5\"\n");
    assert_eq!(c.rtp_ip(), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(
        c.sip_advertised_ip(),
        "192.0.2.5".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn log_levels() {
    for ok in [
        "error",
        "WARN",
        "debug",
        "trace",
        "off",
        "hotline=debug",
        "info,hotline::sip=trace",
    ] {
        load(&format!("[log]\nlevel = \"{ok}\"\n"));
    }
    let e = errors("[log]\nlevel = \"hotline=loud\"\n");
    assert!(
        e[0].starts_with("t.toml:2:9: log.level: invalid filter \"hotline=loud\""),
        "{}",
        e[0]
    );
}

#[test]
fn datetime_value_is_located() {
    let e = errors("[sip]\nudp = 1979-05-27\n");
    assert!(
        e[0].starts_with("t.toml:2:7: sip.udp: expected a boolean"),
        "{}",
        e[0]
    );
}

#[test]
fn array_of_tables_for_a_section() {
    let e = errors("[[sip]]\nudp = true\n");
    assert!(
        e[0].starts_with("t.toml:1:1: sip: must be a table"),
        "{}",
        e[0]
    );
}

#[test]
fn error_display_is_one_line_per_problem() {
    let err = Config::from_str_named("[sip]\nudp = false\ntcp = false\nt1_ms = 0\n", "t.toml");
    let text = err.map(|_| ()).map_err(|e| e.to_string());
    assert_eq!(
        text,
        Err(
            "t.toml:2:7: sip.udp: both udp and tcp are false; enable at least one transport\n\
             t.toml:4:9: sip.t1_ms: must be above 0 (RFC 3261 recommends 500)"
                .to_owned()
        )
    );
}

#[test]
fn byte_order_mark_and_crlf_are_accepted() {
    assert_eq!(load("\u{feff}[sip]\r\nudp = true\r\n"), Config::default());
    let e = errors("\u{feff}[sip]\r\nudp = true\r\nlistn = 1\r\n");
    assert!(
        e[0].starts_with("t.toml:3:1: unknown key `listn` in [sip]"),
        "{}",
        e[0]
    );
}

#[test]
fn seats_defaults_and_values() {
    let c = Config::default();
    assert_eq!(c.seats.file, PathBuf::from("seats.toml"));
    assert_eq!(c.seats.realm, "hotline");
    assert_eq!(c.seats.register_min_expires_s, 60);
    assert_eq!(c.seats.register_max_expires_s, 3600);
    assert_eq!(c.seats.nonce_lifetime(), Duration::from_secs(300));
    assert_eq!(c.seats.auth_failures, 5);
    assert_eq!(c.seats.auth_failure_window(), Duration::from_secs(60));
    assert_eq!(c.seats.auth_lock(), Duration::from_secs(300));
    let c = load("[seats]\nfile = \"/etc/hotline/seats.toml\"\nrealm = \"12345.gov\"\n");
    assert_eq!(c.seats.file, PathBuf::from("/etc/hotline/seats.toml"));
    assert_eq!(c.seats.realm, "12345.gov");
}

#[test]
fn seats_rules() {
    let e = errors(
        "[seats]\nfile = \"\"\nrealm = \"a\\\"b\"\nregister_min_expires_s = 0\n\
         nonce_lifetime_s = 0\nauth_failures = 0\nauth_lock_s = 0\n",
    );
    assert_eq!(
        e,
        vec![
            "t.toml:2:8: seats.file: must not be empty",
            "t.toml:3:9: seats.realm: must be non-empty text without quotes, backslashes or \
             control characters",
            "t.toml:4:26: seats.register_min_expires_s: must be at least 1",
            "t.toml:5:20: seats.nonce_lifetime_s: must be at least 1",
            "t.toml:6:17: seats.auth_failures: must be at least 1",
            "t.toml:7:15: seats.auth_lock_s: must be at least 1",
        ]
    );
    let e = errors("[seats]\nregister_max_expires_s = 30\n");
    assert_eq!(
        e,
        vec![
            "t.toml:2:26: seats.register_max_expires_s: must not be below \
             register_min_expires_s (30 < 60)"
        ]
    );
    let e = errors("[seats]\nlogin = true\n");
    assert!(
        e[0].starts_with("t.toml:2:1: unknown key `login` in [seats], expected one of file,"),
        "{}",
        e[0]
    );
}
