//! The figures per seat and per queue from hand-built records: several seats and queues, a call
//! answered by a seat after being refused by others, a caller who gave up while a seat rang,
//! a call that went through two queues, and calls either side of local midnight.

use super::*;
use crate::tickets::record::{CallEnd, Party, SeatOffer};

/// +08:00, the offset of the tests.
const EIGHT: i32 = 8 * 3600;

/// An instant from RFC 3339.
fn at(text: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(text)
        .expect("test time")
        .with_timezone(&Utc)
}

/// A call to hotline 12345 arriving `arrived`, ended by the caller when `finished`.
fn call(id: &str, arrived: &str, finished: bool) -> CallRecord {
    let mut record = CallRecord::new(
        id.to_owned(),
        format!("{id}@pbx"),
        Party {
            number: "13800000000".to_owned(),
            display_name: None,
        },
        "12345".to_owned(),
        at(arrived),
    );
    record.hotline = Some("12345".to_owned());
    if finished {
        record.end = Some(CallEnd {
            by: "caller".to_owned(),
            cause: "bye".to_owned(),
            sip_status: None,
        });
    }
    record
}

/// An offer to `seat` from `offered` until `ended` with `outcome` (both `None` while ringing).
fn offer(seat: &str, offered: &str, end: Option<(&str, &str)>) -> SeatOffer {
    SeatOffer {
        seat: seat.to_owned(),
        offered: at(offered),
        ended: end.map(|(ended, _)| at(ended)),
        outcome: end.map(|(_, outcome)| outcome.to_owned()),
    }
}

/// A visit to `queue` entered `entered`, left `left` with `outcome` (`None` while waiting),
/// answered by `seat`, with `offers`.
fn visit(
    queue: &str,
    entered: &str,
    left: Option<(&str, &str)>,
    seat: Option<&str>,
    offers: Vec<SeatOffer>,
) -> QueueVisit {
    QueueVisit {
        queue: queue.to_owned(),
        priority: 0,
        entered: at(entered),
        left: left.map(|(left, _)| at(left)),
        outcome: left.map(|(_, outcome)| outcome.to_owned()),
        seat: seat.map(str::to_owned),
        offers,
    }
}

/// Marks `record` answered by a person at `answered`, with its wait, talk and survey.
fn answered(mut record: CallRecord, answered: &str, wait_s: f64, talk_s: f64) -> CallRecord {
    record.times.person_answered = Some(at(answered));
    record.wait_s = wait_s;
    record.talk_s = talk_s;
    record
}

