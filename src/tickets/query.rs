//! Queries for people: listing records with filters (`hotline records`) and the assessment
//! figures (监督考核) computed from the store per local day and hotline, and their rendering as
//! a table, JSON or CSV. The figures per seat and per queue are in [`super::figures`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use rusqlite::types::Value;
use serde::Serialize;

use super::record::{CallRecord, Timestamp};
use super::store::{millis, Store, StoreError};

/// Which records [`Store::records`] returns; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// Arrived at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Arrived before this instant.
    pub until: Option<DateTime<Utc>>,
    /// The caller's number or the number dialled equals this (exact match).
    pub number: Option<String>,
    /// The record's hotline equals this.
    pub hotline: Option<String>,
    /// Most records returned (the newest); 0 = no limit.
    pub limit: usize,
}

/// The assessment figures of one hotline on one local day (calls counted on the day they
/// arrived, in the given UTC offset). Every call record counts, finished or not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// The local day the calls arrived.
    pub day: NaiveDate,
    /// The hotline (`line` of the dialplan); "" for calls to numbers that are no declared
    /// hotline (refused calls, mostly).
    pub hotline: String,
    /// Calls offered: every call that arrived (answered or not, refused included, and calls
    /// that are still running or were left unfinished by an engine stop).
    pub offered: u64,
    /// Calls a person (seat) or a sub-centre answered: `times.person_answered` is set.
    pub answered: u64,
    /// Calls the caller hung up before a person answered, wherever the caller was (menu, queue,
    /// ringing sub-centre): `end.by == "caller"` and `times.person_answered` is not set.
    pub abandoned: u64,
    /// Answered calls where the person answered at most 15 s after the call was handed on to
    /// people: from `times.queued`, else the first transfer's `started`, else
    /// `times.navigation_ended`, else `times.arrived`.
    pub answered_within_15s: u64,
    /// `answered / offered` (0 when nothing was offered).
    pub connection_rate: f64,
    /// Mean of the records' `wait_s` (arrival to a person answering) over answered calls; 0
    /// when none was answered.
    pub average_wait_s: f64,
    /// Mean of the records' `talk_s` over answered calls; 0 when none was answered.
    pub average_talk_s: f64,
    /// Share of the day's survey answers that are 4 or 5; `None` when no call has one.
    pub satisfaction_rate: Option<f64>,
    /// Calls with a callback request (nothing marks a callback done yet, so every request
    /// counts as pending).
    pub callbacks_pending: u64,
}

/// Limit on how long after the hand-over an answer counts for `answered_within_15s`.
pub(super) const ANSWER_TARGET_MS: i64 = 15_000;

impl Store {
    /// The records matching `filter`, newest (by arrival) first.
    pub fn records(&self, filter: &RecordFilter) -> Result<Vec<CallRecord>, StoreError> {
        let mut sql = String::from("SELECT id, record FROM calls WHERE 1 = 1");
        let mut values: Vec<Value> = Vec::new();
        if let Some(since) = filter.since {
            values.push(Value::Integer(millis(since)));
            let _ = write!(sql, " AND arrived_ms >= ?{}", values.len());
        }
        if let Some(until) = filter.until {
            values.push(Value::Integer(millis(until)));
            let _ = write!(sql, " AND arrived_ms < ?{}", values.len());
        }
        if let Some(number) = &filter.number {
            values.push(Value::Text(number.clone()));
            let n = values.len();
            let _ = write!(sql, " AND (caller = ?{n} OR dialled = ?{n})");
        }
        if let Some(hotline) = &filter.hotline {
            values.push(Value::Text(hotline.clone()));
            let _ = write!(sql, " AND hotline = ?{}", values.len());
        }
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        values.push(Value::Integer(if limit == 0 { -1 } else { limit }));
        let _ = write!(
            sql,
            " ORDER BY arrived_ms DESC, id DESC LIMIT ?{}",
            values.len()
        );
        self.select(&sql, rusqlite::params_from_iter(values))
    }

