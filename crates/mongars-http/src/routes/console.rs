//! The operator console: five static files from `web/`, compiled into the
//! binary, so it works offline and needs nothing installed.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../../../web/index.html");
const SCRIPT: &str = include_str!("../../../../web/app.js");
const STYLE: &str = include_str!("../../../../web/app.css");
const TRAINING: &str = include_str!("../../../../web/training.js");
const PEERS: &str = include_str!("../../../../web/peers.js");

/// Only this server's own scripts, styles and connections (sockets included).
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// `GET /`
/// The operator console.
#[utoipa::path(get, path = "/", tag = "console", responses((status = 200, description = "The console page", content_type = "text/html", body = String)))]
pub async fn index() -> Response {
    asset(INDEX, "text/html; charset=utf-8")
}

/// `GET /assets/app.js`
/// The console's script.
#[utoipa::path(get, path = "/assets/app.js", tag = "console", responses((status = 200, description = "JavaScript", content_type = "text/javascript", body = String)))]
pub async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /assets/training.js`
/// The console's learning and training panels.
#[utoipa::path(get, path = "/assets/training.js", tag = "console", responses((status = 200, description = "JavaScript", content_type = "text/javascript", body = String)))]
pub async fn training_script() -> Response {
    asset(TRAINING, "text/javascript; charset=utf-8")
}

/// `GET /assets/peers.js`
/// The console's peers panel.
#[utoipa::path(get, path = "/assets/peers.js", tag = "console", responses((status = 200, description = "JavaScript", content_type = "text/javascript", body = String)))]
pub async fn peers_script() -> Response {
    asset(PEERS, "text/javascript; charset=utf-8")
}

/// `GET /assets/app.css`
/// The console's style sheet.
#[utoipa::path(get, path = "/assets/app.css", tag = "console", responses((status = 200, description = "CSS", content_type = "text/css", body = String)))]
pub async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}
