//! The one error type of the core layer. Each variant has a stable machine
//! code that clients may rely on; the HTTP layer maps variants to statuses in
//! one place. Internal details (`Internal`, `Unavailable`) are for logs only.
//! Each port's error converts into this one next to the port that defines it.

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Input that parses but breaks a rule.
    #[error("{message}")]
    Validation {
        field: &'static str,
        message: String,
    },
    /// Unknown user, wrong password or disabled account: deliberately alike.
    #[error("Invalid credentials")]
    InvalidCredentials,
    /// Too many failed logins for this username or client address.
    #[error("Too many failed login attempts; try again later")]
    Throttled { retry_after_secs: u64 },
    /// No bearer token was sent.
    #[error("Not authenticated")]
    MissingToken,
    /// A token that is malformed, badly signed, expired or revoked.
    #[error("Invalid or expired token")]
    InvalidToken,
    /// Authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The current password given for a password change is wrong.
    #[error("Current password is incorrect")]
    WrongPassword,
    #[error("Bootstrap of the first admin is disabled")]
    BootstrapDisabled,
    #[error("An admin account already exists")]
    AdminExists,
    #[error("Username already exists")]
    UserExists,
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Too many requests from this user; try again later.
    #[error("Rate limit exceeded; try again later")]
    RateLimited { retry_after_secs: u64 },
    /// Even the bare message does not fit the model's context window.
    #[error("Message is too long for the model's context window")]
    PromptTooLarge,
    /// Every generation worker is busy and the queue is full.
    #[error("The assistant is busy; try again shortly")]
    Overloaded { retry_after_secs: u64 },
    /// The generation backend failed; the user's message was kept.
    #[error("The language model backend failed to answer")]
    BackendFailed(String),
    /// The backend stopped answering in time: no first token within the
    /// first-token limit, or no new token within the inter-token limit. The
    /// user's message was kept.
    #[error("The language model backend did not answer in time")]
    BackendTimeout(String),
    /// The backend's TLS certificate was refused (untrusted CA, wrong name).
    #[error("The language model backend's TLS certificate was refused")]
    BackendTls(String),
    /// The request ran out of time (`server.request_timeout_secs`).
    #[error("Request timed out")]
    RequestTimeout,
    /// Every backend configured for the request's role failed (or had its
    /// circuit open); the user's message was kept.
    #[error("No language model backend could answer")]
    BackendsExhausted(String),
    /// A WebSocket ticket that is unknown, used, expired or whose account
    /// can no longer sign in.
    #[error("Invalid, used or expired ticket")]
    TicketInvalid,
    /// The user already has as many sockets open as allowed.
    #[error("Too many open connections for this user")]
    TooManySockets,
    /// The request clashes with the state of what it names (an adapter not
    /// approved, a sample already reviewed); `code` says which rule.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A feature switched off in settings.
    #[error("{0} is disabled on this server")]
    Disabled(&'static str),
    /// A dependency (database...) cannot be reached. The text is for
    /// operators and logs; clients get a fixed message.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure. The text is for operators and logs;
    /// clients get a fixed message.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Every code a [`CoreError::Conflict`] is raised with.
pub const CONFLICT_CODES: &[&str] = &[
    "adapter.active",
    "adapter.file_changed",
    "adapter.file_missing",
    "adapter.not_approved",
    "adapter.not_candidate",
    "adapter.nothing_to_roll_back",
    "training.consent_required",
    "training.not_enough_samples",
    "training.run_active",
];

impl CoreError {
    /// Stable machine-readable code, sent to clients as `code`.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::Validation { .. } => "request.validation",
            CoreError::InvalidCredentials => "auth.invalid_credentials",
            CoreError::Throttled { .. } => "auth.throttled",
            CoreError::MissingToken => "auth.token_missing",
            CoreError::InvalidToken => "auth.token_invalid",
            CoreError::Forbidden(_) => "auth.forbidden",
            CoreError::WrongPassword => "auth.wrong_password",
            CoreError::BootstrapDisabled => "bootstrap.disabled",
            CoreError::AdminExists => "bootstrap.admin_exists",
            CoreError::UserExists => "user.exists",
            CoreError::NotFound(_) => "resource.not_found",
            CoreError::RateLimited { .. } => "rate_limited",
            CoreError::PromptTooLarge => "conversation.prompt_too_large",
            CoreError::Overloaded { .. } => "llm.overloaded",
            CoreError::BackendFailed(_) => "llm.backend_failed",
            CoreError::BackendsExhausted(_) => "llm.all_backends_failed",
            CoreError::BackendTimeout(_) => "llm.timeout",
            CoreError::BackendTls(_) => "llm.tls_refused",
            CoreError::RequestTimeout => "request.timeout",
            CoreError::TicketInvalid => "ws.ticket_invalid",
            CoreError::TooManySockets => "ws.too_many_sockets",
            CoreError::Conflict { code, .. } => code,
            CoreError::Disabled(_) => "feature.disabled",
            CoreError::Unavailable(_) => "service.unavailable",
            CoreError::Internal(_) => "internal",
        }
    }

    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        CoreError::Validation {
            field,
            message: message.into(),
        }
    }
}
