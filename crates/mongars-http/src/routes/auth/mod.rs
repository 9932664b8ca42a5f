//! `/token` and `/api/v1/auth/...`: OAuth2 password flow, JSON login,
//! first-admin bootstrap; API keys in [`keys`].

pub mod keys;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiForm, ApiJson, ClientAddr, check_len};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mongars_core::auth::LoginOutcome;
use mongars_core::domain::{Password, USERNAME_MAX, Username};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /token` form fields (OAuth2 password grant).
#[derive(Deserialize, ToSchema)]
pub struct TokenForm {
    username: String,
    password: String,
    grant_type: Option<String>,
    #[allow(dead_code)]
    scope: Option<String>,
    #[allow(dead_code)]
    client_id: Option<String>,
    #[allow(dead_code)]
    client_secret: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

/// OAuth2 password grant: a form with `username` and `password`.
#[utoipa::path(post, path = "/token", tag = "auth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "An access token", body = TokenResponse)))]
pub async fn token(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiForm(form): ApiForm<TokenForm>,
) -> ApiResult<Json<TokenResponse>> {
    if let Some(grant) = form.grant_type.as_deref().filter(|g| !g.is_empty())
        && grant != "password"
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "auth.unsupported_grant_type",
            "Only grant_type=password is supported",
        ));
    }
    check_len("username", &form.username, 1, USERNAME_MAX)?;
    let password = Password::for_login(&form.password)?;
    let out = state
        .auth
        .login(&form.username, &password, client.0)
        .await?;
    Ok(Json(TokenResponse {
        access_token: out.token,
        token_type: "bearer",
        expires_in: out.expires_in_secs,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    access_token: String,
    token_type: &'static str,
    admin: bool,
    expires_in: u64,
}

/// JSON login.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, description = "An access token", body = LoginResponse)))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let out = login_with(&state, client, &req.username, &req.password).await?;
    Ok(Json(LoginResponse {
        access_token: out.token,
        token_type: "bearer",
        admin: out.user.is_admin(),
        expires_in: out.expires_in_secs,
    }))
}

/// The checks both login forms share: bounds at the edge, then the service.
async fn login_with(
    state: &AppState,
    client: ClientAddr,
    username: &str,
    password: &str,
) -> ApiResult<LoginOutcome> {
    check_len("username", username, 1, USERNAME_MAX)?;
    let password = Password::for_login(password)?;
    Ok(state.auth.login(username, &password, client.0).await?)
}

#[derive(Deserialize, ToSchema)]
pub struct BootstrapRequest {
    username: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct BootstrapResponse {
    created: bool,
    username: String,
    admin: bool,
}

/// Create the first admin while none exists (if `bootstrap.endpoint_enabled`).
#[utoipa::path(post, path = "/api/v1/auth/bootstrap-admin", tag = "auth", request_body = BootstrapRequest,
    responses((status = 200, description = "The admin was created", body = BootstrapResponse)))]
pub async fn bootstrap_admin(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<BootstrapRequest>,
) -> ApiResult<Json<BootstrapResponse>> {
    let username = Username::parse(&req.username)?;
    let password = Password::new_secret(&req.password, "password")?;
    let user = state.auth.bootstrap_admin(username, &password).await?;
    Ok(Json(BootstrapResponse {
        created: true,
        username: user.username,
        admin: true,
    }))
}
