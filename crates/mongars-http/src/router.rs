//! Every route of the server, in one place, and the middleware around them.

use crate::edge;
use crate::middleware::{self as mw, REQUEST_ID};
use crate::openapi::ApiDoc;
use crate::routes::auth::{self, keys};
use crate::routes::{
    adapters, console, conversation, embeddings, health, llm, memory, metrics, models, openai,
    peers, profile, review, runs, training, ui, users,
};
use crate::state::AppState;
use crate::ws;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use std::sync::Arc;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router(state: AppState) -> Router {
    let body_limit = state.http.body_limit_bytes;
    let cors = cors(state.origins.clone());
    let edge = edge::Edge {
        body_limit,
        hosts: state.hosts.clone(),
    };

    let (api, mut doc) = routes(state.clone()).split_for_parts();
    utoipa::Modify::modify(&crate::openapi::Conventions, &mut doc);
    let doc: Arc<str> = Arc::from(
        doc.to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")),
    );
    let api = api
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        doc.to_string(),
                    )
                }
            }),
        )
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

/// Every documented route. Routes are added only with `routes!`, which takes
/// each handler's `#[utoipa::path]`: a route cannot exist undocumented.
pub fn routes(state: AppState) -> OpenApiRouter<AppState> {
    let timeout = state.http.request_timeout;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        // the operator console, and this document
        .routes(routes!(console::index))
        .routes(routes!(console::script))
        .routes(routes!(console::training_script))
        .routes(routes!(console::peers_script))
        .routes(routes!(console::style))
        // operations
        .routes(routes!(health::healthz))
        .routes(routes!(health::ready))
        .routes(routes!(llm::health))
        .routes(routes!(metrics::metrics))
        // tokens and keys
        .routes(routes!(auth::token))
        .routes(routes!(auth::login))
        .routes(routes!(auth::bootstrap_admin))
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::revoke))
        // realtime
        .routes(routes!(ws::ticket))
        .routes(routes!(ws::chat))
        .routes(routes!(ws::chat_alias))
        // accounts
        .routes(routes!(users::register))
        .routes(routes!(users::list))
        .routes(routes!(users::change_password))
        .routes(routes!(users::update))
        // conversation (chats are timed by their handlers: see below)
        .routes(routes!(conversation::history))
        .routes(routes!(conversation::turn_context))
        .routes(routes!(llm::chat))
        // memory, profile and the user's data
        .routes(routes!(memory::list, memory::create))
        .routes(routes!(memory::edit, memory::delete))
        .routes(routes!(profile::profile, profile::update))
        .routes(routes!(users::forget))
        // learning from users, and the adapters it makes
        .routes(routes!(training::feedback))
        .routes(routes!(training::example))
        .routes(routes!(training::review_queue))
        .routes(routes!(training::review))
        .routes(routes!(training::datasets, training::build_dataset))
        .routes(routes!(training::dataset))
        .routes(routes!(training::export))
        .routes(routes!(runs::list, runs::create))
        .routes(routes!(runs::get))
        .routes(routes!(runs::cancel))
        .routes(routes!(adapters::list))
        .routes(routes!(adapters::get))
        .routes(routes!(adapters::approve))
        .routes(routes!(adapters::reject))
        .routes(routes!(adapters::activate))
        .routes(routes!(adapters::rollback))
        // peers of this installation
        .routes(routes!(peers::register))
        .routes(routes!(peers::unregister))
        .routes(routes!(peers::list))
        .routes(routes!(peers::load))
        .routes(routes!(peers::telemetry, peers::report_telemetry))
        // review and UI helpers
        .routes(routes!(review::rag_context))
        .routes(routes!(ui::suggestions))
        // OpenAI-compatible
        .routes(routes!(openai::chat_completions))
        .routes(routes!(openai::models))
        .routes(routes!(embeddings::embeddings))
        // models
        .routes(routes!(models::list))
        .routes(routes!(models::provision))
        .route_layer(axum::middleware::from_fn(move |req, next| {
            mw::timeout(timeout, req, next)
        }))
        // Chat turns enforce the request timeout themselves, so that a turn
        // cut off by it is stored as failed with its reason.
        .routes(routes!(conversation::chat))
        .routes(routes!(conversation::chat_stream))
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            mw::record_route,
        ))
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
