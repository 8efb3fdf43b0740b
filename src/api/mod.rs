//! The HTTP API. Every request needs `Authorization: Bearer <token>`.
//!
//! Call records and the assessment figures (监督考核) as JSON, the same queries as
//! `hotline records`, for the admin token only:
//! - `GET /records?since=&until=&number=&hotline=&limit=` → array of call records, newest first
//! - `GET /records/{id}` → one call record, or 404
//! - `GET /figures?since=&until=&hotline=&by=hotline|seat|queue` → array of figures per local day
//!   and hotline (or seat, or queue)
//! - `GET /health` → `{"ok": true}`
//!
//! The agent desktops and supervisors, with the admin token or a seat's token (which the switch
//! checks); 503 when no seats are configured:
//! - `POST /seats/{id}/login|logout|ready|not-ready|end-wrap-up|answer|hangup` → the switch's JSON
//! - `GET /seats`, `GET /queues`, `GET /stats?interval=<s>`, `GET /whoami` → the switch's JSON
//! - `GET /events` → Server-Sent Events: the admin's all, a seat's own and everyone's

mod desk;
mod events;
mod records;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::desk::DeskHandle;

/// How long [`serve_on`] waits, once `stop` resolved, for requests in progress to finish.
const DRAIN: Duration = Duration::from_secs(5);

/// `[api]` settings as the API needs them.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Address the API listens on ([`serve`] only).
    pub listen: SocketAddr,
    /// The token every request must carry; empty refuses every request.
    pub admin_token: String,
    /// The call record store file (`store::path_in(paths.data)`).
    pub store: PathBuf,
    /// UTC offset (seconds east) of the local times in queries and of the figures' days.
    pub utc_offset_s: i32,
    /// The channels to the switch for the desk endpoints; None answers them 503.
    pub desk: Option<DeskHandle>,
}

/// Serves the API on `config.listen` until `stop` resolves.
pub async fn serve(
    config: ApiConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    serve_on(listener, config, stop).await
}

/// Serves the API on a listener the caller bound until `stop` resolves; requests in progress
/// then get a few seconds to finish.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: ApiConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if config.admin_token.is_empty() {
        tracing::warn!("HTTP API: api.admin_token is empty, only seat tokens are accepted");
    }
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let desk_api = Arc::new(desk::DeskApi {
        admin_token: config.admin_token.clone(),
        desk: config.desk.clone(),
        stopping,
    });
    let state = Arc::new(config);
    let admin = Router::new()
        .route("/health", get(health))
        .route("/records", get(records::list))
        .route("/records/:id", get(records::one))
        .route("/figures", get(records::figures))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state);
    let app = admin.merge(desk::routes(desk_api)).fallback(not_found);
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        stop.await;
        // Event streams never end by themselves: end them so that the drain can finish.
        let _ = stopping_tx.send(true);
        let _ = stopped_tx.send(());
    });
    let drained = async move {
        if stopped_rx.await.is_ok() {
            tokio::time::sleep(DRAIN).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result,
        () = drained => {
            tracing::warn!("HTTP API: requests still open {}s after stop; leaving them", DRAIN.as_secs());
            Ok(())
        }
    }
}

/// A JSON error response `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    (status, Json(body)).into_response()
}

/// Refuse requests without `Authorization: Bearer <admin_token>` (all when the token is empty).
async fn authorize(State(config): State<Arc<ApiConfig>>, request: Request, next: Next) -> Response {
    if token_ok(request.headers(), &config.admin_token) {
        return next.run(request).await;
    }
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token (Authorization: Bearer <api.admin_token>)",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// Whether `headers` carry the bearer token `expected` (never when `expected` is empty).
fn token_ok(headers: &HeaderMap, expected: &str) -> bool {
    !expected.is_empty()
        && bearer(headers).is_some_and(|token| same(token.as_bytes(), expected.as_bytes()))
}

/// The token of `Authorization: Bearer <token>`, trimmed (possibly empty).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Byte equality whose time does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Unknown routes: 404 with a JSON body.
async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

/// `GET /health`.
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "ok": true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
        headers
    }

    #[test]
    fn tokens() {
        assert!(token_ok(&headers("Bearer s3cret"), "s3cret"));
        assert!(token_ok(&headers("bearer s3cret"), "s3cret"));
        assert!(!token_ok(&headers("Bearer s3cre"), "s3cret"));
        assert!(!token_ok(&headers("Basic s3cret"), "s3cret"));
        assert!(!token_ok(&headers("Bearer "), ""));
        assert!(!token_ok(&headers("Bearer"), ""));
        assert!(!token_ok(&HeaderMap::new(), "s3cret"));
    }
}