    /// The assessment figures of calls that arrived in `[since, until)`, one entry per local day
    /// (UTC offset `utc_offset_s`) and hotline, ordered by day then hotline. See [`Figures`] for
    /// the definitions.
    pub fn figures(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        utc_offset_s: i32,
    ) -> Result<Vec<Figures>, StoreError> {
        let records = self.records(&RecordFilter {
            since,
            until,
            ..RecordFilter::default()
        })?;
        Ok(figures_of(&records, utc_offset_s))
    }
}

/// Running sums for one day and hotline.
#[derive(Default)]
struct Sums {
    /// Calls.
    offered: u64,
    /// Answered by a person.
    answered: u64,
    /// Caller hung up first.
    abandoned: u64,
    /// Answered within 15 s of the hand-over.
    within_15s: u64,
    /// Sum of `wait_s` over answered calls.
    wait_s: f64,
    /// Sum of `talk_s` over answered calls.
    talk_s: f64,
    /// Survey answers.
    surveys: u64,
    /// Survey answers of 4 or 5.
    satisfied: u64,
    /// Callback requests.
    callbacks: u64,
}

/// When the call was handed on to people (the start of the 15 s target).
fn handed_on(record: &CallRecord) -> Timestamp {
    record
        .times
        .queued
        .or_else(|| record.transfers.first().map(|t| t.started))
        .or(record.times.navigation_ended)
        .unwrap_or(record.times.arrived)
}

/// The local day of `at` at `utc_offset_s`.
pub(super) fn local_day(at: Timestamp, utc_offset_s: i32) -> NaiveDate {
    (at.naive_utc() + Duration::seconds(i64::from(utc_offset_s))).date()
}

/// Compute [`Figures`] from records (any order).
pub fn figures_of(records: &[CallRecord], utc_offset_s: i32) -> Vec<Figures> {
    let mut groups: BTreeMap<(NaiveDate, String), Sums> = BTreeMap::new();
    for record in records {
        let key = (
            local_day(record.times.arrived, utc_offset_s),
            record.hotline.clone().unwrap_or_default(),
        );
        let sums = groups.entry(key).or_default();
        sums.offered += 1;
        match record.times.person_answered {
            Some(answered) => {
                sums.answered += 1;
                sums.wait_s += record.wait_s;
                sums.talk_s += record.talk_s;
                if (answered - handed_on(record)).num_milliseconds() <= ANSWER_TARGET_MS {
                    sums.within_15s += 1;
                }
            }
            None => {
                if record.end.as_ref().is_some_and(|end| end.by == "caller") {
                    sums.abandoned += 1;
                }
            }
        }
        if let Some(survey) = record.survey {
            sums.surveys += 1;
            if survey >= 4 {
                sums.satisfied += 1;
            }
        }
        if record.callback.is_some() {
            sums.callbacks += 1;
        }
    }
    groups
        .into_iter()
        .map(|((day, hotline), s)| Figures {
            day,
            hotline,
            offered: s.offered,
            answered: s.answered,
            abandoned: s.abandoned,
            answered_within_15s: s.within_15s,
            connection_rate: ratio(s.answered as f64, s.offered),
            average_wait_s: ratio(s.wait_s, s.answered),
            average_talk_s: ratio(s.talk_s, s.answered),
            satisfaction_rate: (s.surveys > 0).then(|| ratio(s.satisfied as f64, s.surveys)),
            callbacks_pending: s.callbacks,
        })
        .collect()
}

/// `part / whole`, 0 when `whole` is 0.
pub(super) fn ratio(part: f64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part / whole as f64
    }
}

/// An output format of `hotline records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// A JSON array (records in their contract form, times in UTC).
    Json,
    /// Comma-separated values with a header line (RFC 4180 quoting).
    Csv,
}

