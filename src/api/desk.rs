//! The desk endpoints: seat actions, seats, queues and statistics, forwarded to the switch.
//! The API checks the admin token; any other bearer token goes to the switch to judge.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use futures_util::StreamExt;
use tokio::sync::{oneshot, watch};

use super::{bearer, error, events, same};
use crate::desk::{Credential, DeskCommand, DeskError, DeskHandle, DeskRequest, TransferKind};

/// Largest request body accepted; the bodies are a few bytes of JSON.
const MAX_BODY: usize = 4 * 1024;

/// How much of an oversized body is read and dropped before the 413. A client still sending
/// it then reads the answer, not a connection reset, and the connection stays usable.
const MAX_DRAINED: usize = 64 * 1024;

/// How long a request waits for the switch to take and answer it.
const SWITCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest not-ready reason code.
const MAX_REASON: usize = 32;

/// Query parameters as pairs, or a 400 when the query string cannot be decoded.
pub(super) type Params = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// What the desk endpoints share.
pub(super) struct DeskApi {
    /// `[api] admin_token`; empty: no admin.
    pub(super) admin_token: String,
    /// The channels to the switch, when seats are configured.
    pub(super) desk: Option<DeskHandle>,
    /// Turns true when the server stops, which ends the event streams.
    pub(super) stopping: watch::Receiver<bool>,
}

impl DeskApi {
    /// The request's credential, or the 401.
    pub(super) fn credential(&self, headers: &HeaderMap) -> Result<Credential, Refusal> {
        let Some(token) = bearer(headers).filter(|t| !t.is_empty()) else {
            return Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "missing bearer token (Authorization: Bearer <token>)",
            ));
        };
        if !self.admin_token.is_empty() && same(token.as_bytes(), self.admin_token.as_bytes()) {
            return Ok(Credential::Admin);
        }
        Ok(Credential::SeatToken(token.to_owned()))
    }

    /// The channels to the switch, or the 503 when there are none.
    pub(super) fn handle(&self) -> Result<&DeskHandle, Refusal> {
        self.desk
            .as_ref()
            .ok_or_else(|| Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "no seats configured"))
    }

    /// Ask the switch and wait (bounded) for its answer; refusals become their responses.
    pub(super) async fn ask(
        &self,
        credential: Credential,
        seat: Option<String>,
        command: DeskCommand,
    ) -> Result<serde_json::Value, Refusal> {
        let desk = self.handle()?;
        let name = command.name();
        let (reply, answer) = oneshot::channel();
        let request = DeskRequest {
            credential,
            seat,
            command,
            reply,
        };
        let exchange = async {
            desk.requests.send(request).await.ok()?;
            answer.await.ok()
        };
        match tokio::time::timeout(SWITCH_TIMEOUT, exchange).await {
            Ok(Some(Ok(value))) => Ok(value),
            Ok(Some(Err(refused))) => Err(Refusal::from(&refused)),
            // The switch dropped the request or the channel: it is going away.
            Ok(None) => Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "engine stopping",
            )),
            Err(_) => {
                tracing::warn!(
                    command = name,
                    "HTTP API: the switch did not answer in time"
                );
                Err(Refusal::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the switch did not answer in time",
                ))
            }
        }
    }
}

/// The desk routes, with their state and body limit.
pub(super) fn routes(api: Arc<DeskApi>) -> Router {
    Router::new()
        .route("/seats/:id/login", action(parse_login))
        .route(
            "/seats/:id/logout",
            action(|b| empty(b, DeskCommand::LogOut)),
        )
        .route("/seats/:id/ready", action(|b| empty(b, DeskCommand::Ready)))
        .route("/seats/:id/not-ready", action(parse_not_ready))
        .route(
            "/seats/:id/end-wrap-up",
            action(|b| empty(b, DeskCommand::EndWrapUp)),
        )
        .route(
            "/seats/:id/answer",
            action(|b| empty(b, DeskCommand::Answer)),
        )
        .route(
            "/seats/:id/hangup",
            action(|b| empty(b, DeskCommand::HangUp)),
        )
        .route("/seats/:id/transfer", action(parse_transfer))
        .route(
            "/seats/:id/transfer/complete",
            action(|b| empty(b, DeskCommand::CompleteTransfer)),
        )
        .route(
            "/seats/:id/transfer/cancel",
            action(|b| empty(b, DeskCommand::CancelTransfer)),
        )
        .route("/seats", get(seats))
        .route("/queues", get(queues))
        .route("/stats", get(stats))
        .route("/whoami", get(whoami))
        .route("/events", get(events::stream))
        .with_state(api)
}

/// A `POST /seats/{id}/...` route whose body `parse` turns into the command.
fn action(parse: fn(&[u8]) -> Result<DeskCommand, String>) -> MethodRouter<Arc<DeskApi>> {
    post(
        move |State(api): State<Arc<DeskApi>>,
              headers: HeaderMap,
              seat: Result<Path<String>, PathRejection>,
              body: Body| async move {
            let body = read_body(body).await;
            let answer = async {
                let credential = api.credential(&headers)?;
                api.handle()?;
                let Path(seat) = seat.map_err(|e| Refusal::bad_request(format!("seat id: {e}")))?;
                let body = body?;
                let command = parse(&body).map_err(Refusal::bad_request)?;
                api.ask(credential, Some(seat), command).await
            };
            reply(answer.await)
        },
    )
}

