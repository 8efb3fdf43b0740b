//! Loading configuration files from disk: defaults, the shipped example, and located errors.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;
use hotline::config::{Config, ConfigArgs, ConfigError};

/// The example configuration shipped at the top of the repository.
fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hotline.example.toml")
}

/// Write `text` to a temporary `hotline.toml` and load it.
fn load_text(text: &str) -> (tempfile::TempDir, PathBuf, Result<Config, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hotline.toml");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap();
    let result = Config::load(&path);
    (dir, path, result)
}

/// Load `text` from a file expecting failure; the diagnostics with the directory stripped.
fn errors(text: &str) -> Vec<String> {
    let (_dir, path, result) = load_text(text);
    let err = result.expect_err("configuration should be rejected");
    let prefix = format!("{}:", path.display());
    err.diagnostics()
        .iter()
        .map(|d| {
            let line = d.to_string();
            assert!(line.starts_with(&prefix), "{line} does not name {prefix}");
            format!("hotline.toml:{}", &line[prefix.len()..])
        })
        .collect()
}

#[test]
fn no_file_means_defaults() {
    assert_eq!(Config::load_or_default(None).unwrap(), Config::default());
    let cli = Cli::try_parse_from(["hotline"]).unwrap();
    assert_eq!(cli.config.config, None);
    assert_eq!(cli.config.load().unwrap(), Config::default());
}

#[test]
fn shipped_example_loads_and_equals_defaults() {
    let config = Config::load(&example_path()).unwrap();
    assert_eq!(config, Config::default());
    let cli =
        Cli::try_parse_from(["hotline", "--config", example_path().to_str().unwrap()]).unwrap();
    assert_eq!(cli.config.load().unwrap(), Config::default());
}

#[test]
fn shipped_example_documents_every_key_with_a_comment() {
    let example = std::fs::read_to_string(example_path()).unwrap();
    for section in sections() {
        let keys = expected_keys(&format!("[{section}]\n__probe__ = 0\n"));
        assert!(!keys.is_empty(), "no keys found for [{section}]");
        let body = section_body(&example, &section);
        for key in keys {
            let lines: Vec<&str> = body.lines().collect();
            let at = lines
                .iter()
                .position(|l| l.starts_with(&format!("{key} = ")))
                .unwrap_or_else(|| panic!("hotline.example.toml lacks {section}.{key}"));
            assert!(
                at > 0 && lines[at - 1].starts_with("# "),
                "{section}.{key} in hotline.example.toml has no comment line above it"
            );
        }
    }
}

#[test]
fn missing_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::NotFound { .. }));
    assert_eq!(
        err.to_string(),
        format!("{}: configuration file not found", path.display())
    );
    assert!(Config::load_or_default(Some(&path)).is_err());
}

#[test]
fn unknown_key_in_each_section_gives_its_line() {
    for (i, section) in sections().iter().enumerate() {
        let text = format!("# line 1\n[{section}]\n\n{}bogus_key = 1\n", "\n".repeat(i));
        let e = errors(&text);
        let line = 4 + i;
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(&format!(
                "hotline.toml:{line}:1: unknown key `bogus_key` in [{section}], expected"
            )),
            "{}",
            e[0]
        );
    }
}

#[test]
fn wrong_type_names_key_and_line() {
    let e = errors("[sip]\nlisten = \"127.0.0.1:5060\"\nudp = \"yes\"\n");
    assert_eq!(
        e,
        vec!["hotline.toml:3:7: sip.udp: expected a boolean, found string \"yes\""]
    );
    let e = errors("[media]\nworkers = \"four\"\n");
    assert!(
        e[0].starts_with("hotline.toml:2:11: media.workers: expected"),
        "{}",
        e[0]
    );
}

#[test]
fn several_semantic_errors_are_reported_together() {
    let text = "\
[sip]
listen = \"127.0.0.1:5060\"
t1_ms = 500
t2_ms = 100

[media]
rtp_port_min = 20000
rtp_port_max = 10000
codecs = []
";
    let e = errors(text);
    assert_eq!(
        e,
        vec![
            "hotline.toml:4:9: sip.t2_ms: must not be below t1_ms (100 < 500)",
            "hotline.toml:7:16: media.rtp_port_min: must be below rtp_port_max (20000 >= 10000)",
            "hotline.toml:9:10: media.codecs: must list at least one codec (PCMA, PCMU)",
        ]
    );
}

#[test]
fn bad_listen_address() {
    let e = errors("[sip]\nlisten = \"localhost:5060\"\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with(
            "hotline.toml:2:10: sip.listen: `localhost:5060` is not an IP:port address"
        ),
        "{}",
        e[0]
    );
    let e = errors("[sip]\nlisten = 5060\n");
    assert!(
        e[0].starts_with("hotline.toml:2:10: sip.listen: expected a string, found integer `5060`"),
        "{}",
        e[0]
    );
}

#[test]
fn not_utf8_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hotline.toml");
    std::fs::write(&path, b"[sip]\nuser_agent = \"caf\xe9\"\n").unwrap();
    let err = Config::load(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2:18: the file is not valid UTF-8 text; save it as UTF-8",
            path.display()
        )
    );
}

/// A command that flattens [`ConfigArgs`], as `hotline run` does.
#[derive(Parser)]
struct Cli {
    /// The configuration selection.
    #[command(flatten)]
    config: ConfigArgs,
}

/// The section names, read from the loader's own "expected one of" message.
fn sections() -> Vec<String> {
    expected_keys("__probe__ = 0\n")
}

/// The keys listed in the unknown-key error for `text`.
fn expected_keys(text: &str) -> Vec<String> {
    let err = Config::from_str_named(text, "probe.toml").unwrap_err();
    let message = &err.diagnostics()[0].message;
    let list = message
        .split_once("expected ")
        .map(|(_, rest)| rest.trim_start_matches("one of "))
        .unwrap_or_default();
    list.split([',', ' '])
        .map(str::trim)
        .filter(|k| !k.is_empty() && *k != "or")
        .map(str::to_owned)
        .collect()
}

/// The lines of `[section]` in `text`, up to the next section header.
fn section_body(text: &str, section: &str) -> String {
    let header = format!("[{section}]");
    let start = text
        .find(&format!("\n{header}\n"))
        .unwrap_or_else(|| panic!("no {header} in hotline.example.toml"));
    let body = &text[start + header.len() + 2..];
    let end = body.find("\n[").map_or(body.len(), |i| i + 1);
    body[..end].to_owned()
}
