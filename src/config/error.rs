//! Configuration errors: one line each, `FILE:LINE:COL: message`, naming the key.

use std::fmt;
use std::path::PathBuf;

use super::locate::{key_from_text, line_col, value_offset, KeyIndex};
use super::validate::Problem;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file given (e.g. with `--config`) does not exist.
    #[error("{}: configuration file not found", path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("{}: cannot read configuration file: {source}", path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but is invalid: one or more located problems, one per line.
    #[error("{}", render(.diagnostics))]
    Invalid {
        /// The problems, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

impl ConfigError {
    /// The located problems (empty for `NotFound`/`Read`).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Invalid { diagnostics } => diagnostics,
            _ => &[],
        }
    }
}

/// One problem at a place in the file; displays as `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name as given to the loader.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The dotted key the problem is about (e.g. `media.rtp_port_min`), when known.
    pub key: Option<String>,
    /// The one-line explanation (already names the key).
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Join diagnostics one per line.
fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(Diagnostic::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Build a diagnostic at byte `offset` of `text`.
fn at(text: &str, file: &str, offset: usize, key: Option<String>, message: String) -> Diagnostic {
    let (line, column) = line_col(text, offset);
    Diagnostic {
        file: file.to_owned(),
        line,
        column,
        key,
        message,
    }
}

/// The file is not UTF-8: point at the first bad byte.
pub(crate) fn not_utf8(bytes: &[u8], err: std::str::Utf8Error, file: &str) -> ConfigError {
    let good = String::from_utf8_lossy(&bytes[..err.valid_up_to()]);
    let diagnostic = at(
        &good,
        file,
        good.len(),
        None,
        "the file is not valid UTF-8 text; save it as UTF-8".to_owned(),
    );
    ConfigError::Invalid {
        diagnostics: vec![diagnostic],
    }
}

/// A TOML syntax error from the schema-free parse.
pub(crate) fn syntax_error(text: &str, file: &str, err: &toml::de::Error) -> ConfigError {
    let offset = err.span().map_or(0, |s| s.start);
    let key = key_from_text(text, offset);
    let raw = err.message().trim();
    let message = if raw.starts_with("invalid string\nexpected `\"`, `'`") {
        "invalid value: text must be in quotes (\"...\"), booleans are true or false, \
         numbers are plain digits"
            .to_owned()
    } else {
        one_line(raw)
    };
    let message = match &key {
        Some(k) => format!("{k}: TOML syntax error: {message}"),
        None => format!("TOML syntax error: {message}"),
    };
    ConfigError::Invalid {
        diagnostics: vec![at(text, file, offset, key, message)],
    }
}

/// An error from deserialising into [`super::Config`]: unknown key, wrong type, bad value.
pub(crate) fn schema_error(
    text: &str,
    file: &str,
    index: &KeyIndex,
    err: &toml::de::Error,
) -> ConfigError {
    let span = err.span().unwrap_or(0..0);
    let entry = index.key_at(text, &span);
    let path: Vec<String> = entry.map(|e| e.path.clone()).unwrap_or_default();
    let key = (!path.is_empty()).then(|| path.join("."));
    let message = rephrase(err.message().trim(), &path);
    ConfigError::Invalid {
        diagnostics: vec![at(text, file, span.start, key, message)],
    }
}

/// Semantic problems after deserialisation, each located at the value of its key.
pub(crate) fn semantic_errors(
    text: &str,
    file: &str,
    index: &KeyIndex,
    problems: Vec<Problem>,
) -> ConfigError {
    let mut diagnostics: Vec<Diagnostic> = problems
        .into_iter()
        .map(|problem| {
            let (key, message) = problem.pick(|k| index.contains(k));
            let offset = match index.find(key) {
                Some(entry) => value_offset(text, entry),
                // Not in the file (a default is in conflict): point at its section, else 1:1.
                None => key
                    .split('.')
                    .next()
                    .and_then(|section| index.find(section))
                    .map_or(0, |e| e.span.start),
            };
            at(
                text,
                file,
                offset,
                Some(key.to_owned()),
                format!("{key}: {message}"),
            )
        })
        .collect();
    diagnostics.sort_by_key(|d| (d.line, d.column));
    ConfigError::Invalid { diagnostics }
}

/// Rephrase a serde/toml message into one line that names the key at `path`.
fn rephrase(raw: &str, path: &[String]) -> String {
    let key = path.join(".");
    let section = path
        .split_last()
        .map(|(_, parent)| parent.join("."))
        .unwrap_or_default();

    if let Some(rest) = raw.strip_prefix("unknown field `") {
        if let Some((name, expected)) = rest.split_once('`') {
            let place = if section.is_empty() {
                "at top level".to_owned()
            } else {
                format!("in [{section}]")
            };
            let expected = expected.trim_start_matches(',').trim().replace('`', "");
            return format!("unknown key `{name}` {place}, {expected}");
        }
    }
    if let Some(rest) = raw.strip_prefix("unknown variant `") {
        if let Some((name, expected)) = rest.split_once('`') {
            let expected = expected.trim_start_matches(',').trim().replace('`', "");
            return prefixed(&key, &format!("unknown value `{name}`, {expected}"));
        }
    }
    for kind in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = raw.strip_prefix(kind) {
            if let Some((found, expected)) = rest.rsplit_once(", expected ") {
                let found = match found {
                    "map" => "a table",
                    "sequence" => "an array",
                    other => other,
                };
                if path.len() == 1 {
                    return format!("{key}: must be a table ([{key}] section), found {found}");
                }
                let expected = humanize_expected(expected);
                return prefixed(&key, &format!("expected {expected}, found {found}"));
            }
        }
    }
    prefixed(&key, &one_line(raw))
}

/// `key: message`, or just the message when the key is unknown.
fn prefixed(key: &str, message: &str) -> String {
    if key.is_empty() {
        message.to_owned()
    } else {
        format!("{key}: {message}")
    }
}

/// Replace Rust type names in serde's "expected ..." with words an admin understands.
fn humanize_expected(expected: &str) -> String {
    match expected {
        "u8" => "a whole number from 0 to 255".to_owned(),
        "u16" => "a whole number from 0 to 65535".to_owned(),
        "u32" => "a whole number from 0 to 4294967295".to_owned(),
        "u64" | "usize" => "a whole number, 0 or more".to_owned(),
        "i64" | "isize" => "a whole number".to_owned(),
        "a sequence" => "an array".to_owned(),
        other => other.to_owned(),
    }
}

/// Collapse a multi-line message into one line.
fn one_line(raw: &str) -> String {
    raw.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}
