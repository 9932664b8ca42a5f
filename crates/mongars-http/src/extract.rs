//! Extractors: the authenticated caller, the client address, and JSON / form
//! bodies whose rejections use the API's error shape.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{
    ConnectInfo, FromRequest, FromRequestParts, OptionalFromRequestParts, Request,
};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use mongars_core::CoreError;
use mongars_core::auth::Principal;
use serde::de::DeserializeOwned;
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

/// The client's address: the TCP peer, or the first `X-Forwarded-For` entry
/// when `server.trust_forwarded_for` is on.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.http.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
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

/// JSON body; malformed JSON is 400, wrong fields 422, too large 413.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "request.validation",
                e.body_text(),
            )),
            Err(JsonRejection::JsonSyntaxError(_)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "request.malformed",
                "Request body is not valid JSON",
            )),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "request.unsupported_media_type",
                "Expected Content-Type: application/json",
            )),
            Err(e) => Err(body_error(e.status())),
        }
    }
}

/// URL-encoded form body with the same error shape.
pub struct ApiForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiForm<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(ApiForm(v)),
            Err(FormRejection::FailedToDeserializeFormBody(e)) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "request.validation",
                e.body_text(),
            )),
            Err(FormRejection::InvalidFormContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "request.unsupported_media_type",
                "Expected Content-Type: application/x-www-form-urlencoded",
            )),
            Err(e) => Err(body_error(e.status())),
        }
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

/// Check a length bound on a string field at the edge (422 otherwise).
pub fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            field,
            format!("{field} must be {min} to {max} characters"),
        ));
    }
    Ok(())
}
