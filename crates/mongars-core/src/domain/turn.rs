//! Conversation turns: the user's message, the reply and how it was made.

use crate::error::CoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Longest message accepted, in characters, after sanitising.
pub const MESSAGE_MAX_CHARS: usize = 1000;
/// Longest session id accepted.
pub const SESSION_ID_MAX: usize = 100;

/// A chat message from a person, sanitised: control characters other than
/// newline and tab removed, runs of blank lines collapsed, trimmed; 1-1000
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMessage(String);

impl UserMessage {
    pub fn parse(raw: &str, max_chars: usize) -> Result<Self, CoreError> {
        let mut clean = String::with_capacity(raw.len());
        let mut newlines = 0;
        for c in raw.chars() {
            match c {
                '\n' => {
                    newlines += 1;
                    if newlines <= 2 {
                        clean.push('\n');
                    }
                }
                '\r' => {}
                '\t' => {
                    newlines = 0;
                    clean.push(' ');
                }
                c if c.is_control() || is_invisible_format(c) => {}
                c => {
                    newlines = 0;
                    clean.push(c);
                }
            }
        }
        let trimmed = clean.trim();
        if trimmed.is_empty() {
            return Err(CoreError::validation("message", "message is empty"));
        }
        let n = trimmed.chars().count();
        if n > max_chars {
            return Err(CoreError::validation(
                "message",
                format!("message is {n} characters; at most {max_chars} are allowed"),
            ));
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Zero-width and bidirectional controls that change how text reads without
/// being visible.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Check a session id: 1-100 of `[A-Za-z0-9_.:-]`.
pub fn parse_session_id(raw: Option<&str>) -> Result<Option<String>, CoreError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if raw.chars().count() > SESSION_ID_MAX
        || !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
    {
        return Err(CoreError::validation(
            "session_id",
            format!(
                "session_id must be 1 to {SESSION_ID_MAX} of letters, digits, '_', '.', ':' or '-'"
            ),
        ));
    }
    Ok(Some(raw.to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnStatus {
    Pending,
    Complete,
    Failed,
}

impl TurnStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TurnStatus::Pending => "pending",
            TurnStatus::Complete => "complete",
            TurnStatus::Failed => "failed",
        }
    }

    pub fn from_stored(s: &str) -> Self {
        match s {
            "complete" => TurnStatus::Complete,
            "failed" => TurnStatus::Failed,
            _ => TurnStatus::Pending,
        }
    }
}

/// A turn as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub id: String,
    pub user_id: i64,
    pub session_id: Option<String>,
    pub query: String,
    pub response: Option<String>,
    pub status: TurnStatus,
    pub error_code: Option<String>,
    pub model: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub confidence: Option<f64>,
    pub speech_turn: Option<SpeechTurn>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// When the turn leaves working memory (`None` once it has).
    pub expires_at: Option<DateTime<Utc>>,
    /// Context given with the message (recalled exchanges, research), put
    /// back before it when the turn is replayed as history.
    pub note: Option<String>,
}

/// What is written before generation starts: the user's message is kept
/// whatever happens next.
#[derive(Debug, Clone)]
pub struct NewTurn {
    pub id: String,
    pub user_id: i64,
    pub session_id: Option<String>,
    pub query: String,
    pub created_at: DateTime<Utc>,
    /// The process running the turn (see `conversation::recovery`).
    pub owner: Option<String>,
    /// Where it stands in the user's and session's history.
    pub ordinals: TurnOrdinals,
    /// What recall and research put into the prompt (JSON), kept with the
    /// turn when it is stored (no statement of its own).
    pub trace: Option<String>,
    /// The note that preceded the message in the prompt.
    pub note: Option<String>,
}

/// Complete turns before a turn: in the user's whole history, and in its
/// session when it has one. `None` where nobody counted (a turn stored
/// outside a chat): the next turn then counts the history once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnOrdinals {
    pub user: Option<u64>,
    pub session: Option<u64>,
}

/// What the newest complete turn says of where the next one stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewestOrdinal {
    /// No complete turn yet: the next is the first.
    NoTurn,
    /// The newest complete turn holds no ordinal (stored before ordinals
    /// were kept, or outside a chat): count instead.
    Unknown,
    /// The newest complete turn's ordinal.
    At(u64),
}

/// What is written when the reply is done.
#[derive(Debug, Clone)]
pub struct TurnCompletion {
    pub response: String,
    pub model: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub confidence: f64,
    pub ttft_ms: u64,
    pub generation_ms: u64,
    pub total_ms: u64,
    pub speech_turn: SpeechTurn,
    pub completed_at: DateTime<Utc>,
    /// When the turn leaves working memory.
    pub working_until: DateTime<Utc>,
}

/// A reply cut into spoken segments with pacing.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SpeechTurn {
    pub turn_id: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub segments: Vec<SpeechSegment>,
    pub average_words_per_second: f64,
    pub tempo: f64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SpeechSegment {
    pub text: String,
    /// Seconds.
    pub estimated_duration: f64,
    /// Seconds of silence after the segment.
    pub pause_after: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitising() {
        let m = UserMessage::parse("  hi\u{0}\u{7}\tthere\r\n\n\n\nyou\u{200B}  ", 1000).unwrap();
        assert_eq!(m.as_str(), "hi there\n\nyou");
        for empty in ["", "   ", "\u{0}\u{1}", "\n\t\n", "\u{200B}\u{FEFF}"] {
            assert!(UserMessage::parse(empty, 1000).is_err(), "{empty:?}");
        }
        assert!(UserMessage::parse(&"é".repeat(1000), 1000).is_ok());
        assert!(UserMessage::parse(&"é".repeat(1001), 1000).is_err());
    }

    #[test]
    fn session_ids() {
        assert_eq!(parse_session_id(None).unwrap(), None);
        assert_eq!(parse_session_id(Some("  ")).unwrap(), None);
        assert_eq!(
            parse_session_id(Some("tab-1:a.b_c")).unwrap().as_deref(),
            Some("tab-1:a.b_c")
        );
        assert!(parse_session_id(Some("has space")).is_err());
        assert!(parse_session_id(Some(&"s".repeat(101))).is_err());
    }
}
