//! Places in the seats file (byte offset → line:column in characters) and the problems found
//! in it, reported as [`Diagnostic`]s like the dialplan loader's.

use std::ops::Range;

use toml_edit::{Item, TableLike, Value};

use crate::dialplan::{Diagnostic, Severity};

/// The seats file's text, indexed by line, and the problems found in it so far.
pub(super) struct Report<'t> {
    /// The file as shown in messages.
    file: &'t str,
    /// Its text (without a byte order mark).
    text: &'t str,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    /// In the order found.
    list: Vec<Diagnostic>,
}

impl<'t> Report<'t> {
    /// Indexes `text`, shown as `file`.
    pub fn new(file: &'t str, text: &'t str) -> Report<'t> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Report {
            file,
            text,
            line_starts,
            list: Vec::new(),
        }
    }

    /// The 1-based line and column (in characters) of a byte offset.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let column = match self.text.get(start..offset) {
            Some(s) => s.chars().count() + 1,
            None => offset - start + 1,
        };
        (line, column)
    }

    /// `FILE:LINE:COL` of a byte offset, for "first at ..." in messages.
    pub fn place(&self, offset: usize) -> String {
        let (line, column) = self.line_col(offset);
        format!("{}:{line}:{column}", self.file)
    }

    /// Records an error at a byte offset.
    pub fn error(&mut self, offset: usize, message: impl Into<String>) {
        self.push(offset, Severity::Error, message.into());
    }

    /// Records a warning at a byte offset.
    pub fn warning(&mut self, offset: usize, message: impl Into<String>) {
        self.push(offset, Severity::Warning, message.into());
    }

    fn push(&mut self, offset: usize, severity: Severity, message: String) {
        let (line, column) = self.line_col(offset);
        self.list.push(Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            severity,
            message,
        });
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|d| d.severity == Severity::Error)
    }

    /// Every problem, sorted by place.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.list.sort_by_key(|d| (d.line, d.column));
        self.list
    }
}

/// One key of a table with its value and the byte offsets of both.
pub(super) struct Field<'a> {
    /// The key.
    pub key: &'a str,
    /// Its value.
    pub item: &'a Item,
    /// Where the key is.
    pub key_at: usize,
    /// Where the value is (the key when the value has no span of its own).
    pub at: usize,
}

/// The keys of `table` in document order.
pub(super) fn fields(table: &dyn TableLike) -> Vec<Field<'_>> {
    table
        .iter()
        .map(|(key, item)| {
            let key_span = table.key(key).and_then(|k| k.span());
            let key_at = start(key_span.clone());
            Field {
                key,
                item,
                key_at,
                at: start(item.span().or(key_span)),
            }
        })
        .collect()
}

/// The start of a span, or the start of the file when there is none.
pub(super) fn start(span: Option<Range<usize>>) -> usize {
    span.map_or(0, |r| r.start)
}

/// The type of an item, for "found …".
pub(super) fn describe(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => describe_value(v),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}

/// The type of a value, for "found …".
pub(super) fn describe_value(v: &Value) -> &'static str {
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

/// Whether `s` is a seat id, skill or language name: lower-case letters, digits and `-`.
pub(super) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
