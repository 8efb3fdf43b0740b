//! Finding keys in the configuration text: which key an error span belongs to, and where the
//! value of a given key starts. Built from a second, schema-free parse that records key spans.

use std::fmt;
use std::ops::Range;

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// One key of the document: its dotted path and the byte span of the key itself.
#[derive(Debug, Clone)]
pub(crate) struct KeyEntry {
    /// Path from the root, e.g. `["sip", "listen"]`.
    pub path: Vec<String>,
    /// Byte range of the key text.
    pub span: Range<usize>,
}

impl KeyEntry {
    /// The dotted path, e.g. `sip.listen`.
    pub fn dotted(&self) -> String {
        self.path.join(".")
    }
}

/// Every key of a parsed document, in document order.
#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    /// The keys, sorted by position.
    entries: Vec<KeyEntry>,
}

impl KeyIndex {
    /// Parse `text` as TOML without a schema; a failure is a TOML syntax error.
    pub fn parse(text: &str) -> Result<KeyIndex, toml::de::Error> {
        let root: Node = toml::from_str(text)?;
        let mut entries = Vec::new();
        root.collect(&mut Vec::new(), &mut entries);
        entries.sort_by_key(|e| e.span.start);
        Ok(KeyIndex { entries })
    }

    /// The key an error at `span` refers to: the key at the span, or the one owning the value there.
    pub fn key_at(&self, text: &str, span: &Range<usize>) -> Option<&KeyEntry> {
        if let Some(exact) = self.entries.iter().find(|e| e.span == *span) {
            return Some(exact);
        }
        // An error covering a table header (e.g. `[[sip]]`): the first key inside it.
        if line_of(text, span.start).trim_start().starts_with('[') {
            let end = span.end.max(span.start + 1);
            if let Some(inside) = self
                .entries
                .iter()
                .find(|e| e.span.start >= span.start && e.span.start < end)
            {
                return Some(inside);
            }
        }
        // A value: the nearest key before it owns it.
        self.entries
            .iter()
            .rev()
            .find(|e| e.span.start <= span.start)
    }

    /// The last entry with this dotted path.
    pub fn find(&self, dotted: &str) -> Option<&KeyEntry> {
        self.entries.iter().rev().find(|e| e.dotted() == dotted)
    }

    /// Whether the document sets this dotted path.
    pub fn contains(&self, dotted: &str) -> bool {
        self.find(dotted).is_some()
    }
}

/// Byte offset where the value of `entry` starts (after `=`), or the key itself for headers.
pub(crate) fn value_offset(text: &str, entry: &KeyEntry) -> usize {
    let rest = text.get(entry.span.end..).unwrap_or("");
    let after_ws = rest.trim_start_matches([' ', '\t']);
    match after_ws.strip_prefix('=') {
        Some(value) => {
            let value = value.trim_start_matches([' ', '\t']);
            text.len() - value.len()
        }
        None => entry.span.start,
    }
}

/// The text of the line containing byte `offset`.
pub(crate) fn line_of(text: &str, offset: usize) -> &str {
    let offset = floor_char_boundary(text, offset);
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    &text[start..end]
}

/// 1-based line and column (in characters) of byte `offset`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Best-effort key for a syntax error: `section.key` from the `[section]` and `key =` text.
pub(crate) fn key_from_text(text: &str, offset: usize) -> Option<String> {
    let offset = floor_char_boundary(text, offset);
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..offset];
    let key = before.split_once('=')?.0.trim().trim_matches(['"', '\'']);
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let section = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .and_then(|l| l.strip_prefix('['))
        .and_then(|l| l.split(']').next())
        .map(str::trim);
    Some(match section {
        Some(s) if !s.is_empty() => format!("{s}.{key}"),
        _ => key.to_owned(),
    })
}

/// Clamp `offset` into `text` and move it back onto a char boundary.
fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// A schema-free view of a TOML document that keeps the spans of keys.
#[derive(Debug)]
enum Node {
    /// A table (header table, dotted table or inline table).
    Table(Vec<(Spanned<String>, Node)>),
    /// An array (of values or of tables).
    Array(Vec<Node>),
    /// A scalar.
    Leaf,
}

impl Node {
    /// Append every key under this node to `out`, with `prefix` as the path so far.
    fn collect(self, prefix: &mut Vec<String>, out: &mut Vec<KeyEntry>) {
        match self {
            Node::Table(items) => {
                for (key, child) in items {
                    let span = key.span();
                    prefix.push(key.into_inner());
                    out.push(KeyEntry {
                        path: prefix.clone(),
                        span,
                    });
                    child.collect(prefix, out);
                    prefix.pop();
                }
            }
            Node::Array(items) => {
                for child in items {
                    child.collect(prefix, out);
                }
            }
            Node::Leaf => {}
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// Visitor building a [`Node`] from any TOML value.
struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        loop {
            // Date-times arrive as a map with an unspanned private key: treat them as a leaf.
            let key = match map.next_key::<Spanned<String>>() {
                Ok(Some(key)) => key,
                Ok(None) => break,
                Err(_) => return Ok(Node::Leaf),
            };
            let value = map.next_value::<Node>()?;
            items.push((key, value));
        }
        Ok(Node::Table(items))
    }
}
