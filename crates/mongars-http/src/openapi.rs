//! The OpenAPI 3.1 document of the HTTP API, generated from the code: every
//! handler carries `#[utoipa::path]`, and `router.rs` registers routes only
//! through `utoipa_axum::routes!`, so a route cannot exist without being
//! described. `GET /openapi.json` serves the document.
//!
//! Every operation has a `default` response with the error shape, whose
//! `code` lists every stable code the server answers with.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response, ResponseBuilder, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// Every stable error code, as clients may rely on them.
pub const ERROR_CODES: &[&str] = &[
    "adapter.active",
    "adapter.file_changed",
    "adapter.file_missing",
    "adapter.not_approved",
    "adapter.not_candidate",
    "adapter.nothing_to_roll_back",
    "auth.forbidden",
    "auth.invalid_credentials",
    "auth.throttled",
    "auth.token_invalid",
    "auth.token_missing",
    "auth.unsupported_grant_type",
    "auth.wrong_password",
    "bootstrap.admin_exists",
    "bootstrap.disabled",
    "conversation.prompt_too_large",
    "feature.disabled",
    "internal",
    "llm.all_backends_failed",
    "llm.backend_failed",
    "llm.overloaded",
    "llm.timeout",
    "llm.tls_refused",
    "rate_limited",
    "realtime.disabled",
    "request.invalid",
    "request.malformed",
    "request.method_not_allowed",
    "request.misdirected",
    "request.not_found",
    "request.timeout",
    "request.too_large",
    "request.unsupported_media_type",
    "request.upgrade_required",
    "request.validation",
    "resource.not_found",
    "server.busy",
    "service.not_ready",
    "service.unavailable",
    "training.consent_required",
    "training.not_enough_samples",
    "training.run_active",
    "user.exists",
    "ws.origin_refused",
    "ws.ticket_invalid",
    "ws.too_many_sockets",
];

/// A stable error code (see [`ERROR_CODES`]).
pub struct ErrorCode;

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(ERROR_CODES.iter().copied()))
            .description(Some("Stable machine-readable code"))
            .into()
    }
}

impl ToSchema for ErrorCode {}

/// A field that failed validation.
#[derive(Serialize, ToSchema)]
pub struct FieldErrorDoc {
    pub field: String,
    pub message: String,
}

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Text for people.
    pub detail: String,
    #[schema(value_type = ErrorCode)]
    pub code: String,
    /// For validation errors: which fields and why.
    pub errors: Option<Vec<FieldErrorDoc>>,
}

/// `{"status": ...}` answers.
#[derive(Serialize, ToSchema)]
pub struct Status {
    pub status: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "monGARS",
        description = "A privacy-first, self-hosted AI assistant server. Errors are \
            `{detail, code}` with a stable `code`; every response carries `x-request-id`. \
            Authenticated routes take `Authorization: Bearer <access token or API key>`.",
        license(name = "Apache-2.0")
    ),
    paths(openapi_json),
    components(schemas(ErrorBody, ErrorCode, FieldErrorDoc))
)]
pub struct ApiDoc;

/// A unique operation id from the method and path, as client generators
/// name their functions: `GET /api/v1/memories/{id}` is `get_memories_id`.
fn operation_id(method: &str, path: &str) -> String {
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    let words: Vec<String> = path
        .split(['/', '-', '.'])
        .map(|w| w.trim_matches(['{', '}']).to_string())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        format!("{method}_console")
    } else {
        format!("{method}_{}", words.join("_"))
    }
}

/// This document (OpenAPI 3.1), generated from the code. Served by the
/// router (`router.rs`) from the document built once at start-up; this
/// function only describes it.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document of this API", body = Object)))]
#[allow(dead_code)]
fn openapi_json() {}

/// The bearer scheme, and the error shape as every operation's `default`:
/// applied to the whole document once every route is in it.
pub struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token from /token or /api/v1/auth/login, or an API key (mg_...)",
                    ))
                    .build(),
            ),
        );
        let error: Response = ResponseBuilder::new()
            .description("An error, in the API's shape")
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
                ("put", &mut item.put),
            ] {
                let Some(op) = op else { continue };
                let mut id = operation_id(method, path);
                while !ids.insert(id.clone()) {
                    id.push_str("_alt");
                }
                op.operation_id = Some(id);
                op.responses
                    .responses
                    .entry("default".into())
                    .or_insert_with(|| RefOr::T(error.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ERROR_CODES;
    use mongars_core::CoreError;

    /// One of each error; the match below fails to compile when a variant
    /// is added, so that it is added here (and its code to the document).
    fn every_core_error() -> Vec<CoreError> {
        let all = vec![
            CoreError::validation("f", "m"),
            CoreError::InvalidCredentials,
            CoreError::Throttled {
                retry_after_secs: 1,
            },
            CoreError::MissingToken,
            CoreError::InvalidToken,
            CoreError::Forbidden("x"),
            CoreError::WrongPassword,
            CoreError::BootstrapDisabled,
            CoreError::AdminExists,
            CoreError::UserExists,
            CoreError::NotFound("x"),
            CoreError::RateLimited {
                retry_after_secs: 1,
            },
            CoreError::PromptTooLarge,
            CoreError::Overloaded {
                retry_after_secs: 1,
            },
            CoreError::BackendFailed("x".into()),
            CoreError::BackendTimeout("x".into()),
            CoreError::BackendTls("x".into()),
            CoreError::RequestTimeout,
            CoreError::BackendsExhausted("x".into()),
            CoreError::TicketInvalid,
            CoreError::TooManySockets,
            CoreError::Disabled("x"),
            CoreError::Unavailable("x".into()),
            CoreError::Internal("x".into()),
        ];
        let mut all = all;
        all.extend(
            mongars_core::error::CONFLICT_CODES
                .iter()
                .map(|code| CoreError::Conflict {
                    code,
                    message: "x".into(),
                }),
        );
        for e in &all {
            match e {
                CoreError::Validation { .. }
                | CoreError::InvalidCredentials
                | CoreError::Throttled { .. }
                | CoreError::MissingToken
                | CoreError::InvalidToken
                | CoreError::Forbidden(_)
                | CoreError::WrongPassword
                | CoreError::BootstrapDisabled
                | CoreError::AdminExists
                | CoreError::UserExists
                | CoreError::NotFound(_)
                | CoreError::Conflict { .. }
                | CoreError::RateLimited { .. }
                | CoreError::PromptTooLarge
                | CoreError::Overloaded { .. }
                | CoreError::BackendFailed(_)
                | CoreError::BackendTimeout(_)
                | CoreError::BackendTls(_)
                | CoreError::RequestTimeout
                | CoreError::BackendsExhausted(_)
                | CoreError::TicketInvalid
                | CoreError::TooManySockets
                | CoreError::Disabled(_)
                | CoreError::Unavailable(_)
                | CoreError::Internal(_) => {}
            }
        }
        all
    }

    #[test]
    fn the_document_lists_every_code_the_server_answers_with() {
        for e in every_core_error() {
            assert!(
                ERROR_CODES.contains(&e.code()),
                "{} is not documented",
                e.code()
            );
        }
        let mut sorted = ERROR_CODES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ERROR_CODES.len(), "listed once each");
    }
}
