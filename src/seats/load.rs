//! Reads the seats file (`docs/seats.md`) by hand with `toml_edit`, so that every problem is
//! reported at its place and one bad value does not hide the others.

use std::collections::HashMap;
use std::path::Path;

use toml_edit::{ImDocument, TableLike};

use super::seat::seat;
use super::SeatBook;
use crate::dialplan::load::spans::{describe, fields, Diags, Pos, Src};
use crate::dialplan::{Diagnostic, Severity};

/// Reads and checks the seats file at `path`: the book and its warnings, or every problem.
/// A missing file gives an empty book and a warning: the engine runs without seats.
pub fn load(path: &Path) -> Result<(SeatBook, Vec<Diagnostic>), Vec<Diagnostic>> {
    let file = path.display().to_string();
    let at_start = |severity, message: String| Diagnostic {
        file: file.clone(),
        line: 1,
        column: 1,
        severity,
        message,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let message = "the seats file does not exist; the engine runs without seats \
                           (see docs/seats.md)";
            return Ok((
                SeatBook::default(),
                vec![at_start(Severity::Warning, message.into())],
            ));
        }
        Err(e) => {
            let message = format!("cannot read the seats file: {e}");
            return Err(vec![at_start(Severity::Error, message)]);
        }
    };
    match std::str::from_utf8(&bytes) {
        Ok(text) => parse(text, &file),
        Err(e) => {
            let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let valid = std::str::from_utf8(valid).unwrap_or_default();
            let src = Src::new(file, valid.to_string());
            let mut d = Diags::default();
            d.error(
                &src.pos(e.valid_up_to()),
                "the file is not UTF-8 text; save it as UTF-8",
            );
            Err(d.finish())
        }
    }
}

/// Same as [`load`] for the text of a seats file shown as `file` in messages.
pub fn parse(text: &str, file: &str) -> Result<(SeatBook, Vec<Diagnostic>), Vec<Diagnostic>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let src = Src::new(file.to_string(), text.to_string());
    let mut d = Diags::default();
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            d.syntax(&src, &e);
            return Err(d.finish());
        }
    };
    let mut book = SeatBook::default();
    let mut seats_found = false;
    for f in fields(&src, doc.as_table()) {
        if f.key != "seats" {
            d.error(
                &f.key_pos,
                format!(
                    "unknown key `{}` at top level; expected only [seats.ID] tables",
                    f.key
                ),
            );
            continue;
        }
        seats_found = true;
        let Some(table) = f.item.as_table_like() else {
            d.error(
                &f.pos,
                format!(
                    "`seats` must be a table of seats ([seats.ID]), found {}",
                    describe(f.item)
                ),
            );
            continue;
        };
        for seat_field in fields(&src, table) {
            if let Some(seat) = seat(&src, &mut d, &seat_field) {
                book.seats.push(seat);
            }
        }
    }
    if book.seats.is_empty() && !d.has_errors() {
        let message = match seats_found {
            true => "no seat is declared; the engine runs without seats",
            false => "no [seats.ID] table; the engine runs without seats",
        };
        d.warning(&src.pos(0), message);
    }
    unique(&src, &mut d, doc.as_table());
    if d.has_errors() {
        return Err(d.finish());
    }
    Ok((book, d.finish()))
}

/// Usernames and tokens must each belong to one seat only.
fn unique(src: &Src, d: &mut Diags, root: &dyn TableLike) {
    let Some(seats) = root.get("seats").and_then(|s| s.as_table_like()) else {
        return;
    };
    let mut usernames: HashMap<&str, (Pos, &str)> = HashMap::new();
    let mut tokens: HashMap<&str, (Pos, &str)> = HashMap::new();
    for seat in fields(src, seats) {
        let Some(table) = seat.item.as_table_like() else {
            continue;
        };
        for f in fields(src, table) {
            let (seen, word) = match f.key {
                "username" => (&mut usernames, "username"),
                "token" => (&mut tokens, "token"),
                _ => continue,
            };
            let Some(value) = f.item.as_str() else {
                continue;
            };
            match seen.get(value) {
                Some((place, first_id)) => {
                    // A token is a secret: name the seats, never the value.
                    let shown = match word {
                        "token" => String::new(),
                        _ => format!(" \"{value}\""),
                    };
                    d.error(
                        &f.pos,
                        format!(
                            "seat `{}` has the same {word}{shown} as seat `{first_id}` \
                             (at {place}); each seat needs its own",
                            seat.key
                        ),
                    );
                }
                None => {
                    seen.insert(value, (f.pos, seat.key));
                }
            }
        }
    }
}