/// Parse a UTC offset written `+08:00`, `+0800`, `+8`, `-05:30` or `Z`; returns seconds east.
pub fn parse_utc_offset(text: &str) -> Result<i32, String> {
    let bad = || format!("`{text}` is not a UTC offset; write e.g. \"+08:00\" or \"-05:30\"");
    let text = text.trim();
    if text.eq_ignore_ascii_case("z") {
        return Ok(0);
    }
    let (sign, rest) = match text.split_at_checked(1) {
        Some(("+", rest)) => (1, rest),
        Some(("-", rest)) => (-1, rest),
        _ => return Err(bad()),
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let all_digits =
        |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(hours) || !all_digits(minutes) {
        return Err(bad());
    }
    let hours: i32 = hours.parse().map_err(|_| bad())?;
    let minutes: i32 = minutes.parse().map_err(|_| bad())?;
    if hours > 14 || minutes > 59 {
        return Err(bad());
    }
    Ok(sign * (hours * 3600 + minutes * 60))
}

/// The fixed offset for `utc_offset_s` (clamped to less than a day).
pub fn offset(utc_offset_s: i32) -> FixedOffset {
    FixedOffset::east_opt(utc_offset_s.clamp(-86_399, 86_399)).unwrap_or(Utc.fix())
}

/// Parse a local time given on the command line: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` (also
/// with `T`) in the offset `utc_offset_s`, or RFC 3339 with its own offset. A date alone is its
/// midnight, or with `end_of_day` the next midnight (so `--until 2025-03-01` includes that day).
pub fn parse_local_time(
    text: &str,
    utc_offset_s: i32,
    end_of_day: bool,
) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let local = offset(utc_offset_s);
    for format in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return to_utc(local, at);
        }
    }
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(day) => {
            let day = if end_of_day {
                day.succ_opt()
                    .ok_or_else(|| format!("`{text}` is out of range"))?
            } else {
                day
            };
            to_utc(local, day.and_time(chrono::NaiveTime::MIN))
        }
        Err(_) => Err(format!(
            "`{text}` is not a time; write \"YYYY-MM-DD\" or \"YYYY-MM-DD HH:MM\" (local time)"
        )),
    }
}

/// A local time at `local` as UTC.
fn to_utc(local: FixedOffset, at: NaiveDateTime) -> Result<DateTime<Utc>, String> {
    local
        .from_local_datetime(&at)
        .single()
        .map(|at| at.with_timezone(&Utc))
        .ok_or_else(|| format!("{at} does not exist in UTC offset {local}"))
}

/// Render records in `format`, times shown at `utc_offset_s` (table and CSV).
pub fn render_records(
    records: &[CallRecord],
    format: Format,
    utc_offset_s: i32,
) -> Result<String, serde_json::Error> {
    let local = offset(utc_offset_s);
    let time = |at: Timestamp| at.with_timezone(&local);
    match format {
        Format::Json => json(records),
        Format::Table => {
            if records.is_empty() {
                return Ok("no call records match\n".to_owned());
            }
            let header = [
                "id", "arrived", "caller", "dialled", "hotline", "wait", "talk", "end", "tags",
            ];
            let rows = records.iter().map(|r| {
                vec![
                    r.id.chars().take(8).collect(),
                    time(r.times.arrived)
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string(),
                    r.caller.number.clone(),
                    r.dialled.clone(),
                    r.hotline.clone().unwrap_or_else(|| "-".to_owned()),
                    format!("{:.1}s", r.wait_s),
                    format!("{:.1}s", r.talk_s),
                    end_text(r),
                    tags_text(r, ","),
                ]
            });
            Ok(table(&header, rows))
        }
        Format::Csv => {
            let header = [
                "id",
                "arrived",
                "caller",
                "dialled",
                "hotline",
                "merge_mode",
                "wait_s",
                "talk_s",
                "person_answered",
                "ended",
                "end_by",
                "end_cause",
                "sip_status",
                "survey",
                "callback",
                "tags",
            ];
            let optional_time = |at: Option<Timestamp>| at.map(|at| time(at).to_rfc3339());
            let rows = records.iter().map(|r| {
                vec![
                    r.id.clone(),
                    time(r.times.arrived).to_rfc3339(),
                    r.caller.number.clone(),
                    r.dialled.clone(),
                    r.hotline.clone().unwrap_or_default(),
                    r.merge_mode.clone().unwrap_or_default(),
                    format!("{:.3}", r.wait_s),
                    format!("{:.3}", r.talk_s),
                    optional_time(r.times.person_answered).unwrap_or_default(),
                    optional_time(r.times.ended).unwrap_or_default(),
                    r.end.as_ref().map(|e| e.by.clone()).unwrap_or_default(),
                    r.end.as_ref().map(|e| e.cause.clone()).unwrap_or_default(),
                    r.end
                        .as_ref()
                        .and_then(|e| e.sip_status)
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    r.survey.map(|s| s.to_string()).unwrap_or_default(),
                    r.callback
                        .as_ref()
                        .map(|c| c.number.clone())
                        .unwrap_or_default(),
                    tags_text(r, ";"),
                ]
            });
            Ok(csv(&header, rows))
        }
    }
}

