//! Places in the dialplan files (byte offset → line:column in characters) and typed access to
//! TOML values that records a diagnostic for every value of the wrong type or range; the seats
//! loader ([`crate::seats`]) reads its file with the same helpers.

use std::fmt;
use std::ops::Range;

use toml_edit::{Item, TableLike, TomlError, Value};

use crate::dialplan::{Diagnostic, Severity};

/// A place in a file, as shown in messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    /// The file as shown to the admin.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Pos {
    /// Line 1, column 1 of `file`.
    pub fn start_of(file: &str) -> Pos {
        Pos {
            file: file.to_string(),
            line: 1,
            column: 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A file's name and text, indexed by line for offset → line:column.
pub(crate) struct Src {
    /// The file as shown in messages.
    pub name: String,
    /// Its text.
    pub text: String,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

impl Src {
    /// Indexes `text`.
    pub fn new(name: String, text: String) -> Src {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Src {
            name,
            text,
            line_starts,
        }
    }

    /// The line and column of a byte offset.
    pub fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let column = match self.text.get(start..offset) {
            Some(s) => s.chars().count() + 1,
            None => offset - start + 1,
        };
        Pos {
            file: self.name.clone(),
            line,
            column,
        }
    }

    /// The start of a span, or the start of the file when there is none.
    pub fn span_pos(&self, span: Option<Range<usize>>) -> Pos {
        self.pos(span.map_or(0, |r| r.start))
    }
}

/// The diagnostics found so far.
#[derive(Default)]
pub(crate) struct Diags {
    /// In the order found.
    pub list: Vec<Diagnostic>,
}

impl Diags {
    /// Records an error.
    pub fn error(&mut self, at: &Pos, message: impl Into<String>) {
        self.push(at, Severity::Error, message.into());
    }

    /// Records a warning.
    pub fn warning(&mut self, at: &Pos, message: impl Into<String>) {
        self.push(at, Severity::Warning, message.into());
    }

    fn push(&mut self, at: &Pos, severity: Severity, message: String) {
        self.list.push(Diagnostic {
            file: at.file.clone(),
            line: at.line,
            column: at.column,
            severity,
            message,
        });
    }

    /// Records a TOML syntax error of `src` at its place.
    pub fn syntax(&mut self, src: &Src, e: &TomlError) {
        let message = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        self.error(
            &src.span_pos(e.span()),
            format!("TOML syntax error: {message}"),
        );
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|d| d.severity == Severity::Error)
    }

    /// Every diagnostic, sorted by place.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.list
            .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        self.list
    }

    /// The value as a string, or records ``"`key` must be EXPECTED, found …"``.
    pub fn str<'a>(&mut self, f: &Field<'a>, expected: &str) -> Option<&'a str> {
        let s = f.item.as_str();
        if s.is_none() {
            self.wrong(f, expected);
        }
        s
    }

    /// The value as a boolean (`true or false`).
    pub fn bool(&mut self, f: &Field<'_>) -> Option<bool> {
        let b = f.item.as_bool();
        if b.is_none() {
            self.wrong(f, "true or false");
        }
        b
    }

    /// The value as an integer in `lo..=hi`.
    pub fn int(&mut self, f: &Field<'_>, lo: i64, hi: i64, expected: &str) -> Option<i64> {
        match f.item.as_integer() {
            Some(n) if (lo..=hi).contains(&n) => Some(n),
            Some(n) => {
                self.error(&f.pos, format!("`{}` must be {expected}, found {n}", f.key));
                None
            }
            None => {
                self.wrong(f, expected);
                None
            }
        }
    }

    /// The value as an array of strings, each with its place; an item that is not a string
    /// is reported and left out.
    pub fn strings<'a>(
        &mut self,
        src: &Src,
        f: &Field<'a>,
        expected: &str,
    ) -> Option<Vec<(&'a str, Pos)>> {
        let Some(array) = f.item.as_array() else {
            self.wrong(f, expected);
            return None;
        };
        let mut out = Vec::new();
        for (i, v) in array.iter().enumerate() {
            let pos = src.span_pos(v.span());
            match v.as_str() {
                Some(s) => out.push((s, pos)),
                None => {
                    self.error(
                        &pos,
                        format!(
                            "item {} of `{}` must be a string, found {}",
                            i + 1,
                            f.key,
                            describe_value(v)
                        ),
                    );
                }
            }
        }
        Some(out)
    }

    /// The value as a table (inline or not).
    pub fn table<'a>(&mut self, f: &Field<'a>, expected: &str) -> Option<&'a dyn TableLike> {
        let t = f.item.as_table_like();
        if t.is_none() {
            self.wrong(f, expected);
        }
        t
    }

    /// Records ``"`key` must be EXPECTED, found TYPE"``.
    pub fn wrong(&mut self, f: &Field<'_>, expected: &str) {
        self.error(
            &f.pos,
            format!("`{}` must be {expected}, found {}", f.key, describe(f.item)),
        );
    }
}

