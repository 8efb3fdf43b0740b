//! The record and figure endpoints: query parameters parsed like `hotline records` options,
//! the store read in a blocking task per request.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};

use super::{error, ApiConfig};
use crate::tickets::figures::{figure_table, FiguresBy};
use crate::tickets::query::{parse_local_time, RecordFilter};
use crate::tickets::store::{Store, StoreError};

/// Records returned when the query gives no `limit`.
const DEFAULT_LIMIT: usize = 100;

/// Query parameters as pairs, or a 400 when the query string cannot be decoded.
type Params = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// Parsed query parameters.
struct Parsed {
    /// `since`.
    since: Option<DateTime<Utc>>,
    /// `until` (a date alone includes that day).
    until: Option<DateTime<Utc>>,
    /// `number`.
    number: Option<String>,
    /// `hotline`.
    hotline: Option<String>,
    /// `limit`.
    limit: usize,
    /// `by`.
    by: FiguresBy,
}

/// Parse `params`, refusing unknown or repeated parameters and bad values with a message
/// naming the parameter (the 400's).
fn parse(params: Params, allowed: &[&str], utc_offset_s: i32) -> Result<Parsed, String> {
    let Query(pairs) = params.map_err(|e| format!("query string: {e}"))?;
    let mut parsed = Parsed {
        since: None,
        until: None,
        number: None,
        hotline: None,
        limit: DEFAULT_LIMIT,
        by: FiguresBy::default(),
    };
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in &pairs {
        let Some(name) = allowed.iter().copied().find(|a| a == name) else {
            return Err(format!(
                "unknown parameter `{name}`; this endpoint takes {}",
                allowed.join(", ")
            ));
        };
        if seen.contains(&name) {
            return Err(format!("{name}: given more than once"));
        }
        seen.push(name);
        let time = |end_of_day| {
            parse_local_time(value, utc_offset_s, end_of_day).map_err(|e| format!("{name}: {e}"))
        };
        match name {
            "since" => parsed.since = Some(time(false)?),
            "until" => parsed.until = Some(time(true)?),
            "number" => parsed.number = Some(value.clone()),
            "hotline" => parsed.hotline = Some(value.clone()),
            "by" => parsed.by = value.parse().map_err(|e| format!("by: {e}"))?,
            "limit" => {
                parsed.limit = value.trim().parse().map_err(|_| {
                    format!("limit: `{value}` is not a count (0 returns every record)")
                })?;
            }
            _ => {}
        }
    }
    Ok(parsed)
}

/// Run `query` on the store read-only in a blocking task; `missing` is the answer when the
/// store file does not exist yet.
async fn with_store<T, F>(config: &ApiConfig, missing: T, query: F) -> Result<T, Response>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
{
    let path = config.store.clone();
    let result = tokio::task::spawn_blocking(move || match Store::open_read_only(&path) {
        Ok(store) => query(&store).map(Some),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    })
    .await;
    match result {
        Ok(Ok(Some(value))) => Ok(value),
        Ok(Ok(None)) => Ok(missing),
        Ok(Err(e)) => {
            tracing::error!("HTTP API: {e}");
            Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the call record store cannot be read (see the engine's log)",
            ))
        }
        Err(e) => {
            tracing::error!("HTTP API: store query task failed: {e}");
            Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store query failed",
            ))
        }
    }
}

/// `GET /records`: records matching the filters, newest first.
pub(super) async fn list(State(config): State<Arc<ApiConfig>>, params: Params) -> Response {
    let allowed = ["since", "until", "number", "hotline", "limit"];
    let p = match parse(params, &allowed, config.utc_offset_s) {
        Ok(p) => p,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let filter = RecordFilter {
        since: p.since,
        until: p.until,
        number: p.number,
        hotline: p.hotline,
        limit: p.limit,
    };
    match with_store(&config, Vec::new(), move |store| store.records(&filter)).await {
        Ok(records) => Json(records).into_response(),
        Err(response) => response,
    }
}

/// `GET /records/{id}`: one record, or 404.
pub(super) async fn one(State(config): State<Arc<ApiConfig>>, Path(id): Path<String>) -> Response {
    let wanted = id.clone();
    match with_store(&config, None, move |store| store.get(&wanted)).await {
        Ok(Some(record)) => Json(record).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no call record {id}")),
        Err(response) => response,
    }
}

/// `GET /figures`: the assessment figures per local day and hotline, seat or queue (`by`).
pub(super) async fn figures(State(config): State<Arc<ApiConfig>>, params: Params) -> Response {
    let offset = config.utc_offset_s;
    let p = match parse(params, &["since", "until", "hotline", "by"], offset) {
        Ok(p) => p,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let (since, until, hotline, by) = (p.since, p.until, p.hotline, p.by);
    let query = move |store: &Store| store.figures_by(by, since, until, hotline.as_deref(), offset);
    let missing = figure_table(&[], by, offset);
    match with_store(&config, missing, query).await {
        Ok(figures) => Json(figures).into_response(),
        Err(response) => response,
    }
}
