//! Requests checked before any handler sees them, and every rejection in the
//! API's error shape.
//!
//! - The path and query must percent-decode to UTF-8 without NUL: text
//!   PostgreSQL cannot store, and path parameters such as a memory id, are
//!   refused here for every route at once (400 `request.malformed`).
//! - A declared `Content-Length` over the body limit is refused at once
//!   (413 `request.too_large`), on every route, whether or not it reads
//!   its body.
//! - Requests that change state (every method but GET, HEAD and OPTIONS,
//!   and the WebSocket handshake) must name an allowed host (421
//!   `request.misdirected`): see [`crate::host`].
//! - Any error response not already in the API's shape (axum's own
//!   extractor rejections, upgrade refusals) is rewritten as
//!   `{"detail", "code"}` with its status kept.

use crate::error::ApiError;
use crate::host::HostPolicy;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Longest rejection text carried over into `detail`.
const MAX_DETAIL: usize = 200;

/// What the edge checks need from settings.
#[derive(Clone)]
pub struct Edge {
    pub body_limit: usize,
    pub hosts: Arc<HostPolicy>,
}

/// The edge, as one layer: refuse what must not reach a handler, then put
/// any refusal from further in that is not yet in the API's shape into it.
pub async fn guard(edge: Edge, req: Request, next: Next) -> Response {
    if let Some(refusal) = refuse(&edge, &req) {
        return refusal;
    }
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&resp) {
        return resp;
    }
    into_api_shape(resp).await
}

fn refuse(edge: &Edge, req: &Request) -> Option<Response> {
    let uri = req.uri();
    if let Err(what) = check_text(uri.path(), false) {
        return Some(malformed(&format!("The path {what}")));
    }
    if let Some(query) = uri.query()
        && let Err(what) = check_text(query, true)
    {
        return Some(malformed(&format!("The query string {what}")));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > edge.body_limit as u64) {
        let detail = format!(
            "Request body is too large (at most {} bytes)",
            edge.body_limit
        );
        return Some(
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request.too_large", detail)
                .into_response(),
        );
    }
    misdirected(&edge.hosts, req)
}

/// A state-changing request addressed to a host not allowed: 421.
fn misdirected(hosts: &HostPolicy, req: &Request) -> Option<Response> {
    let changes_state = !matches!(
        req.method(),
        &Method::GET | &Method::HEAD | &Method::OPTIONS
    ) || req.uri().path().starts_with("/ws/");
    if !changes_state {
        return None;
    }
    let host = match req.uri().authority() {
        Some(a) => a.as_str().to_string(),
        None => {
            let h = req.headers().get(header::HOST)?;
            h.to_str().unwrap_or("\u{fffd}").to_string()
        }
    };
    if hosts.allows(&host) {
        return None;
    }
    let shown: String = host.chars().take(100).collect();
    tracing::warn!(host = %shown, "request for a host this server does not answer to");
    Some(
        ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "request.misdirected",
            "This server does not answer to that host name (server.allowed_hosts)",
        )
        .into_response(),
    )
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

/// An error response that is not JSON (axum's own rejections, upgrade
/// refusals) rewritten as `{"detail", "code"}`, its status and headers kept.
async fn into_api_shape(resp: Response) -> Response {
    let status = resp.status();
    let (parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, 16 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let mut out =
        ApiError::new(status, code_for(status), detail_from(&text, status)).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

fn malformed(detail: &str) -> Response {
    ApiError::new(StatusCode::BAD_REQUEST, "request.malformed", detail).into_response()
}

/// `Err(what is wrong)` when `raw`, percent-decoded, is not UTF-8 or holds
/// NUL. `form` decodes `+` as a space, as query strings do.
pub(crate) fn check_text(raw: &str, form: bool) -> Result<(), &'static str> {
    // What hyper accepts in a URI is printable ASCII: only escapes can hide
    // anything else.
    if !raw.as_bytes().contains(&b'%') {
        return Ok(());
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut it = raw.bytes();
    while let Some(b) = it.next() {
        match b {
            b'%' => {
                let hi = it.next().and_then(hex);
                let lo = it.next().and_then(hex);
                match (hi, lo) {
                    (Some(h), Some(l)) => bytes.push(h << 4 | l),
                    _ => return Err("has a malformed percent-escape"),
                }
            }
            b'+' if form => bytes.push(b' '),
            b => bytes.push(b),
        }
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| "is not valid UTF-8")?;
    if text.contains('\0') {
        return Err("contains a NUL character");
    }
    Ok(())
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The stable code of an error status produced outside the API's handlers.
fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "request.malformed",
        401 => "auth.token_missing",
        403 => "auth.forbidden",
        404 => "request.not_found",
        405 => "request.method_not_allowed",
        408 | 504 => "request.timeout",
        413 => "request.too_large",
        415 => "request.unsupported_media_type",
        422 => "request.validation",
        426 => "request.upgrade_required",
        429 => "rate_limited",
        500 => "internal",
        503 => "service.unavailable",
        s if s < 500 => "request.invalid",
        _ => "internal",
    }
}

/// A rejection's own text when it is short, printable and from a client
/// error; a generic phrase otherwise (server errors never carry details).
fn detail_from(text: &str, status: StatusCode) -> String {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if status.is_client_error() && !text.is_empty() && text.chars().count() <= MAX_DETAIL {
        return text.to_string();
    }
    status
        .canonical_reason()
        .unwrap_or("Request failed")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::check_text;

    #[test]
    fn paths_and_queries() {
        assert!(check_text("/api/v1/memories/abc", false).is_ok());
        assert!(check_text("q=caf%C3%A9+au+lait&limit=2", true).is_ok());
        assert_eq!(
            check_text("/api/v1/memories/%00", false),
            Err("contains a NUL character")
        );
        assert_eq!(check_text("/x/%FF%FE", false), Err("is not valid UTF-8"));
        assert_eq!(
            check_text("/x/%G0", false),
            Err("has a malformed percent-escape")
        );
        assert_eq!(
            check_text("q=%2", true),
            Err("has a malformed percent-escape")
        );
    }
}
