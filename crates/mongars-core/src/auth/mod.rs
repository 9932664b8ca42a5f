//! Accounts and access tokens: login with throttling, token checks with
//! revocation, registration, password changes, first-admin bootstrap and
//! per-user API keys.

mod keys;
mod password;
mod service;
mod throttle;
mod token;

pub use password::{HashParams, PasswordHasher, Verification};
pub use service::{AuthOptions, AuthParts, AuthService, LoginOutcome, Principal};
pub use throttle::{AttemptKeys, LoginThrottle, ThrottlePolicy};
pub use token::{Claims, IssuedToken, TokenCodec};
