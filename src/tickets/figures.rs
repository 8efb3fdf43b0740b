//! The assessment figures (监督考核) per local day and seat and per local day and queue,
//! computed from the queue visits and seat offers of the call records, next to the figures per
//! local day and hotline of [`super::query`]: `hotline records --figures --by` and
//! `GET /figures?by=`.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::query::{
    self, ratio, Cell, Column, FigureRow, Figures, Format, RecordFilter, ANSWER_TARGET_MS,
};
use super::record::{CallRecord, QueueVisit, Timestamp};
use super::store::{Store, StoreError};

/// What the assessment figures are grouped by, besides the local day the calls arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FiguresBy {
    /// One row per hotline and day.
    #[default]
    Hotline,
    /// One row per seat and day: calls offered to it and answered by it.
    Seat,
    /// One row per queue and day: calls handed to it.
    Queue,
}

impl FromStr for FiguresBy {
    type Err = String;

    /// `hotline`, `seat` or `queue`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "hotline" => Ok(FiguresBy::Hotline),
            "seat" => Ok(FiguresBy::Seat),
            "queue" => Ok(FiguresBy::Queue),
            _ => Err(format!(
                "`{text}` is no grouping of the figures; write hotline, seat or queue"
            )),
        }
    }
}

/// The assessment figures of one seat on one local day, from the queue visits of the calls
/// that arrived that day (in the given UTC offset).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeatFigures {
    /// The local day the calls arrived.
    pub day: NaiveDate,
    /// The seat's id.
    pub seat: String,
    /// Offers of a call to this seat (its phone rang), whatever came of them; a call offered
    /// to it twice counts twice.
    pub offered: u64,
    /// Queue visits this seat answered (the visit's `seat`).
    pub answered: u64,
    /// Offers that ended with `no-answer` (the seat let it ring out).
    pub no_answer: u64,
    /// Offers that ended with `declined` (the seat refused it).
    pub declined: u64,
    /// Visits it answered at most 15 s after the call entered that queue.
    pub answered_within_15s: u64,
    /// Mean of the records' `wait_s` (arrival to a person answering) over the calls it
    /// answered; 0 when it answered none.
    pub average_wait_s: f64,
    /// Mean of the records' `talk_s` over the calls it answered; 0 when it answered none.
    pub average_talk_s: f64,
    /// Share of the survey answers of the calls it answered that are 4 or 5; `None` when none
    /// of them has one.
    pub satisfaction_rate: Option<f64>,
}

/// The assessment figures of one queue on one local day, from the queue visits of the calls
/// that arrived that day (in the given UTC offset).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueFigures {
    /// The local day the calls arrived.
    pub day: NaiveDate,
    /// The queue (skill group).
    pub queue: String,
    /// Visits: calls handed to this queue (a call handed to it twice counts twice).
    pub offered: u64,
    /// Visits a seat answered (outcome `answered`).
    pub answered: u64,
    /// Visits the caller hung up during (outcome `abandoned`).
    pub abandoned: u64,
    /// Answered visits where the seat answered at most 15 s after the call entered the queue.
    pub answered_within_15s: u64,
    /// `answered / offered` (0 when nothing was offered).
    pub connection_rate: f64,
    /// Mean time from entering the queue to a seat answering, over answered visits; 0 when
    /// none was answered.
    pub average_wait_s: f64,
    /// Longest time from entering the queue to leaving it (answered or not) over the visits
    /// that left it; 0 when none did.
    pub longest_wait_s: f64,
}

/// Figures of one grouping; serializes as the bare array of its rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FigureTable {
    /// Per local day and hotline.
    Hotline(Vec<Figures>),
    /// Per local day and seat.
    Seat(Vec<SeatFigures>),
    /// Per local day and queue.
    Queue(Vec<QueueFigures>),
}