/// Render figures in `format`.
pub fn render_figures(figures: &[Figures], format: Format) -> Result<String, serde_json::Error> {
    render_rows(figures, format)
}

impl FigureRow for Figures {
    const COLUMNS: &'static [Column<Self>] = &[
        ("day", "day", |f| Cell::Text(f.day.to_string())),
        ("hotline", "hotline", |f| Cell::Name(f.hotline.clone())),
        ("offered", "offered", |f| Cell::Count(f.offered)),
        ("answered", "answered", |f| Cell::Count(f.answered)),
        ("abandoned", "abandoned", |f| Cell::Count(f.abandoned)),
        ("within_15s", "answered_within_15s", |f| {
            Cell::Count(f.answered_within_15s)
        }),
        ("connection", "connection_rate", |f| {
            Cell::Rate(f.connection_rate)
        }),
        ("avg_wait", "average_wait_s", |f| {
            Cell::Seconds(f.average_wait_s)
        }),
        ("avg_talk", "average_talk_s", |f| {
            Cell::Seconds(f.average_talk_s)
        }),
        ("satisfaction", "satisfaction_rate", |f| {
            Cell::MaybeRate(f.satisfaction_rate)
        }),
        ("callbacks", "callbacks_pending", |f| {
            Cell::Count(f.callbacks_pending)
        }),
    ];
    const NO_ROWS: &'static str = "no calls in this period\n";
}

/// A column of figures: its header in a table, its header in CSV, and its cell in a row.
pub(super) type Column<T> = (&'static str, &'static str, fn(&T) -> Cell);

/// One row of figures (per day and hotline, seat or queue), for [`render_rows`].
pub(super) trait FigureRow: Serialize + Sized + 'static {
    /// The columns, in order.
    const COLUMNS: &'static [Column<Self>];
    /// What a table says when there is no row.
    const NO_ROWS: &'static str;
}

/// A cell of a figures row, shown one way in a table and another in CSV.
pub(super) enum Cell {
    /// A day or a name, shown as it is.
    Text(String),
    /// A name shown as `-` in a table when empty.
    Name(String),
    /// A count.
    Count(u64),
    /// Seconds: `12.3s` in a table, `12.345` in CSV.
    Seconds(f64),
    /// A rate: `87.5%` in a table, `0.8750` in CSV.
    Rate(f64),
    /// A rate that may be missing: `-` in a table, empty in CSV.
    MaybeRate(Option<f64>),
}

impl Cell {
    /// As shown in a table.
    fn table(&self) -> String {
        match self {
            Cell::Name(text) if text.is_empty() => "-".to_owned(),
            Cell::Text(text) | Cell::Name(text) => text.clone(),
            Cell::Count(n) => n.to_string(),
            Cell::Seconds(s) => format!("{s:.1}s"),
            Cell::Rate(rate) => percent(*rate),
            Cell::MaybeRate(rate) => rate.map_or_else(|| "-".to_owned(), percent),
        }
    }

    /// As written in CSV.
    fn csv(&self) -> String {
        match self {
            Cell::Text(text) | Cell::Name(text) => text.clone(),
            Cell::Count(n) => n.to_string(),
            Cell::Seconds(s) => format!("{s:.3}"),
            Cell::Rate(rate) => format!("{rate:.4}"),
            Cell::MaybeRate(rate) => rate.map(|r| format!("{r:.4}")).unwrap_or_default(),
        }
    }
}

