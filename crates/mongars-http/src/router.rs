//! Every route of the server, in one place, and the middleware around them.

use crate::edge;
use crate::middleware::{self as mw, REQUEST_ID};
use crate::routes::{
    auth, console, conversation, embeddings, health, keys, llm, memory, metrics, models, openai,
    review, users,
};
use crate::state::AppState;
use crate::ws;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub fn router(state: AppState) -> Router {
    let timeout = state.http.request_timeout;
    let body_limit = state.http.body_limit_bytes;
    let cors = cors(state.origins.clone());
    let edge = edge::Edge {
        body_limit,
        hosts: state.hosts.clone(),
    };

    let api = Router::new()
        // the operator console
        .route("/", get(console::index))
        .route("/assets/app.js", get(console::script))
        .route("/assets/app.css", get(console::style))
        // operations
        .route("/healthz", get(health::healthz))
        .route("/ready", get(health::ready))
        // tokens
        .route("/token", post(auth::token))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/bootstrap-admin", post(auth::bootstrap_admin))
        .route("/api/v1/auth/keys", get(keys::list).post(keys::create))
        .route("/api/v1/auth/keys/{id}", delete(keys::revoke))
        // realtime
        .route("/api/v1/auth/ws/ticket", post(ws::ticket))
        .route("/ws/chat/", get(ws::chat))
        .route("/ws/chat", get(ws::chat))
        // accounts
        .route("/api/v1/user/register", post(users::register))
        .route("/api/v1/user/list", get(users::list))
        .route("/api/v1/user/change-password", post(users::change_password))
        .route(
            "/api/v1/user/{username}",
            axum::routing::patch(users::update),
        )
        // conversation (chats are timed by their handlers: see below)
        .route("/api/v1/conversation/history", get(conversation::history))
        .route(
            "/api/v1/conversation/turns/{id}/context",
            get(memory::turn_context),
        )
        // memory, profile and the user's data
        .route("/api/v1/memories", get(memory::list).post(memory::create))
        .route(
            "/api/v1/memories/{id}",
            axum::routing::patch(memory::edit).delete(memory::delete),
        )
        .route("/api/v1/profile", get(memory::profile))
        .route("/api/v1/user/data", delete(memory::forget))
        // review and UI helpers
        .route("/api/v1/review/rag-context", post(review::rag_context))
        .route("/api/v1/ui/suggestions", post(review::suggestions))
        .route("/llm/chat", post(llm::chat))
        .route("/llm/health", get(llm::health))
        // OpenAI-compatible
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/models", get(openai::models))
        .route("/v1/embeddings", post(embeddings::embeddings))
        // models and metrics
        .route("/api/v1/models", get(models::list))
        .route("/api/v1/models/provision", post(models::provision))
        .route("/metrics", get(metrics::metrics))
        .route_layer(axum::middleware::from_fn(move |req, next| {
            mw::timeout(timeout, req, next)
        }))
        // Chat turns enforce the request timeout themselves, so that a turn
        // cut off by it is stored as failed with its reason.
        .route("/api/v1/conversation/chat", post(conversation::chat))
        .route(
            "/api/v1/conversation/chat/stream",
            post(conversation::chat_stream),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            mw::record_route,
        ))
        .fallback(mw::not_found)
        .method_not_allowed_fallback(mw::method_not_allowed)
        .with_state(state);

    api.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(mw::request_span)
                    .on_request(())
                    .on_response(mw::log_response)
                    .on_failure(()),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
            .layer(cors)
            .layer(axum::middleware::from_fn(move |req, next| {
                edge::guard(edge.clone(), req, next)
            }))
            .layer(CatchPanicLayer::custom(mw::panic_response))
            .layer(DefaultBodyLimit::max(body_limit)),
    )
}

/// Browsers may call the API from the origins the socket accepts.
fn cors(origins: std::sync::Arc<crate::origin::OriginPolicy>) -> CorsLayer {
    use axum::http::{Method, header};
    let allow = AllowOrigin::predicate(move |origin, parts| {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        origin.to_str().is_ok_and(|o| origins.allows(o, host))
    });
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            REQUEST_ID.clone(),
        ])
        .expose_headers([header::RETRY_AFTER, REQUEST_ID.clone()])
        .max_age(std::time::Duration::from_secs(600))
}
