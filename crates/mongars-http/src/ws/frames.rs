//! Frames of the socket protocol: parsing what clients send, building what
//! the server sends besides events (acks, pings).
//!
//! A client frame is `{"id": str, "type": str, "payload"?: any}`. Problems
//! are answered with an error ack whose `detail` is one of `invalid_json`,
//! `invalid_envelope`, `missing_type`, `missing_id` or `invalid_payload`.

use serde_json::{Value, json};

/// Longest `id` and `type` accepted.
const MAX_FIELD: usize = 128;

#[derive(Debug, PartialEq)]
pub enum ClientFrame {
    Pong {
        id: String,
    },
    Ping {
        id: String,
    },
    Close {
        id: String,
    },
    /// `chat.send` `{message, session_id?}`: a turn, streamed to every socket.
    Chat {
        id: String,
        message: String,
        session_id: Option<String>,
    },
    /// Any other type: acknowledged, otherwise ignored.
    Other {
        id: String,
    },
}

/// Why a frame was refused, and the id to acknowledge it under.
#[derive(Debug, PartialEq)]
pub struct Refused {
    pub id: Option<String>,
    pub detail: &'static str,
}

fn refused(id: Option<String>, detail: &'static str) -> Refused {
    Refused { id, detail }
}

pub fn parse(text: &str) -> Result<ClientFrame, Refused> {
    let value: Value = serde_json::from_str(text).map_err(|_| refused(None, "invalid_json"))?;
    let Value::Object(mut map) = value else {
        return Err(refused(None, "invalid_envelope"));
    };
    let id = match map.remove("id") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_FIELD => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        None | Some(Value::Null) => None,
        Some(_) => return Err(refused(None, "invalid_envelope")),
    };
    let kind = match map.remove("type") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_FIELD => s,
        _ => return Err(refused(id, "missing_type")),
    };
    let Some(id) = id else {
        return Err(refused(None, "missing_id"));
    };
    Ok(match kind.as_str() {
        "pong" => ClientFrame::Pong { id },
        "client.ping" => ClientFrame::Ping { id },
        "close" => ClientFrame::Close { id },
        "chat.send" => {
            let payload = map.remove("payload").or_else(|| map.remove("data"));
            let Some(Value::Object(mut p)) = payload else {
                return Err(refused(Some(id), "invalid_payload"));
            };
            let Some(Value::String(message)) = p.remove("message") else {
                return Err(refused(Some(id), "invalid_payload"));
            };
            let session_id = match p.remove("session_id") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s),
                Some(_) => return Err(refused(Some(id), "invalid_payload")),
            };
            ClientFrame::Chat {
                id,
                message,
                session_id,
            }
        }
        _ => ClientFrame::Other { id },
    })
}

/// `{"id", "type": "ack", "payload": {"status": "ok"}}`, or with
/// `"status": "error", "detail"` when `error` is given.
pub fn ack(id: Option<&str>, error: Option<&str>) -> String {
    let id = id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    let payload = match error {
        None => json!({"status": "ok"}),
        Some(detail) => json!({"status": "error", "detail": detail}),
    };
    json!({"id": id, "type": "ack", "payload": payload}).to_string()
}

pub fn ping() -> String {
    json!({"id": uuid::Uuid::new_v4().to_string(), "type": "ping", "payload": null}).to_string()
}

/// A server frame that is not an event of the bus (`ws.connected`,
/// `history.snapshot`), in the same envelope as events.
pub fn server(kind: &str, user: &str, data: Value) -> String {
    mongars_core::ports::Event::new(0, user, kind, data).frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_frames() {
        assert_eq!(
            parse(r#"{"id":"1","type":"pong"}"#),
            Ok(ClientFrame::Pong { id: "1".into() })
        );
        assert_eq!(
            parse(r#"{"id":7,"type":"close"}"#),
            Ok(ClientFrame::Close { id: "7".into() })
        );
        assert_eq!(
            parse(r#"{"id":"a","type":"chat.send","payload":{"message":"hi","session_id":"s"}}"#),
            Ok(ClientFrame::Chat {
                id: "a".into(),
                message: "hi".into(),
                session_id: Some("s".into())
            })
        );
        assert_eq!(
            parse(r#"{"id":"b","type":"typing","payload":{}}"#),
            Ok(ClientFrame::Other { id: "b".into() })
        );
    }

    #[test]
    fn malformed_frames_say_why() {
        let detail = |t: &str| parse(t).unwrap_err().detail;
        assert_eq!(detail("not json"), "invalid_json");
        assert_eq!(detail("[1,2]"), "invalid_envelope");
        assert_eq!(detail(r#"{"id":{},"type":"pong"}"#), "invalid_envelope");
        assert_eq!(detail(r#"{"id":"1"}"#), "missing_type");
        assert_eq!(detail(r#"{"id":"1","type":""}"#), "missing_type");
        assert_eq!(detail(r#"{"type":"pong"}"#), "missing_id");
        assert_eq!(
            detail(r#"{"id":"1","type":"chat.send","payload":{"text":"x"}}"#),
            "invalid_payload"
        );
        let r = parse(r#"{"id":"9"}"#).unwrap_err();
        assert_eq!(r.id.as_deref(), Some("9"));
    }

    #[test]
    fn acks_carry_the_frame_id() {
        let ok: Value = serde_json::from_str(&ack(Some("x"), None)).unwrap();
        assert_eq!(ok, json!({"id":"x","type":"ack","payload":{"status":"ok"}}));
        let err: Value = serde_json::from_str(&ack(None, Some("invalid_json"))).unwrap();
        assert_eq!(err["payload"]["detail"], "invalid_json");
        assert!(err["id"].as_str().is_some_and(|s| !s.is_empty()));
    }
}