/// The records of the tests (local day 1 is 2025-03-01 at +08:00).
fn records() -> Vec<CallRecord> {
    // r1: s1 lets it ring out, s2 answers 25 s after the queue entry; survey 5.
    let mut r1 = answered(
        call("r1", "2025-03-01T01:00:00Z", true),
        "2025-03-01T01:00:30Z",
        30.0,
        120.0,
    );
    r1.survey = Some(5);
    r1.queues.push(visit(
        "general",
        "2025-03-01T01:00:05Z",
        Some(("2025-03-01T01:00:30Z", "answered")),
        Some("s2"),
        vec![
            offer(
                "s1",
                "2025-03-01T01:00:05Z",
                Some(("2025-03-01T01:00:25Z", "no-answer")),
            ),
            offer(
                "s2",
                "2025-03-01T01:00:25Z",
                Some(("2025-03-01T01:00:30Z", "answered")),
            ),
        ],
    ));
    // r2: s1 answers 7 s after the queue entry; survey 3.
    let mut r2 = answered(
        call("r2", "2025-03-01T02:00:00Z", true),
        "2025-03-01T02:00:12Z",
        12.0,
        60.0,
    );
    r2.survey = Some(3);
    r2.queues.push(visit(
        "general",
        "2025-03-01T02:00:05Z",
        Some(("2025-03-01T02:00:12Z", "answered")),
        Some("s1"),
        vec![offer(
            "s1",
            "2025-03-01T02:00:05Z",
            Some(("2025-03-01T02:00:12Z", "answered")),
        )],
    ));
    // r3: s1 declines, the caller hangs up while s2 rings, 35 s after the queue entry.
    let mut r3 = call("r3", "2025-03-01T03:00:00Z", true);
    r3.wait_s = 40.0;
    r3.queues.push(visit(
        "general",
        "2025-03-01T03:00:05Z",
        Some(("2025-03-01T03:00:40Z", "abandoned")),
        None,
        vec![
            offer(
                "s1",
                "2025-03-01T03:00:05Z",
                Some(("2025-03-01T03:00:08Z", "declined")),
            ),
            offer(
                "s2",
                "2025-03-01T03:00:08Z",
                Some(("2025-03-01T03:00:40Z", "caller-gone")),
            ),
        ],
    ));
    // r4: 60 s in `legal` (s3 does not answer), then `general`, where s3 answers in 10 s.
    let mut r4 = answered(
        call("r4", "2025-03-01T04:00:00Z", true),
        "2025-03-01T04:01:15Z",
        75.0,
        30.0,
    );
    r4.survey = Some(4);
    r4.queues.push(visit(
        "legal",
        "2025-03-01T04:00:05Z",
        Some(("2025-03-01T04:01:05Z", "max-wait")),
        None,
        vec![offer(
            "s3",
            "2025-03-01T04:00:05Z",
            Some(("2025-03-01T04:00:25Z", "no-answer")),
        )],
    ));
    r4.queues.push(visit(
        "general",
        "2025-03-01T04:01:05Z",
        Some(("2025-03-01T04:01:15Z", "answered")),
        Some("s3"),
        vec![offer(
            "s3",
            "2025-03-01T04:01:05Z",
            Some(("2025-03-01T04:01:15Z", "answered")),
        )],
    ));
    // r5: 23:59:50 local on day 1; s2 answers at 00:00:05 on day 2: counts on day 1.
    let mut r5 = answered(
        call("r5", "2025-03-01T15:59:50Z", true),
        "2025-03-01T16:00:05Z",
        15.0,
        40.0,
    );
    r5.survey = Some(4);
    r5.queues.push(visit(
        "general",
        "2025-03-01T15:59:55Z",
        Some(("2025-03-01T16:00:05Z", "answered")),
        Some("s2"),
        vec![offer(
            "s2",
            "2025-03-01T15:59:55Z",
            Some(("2025-03-01T16:00:05Z", "answered")),
        )],
    ));
    // r6: 00:00:10 local on day 2, still waiting while s2 rings (a progress row).
    let mut r6 = call("r6", "2025-03-01T16:00:10Z", false);
    r6.queues.push(visit(
        "general",
        "2025-03-01T16:00:15Z",
        None,
        None,
        vec![offer("s2", "2025-03-01T16:00:15Z", None)],
    ));
    // r7: self-service, never queued: in no seat's or queue's figures.
    let r7 = call("r7", "2025-03-01T05:00:00Z", true);
    vec![r1, r2, r3, r4, r5, r6, r7]
}

/// A local day of March 2025.
fn march(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, day).expect("date")
}

#[test]
fn seat_figures_per_local_day() {
    let figures = seat_figures_of(&records(), EIGHT);
    let expected = vec![
        SeatFigures {
            day: march(1),
            seat: "s1".to_owned(),
            offered: 3,
            answered: 1,
            no_answer: 1,
            declined: 1,
            answered_within_15s: 1,
            average_wait_s: 12.0,
            average_talk_s: 60.0,
            satisfaction_rate: Some(0.0),
        },
        SeatFigures {
            day: march(1),
            seat: "s2".to_owned(),
            offered: 3,
            answered: 2,
            no_answer: 0,
            declined: 0,
            answered_within_15s: 1,
            average_wait_s: 22.5,
            average_talk_s: 80.0,
            satisfaction_rate: Some(1.0),
        },
        SeatFigures {
            day: march(1),
            seat: "s3".to_owned(),
            offered: 2,
            answered: 1,
            no_answer: 1,
            declined: 0,
            answered_within_15s: 1,
            average_wait_s: 75.0,
            average_talk_s: 30.0,
            satisfaction_rate: Some(1.0),
        },
        SeatFigures {
            day: march(2),
            seat: "s2".to_owned(),
            offered: 1,
            answered: 0,
            no_answer: 0,
            declined: 0,
            answered_within_15s: 0,
            average_wait_s: 0.0,
            average_talk_s: 0.0,
            satisfaction_rate: None,
        },
    ];
    assert_eq!(figures, expected);
}

#[test]
fn queue_figures_per_local_day() {
    let figures = queue_figures_of(&records(), EIGHT);
    let expected = vec![
        QueueFigures {
            day: march(1),
            queue: "general".to_owned(),
            offered: 5,
            answered: 4,
            abandoned: 1,
            answered_within_15s: 3,
            connection_rate: 0.8,
            average_wait_s: 13.0,
            longest_wait_s: 35.0,
        },
        QueueFigures {
            day: march(1),
            queue: "legal".to_owned(),
            offered: 1,
            answered: 0,
            abandoned: 0,
            answered_within_15s: 0,
            connection_rate: 0.0,
            average_wait_s: 0.0,
            longest_wait_s: 60.0,
        },
        QueueFigures {
            day: march(2),
            queue: "general".to_owned(),
            offered: 1,
            answered: 0,
            abandoned: 0,
            answered_within_15s: 0,
            connection_rate: 0.0,
            average_wait_s: 0.0,
            longest_wait_s: 0.0,
        },
    ];
    assert_eq!(figures, expected);
}