/// A rate as a percentage with one decimal (`87.5%`).
fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// Render rows of figures in `format` (JSON: the array of rows).
pub(super) fn render_rows<T: FigureRow>(
    rows: &[T],
    format: Format,
) -> Result<String, serde_json::Error> {
    let header = T::COLUMNS.iter();
    let cells = |show: fn(&Cell) -> String| {
        rows.iter()
            .map(move |row| T::COLUMNS.iter().map(|c| show(&c.2(row))).collect())
    };
    match format {
        Format::Json => json(rows),
        Format::Table if rows.is_empty() => Ok(T::NO_ROWS.to_owned()),
        Format::Table => Ok(table(
            &header.map(|c| c.0).collect::<Vec<_>>(),
            cells(Cell::table),
        )),
        Format::Csv => Ok(csv(
            &header.map(|c| c.1).collect::<Vec<_>>(),
            cells(Cell::csv),
        )),
    }
}

/// Pretty JSON with a final newline.
fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text)
}

/// `by/cause[/status]`, or `unfinished` for a progress row.
fn end_text(record: &CallRecord) -> String {
    match &record.end {
        None => "unfinished".to_owned(),
        Some(end) => match end.sip_status {
            Some(status) => format!("{}/{}/{status}", end.by, end.cause),
            None => format!("{}/{}", end.by, end.cause),
        },
    }
}

/// Tags as `key=value` joined by `separator`.
fn tags_text(record: &CallRecord, separator: &str) -> String {
    record
        .tags
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(separator)
}

/// Columns a character takes in a terminal: 2 for East Asian wide characters, else 1.
fn char_width(c: char) -> usize {
    let wide = matches!(u32::from(c),
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x20000..=0x3FFFD);
    if wide {
        2
    } else {
        1
    }
}

/// Columns `text` takes in a terminal.
pub fn display_width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    lines.extend(rows);
    let mut widths = vec![0; header.len()];
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(display_width(cell));
        }
    }
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < line.len() {
                let pad = widths[i].saturating_sub(display_width(cell));
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// CSV with a header line; lines end with CRLF as RFC 4180 says.
fn csv(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut out = header.join(",");
    out.push_str("\r\n");
    for row in rows {
        let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_offsets() {
        assert_eq!(parse_utc_offset("+08:00"), Ok(8 * 3600));
        assert_eq!(parse_utc_offset("+0800"), Ok(8 * 3600));
        assert_eq!(parse_utc_offset("+8"), Ok(8 * 3600));
        assert_eq!(parse_utc_offset("-05:30"), Ok(-(5 * 3600 + 1800)));
        assert_eq!(parse_utc_offset("Z"), Ok(0));
        for bad in ["08:00", "+8:60", "+15", "", "+", "+a", "+08:00:00"] {
            assert!(parse_utc_offset(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_times() {
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let eight = 8 * 3600;
        assert_eq!(
            parse_local_time("2025-03-01", eight, false),
            Ok(utc("2025-02-28T16:00:00Z"))
        );
        assert_eq!(
            parse_local_time("2025-03-01", eight, true),
            Ok(utc("2025-03-01T16:00:00Z"))
        );
        assert_eq!(
            parse_local_time("2025-03-01 09:30", eight, true),
            Ok(utc("2025-03-01T01:30:00Z"))
        );
        assert_eq!(
            parse_local_time("2025-03-01T09:30:00Z", eight, false),
            Ok(utc("2025-03-01T09:30:00Z"))
        );
        assert!(parse_local_time("yesterday", eight, false).is_err());
    }

    #[test]
    fn table_aligns_wide_characters() {
        let text = table(
            &["a", "b"],
            vec![
                vec!["话题".to_owned(), "x".to_owned()],
                vec!["abc".to_owned(), "y".to_owned()],
            ]
            .into_iter(),
        );
        assert_eq!(text, "a     b\n话题  x\nabc   y\n");
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
