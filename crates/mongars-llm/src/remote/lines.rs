//! A bounded line reader for streamed bodies (NDJSON and server-sent
//! events).

use super::wire::transport;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use mongars_core::ports::LlmError;
use std::pin::Pin;

/// Longest line accepted in a streamed body; longer means malformed.
pub const MAX_LINE_BYTES: usize = 1 << 20;

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Splits a streamed body into lines (without `\r\n`), refusing lines over
/// [`MAX_LINE_BYTES`] and invalid UTF-8. A last line without a newline is
/// still returned.
pub struct Lines {
    body: ByteStream,
    buf: Vec<u8>,
    done: bool,
}

impl Lines {
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            body: Box::pin(resp.bytes_stream()),
            buf: Vec::new(),
            done: false,
        }
    }

    /// The next line; `Ok(None)` at the end of the body.
    pub async fn next_line(&mut self) -> Result<Option<String>, LlmError> {
        loop {
            if let Some(line) = take_line(&mut self.buf, self.done) {
                return line.map(Some);
            }
            if self.done {
                return Ok(None);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(transport(e)),
                None => self.done = true,
            }
        }
    }
}

/// The first whole line of `buf`, taken out of it; at the end of the body
/// (`done`) the rest, even without a newline. `None` when more bytes are
/// needed (or nothing is left).
pub fn take_line(buf: &mut Vec<u8>, done: bool) -> Option<Result<String, LlmError>> {
    if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
        let mut line: Vec<u8> = buf.drain(..=pos).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        return Some(to_text(line));
    }
    if buf.len() > MAX_LINE_BYTES {
        return Some(Err(LlmError::Malformed(format!(
            "line longer than {MAX_LINE_BYTES} bytes"
        ))));
    }
    if done && !buf.is_empty() {
        return Some(to_text(std::mem::take(buf)));
    }
    None
}

fn to_text(line: Vec<u8>) -> Result<String, LlmError> {
    String::from_utf8(line).map_err(|_| LlmError::Malformed("invalid UTF-8 in stream".into()))
}