#[test]
fn the_utc_offset_moves_calls_across_midnight() {
    // In UTC, r5 and r6 both arrived on 1 March: one day, one row per queue and seat.
    let queues = queue_figures_of(&records(), 0);
    let general: Vec<(NaiveDate, u64, u64)> = queues
        .iter()
        .filter(|f| f.queue == "general")
        .map(|f| (f.day, f.offered, f.answered))
        .collect();
    assert_eq!(general, [(march(1), 6, 4)]);
    let seats = seat_figures_of(&records(), 0);
    let s2: Vec<(NaiveDate, u64, u64)> = seats
        .iter()
        .filter(|f| f.seat == "s2")
        .map(|f| (f.day, f.offered, f.answered))
        .collect();
    assert_eq!(s2, [(march(1), 4, 2)]);
}

#[test]
fn an_answered_offer_names_the_seat_when_the_visit_does_not() {
    let mut records = records();
    let r2 = &mut records[1];
    r2.queues[0].seat = None;
    let seats = seat_figures_of(&records, EIGHT);
    let s1 = seats.iter().find(|f| f.seat == "s1").expect("s1");
    assert_eq!((s1.offered, s1.answered), (3, 1));
}

#[test]
fn grouping_by_hotline_is_the_hotline_figures() {
    let records = records();
    assert_eq!(
        figure_table(&records, FiguresBy::Hotline, EIGHT),
        FigureTable::Hotline(query::figures_of(&records, EIGHT))
    );
    assert_eq!("seat".parse(), Ok(FiguresBy::Seat));
    assert_eq!("queue".parse(), Ok(FiguresBy::Queue));
    assert_eq!("hotline".parse(), Ok(FiguresBy::Hotline));
    let error = "agent".parse::<FiguresBy>().expect_err("no such grouping");
    assert!(error.contains("agent") && error.contains("seat"), "{error}");
}

#[test]
fn seat_rows_render_as_table_csv_and_json() {
    let table = figure_table(&records(), FiguresBy::Seat, EIGHT);
    let csv = render_figure_table(&table, Format::Csv).expect("csv");
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(
        lines,
        [
            "day,seat,offered,answered,no_answer,declined,answered_within_15s,average_wait_s,\
             average_talk_s,satisfaction_rate",
            "2025-03-01,s1,3,1,1,1,1,12.000,60.000,0.0000",
            "2025-03-01,s2,3,2,0,0,1,22.500,80.000,1.0000",
            "2025-03-01,s3,2,1,1,0,1,75.000,30.000,1.0000",
            "2025-03-02,s2,1,0,0,0,0,0.000,0.000,",
        ]
    );
    let text = render_figure_table(&table, Format::Table).expect("table");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "day         seat  offered  answered  no_answer  declined  within_15s  avg_wait  \
         avg_talk  satisfaction"
    );
    assert_eq!(
        lines[2],
        "2025-03-01  s2    3        2         0          0         1           22.5s     \
         80.0s     100.0%"
    );
    assert!(lines[4].ends_with("0.0s      -"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&render_figure_table(&table, Format::Json).expect("json"))
            .expect("JSON");
    assert_eq!(json[3]["seat"], "s2");
    assert_eq!(json[3]["satisfaction_rate"], serde_json::Value::Null);
    let empty = FigureTable::Seat(Vec::new());
    assert_eq!(
        render_figure_table(&empty, Format::Table).expect("table"),
        "no calls were offered to a seat in this period\n"
    );
}

#[test]
fn queue_rows_render_as_table_and_csv() {
    let table = figure_table(&records(), FiguresBy::Queue, EIGHT);
    let csv = render_figure_table(&table, Format::Csv).expect("csv");
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(
        lines,
        [
            "day,queue,offered,answered,abandoned,answered_within_15s,connection_rate,\
             average_wait_s,longest_wait_s",
            "2025-03-01,general,5,4,1,3,0.8000,13.000,35.000",
            "2025-03-01,legal,1,0,0,0,0.0000,0.000,60.000",
            "2025-03-02,general,1,0,0,0,0.0000,0.000,0.000",
        ]
    );
    let text = render_figure_table(&table, Format::Table).expect("table");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "day         queue    offered  answered  abandoned  within_15s  connection  avg_wait  \
             longest_wait",
            "2025-03-01  general  5        4         1          3           80.0%       13.0s     \
             35.0s",
        ]
    );
    assert_eq!(
        render_figure_table(&FigureTable::Queue(Vec::new()), Format::Table).expect("table"),
        "no calls were queued in this period\n"
    );
}
