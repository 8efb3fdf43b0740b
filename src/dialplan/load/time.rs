//! `[calendars.NAME]` and `[schedules.NAME]`: dates, date ranges and opening hours.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::shared::two_digits;
use super::spans::{Field, Src};
use super::{Kind, Loader};
use crate::dialplan::model::{Calendar, CalendarId, Interval, Schedule, ScheduleId};

/// The keys of a calendar.
const CALENDAR_KEYS: &[&str] = &["holidays", "workdays"];
/// The keys of a schedule.
const SCHEDULE_KEYS: &[&str] = &["always", "hours", "calendar"];
/// Day names, Monday first.
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// The longest date range accepted, in days.
const MAX_RANGE_DAYS: i64 = 366;
/// What a date entry must be.
const DATES: &str = "a list of dates \"YYYY-MM-DD\" or ranges \"YYYY-MM-DD..YYYY-MM-DD\"";
/// What an hours entry must be.
const HOURS: &str = "\"DAYS HH:MM-HH:MM\", e.g. \"mon-fri 08:30-12:00\" or \"sat,sun 09:00-12:00\"";

/// Every `[calendars.NAME]`.
pub(super) fn calendars(l: &mut Loader<'_>) {
    for s in l.decl.calendars.decls.clone() {
        let fields = s.fields(format!("[calendars.{}]", s.name));
        fields.unknown_keys(CALENDAR_KEYS, &mut l.d);
        let holidays = dates(l, s.src, fields.get("holidays"));
        let workdays = dates(l, s.src, fields.get("workdays"));
        if let (Some(both), Some(f)) = (
            holidays.intersection(&workdays).next(),
            fields.get("workdays"),
        ) {
            l.d.error(
                &f.pos,
                format!("{both} is both a holiday and a workday; expected it in one list only"),
            );
        }
        l.plan.calendars.push(Calendar {
            name: s.name.to_string(),
            holidays,
            workdays,
        });
    }
}

/// `holidays` or `workdays`: every date of every entry.
fn dates(l: &mut Loader<'_>, src: &Src, f: Option<&Field<'_>>) -> BTreeSet<NaiveDate> {
    let mut out = BTreeSet::new();
    let Some(list) = f.and_then(|f| l.d.strings(src, f, DATES)) else {
        return out;
    };
    for (text, pos) in list {
        match parse_dates(text) {
            Ok(range) => out.extend(range),
            Err(e) => l.d.error(&pos, e),
        }
    }
    out
}

/// `"YYYY-MM-DD"` or an inclusive `"YYYY-MM-DD..YYYY-MM-DD"`.
fn parse_dates(text: &str) -> Result<Vec<NaiveDate>, String> {
    let bad = || {
        format!("\"{text}\" is not a date; expected \"YYYY-MM-DD\" or \"YYYY-MM-DD..YYYY-MM-DD\"")
    };
    let (first, last) = match text.split_once("..") {
        Some((a, b)) => (
            parse_date(a).ok_or_else(bad)?,
            parse_date(b).ok_or_else(bad)?,
        ),
        None => {
            let day = parse_date(text).ok_or_else(bad)?;
            (day, day)
        }
    };
    let days = (last - first).num_days();
    if days < 0 {
        return Err(format!(
            "the range \"{text}\" ends before it starts; expected \"FIRST..LAST\""
        ));
    }
    if days >= MAX_RANGE_DAYS {
        return Err(format!(
            "the range \"{text}\" is longer than {MAX_RANGE_DAYS} days; expected a holiday period"
        ));
    }
    Ok(first.iter_days().take(days as usize + 1).collect())
}

/// `"YYYY-MM-DD"`, strictly.
pub(super) fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let year = i32::try_from(digits(&text[0..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(&text[5..7])?, digits(&text[8..10])?)
}

/// Every `[schedules.NAME]`.
pub(super) fn schedules(l: &mut Loader<'_>) {
    for s in l.decl.schedules.decls.clone() {
        let fields = s.fields(format!("[schedules.{}]", s.name));
        fields.unknown_keys(SCHEDULE_KEYS, &mut l.d);
        let always = fields
            .get("always")
            .and_then(|f| l.d.bool(f))
            .unwrap_or(false);
        let mut hours = Vec::new();
        match (always, fields.get("hours")) {
            (true, Some(f)) => l.d.error(
                &f.key_pos,
                "`hours` is not allowed with `always = true`; expected one or the other",
            ),
            (false, None) => {
                // A non-boolean `always` was reported already.
                let always_ok = fields.get("always").is_none_or(|f| f.item.is_bool());
                if always_ok {
                    fields.missing(
                        "hours",
                        &format!("a list of {HOURS}, or `always = true`"),
                        &mut l.d,
                    );
                }
            }
            (false, Some(f)) => {
                if let Some(list) = l.d.strings(s.src, f, &format!("a list of {HOURS}")) {
                    if list.is_empty() {
                        l.d.error(
                            &f.pos,
                            format!("`hours` is empty; expected at least one {HOURS}"),
                        );
                    }
                    for (text, pos) in list {
                        match parse_hours(text) {
                            Ok(interval) => hours.push(interval),
                            Err(e) => l.d.error(&pos, format!("hours \"{text}\": {e}")),
                        }
                    }
                }
            }
            (true, None) => {}
        }
        let calendar = fields
            .get("calendar")
            .and_then(|f| l.resolve(Kind::Calendar, f))
            .map(CalendarId);
        l.plan.schedules.push(Schedule {
            name: s.name.to_string(),
            always,
            hours,
            calendar,
        });
    }
}

/// Resolves `schedule = "NAME"`.
pub(super) fn schedule_ref(l: &mut Loader<'_>, f: &Field<'_>) -> Option<ScheduleId> {
    l.resolve(Kind::Schedule, f).map(ScheduleId)
}

/// `"mon-fri 08:30-12:00"`; the error says what is wrong.
pub(super) fn parse_hours(text: &str) -> Result<Interval, String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [days, times] = parts[..] else {
        return Err(format!("expected {HOURS}"));
    };
    let mut set = [false; 7];
    for item in days.split(',') {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut d = a;
                loop {
                    set[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => set[day(item)?] = true,
        }
    }
    let Some((start, end)) = times.split_once('-') else {
        return Err(format!(
            "`{times}` is not a time range; expected HH:MM-HH:MM"
        ));
    };
    let start_min = minutes(start)?;
    if start_min == 24 * 60 {
        return Err("24:00 is only allowed as an end time".into());
    }
    Ok(Interval {
        days: set,
        start_min,
        end_min: minutes(end)?,
    })
}

/// A day name → Monday = 0.
fn day(name: &str) -> Result<usize, String> {
    DAYS.iter().position(|d| *d == name).ok_or_else(|| {
        format!("unknown day `{name}`; expected mon, tue, wed, thu, fri, sat or sun")
    })
}

/// `"HH:MM"` → minutes after midnight; `24:00` is 1440.
fn minutes(text: &str) -> Result<u16, String> {
    let bad = || format!("`{text}` is not a time; expected HH:MM from 00:00 to 24:00");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let (h, m) = (
        two_digits(h).ok_or_else(bad)?,
        two_digits(m).ok_or_else(bad)?,
    );
    if (h < 24 && m < 60) || (h == 24 && m == 0) {
        Ok((h * 60 + m) as u16)
    } else {
        Err(bad())
    }
}