impl Store {
    /// The assessment figures of calls that arrived in `[since, until)` (of `hotline` alone
    /// when given, "" meaning calls to no declared hotline), grouped by local day (UTC offset
    /// `utc_offset_s`) and `by`, ordered by day then name.
    pub fn figures_by(
        &self,
        by: FiguresBy,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        hotline: Option<&str>,
        utc_offset_s: i32,
    ) -> Result<FigureTable, StoreError> {
        let mut records = self.records(&RecordFilter {
            since,
            until,
            ..RecordFilter::default()
        })?;
        if let Some(hotline) = hotline {
            records.retain(|r| r.hotline.as_deref().unwrap_or("") == hotline);
        }
        Ok(figure_table(&records, by, utc_offset_s))
    }
}

/// Compute the figures grouped by `by` from records (any order).
pub fn figure_table(records: &[CallRecord], by: FiguresBy, utc_offset_s: i32) -> FigureTable {
    match by {
        FiguresBy::Hotline => FigureTable::Hotline(query::figures_of(records, utc_offset_s)),
        FiguresBy::Seat => FigureTable::Seat(seat_figures_of(records, utc_offset_s)),
        FiguresBy::Queue => FigureTable::Queue(queue_figures_of(records, utc_offset_s)),
    }
}

/// When a seat answered `visit`, if one did (outcome `answered`): when the visit was left,
/// else when the answered offer ended, else when a person answered the call.
fn answered_at(record: &CallRecord, visit: &QueueVisit) -> Option<Timestamp> {
    if visit.outcome.as_deref() != Some("answered") {
        return None;
    }
    visit
        .left
        .or_else(|| {
            visit
                .offers
                .iter()
                .rev()
                .find(|o| o.outcome.as_deref() == Some("answered"))
                .and_then(|o| o.ended)
        })
        .or(record.times.person_answered)
}

/// The seat that answered `visit`: its `seat`, else the seat of its answered offer.
fn answering_seat(visit: &QueueVisit) -> Option<&str> {
    visit.seat.as_deref().or_else(|| {
        visit
            .offers
            .iter()
            .rev()
            .find(|o| o.outcome.as_deref() == Some("answered"))
            .map(|o| o.seat.as_str())
    })
}

/// Milliseconds from `from` to `to`, never negative.
fn millis_between(from: Timestamp, to: Timestamp) -> i64 {
    (to - from).num_milliseconds().max(0)
}

/// Running sums for one day and seat.
#[derive(Default)]
struct SeatSums {
    /// Offers.
    offered: u64,
    /// Visits answered.
    answered: u64,
    /// Offers not answered in time.
    no_answer: u64,
    /// Offers declined.
    declined: u64,
    /// Answered within 15 s of the queue entry.
    within_15s: u64,
    /// Sum of `wait_s` over answered calls.
    wait_s: f64,
    /// Sum of `talk_s` over answered calls.
    talk_s: f64,
    /// Survey answers of answered calls.
    surveys: u64,
    /// Of those, 4 or 5.
    satisfied: u64,
}

/// Compute [`SeatFigures`] from records (any order).
pub fn seat_figures_of(records: &[CallRecord], utc_offset_s: i32) -> Vec<SeatFigures> {
    let mut groups: BTreeMap<(NaiveDate, String), SeatSums> = BTreeMap::new();
    for record in records {
        let day = query::local_day(record.times.arrived, utc_offset_s);
        for visit in &record.queues {
            for offer in &visit.offers {
                let sums = groups.entry((day, offer.seat.clone())).or_default();
                sums.offered += 1;
                match offer.outcome.as_deref() {
                    Some("no-answer") => sums.no_answer += 1,
                    Some("declined") => sums.declined += 1,
                    _ => {}
                }
            }
            let (Some(answered), Some(seat)) = (answered_at(record, visit), answering_seat(visit))
            else {
                continue;
            };
            let sums = groups.entry((day, seat.to_owned())).or_default();
            sums.answered += 1;
            sums.wait_s += record.wait_s;
            sums.talk_s += record.talk_s;
            if millis_between(visit.entered, answered) <= ANSWER_TARGET_MS {
                sums.within_15s += 1;
            }
            if let Some(survey) = record.survey {
                sums.surveys += 1;
                if survey >= 4 {
                    sums.satisfied += 1;
                }
            }
        }
    }
    groups
        .into_iter()
        .map(|((day, seat), s)| SeatFigures {
            day,
            seat,
            offered: s.offered,
            answered: s.answered,
            no_answer: s.no_answer,
            declined: s.declined,
            answered_within_15s: s.within_15s,
            average_wait_s: ratio(s.wait_s, s.answered),
            average_talk_s: ratio(s.talk_s, s.answered),
            satisfaction_rate: (s.surveys > 0).then(|| ratio(s.satisfied as f64, s.surveys)),
        })
        .collect()
}

