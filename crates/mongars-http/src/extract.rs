//! Extractors: the authenticated caller, the client address, and JSON / form
//! bodies whose rejections use the API's error shape.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{
    ConnectInfo, FromRequest, FromRequestParts, OptionalFromRequestParts, Request,
};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use mongars_core::CoreError;
use mongars_core::auth::Principal;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};

/// Any signed-in, enabled user.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Principal);

/// A signed-in admin (403 for other users).
#[derive(Debug, Clone)]
pub struct AdminUser(pub Principal);

fn bearer(parts: &Parts) -> Result<Option<&str>, CoreError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| CoreError::InvalidToken)?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(CoreError::InvalidToken),
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?.ok_or(CoreError::MissingToken)?;
        Ok(AuthUser(state.auth.authenticate(token).await?))
    }
}

/// `Option<AuthUser>`: `None` without an Authorization header, 401 with a bad one.
impl OptionalFromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        match bearer(parts)? {
            None => Ok(None),
            Some(token) => Ok(Some(AuthUser(state.auth.authenticate(token).await?))),
        }
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(p) =
            <AuthUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        if !p.is_admin() {
            return Err(CoreError::Forbidden("Admin privileges required").into());
        }
        Ok(AdminUser(p))
    }
}

/// The client's address: the TCP peer, or, when `server.trust_forwarded_for`
/// is on, the last `X-Forwarded-For` entry: the address the trusted proxy
/// saw and appended. Earlier entries are whatever the client sent and could
/// be forged to dodge per-address limits.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.http.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok());
            if forwarded.is_some() {
                return Ok(ClientAddr(forwarded));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| ci.0.ip());
        Ok(ClientAddr(peer))
    }
}

/// JSON body; malformed JSON is 400, wrong fields 422, too large 413, a
/// content type other than JSON 415. No string in it may hold NUL (422):
/// text that PostgreSQL cannot store is refused here, for every route.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => from_json_value(v).map(ApiJson),
            Err(JsonRejection::JsonSyntaxError(_) | JsonRejection::JsonDataError(_)) => {
                Err(not_json())
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(not_json_content()),
            Err(e) => Err(body_error(e.status())),
        }
    }
}

/// Parse a JSON body already read (routes whose body is optional), under
/// the same rules as [`ApiJson`].
pub fn json_body<T: DeserializeOwned>(
    headers: &axum::http::HeaderMap,
    bytes: &[u8],
) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !is_json {
        return Err(not_json_content());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|_| not_json())?;
    from_json_value(value)
}

fn not_json_content() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "request.unsupported_media_type",
        "Expected Content-Type: application/json",
    )
}

fn not_json() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "request.malformed",
        "Request body is not valid JSON",
    )
}

fn from_json_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if let Some(field) = nul_in(&value, "") {
        return Err(nul_error(&field));
    }
    serde_json::from_value(value).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.validation",
            format!("Invalid request body: {e}"),
        )
    })
}

/// The path of the first key or string holding NUL, if any.
fn nul_in(value: &Value, at: &str) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(at.trim_start_matches('.').to_string()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_in(v, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some(at.trim_start_matches('.').to_string())
            } else {
                nul_in(v, &format!("{at}.{k}"))
            }
        }),
        _ => None,
    }
}

fn nul_error(field: &str) -> ApiError {
    let field = if field.is_empty() { "body" } else { field };
    invalid(field, format!("{field} must not contain NUL characters"))
}

/// URL-encoded form body with the same error shape and the same NUL rule.
pub struct ApiForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiForm<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "request.unsupported_media_type",
                "Expected Content-Type: application/x-www-form-urlencoded",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| body_error(e.status()))?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "request.malformed",
                "Request body is not a valid form",
            )
        })?;
        if let Some((k, _)) = pairs
            .iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(nul_error(k.trim_matches('\0')));
        }
        serde_urlencoded::from_bytes(&bytes)
            .map(ApiForm)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "request.validation",
                    format!("Invalid form: {e}"),
                )
            })
    }
}

/// Query string with the API's error shape: a key given twice, a value of
/// the wrong type, or a query that is not UTF-8 is 400.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "request.malformed",
                    format!("Invalid query string: {e}"),
                )
            })
    }
}

fn body_error(status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "request.too_large", "Request body is too large")
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.malformed",
            "Request body could not be read",
        )
    }
}

/// The one 422 for a field that failed a check at the edge.
pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, field, message)
}

/// Check a length bound on a string field at the edge (422 otherwise).
pub fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(invalid(
            field,
            format!("{field} must be {min} to {max} characters"),
        ));
    }
    Ok(())
}

/// A `limit` query value: `default` when absent or empty, otherwise a whole
/// number from 1 to `max` (422 otherwise).
pub fn parse_limit(raw: Option<&str>, default: u32, max: u32) -> Result<u32, ApiError> {
    match raw {
        None | Some("") => Ok(default),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| invalid("limit", format!("limit must be 1 to {max}"))),
    }
}

/// The account a request is about: the caller's own when `name` is absent,
/// empty or the caller's; another's for admins; otherwise 403 `refusal`.
pub async fn subject(
    state: &AppState,
    who: &Principal,
    name: Option<&str>,
    refusal: &'static str,
) -> Result<(i64, String), ApiError> {
    match name.filter(|n| !n.is_empty()) {
        None => Ok((who.id, who.username.clone())),
        Some(n) if n.eq_ignore_ascii_case(&who.username) => Ok((who.id, who.username.clone())),
        Some(_) if !who.is_admin() => Err(CoreError::Forbidden(refusal).into()),
        Some(n) => {
            let user = state
                .auth
                .find(&mongars_core::domain::Username::parse(n)?)
                .await?;
            Ok((user.id, user.username))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_when_absent_and_refuse_out_of_range() {
        assert_eq!(parse_limit(None, 10, 100).unwrap(), 10);
        assert_eq!(parse_limit(Some(""), 10, 100).unwrap(), 10);
        assert_eq!(parse_limit(Some("100"), 10, 100).unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", "1.5"] {
            assert_eq!(
                parse_limit(Some(bad), 10, 100).unwrap_err().status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{bad}"
            );
        }
    }
}