/// The request body, or 413 when it is over [`MAX_BODY`]. An oversized body is still read up to
/// [`MAX_DRAINED`], so the answer reaches a client that is still sending.
async fn read_body(body: Body) -> Result<Bytes, Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {MAX_BODY} bytes"),
        )
    };
    // A declared length beyond what is worth draining is refused at once.
    if body.size_hint().lower() > MAX_DRAINED as u64 {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut length = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Refusal::bad_request(format!("request body: {e}")))?;
        length += chunk.len();
        if length <= MAX_BODY {
            kept.extend_from_slice(&chunk);
        } else if length > MAX_DRAINED {
            break;
        }
    }
    if length > MAX_BODY {
        return Err(too_large());
    }
    Ok(Bytes::from(kept))
}

/// `GET /seats`.
async fn seats(State(api): State<Arc<DeskApi>>, headers: HeaderMap, params: Params) -> Response {
    reply(listing(&api, &headers, params, DeskCommand::Seats).await)
}

/// `GET /queues`.
async fn queues(State(api): State<Arc<DeskApi>>, headers: HeaderMap, params: Params) -> Response {
    reply(listing(&api, &headers, params, DeskCommand::Queues).await)
}

/// `GET /whoami`.
async fn whoami(State(api): State<Arc<DeskApi>>, headers: HeaderMap, params: Params) -> Response {
    reply(listing(&api, &headers, params, DeskCommand::WhoAmI).await)
}

/// `GET /stats?interval=<seconds>`.
async fn stats(State(api): State<Arc<DeskApi>>, headers: HeaderMap, params: Params) -> Response {
    let answer = async {
        let credential = api.credential(&headers)?;
        api.handle()?;
        let pairs = query(params, &["interval"])?;
        let interval_s = match pairs.first() {
            None => None,
            Some((_, value)) => Some(
                parse_interval(value)
                    .map_err(|e| Refusal::bad_request(format!("interval: {e}")))?,
            ),
        };
        api.ask(credential, None, DeskCommand::Stats { interval_s })
            .await
    };
    reply(answer.await)
}

/// A GET taking no parameters, forwarded as `command`.
async fn listing(
    api: &DeskApi,
    headers: &HeaderMap,
    params: Params,
    command: DeskCommand,
) -> Result<serde_json::Value, Refusal> {
    let credential = api.credential(headers)?;
    api.handle()?;
    query(params, &[])?;
    api.ask(credential, None, command).await
}

/// The query's pairs, refusing undecodable, unknown and repeated parameters (400).
pub(super) fn query(params: Params, allowed: &[&str]) -> Result<Vec<(String, String)>, Refusal> {
    let bad = Refusal::bad_request;
    let Query(pairs) = params.map_err(|e| bad(format!("query string: {e}")))?;
    for (i, (name, _)) in pairs.iter().enumerate() {
        if !allowed.contains(&name.as_str()) {
            return Err(bad(if allowed.is_empty() {
                format!("unknown parameter `{name}`; this endpoint takes none")
            } else {
                format!(
                    "unknown parameter `{name}`; this endpoint takes {}",
                    allowed.join(", ")
                )
            }));
        }
        if pairs[..i].iter().any(|(n, _)| n == name) {
            return Err(bad(format!("{name}: given more than once")));
        }
    }
    Ok(pairs)
}

/// A positive number of seconds.
fn parse_interval(value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(0) | Err(_) => Err(format!("`{value}` is not a positive number of seconds")),
        Ok(seconds) => Ok(seconds),
    }
}

/// `{"ready": bool}` (optional, default false: logged in, not ready).
fn parse_login(body: &[u8]) -> Result<DeskCommand, String> {
    let fields = object(body, &["ready"])?.unwrap_or_default();
    let ready = match fields.get("ready") {
        None => false,
        Some(serde_json::Value::Bool(ready)) => *ready,
        Some(other) => return Err(format!("ready: expected true or false, not {other}")),
    };
    Ok(DeskCommand::LogIn { ready })
}

/// `{"reason": "break"}`, the reason required.
fn parse_not_ready(body: &[u8]) -> Result<DeskCommand, String> {
    let fields = object(body, &["reason"])?.unwrap_or_default();
    let reason = match fields.get("reason") {
        None => return Err("body: give the reason, as {\"reason\": \"break\"}".to_owned()),
        Some(serde_json::Value::String(reason)) => reason.clone(),
        Some(other) => {
            return Err(format!(
                "reason: expected a string like \"break\", not {other}"
            ))
        }
    };
    valid_reason(&reason)?;
    Ok(DeskCommand::NotReady { reason })
}

