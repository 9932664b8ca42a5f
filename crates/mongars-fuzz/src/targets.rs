//! The fuzz targets themselves.

use mongars_core::auth::TokenCodec;
use mongars_core::domain::{
    KeyName, Password, UserMessage, Username, looks_like_key, parse_fingerprint, parse_memory_text,
    parse_peer_url, parse_session_id,
};
use mongars_llm::remote::ollama::ChatLines;
use mongars_llm::remote::openai::Events;
use mongars_llm::remote::ray::RayReader;
use mongars_llm::remote::{Reader, take_line};
use serde_json::Value;

/// The longest message the targets allow (the default setting).
const MAX_MESSAGE: usize = 1000;

/// A request body or a field of one: every parser of text a client sends
/// (messages, session ids, usernames, passwords, memories, peer addresses
/// and fingerprints, key names), on the bytes as text and on every string
/// inside them when they are JSON.
pub fn request(data: &[u8]) {
    fields(&String::from_utf8_lossy(data));
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        each_string(&value, 0, &mut |s| fields(s));
    }
}

fn each_string(v: &Value, depth: usize, f: &mut dyn FnMut(&str)) {
    if depth > 16 {
        return;
    }
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|i| each_string(i, depth + 1, f)),
        Value::Object(map) => map.iter().for_each(|(k, i)| {
            f(k);
            each_string(i, depth + 1, f)
        }),
        _ => {}
    }
}

fn fields(s: &str) {
    if let Ok(message) = UserMessage::parse(s, MAX_MESSAGE) {
        let clean = message.as_str();
        assert!(clean.chars().count() <= MAX_MESSAGE);
        assert!(!clean.is_empty() && clean.trim() == clean);
        assert!(
            clean.chars().all(|c| c == '\n' || !c.is_control()),
            "control characters left in {clean:?}"
        );
        assert!(!clean.contains("\n\n\n"), "{clean:?}");
        let again = UserMessage::parse(clean, MAX_MESSAGE).expect("a clean message is accepted");
        assert_eq!(again, message, "cleaning twice changes {s:?}");
    }
    if let Ok(Some(id)) = parse_session_id(Some(s)) {
        assert_eq!(parse_session_id(Some(&id)).ok(), Some(Some(id.clone())));
    }
    if let Ok(name) = Username::parse(s) {
        assert_eq!(Username::parse(name.as_str()).ok(), Some(name));
    }
    let _ = Password::for_login(s);
    let _ = parse_memory_text(s);
    if let Ok(url) = parse_peer_url(s) {
        assert_eq!(parse_peer_url(&url).ok(), Some(url.clone()), "{s:?}");
    }
    if let Ok(fp) = parse_fingerprint(s) {
        assert_eq!(parse_fingerprint(&fp).ok(), Some(fp.clone()));
    }
    let _ = KeyName::parse(s);
    let _ = looks_like_key(s);
}

/// One text frame from a browser's socket.
pub fn ws_frame(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mongars_http::ws::frames::parse(text);
    }
}

/// The key the token target signs with (the seeds hold tokens it signed).
pub const TOKEN_SECRET: &[u8] = b"fuzzing-secret-fuzzing-secret-0123456789";

/// A bearer token or a socket ticket as a client presents it.
pub fn token(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let codec = TokenCodec::new(TOKEN_SECRET, 3600);
    let _ = codec.decode(&text);
    if mongars_core::realtime::ticket_well_formed(&text) {
        assert_eq!(text.len(), 64);
    }
}

/// A streamed answer from a backend. The first byte picks the protocol
/// (OpenAI events, Ollama lines, Ray lines, or a whole Ray or OpenAI
/// answer) and how many bytes each network read brings; the rest is the
/// body, read as the backend does: line by line until its reader sees the
/// end.
pub fn backend_stream(data: &[u8]) {
    let Some((&head, body)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(head >> 3).max(1);
    match head & 0b111 {
        0 => streamed(Events::default(), body, chunk),
        1 => streamed(ChatLines, body, chunk),
        2 => streamed(RayReader::new(true), body, chunk),
        3 => whole(RayReader::new(false), body),
        _ => whole(Events::default(), body),
    }
}

fn streamed<R: Reader>(mut reader: R, body: &[u8], chunk: usize) {
    let mut reads = body.chunks(chunk);
    let mut buf = Vec::new();
    let mut done = false;
    let mut text = Vec::new();
    loop {
        let line = match take_line(&mut buf, done) {
            Some(Ok(line)) => line,
            Some(Err(_)) => return,
            None if done => return,
            None => {
                match reads.next() {
                    Some(bytes) => buf.extend_from_slice(bytes),
                    None => done = true,
                }
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match reader.read(&line, &mut text) {
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => return,
        }
    }
}

fn whole<R: Reader>(mut reader: R, body: &[u8]) {
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = reader.read(text, &mut Vec::new());
    }
}

/// A settings file, then (after a zero byte) `NAME=value` lines as the
/// environment would give them.
pub fn config(data: &[u8]) {
    let (file, env) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(file) = std::str::from_utf8(file) else {
        return;
    };
    let env: Vec<(String, String)> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (format!("MONGARS_{k}"), v.to_string()))
        .collect();
    let _ = mongars_config::load_text(Some((file, "fuzz.toml")), &env);
}

/// What a peer sends: the first byte picks a generation request, a line of
/// a generation answer or a load report.
pub fn peer(data: &[u8]) {
    use mongars_peer::wire::{WireEvent, WireRequest, parse_load};
    let Some((&head, body)) = data.split_first() else {
        return;
    };
    match head % 3 {
        0 => {
            if let Ok(request) = WireRequest::parse(body) {
                let again = serde_json::to_vec(&WireRequest::from_request(&request)).unwrap();
                assert!(
                    WireRequest::parse(&again).is_ok(),
                    "a request survives a round trip"
                );
            }
        }
        1 => {
            let _ = WireEvent::parse(body);
        }
        _ => {
            let _ = parse_load(body);
        }
    }
}

/// A model file as training reads its shape: the GGUF header, metadata and
/// tensor list, then the llama settings in it.
pub fn gguf(data: &[u8]) {
    let _ = mongars_train::model::gguf_config_of(&mut std::io::Cursor::new(data), "fuzz.gguf");
}
