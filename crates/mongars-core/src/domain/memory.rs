//! Long-term memory: facts about a user and embeddings of past turns.

use crate::error::CoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Longest memory text accepted through the API, in characters.
pub const MEMORY_MAX_CHARS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryKind {
    /// A durable statement about the user, visible and editable.
    Fact,
    /// A past turn, kept for recall by meaning.
    Turn,
}

impl MemoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryKind::Fact => "fact",
            MemoryKind::Turn => "turn",
        }
    }

    pub fn from_stored(s: &str) -> Self {
        if s == "turn" {
            MemoryKind::Turn
        } else {
            MemoryKind::Fact
        }
    }
}

/// `source` of memories written by the user through the API.
pub const SOURCE_USER: &str = "user";

/// A memory as stored (without its vector).
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    pub id: String,
    pub user_id: i64,
    pub kind: MemoryKind,
    pub text: String,
    /// What the fact is about, when the extractor knew ("name", "project").
    pub slot: Option<String>,
    /// Conversation turn id, or [`SOURCE_USER`].
    pub source: String,
    /// How many times the fact was stated.
    pub mentions: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The fact that replaced this one, when contradicted.
    pub superseded_by: Option<String>,
}

/// A memory to insert.
#[derive(Debug, Clone)]
pub struct NewMemory {
    pub id: String,
    pub user_id: i64,
    pub kind: MemoryKind,
    pub text: String,
    pub slot: Option<String>,
    pub source: String,
    pub embedding: Vec<f32>,
    pub at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A new wording of an existing memory.
#[derive(Debug, Clone)]
pub struct MemoryUpdate {
    pub text: String,
    pub slot: Option<String>,
    pub source: String,
    pub embedding: Vec<f32>,
    pub at: DateTime<Utc>,
    /// Count one more mention (a restatement), or not (an edit).
    pub mentioned: bool,
}

/// A memory as the search index of its user keeps it: its vector, and what
/// recall puts in a prompt (the text, the time it was made for the order of
/// facts, and its expiry), so that a turn's recall reads nothing from the
/// database beyond the revision check.
#[derive(Debug, Clone)]
pub struct MemoryVector {
    pub id: String,
    pub kind: MemoryKind,
    pub embedding: Vec<f32>,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One change to a user's memories, as the vector index applies it.
#[derive(Debug, Clone)]
pub enum MemoryChange {
    Upsert(MemoryVector),
    Remove(String),
}

/// Memory text from the API: trimmed, 1-1000 characters, no control
/// characters.
pub fn parse_memory_text(raw: &str) -> Result<String, CoreError> {
    let clean: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return Err(CoreError::validation("text", "text is empty"));
    }
    let n = text.chars().count();
    if n > MEMORY_MAX_CHARS {
        return Err(CoreError::validation(
            "text",
            format!("text is {n} characters; at most {MEMORY_MAX_CHARS} are allowed"),
        ));
    }
    Ok(text)
}

/// Vectors as stored: little-endian f32.
pub fn vector_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of [`vector_to_bytes`]; `None` when the length is not a
/// multiple of four.
pub fn vector_from_bytes(b: &[u8]) -> Option<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return None;
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_cleaned_and_bounded() {
        assert_eq!(
            parse_memory_text("  I like\n\ttea  ").unwrap(),
            "I like tea"
        );
        assert!(parse_memory_text(" \u{0} ").is_err());
        assert!(parse_memory_text(&"a".repeat(1001)).is_err());
    }

    #[test]
    fn vectors_round_trip() {
        let v = vec![0.5, -1.25, 3.0e-7];
        assert_eq!(vector_from_bytes(&vector_to_bytes(&v)).unwrap(), v);
        assert!(vector_from_bytes(&[1, 2, 3]).is_none());
    }
}