/// `{"kind": "blind", "to": "queue:housing"}`.
fn parse_transfer(body: &[u8]) -> Result<DeskCommand, String> {
    let fields = object(body, &["kind", "to"])?.unwrap_or_default();
    let kind = match fields.get("kind").and_then(serde_json::Value::as_str) {
        Some("blind") => TransferKind::Blind,
        Some("three-way") => TransferKind::ThreeWay,
        Some("consult") => TransferKind::Consult,
        Some(other) => {
            return Err(format!(
                "kind: `{other}` is not a transfer kind (blind, three-way, consult)"
            ))
        }
        None => return Err("kind: give the transfer kind, as {\"kind\": \"blind\"}".to_owned()),
    };
    let to = match fields.get("to").and_then(serde_json::Value::as_str) {
        Some(to) if !to.is_empty() => to.to_owned(),
        _ => {
            return Err(
                "to: give the target, as {\"to\": \"queue:housing\"}, \"subcentre:tax\", \
                 \"seat:e2001\" or \"number:057187654321\""
                    .to_owned(),
            )
        }
    };
    Ok(DeskCommand::Transfer { kind, to })
}

/// No body, or `{}`.
fn empty(body: &[u8], command: DeskCommand) -> Result<DeskCommand, String> {
    object(body, &[])?;
    Ok(command)
}

/// The body as a JSON object with no fields but `allowed`, or None when it is empty.
fn object(
    body: &[u8],
    allowed: &[&str],
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let serde_json::Value::Object(fields) = value else {
        return Err("body: expected a JSON object".to_owned());
    };
    if let Some(unknown) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(if allowed.is_empty() {
            format!("body: unknown field `{unknown}`; this request takes none")
        } else {
            format!(
                "body: unknown field `{unknown}`; this request takes {}",
                allowed.join(", ")
            )
        });
    }
    Ok(Some(fields))
}

/// Reason codes: 1 to [`MAX_REASON`] lower-case letters, digits and `-`.
fn valid_reason(reason: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if reason.is_empty() || reason.len() > MAX_REASON || !reason.chars().all(allowed) {
        return Err(format!(
            "reason: `{reason}` is not a reason code (1 to {MAX_REASON} lower-case letters, \
             digits and -, like `break`)"
        ));
    }
    Ok(())
}

/// The switch's JSON with 200, or the refusal.
fn reply(answer: Result<serde_json::Value, Refusal>) -> Response {
    match answer {
        Ok(value) => (StatusCode::OK, Json(value)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// A refused request, answered `{"error": message}` with `status`.
#[derive(Debug)]
pub(super) struct Refusal {
    /// The HTTP status, an error.
    status: StatusCode,
    /// Says what is wrong.
    message: String,
}

impl Refusal {
    /// A refusal with `status` and `message`.
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }

    /// A 400 with `message`.
    fn bad_request(message: String) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<&DeskError> for Refusal {
    /// The switch's refusal; a status that is not an error becomes 500.
    fn from(refused: &DeskError) -> Refusal {
        match StatusCode::from_u16(refused.status) {
            Ok(status) if status.is_client_error() || status.is_server_error() => {
                Refusal::new(status, refused.message.clone())
            }
            _ => {
                tracing::warn!(
                    status = refused.status,
                    "HTTP API: the switch refused with a non-error status"
                );
                Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, refused.message.clone())
            }
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = error(self.status, self.message);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(parse_login(b""), Ok(DeskCommand::LogIn { ready: false }));
        assert_eq!(parse_login(b"{}"), Ok(DeskCommand::LogIn { ready: false }));
        assert_eq!(
            parse_login(br#"{"ready": true}"#),
            Ok(DeskCommand::LogIn { ready: true })
        );
        assert!(parse_login(br#"{"ready": "yes"}"#).is_err());
        assert!(parse_login(br#"{"redy": true}"#).is_err());
        assert!(parse_login(b"{").is_err());
        assert_eq!(
            parse_not_ready(br#"{"reason": "no-answer-2"}"#),
            Ok(DeskCommand::NotReady {
                reason: "no-answer-2".to_owned()
            })
        );
        for bad in [
            &b""[..],
            b"{}",
            br#"{"reason": ""}"#,
            br#"{"reason": "Break"}"#,
            br#"{"reason": "a b"}"#,
            br#"{"reason": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
        ] {
            assert!(parse_not_ready(bad).is_err(), "{bad:?}");
        }
        assert_eq!(empty(b" \n", DeskCommand::Answer), Ok(DeskCommand::Answer));
        assert_eq!(empty(b"{}", DeskCommand::Answer), Ok(DeskCommand::Answer));
        assert!(empty(br#"{"x": 1}"#, DeskCommand::Answer).is_err());
        assert!(empty(b"[]", DeskCommand::Answer).is_err());
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("900"), Ok(900));
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("-1").is_err());
        assert!(parse_interval("15m").is_err());
    }

    #[test]
    fn refusals_keep_error_statuses() {
        let status = |s| Refusal::from(&DeskError::new(s, "x")).status.as_u16();
        assert_eq!(status(403), 403);
        assert_eq!(status(409), 409);
        assert_eq!(status(503), 503);
        assert_eq!(status(200), 500);
        assert_eq!(status(99), 500);
        let response = Refusal::from(&DeskError::new(401, "bad token")).into_response();
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
