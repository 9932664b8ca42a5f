//! The one place where errors become HTTP responses.
//!
//! Every error body is `{"detail": <text>, "code": <stable code>}`, plus
//! `errors` for field validation. Internal details are logged (inside the
//! request's span, so with its request id) and never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mongars_core::CoreError;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after_secs: Option<u64>,
    /// Value of `WWW-Authenticate`, for 401s.
    pub challenge: Option<&'static str>,
}

#[derive(Serialize)]
struct Body<'a> {
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
            challenge: None,
        }
    }

    pub fn field(status: StatusCode, field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(status, "request.validation", message.clone());
        e.errors.push(FieldError {
            field: field.to_string(),
            message,
        });
        e
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "request.not_found", "Not found")
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        use StatusCode as S;
        let code = e.code();
        let detail = e.to_string();
        let mut api = match &e {
            CoreError::Validation { field, message } => {
                return ApiError::field(S::UNPROCESSABLE_ENTITY, field, message.clone());
            }
            CoreError::InvalidCredentials | CoreError::MissingToken => {
                let mut a = ApiError::new(S::UNAUTHORIZED, code, detail);
                a.challenge = Some("Bearer");
                a
            }
            CoreError::InvalidToken => {
                let mut a = ApiError::new(S::UNAUTHORIZED, code, detail);
                a.challenge = Some("Bearer error=\"invalid_token\"");
                a
            }
            CoreError::TicketInvalid => ApiError::new(S::UNAUTHORIZED, code, detail),
            CoreError::TooManySockets => {
                let mut a = ApiError::new(S::TOO_MANY_REQUESTS, code, detail);
                a.retry_after_secs = Some(5);
                a
            }
            CoreError::Throttled { retry_after_secs }
            | CoreError::RateLimited { retry_after_secs } => {
                let mut a = ApiError::new(S::TOO_MANY_REQUESTS, code, detail);
                a.retry_after_secs = Some(*retry_after_secs);
                a
            }
            CoreError::Forbidden(_) | CoreError::WrongPassword | CoreError::BootstrapDisabled => {
                ApiError::new(S::FORBIDDEN, code, detail)
            }
            CoreError::AdminExists | CoreError::UserExists => {
                ApiError::new(S::CONFLICT, code, detail)
            }
            CoreError::NotFound(_) => ApiError::new(S::NOT_FOUND, code, detail),
            CoreError::Conflict { .. } => ApiError::new(S::CONFLICT, code, detail),
            CoreError::PromptTooLarge => ApiError::new(S::PAYLOAD_TOO_LARGE, code, detail),
            CoreError::Overloaded { retry_after_secs } => {
                let mut a = ApiError::new(S::SERVICE_UNAVAILABLE, code, detail);
                a.retry_after_secs = Some(*retry_after_secs);
                return a;
            }
            CoreError::BackendsExhausted(internal) => {
                tracing::warn!(error = %internal, "every generation backend failed");
                ApiError::new(S::BAD_GATEWAY, code, detail)
            }
            CoreError::BackendFailed(internal) => {
                tracing::warn!(error = %internal, "generation backend failed");
                ApiError::new(S::BAD_GATEWAY, code, detail)
            }
            CoreError::BackendTimeout(internal) => {
                tracing::warn!(error = %internal, "generation backend timed out");
                ApiError::new(S::GATEWAY_TIMEOUT, code, detail)
            }
            CoreError::RequestTimeout => ApiError::new(S::GATEWAY_TIMEOUT, code, detail),
            CoreError::BackendTls(internal) => {
                tracing::warn!(error = %internal, "generation backend's certificate refused");
                ApiError::new(S::BAD_GATEWAY, code, detail)
            }
            CoreError::Disabled(_) => return ApiError::new(S::SERVICE_UNAVAILABLE, code, detail),
            CoreError::Unavailable(internal) => {
                tracing::warn!(error = %internal, "dependency unavailable");
                ApiError::new(
                    S::SERVICE_UNAVAILABLE,
                    code,
                    "Service temporarily unavailable",
                )
            }
            CoreError::Internal(internal) => {
                tracing::error!(error = %internal, "internal error");
                ApiError::new(S::INTERNAL_SERVER_ERROR, code, "Internal server error")
            }
        };
        if api.status == S::SERVICE_UNAVAILABLE {
            api.retry_after_secs = Some(5);
        }
        api
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            detail: &self.detail,
            code: self.code,
            errors: &self.errors,
        };
        let mut resp = (self.status, Json(body)).into_response();
        let headers = resp.headers_mut();
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(challenge) = self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
