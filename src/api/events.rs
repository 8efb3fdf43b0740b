//! `GET /events`: the switch's desk events as Server-Sent Events. The admin sees every event;
//! a seat sees the events of its own seat and those for everyone.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use super::desk::{query, DeskApi, Params, Refusal};
use crate::desk::{Credential, DeskCommand, DeskEvent};

/// Interval of the keep-alive comments, which also reveal a desktop that went away.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Longest event name taken from an event's `"type"`.
const MAX_EVENT_NAME: usize = 32;

/// Which events a stream shows.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Filter {
    /// Every event (the admin, supervisors).
    All,
    /// Events for everyone and those of this seat.
    Seat(String),
}

impl Filter {
    /// Whether `event` is shown.
    fn shows(&self, event: &DeskEvent) -> bool {
        match (self, &event.seat) {
            (Filter::All, _) | (_, None) => true,
            (Filter::Seat(mine), Some(seat)) => mine == seat,
        }
    }
}

/// `GET /events`.
pub(super) async fn stream(
    State(api): State<Arc<DeskApi>>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let answer = async {
        let credential = api.credential(&headers)?;
        let desk = api.handle()?;
        query(params, &[])?;
        // Subscribed before asking who this is, so that no event falls in between.
        let events = desk.events.subscribe();
        let filter = match credential {
            Credential::Admin => Filter::All,
            seat @ Credential::SeatToken(_) => {
                let who = api.ask(seat, None, DeskCommand::WhoAmI).await?;
                filter_of(&who).ok_or_else(|| {
                    tracing::warn!(%who, "HTTP API: unexpected whoami answer from the switch");
                    Refusal::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the switch did not say whose token this is",
                    )
                })?
            }
        };
        Ok::<_, Refusal>(sse(events, api.stopping.clone(), filter))
    };
    match answer.await {
        Ok(sse) => sse.into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// The filter for a `WhoAmI` answer: `{"admin": true}` or `{"seat": "a1001"}`.
fn filter_of(who: &serde_json::Value) -> Option<Filter> {
    if who["admin"] == serde_json::Value::Bool(true) {
        return Some(Filter::All);
    }
    who["seat"]
        .as_str()
        .map(|seat| Filter::Seat(seat.to_owned()))
}

/// What the stream's producer holds between events.
struct Feed {
    /// The first event: whose stream this is.
    hello: Option<Event>,
    /// The switch's events.
    events: broadcast::Receiver<Arc<DeskEvent>>,
    /// Turns true when the server stops.
    stopping: watch::Receiver<bool>,
    /// Which events are shown.
    filter: Filter,
}

/// The SSE response: a `subscribed` event, then the filtered events until the server stops.
fn sse(
    events: broadcast::Receiver<Arc<DeskEvent>>,
    stopping: watch::Receiver<bool>,
    filter: Filter,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let hello = match &filter {
        Filter::All => serde_json::json!({ "type": "subscribed", "admin": true }),
        Filter::Seat(seat) => serde_json::json!({ "type": "subscribed", "seat": seat }),
    };
    let feed = Feed {
        hello: Some(to_event(&hello)),
        events,
        stopping,
        filter,
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        if let Some(hello) = feed.hello.take() {
            return Some((Ok(hello), feed));
        }
        loop {
            let received = tokio::select! {
                // A stopped server (or one gone: the sender dropped) ends the stream.
                _ = feed.stopping.wait_for(|stopping| *stopping) => return None,
                received = feed.events.recv() => received,
            };
            match received {
                Ok(event) if feed.filter.shows(&event) => {
                    return Some((Ok(to_event(&event.body)), feed));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    let body = serde_json::json!({ "type": "lagged", "missed": missed });
                    return Some((Ok(to_event(&body)), feed));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// An SSE event of `body`, named after its `"type"` when that is a plain word.
fn to_event(body: &serde_json::Value) -> Event {
    let mut event = Event::default();
    if let Some(name) = body["type"].as_str().filter(|name| plain(name)) {
        event = event.event(name);
    }
    // A serde_json::Value always serializes; the comment is for the impossible case.
    event
        .json_data(body)
        .unwrap_or_else(|_| Event::default().comment("unserializable event"))
}

/// Whether `name` is safe and short enough for an SSE `event:` line.
fn plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_EVENT_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let event = |seat: Option<&str>| DeskEvent {
            seat: seat.map(str::to_owned),
            body: serde_json::json!({ "type": "seat" }),
        };
        let mine = Filter::Seat("a1".to_owned());
        assert!(mine.shows(&event(None)));
        assert!(mine.shows(&event(Some("a1"))));
        assert!(!mine.shows(&event(Some("a2"))));
        assert!(Filter::All.shows(&event(Some("a2"))));
        assert_eq!(filter_of(&serde_json::json!({ "seat": "a1" })), Some(mine));
        assert_eq!(
            filter_of(&serde_json::json!({ "admin": true })),
            Some(Filter::All)
        );
        assert_eq!(filter_of(&serde_json::json!({ "admin": false })), None);
        assert_eq!(filter_of(&serde_json::json!([])), None);
    }

    #[test]
    fn event_names() {
        assert!(plain("call-ended"));
        assert!(!plain(""));
        assert!(!plain("a\nb"));
        assert!(!plain("a b"));
    }
}