/// Running sums for one day and queue.
#[derive(Default)]
struct QueueSums {
    /// Visits.
    offered: u64,
    /// Visits answered.
    answered: u64,
    /// Visits abandoned.
    abandoned: u64,
    /// Answered within 15 s of entering.
    within_15s: u64,
    /// Sum of entering-to-answer milliseconds over answered visits.
    wait_ms: i64,
    /// Longest entering-to-leaving milliseconds.
    longest_ms: i64,
}

/// Compute [`QueueFigures`] from records (any order).
pub fn queue_figures_of(records: &[CallRecord], utc_offset_s: i32) -> Vec<QueueFigures> {
    let mut groups: BTreeMap<(NaiveDate, String), QueueSums> = BTreeMap::new();
    for record in records {
        let day = query::local_day(record.times.arrived, utc_offset_s);
        for visit in &record.queues {
            let sums = groups.entry((day, visit.queue.clone())).or_default();
            sums.offered += 1;
            if visit.outcome.as_deref() == Some("abandoned") {
                sums.abandoned += 1;
            }
            if let Some(answered) = answered_at(record, visit) {
                let wait = millis_between(visit.entered, answered);
                sums.answered += 1;
                sums.wait_ms = sums.wait_ms.saturating_add(wait);
                if wait <= ANSWER_TARGET_MS {
                    sums.within_15s += 1;
                }
            }
            if let Some(left) = visit.left {
                sums.longest_ms = sums.longest_ms.max(millis_between(visit.entered, left));
            }
        }
    }
    groups
        .into_iter()
        .map(|((day, queue), s)| QueueFigures {
            day,
            queue,
            offered: s.offered,
            answered: s.answered,
            abandoned: s.abandoned,
            answered_within_15s: s.within_15s,
            connection_rate: ratio(s.answered as f64, s.offered),
            average_wait_s: ratio(s.wait_ms as f64 / 1000.0, s.answered),
            longest_wait_s: s.longest_ms as f64 / 1000.0,
        })
        .collect()
}

/// Render figures of any grouping in `format` (JSON: the array of rows).
pub fn render_figure_table(
    table: &FigureTable,
    format: Format,
) -> Result<String, serde_json::Error> {
    match table {
        FigureTable::Hotline(figures) => query::render_figures(figures, format),
        FigureTable::Seat(figures) => query::render_rows(figures, format),
        FigureTable::Queue(figures) => query::render_rows(figures, format),
    }
}

impl FigureRow for SeatFigures {
    const COLUMNS: &'static [Column<Self>] = &[
        ("day", "day", |f| Cell::Text(f.day.to_string())),
        ("seat", "seat", |f| Cell::Text(f.seat.clone())),
        ("offered", "offered", |f| Cell::Count(f.offered)),
        ("answered", "answered", |f| Cell::Count(f.answered)),
        ("no_answer", "no_answer", |f| Cell::Count(f.no_answer)),
        ("declined", "declined", |f| Cell::Count(f.declined)),
        ("within_15s", "answered_within_15s", |f| {
            Cell::Count(f.answered_within_15s)
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
    ];
    const NO_ROWS: &'static str = "no calls were offered to a seat in this period\n";
}

impl FigureRow for QueueFigures {
    const COLUMNS: &'static [Column<Self>] = &[
        ("day", "day", |f| Cell::Text(f.day.to_string())),
        ("queue", "queue", |f| Cell::Text(f.queue.clone())),
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
        ("longest_wait", "longest_wait_s", |f| {
            Cell::Seconds(f.longest_wait_s)
        }),
    ];
    const NO_ROWS: &'static str = "no calls were queued in this period\n";
}

#[cfg(test)]
#[path = "figures_tests.rs"]
mod tests;
