//! The HTTP side of the collector: `POST /v1/reports`, `GET /v1/health`, CORS, request logs.
//!
//! Every refusal is a specific 4xx with `{"error": "..."}`; nothing a client sends can stop
//! the server. Logs name the method, path, status and time — never the client's address, the
//! query string (it holds the site key) or any other header.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::intake;
use super::limits::{self, RateLimiter};
use super::storage::{self, NewReport, Storage};

pub const KEY_HEADER: &str = "x-foresight-key";

pub struct AppState {
    pub store: Arc<dyn Storage>,
    /// Site key → site.
    pub keys: HashMap<String, String>,
    pub max_epsilon: f64,
    /// The oldest report day accepted, in days before today.
    pub max_age_days: i64,
    pub max_body: usize,
    pub limiter: RateLimiter,
}

/// Which origins may call the collector from a page (`*`: any, for development).
#[derive(Debug, Clone)]
pub enum Origins {
    Any,
    List(Vec<HeaderValue>),
}

pub fn router(state: Arc<AppState>, origins: Origins) -> Router {
    let cors = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, HeaderName::from_static(KEY_HEADER)])
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(86_400))
        .allow_origin(match origins {
            Origins::Any => AllowOrigin::any(),
            Origins::List(list) => AllowOrigin::list(list),
        });
    Router::new()
        .route("/v1/reports", post(post_reports))
        .route("/v1/health", get(health))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint: POST /v1/reports or GET /v1/health") })
        .method_not_allowed_fallback(|| async {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: POST /v1/reports, GET /v1/health")
        })
        .with_state(state)
        .layer(cors)
        .layer(middleware::from_fn(log_request))
}

/// Why a request was refused; the logging layer reads it to log the reason.
#[derive(Debug, Clone)]
struct Refusal(String);

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], value.to_string()).into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    let mut response = json_response(status, &json!({ "error": message }));
    response.extensions_mut().insert(Refusal(message));
    response
}

async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    // The path only: the query string holds the site key.
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let status = response.status().as_u16();
    match response.extensions().get::<Refusal>() {
        Some(Refusal(why)) => tracing::warn!("{method} {path} {status} {ms:.1}ms: {why}"),
        None => tracing::info!("{method} {path} {status} {ms:.1}ms"),
    }
    response
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.store.schema_version().await {
        Ok(v) => json_response(StatusCode::OK, &json!({ "status": "ok", "schemaVersion": v })),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("storage: {e}")),
    }
}

async fn post_reports(State(state): State<Arc<AppState>>, headers: HeaderMap, uri: Uri, body: Body) -> Response {
    match accept(&state, &headers, &uri, body).await {
        Ok(response) => response,
        Err(response) => response,
    }
}

async fn accept(state: &AppState, headers: &HeaderMap, uri: &Uri, body: Body) -> Result<Response, Response> {
    // Who: the site key, from `?key=` (beacons cannot set headers) or `X-Foresight-Key`.
    let key = query_param(uri.query().unwrap_or(""), "key")
        .or_else(|| headers.get(KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned))
        .filter(|k| !k.is_empty())
        .ok_or_else(|| error(StatusCode::UNAUTHORIZED, "missing site key: pass ?key=KEY or the X-Foresight-Key header"))?;
    let site = state.keys.get(&key).ok_or_else(|| error(StatusCode::UNAUTHORIZED, "unknown site key"))?;

    // What: JSON, sent as application/json or as text/plain (what sendBeacon sends for a string).
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime != "application/json" && mime != "text/plain" {
        let shown = if content_type.is_empty() { "none".to_owned() } else { format!("`{content_type}`") };
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {shown} is not accepted: send application/json or text/plain"),
        ));
    }

    // Compressed bodies are not taken: a report is ~600 bytes, and decompressing is where a
    // small body becomes a large one.
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity").trim();
    if !encoding.eq_ignore_ascii_case("identity") {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding `{encoding}` is not accepted: send the JSON uncompressed"),
        ));
    }

    let bytes = read_body(body, headers, state.max_body).await?;
    let today = storage::today();
    let rules = intake::Rules {
        max_epsilon: state.max_epsilon,
        today: foresight::privacy::budget::day_number(&today).unwrap_or(0),
        max_age_days: state.max_age_days,
    };
    let rows: Vec<NewReport> = intake::reports(&bytes, site, &rules)
        .map_err(|refusal| {
            let status = match refusal {
                intake::Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
                intake::Refusal::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
                intake::Refusal::TooMany(_) => StatusCode::PAYLOAD_TOO_LARGE,
                intake::Refusal::WrongSite { .. } => StatusCode::FORBIDDEN,
            };
            error(status, refusal.to_string())
        })?
        .into_iter()
        .map(|(report, body_json)| NewReport {
            idempotency_key: report.idempotency_key,
            day: report.day,
            epsilon: report.epsilon,
            body_json,
        })
        .collect();

    if let Err(wait) = state.limiter.take(site, rows.len()) {
        let secs = limits::retry_after_secs(wait);
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, format!("site `{site}` is over its rate limit; retry in {secs} s"));
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Err(response);
    }

    match state.store.insert(site, &today, rows).await {
        Ok(done) => Ok(json_response(StatusCode::ACCEPTED, &json!({ "accepted": done.accepted, "duplicates": done.duplicates }))),
        Err(e) => {
            tracing::error!("storing reports for site `{site}` failed: {e}");
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "the reports could not be stored; retry later");
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(5u32));
            Err(response)
        }
    }
}

/// The body, refusing anything over `max` bytes (from `Content-Length` before reading, and
/// while reading for chunked bodies).
// The error is the HTTP answer itself (axum's `Response`), returned once per refused request.
#[allow(clippy::result_large_err)]
async fn read_body(body: Body, headers: &HeaderMap, max: usize) -> Result<Vec<u8>, Response> {
    let too_large = || error(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over the limit of {max} bytes"));
    if let Some(length) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()) {
        if length > max as u64 {
            return Err(too_large());
        }
    }
    let read = async {
        let mut body = std::pin::pin!(body);
        let mut bytes = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            let frame = frame.map_err(|e| error(StatusCode::BAD_REQUEST, format!("reading the body failed: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > max {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(bytes)
    };
    tokio::time::timeout(limits::BODY_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| Err(error(StatusCode::REQUEST_TIMEOUT, "the body took too long to arrive")))
}

/// The percent-decoded value of `name` in a query string.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keys_are_percent_decoded() {
        assert_eq!(query_param("a=1&key=k%26y", "key").as_deref(), Some("k&y"));
        assert_eq!(query_param("key=abc", "key").as_deref(), Some("abc"));
        assert_eq!(query_param("keys=abc", "key"), None);
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
