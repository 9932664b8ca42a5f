//! Domain types. Values from outside are parsed into these at the edge, so
//! code past the edge never sees an invalid username or an empty password.

mod api_key;
mod chat;
mod id;
mod memory;
mod peer;
mod role;
pub mod training;
mod turn;
mod user;

pub use api_key::{
    ApiKey, KEY_MAX_DAYS, KEY_NAME_MAX, KEY_PREFIX, KeyName, NewApiKey, key_hash, looks_like_key,
    parse_key_days,
};
pub use chat::{
    ChatMessage, ChatRole, FinishReason, GenerationEvent, GenerationRequest, GenerationUsage,
    SamplingParams, last_user_text,
};
pub use id::time_ordered_id;
pub use memory::{
    MEMORY_MAX_CHARS, Memory, MemoryChange, MemoryKind, MemoryUpdate, MemoryVector, NewMemory,
    SOURCE_USER, parse_memory_text, vector_from_bytes, vector_to_bytes,
};
pub use peer::{
    NodeLoad, PEER_URL_MAX, PeerRecord, PeerState, PeerView, Telemetry, parse_fingerprint,
    parse_peer_url,
};
pub use role::{ModelRole, PerRole, classify_task};
pub use turn::{
    MESSAGE_MAX_CHARS, NewTurn, NewestOrdinal, SpeechSegment, SpeechTurn, Turn, TurnCompletion,
    TurnOrdinals, TurnStatus, UserMessage, parse_session_id,
};
pub use user::{NewUser, PASSWORD_MAX, Password, Role, StoredUser, USERNAME_MAX, User, Username};
