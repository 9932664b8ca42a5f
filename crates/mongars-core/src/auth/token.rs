//! HS256 access tokens.
//!
//! Only HS256 is accepted: a header naming `none`, RS/ES/PS or any other
//! algorithm is refused before the signature is looked at. Claims: `sub`
//! (username), `admin`, `exp`, `iat`, `jti`, and `ver`, the account's token
//! version when the token was issued (see `User::token_version`).

use crate::domain::User;
use crate::error::CoreError;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Clock skew tolerated on `exp` between replicas, in seconds.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub admin: bool,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub ver: i64,
}

/// A freshly issued token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in_secs: u64,
}

pub struct TokenCodec {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
}

impl TokenCodec {
    /// `secret` must already be validated (at least 32 bytes).
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs,
        }
    }

    pub fn issue(&self, user: &User, now: DateTime<Utc>) -> Result<IssuedToken, CoreError> {
        let iat = now.timestamp();
        let claims = Claims {
            sub: user.username.clone(),
            admin: user.is_admin(),
            iat,
            exp: iat + self.ttl_secs as i64,
            jti: uuid::Uuid::new_v4().to_string(),
            ver: user.token_version,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| CoreError::Internal(format!("token encoding: {e}")))?;
        Ok(IssuedToken {
            token,
            expires_in_secs: self.ttl_secs,
        })
    }

    /// Check signature, algorithm and expiry; revocation is checked by the
    /// auth service against the account.
    pub fn decode(&self, token: &str) -> Result<Claims, CoreError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                tracing::debug!(reason = %e.kind_name(), "token refused");
                CoreError::InvalidToken
            })
    }
}

trait KindName {
    fn kind_name(&self) -> &'static str;
}

impl KindName for jsonwebtoken::errors::Error {
    fn kind_name(&self) -> &'static str {
        use jsonwebtoken::errors::ErrorKind as K;
        match self.kind() {
            K::ExpiredSignature => "expired",
            K::InvalidSignature => "bad signature",
            K::InvalidAlgorithm | K::InvalidAlgorithmName => "algorithm not allowed",
            K::MissingRequiredClaim(_) => "missing claim",
            K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => "malformed",
            _ => "invalid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn user() -> User {
        User {
            id: 1,
            username: "alice".into(),
            role: Role::Admin,
            disabled: false,
            token_version: 3,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            last_login_at: None,
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let codec = TokenCodec::new(&[7u8; 32], 3600);
        let t = codec.issue(&user(), Utc::now()).unwrap();
        let c = codec.decode(&t.token).unwrap();
        assert_eq!((c.sub.as_str(), c.admin, c.ver), ("alice", true, 3));

        let other = TokenCodec::new(&[8u8; 32], 3600);
        assert!(other.decode(&t.token).is_err(), "other key");

        let old = codec
            .issue(&user(), Utc::now() - chrono::Duration::hours(2))
            .unwrap();
        assert!(codec.decode(&old.token).is_err(), "expired");

        assert!(codec.decode("garbage").is_err());
    }
}
