//! Call records made by hand for the store, CLI and API tests.

use chrono::{DateTime, Duration, Utc};
use hotline::tickets::record::{CallEnd, CallRecord, Party, QueueVisit, SeatOffer};

/// An instant from RFC 3339.
pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test time")
        .with_timezone(&Utc)
}

/// A record of a call from `caller` to 12345 (hotline 12345) arriving `arrived`, ended by
/// `end` (`by`, `cause`) 150 s later, or still running (`None`).
pub fn record(id: &str, caller: &str, arrived: &str, end: Option<(&str, &str)>) -> CallRecord {
    let mut record = CallRecord::new(
        id.to_owned(),
        format!("{id}@pbx"),
        Party {
            number: caller.to_owned(),
            display_name: None,
        },
        "12345".to_owned(),
        at(arrived),
    );
    record.hotline = Some("12345".to_owned());
    record.merge_mode = Some("unified".to_owned());
    if let Some((by, cause)) = end {
        record.times.ended = Some(record.times.arrived + Duration::seconds(150));
        record.end = Some(CallEnd {
            by: by.to_owned(),
            cause: cause.to_owned(),
            sip_status: None,
        });
    }
    record
}

/// An offer: the seat, when its phone was called, and `Some((ended, outcome))` or `None`
/// while it rings.
pub type Offer<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>);

/// A visit to `queue` entered `entered`, left with `left` (time, outcome) or still waiting
/// (`None`); answered by the seat of the offer whose outcome is `answered`, if any; `offers`
/// in order.
pub fn visit(
    queue: &str,
    entered: &str,
    left: Option<(&str, &str)>,
    offers: &[Offer],
) -> QueueVisit {
    let offers: Vec<SeatOffer> = offers
        .iter()
        .map(|(seat, offered, end)| SeatOffer {
            seat: (*seat).to_owned(),
            offered: at(offered),
            ended: end.map(|(ended, _)| at(ended)),
            outcome: end.map(|(_, outcome)| outcome.to_owned()),
        })
        .collect();
    QueueVisit {
        queue: queue.to_owned(),
        priority: 0,
        entered: at(entered),
        left: left.map(|(left, _)| at(left)),
        outcome: left.map(|(_, outcome)| outcome.to_owned()),
        seat: offers
            .iter()
            .find(|o| o.outcome.as_deref() == Some("answered"))
            .map(|o| o.seat.clone()),
        offers,
    }
}
