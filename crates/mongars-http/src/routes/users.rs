//! `/api/v1/user/...`: registration, listing, password change, disabling,
//! and forgetting everything a user said.

use crate::error::ApiResult;
use crate::extract::{AdminUser, ApiJson, ApiQuery, AuthUser, ClientAddr, subject};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use mongars_core::domain::{Password, Username};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    username: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct RegisterResponse {
    status: &'static str,
    is_admin: bool,
}

#[utoipa::path(post, path = "/api/v1/user/register", tag = "accounts", request_body = RegisterRequest,
    security(("bearer" = [])), responses((status = 200, description = "Registered", body = RegisterResponse)))]
pub async fn register(
    State(state): State<AppState>,
    caller: Option<AuthUser>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<Json<RegisterResponse>> {
    let username = Username::parse(&req.username)?;
    let password = Password::new_secret(&req.password, "password")?;
    let actor = caller.as_ref().map(|AuthUser(p)| p);
    let user = state.auth.register(actor, username, &password).await?;
    Ok(Json(RegisterResponse {
        status: "registered",
        is_admin: user.is_admin(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    users: Vec<String>,
    /// The same accounts with their state, for the console.
    details: Vec<UserView>,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    username: String,
    is_admin: bool,
    disabled: bool,
    created_at: chrono::DateTime<chrono::Utc>,
    last_login_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<&mongars_core::domain::User> for UserView {
    fn from(u: &mongars_core::domain::User) -> Self {
        Self {
            username: u.username.clone(),
            is_admin: u.is_admin(),
            disabled: u.disabled,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct UserChange {
    disabled: bool,
}

/// `PATCH /api/v1/user/{username}` (admin) `{disabled}`: disable (revoking
/// the account's tokens and closing its sockets on every replica) or
/// re-enable an account. Admins cannot disable themselves.
#[utoipa::path(patch, path = "/api/v1/user/{username}", tag = "accounts", request_body = UserChange,
    params(("username" = String, Path, description = "The account")),
    security(("bearer" = [])), responses((status = 200, description = "The account", body = UserView)))]
pub async fn update(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    axum::extract::Path(name): axum::extract::Path<String>,
    ApiJson(change): ApiJson<UserChange>,
) -> ApiResult<Json<UserView>> {
    let username = Username::parse(&name)?;
    if change.disabled && username.key() == admin.username.to_lowercase() {
        return Err(mongars_core::CoreError::Forbidden("Admins cannot disable themselves").into());
    }
    let user = state.auth.set_disabled(&username, change.disabled).await?;
    Ok(Json(UserView::from(&user)))
}

/// Every account (admins).
#[utoipa::path(get, path = "/api/v1/user/list", tag = "accounts",
    security(("bearer" = [])), responses((status = 200, description = "Accounts", body = UserList)))]
pub async fn list(State(state): State<AppState>, _admin: AdminUser) -> ApiResult<Json<UserList>> {
    let users = state.auth.list_users().await?;
    Ok(Json(UserList {
        details: users.iter().map(UserView::from).collect(),
        users: users.into_iter().map(|u| u.username).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    old_password: String,
    new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct StatusResponse {
    status: &'static str,
}

/// `POST /api/v1/user/change-password`: wrong current passwords are
/// throttled like failed logins; success revokes every older token and
/// closes the caller's sockets on every replica.
#[utoipa::path(post, path = "/api/v1/user/change-password", tag = "accounts", request_body = ChangePasswordRequest,
    security(("bearer" = [])), responses((status = 200, description = "Changed", body = StatusResponse)))]
pub async fn change_password(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    client: ClientAddr,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<Json<StatusResponse>> {
    let old = Password::for_login(&req.old_password)?;
    let new = Password::new_secret(&req.new_password, "new_password")?;
    state
        .auth
        .change_password(&principal, &old, &new, client.0)
        .await?;
    Ok(Json(StatusResponse { status: "changed" }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForgetQuery {
    /// Another user's name (admins only).
    username: Option<String>,
}

/// What forget-me deleted.
#[derive(Serialize, ToSchema)]
pub struct Forgotten {
    /// `forgotten`.
    status: &'static str,
    username: String,
    turns: u64,
    memories: u64,
    profile: bool,
}

/// `DELETE /api/v1/user/data[?username=]`: delete every turn, memory,
/// vector and the profile of the caller (admins: of any user). The account
/// stays.
#[utoipa::path(delete, path = "/api/v1/user/data", tag = "memory", params(ForgetQuery),
    security(("bearer" = [])), responses((status = 200, description = "Deleted", body = Forgotten)))]
pub async fn forget(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    ApiQuery(q): ApiQuery<ForgetQuery>,
) -> ApiResult<Json<Forgotten>> {
    let (user_id, username) = subject(
        &state,
        &who,
        q.username.as_deref(),
        "You may only delete your own data",
    )
    .await?;
    let report = state.conversation.forget(user_id).await?;
    tracing::info!(user = %username, turns = report.turns, memories = report.memories, "user data deleted");
    Ok(Json(Forgotten {
        status: "forgotten",
        username,
        turns: report.turns,
        memories: report.memories,
        profile: report.profile,
    }))
}