/// One key of a table with its value and places.
#[derive(Clone)]
pub(crate) struct Field<'a> {
    /// The key.
    pub key: &'a str,
    /// Its value.
    pub item: &'a Item,
    /// Where the key is.
    pub key_pos: Pos,
    /// Where the value is (the key when the value has no span of its own).
    pub pos: Pos,
}

/// The keys of one table, in document order, for typed access and unknown-key checks.
pub(super) struct Fields<'a> {
    /// What the table is, for messages: `node \`welcome\``, `[defaults]`.
    pub what: String,
    /// Where the table is named (for missing keys).
    pub here: Pos,
    entries: Vec<Field<'a>>,
}

impl<'a> Fields<'a> {
    /// Reads the keys of `table`.
    pub fn of(src: &Src, table: &'a dyn TableLike, what: String, here: Pos) -> Fields<'a> {
        Fields {
            what,
            here,
            entries: fields(src, table),
        }
    }

    /// The field called `key`.
    pub fn get(&self, key: &str) -> Option<&Field<'a>> {
        self.entries.iter().find(|f| f.key == key)
    }

    /// All fields, in document order.
    pub fn iter(&self) -> impl Iterator<Item = &Field<'a>> {
        self.entries.iter()
    }

    /// Records an error for every key not in `allowed`.
    pub fn unknown_keys(&self, allowed: &[&str], d: &mut Diags) {
        for f in self.entries.iter().filter(|f| !allowed.contains(&f.key)) {
            d.error(
                &f.key_pos,
                format!(
                    "unknown key `{}` in {}; expected one of: {}",
                    f.key,
                    self.what,
                    allowed.join(", ")
                ),
            );
        }
    }

    /// Records ``"WHAT has no `key`; expected …"`` at the table.
    pub fn missing(&self, key: &str, expected: &str, d: &mut Diags) {
        d.error(
            &self.here,
            format!("{} has no `{key}`; expected {expected}", self.what),
        );
    }
}

/// The keys of `table` with their places, in document order.
pub(crate) fn fields<'a>(src: &Src, table: &'a dyn TableLike) -> Vec<Field<'a>> {
    table
        .iter()
        .map(|(key, item)| {
            let key_span = table.key(key).and_then(|k| k.span());
            let key_pos = src.span_pos(key_span.clone());
            let pos = src.span_pos(item.span().or(key_span));
            Field {
                key,
                item,
                key_pos,
                pos,
            }
        })
        .collect()
}

/// The type of an item, for "found …".
pub(crate) fn describe(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => describe_value(v),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}

/// The type of a value, for "found …".
pub(crate) fn describe_value(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "a table",
    }
}

/// The tables of an array of tables or of an array of inline tables, with their places;
/// `None` (after recording an error) for anything else.
pub(super) fn tables<'a>(
    src: &Src,
    f: &Field<'a>,
    expected: &str,
    d: &mut Diags,
) -> Option<Vec<(&'a dyn TableLike, Pos)>> {
    match f.item {
        Item::ArrayOfTables(a) => Some(
            a.iter()
                .map(|t| (t as &dyn TableLike, src.span_pos(t.span())))
                .collect(),
        ),
        Item::Value(Value::Array(a)) => {
            let mut out = Vec::new();
            for (i, v) in a.iter().enumerate() {
                let pos = src.span_pos(v.span());
                match v.as_inline_table() {
                    Some(t) => out.push((t as &dyn TableLike, pos)),
                    None => d.error(
                        &pos,
                        format!(
                            "item {} of `{}` must be a table, found {}",
                            i + 1,
                            f.key,
                            describe_value(v)
                        ),
                    ),
                }
            }
            (out.len() == a.len()).then_some(out)
        }
        _ => {
            d.wrong(f, expected);
            None
        }
    }
}

/// Whether `s` is a name of a node, schedule, calendar, list, queue or sub-centre (or of a seat,
/// skill or language in the seats file): lower-case letters, digits and `-`.
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Whether `s` is a tag name (`[a-z0-9_-]+`).
pub(super) fn is_tag_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Whether `s` is a phone number (`[0-9+*#]+`).
pub(super) fn is_number(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '*' | '#'))
}
