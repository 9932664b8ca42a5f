//! `POST /v1/embeddings` in OpenAI's shape: `input` a string or a list of
//! strings, `encoding_format` `float` (default) or `base64` (little-endian
//! f32, which the official clients ask for).

use super::openai::OpenAiError;
use crate::error::ApiError;
use crate::extract::{ApiJson, AuthUser, invalid};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use mongars_core::CoreError;
use mongars_core::ports::{EmbedError, MAX_EMBED_BATCH};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

/// Longest input text, in characters.
const MAX_INPUT_CHARS: usize = 20_000;

#[derive(Deserialize, ToSchema)]
pub struct EmbeddingBody {
    /// A string, or a list of up to 256 strings (each up to 20,000 characters).
    #[schema(value_type = Object)]
    input: Value,
    /// Accepted for compatibility; there is one embedding model.
    #[serde(default)]
    #[allow(dead_code)]
    model: Option<String>,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<usize>,
    #[serde(default)]
    #[allow(dead_code)]
    user: Option<String>,
}

fn inputs(v: Value) -> Result<Vec<String>, ApiError> {
    let texts = match v {
        Value::String(s) => vec![s],
        Value::Array(items) if !items.is_empty() => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(s),
                _ => Err(invalid(
                    "input",
                    "input must be a string or a list of strings (token arrays are not accepted)",
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(invalid(
                "input",
                "input must be a non-empty string or list of strings",
            ));
        }
    };
    if texts.len() > MAX_EMBED_BATCH {
        return Err(invalid(
            "input",
            format!("at most {MAX_EMBED_BATCH} inputs per request"),
        ));
    }
    if texts.iter().any(|t| t.trim().is_empty()) {
        return Err(invalid("input", "inputs must not be empty"));
    }
    if texts.iter().any(|t| t.chars().count() > MAX_INPUT_CHARS) {
        return Err(invalid(
            "input",
            format!("each input is at most {MAX_INPUT_CHARS} characters"),
        ));
    }
    Ok(texts)
}

/// One vector.
#[derive(Serialize, ToSchema)]
pub struct EmbeddingItem {
    /// `embedding`.
    object: &'static str,
    index: usize,
    /// Floats, or base64 of little-endian f32 when asked.
    #[schema(value_type = Object)]
    embedding: Value,
}

#[derive(Serialize, ToSchema)]
pub struct EmbeddingUsage {
    prompt_tokens: usize,
    total_tokens: usize,
}

#[derive(Serialize, ToSchema)]
pub struct EmbeddingList {
    /// `list`.
    object: &'static str,
    data: Vec<EmbeddingItem>,
    model: String,
    usage: EmbeddingUsage,
}

/// `POST /v1/embeddings`
#[utoipa::path(post, path = "/v1/embeddings", tag = "openai", request_body = EmbeddingBody,
    security(("bearer" = [])), responses((status = 200, description = "Unit-length vectors", body = EmbeddingList)))]
pub async fn embeddings(
    State(state): State<AppState>,
    who: Result<AuthUser, ApiError>,
    body: Result<ApiJson<EmbeddingBody>, ApiError>,
) -> Result<Json<EmbeddingList>, OpenAiError> {
    let AuthUser(who) = who?;
    let ApiJson(body) = body?;
    let embedder = state
        .embedder
        .clone()
        .ok_or(CoreError::Disabled("The embedding model"))?;
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return Err(
                invalid("encoding_format", "encoding_format must be float or base64").into(),
            );
        }
    };
    if body.dimensions.is_some_and(|d| d != embedder.dimensions()) {
        return Err(invalid(
            "dimensions",
            format!("this model gives {} dimensions", embedder.dimensions()),
        )
        .into());
    }
    let texts = inputs(body.input)?;
    state.conversation.check_rate(&who).await?;
    let out = embedder.embed(&texts).await.map_err(|e| match e {
        EmbedError::Invalid(m) => invalid("input", m),
        e => ApiError::from(CoreError::Unavailable(e.to_string())),
    })?;
    let data = out
        .vectors
        .iter()
        .enumerate()
        .map(|(index, v)| EmbeddingItem {
            object: "embedding",
            index,
            embedding: if base64 {
                json!(encode_base64(&mongars_core::domain::vector_to_bytes(v)))
            } else {
                json!(v)
            },
        })
        .collect();
    Ok(Json(EmbeddingList {
        object: "list",
        data,
        model: embedder.model().to_string(),
        usage: EmbeddingUsage {
            prompt_tokens: out.tokens,
            total_tokens: out.tokens,
        },
    }))
}

/// Standard base64 with padding.
pub fn encode_base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(super::encode_base64(b""), "");
        assert_eq!(super::encode_base64(b"f"), "Zg==");
        assert_eq!(super::encode_base64(b"fo"), "Zm8=");
        assert_eq!(super::encode_base64(b"foobar"), "Zm9vYmFy");
    }
}
