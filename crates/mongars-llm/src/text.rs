//! Turning token pieces into text deltas.
//!
//! A token may end in the middle of a UTF-8 character, and a stop string may
//! span several tokens. [`TextAssembler`] emits only complete characters and
//! holds back any tail that could still become a stop string, so clients never
//! see half a character or the start of a stop sequence.

pub struct TextAssembler {
    bytes: Vec<u8>,
    held: String,
    stops: Vec<String>,
    stopped: bool,
}

impl TextAssembler {
    pub fn new(stops: &[String]) -> Self {
        Self {
            bytes: Vec::new(),
            held: String::new(),
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            stopped: false,
        }
    }

    /// A stop string was seen; nothing more will be emitted.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Add a token's bytes; returns the text that is now safe to emit.
    pub fn push(&mut self, piece: &[u8]) -> String {
        if self.stopped {
            return String::new();
        }
        self.bytes.extend_from_slice(piece);
        self.decode_complete();
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            self.stopped = true;
            let out = self.held[..at].to_string();
            self.held.clear();
            self.bytes.clear();
            return out;
        }
        let keep = self.longest_stop_prefix_suffix();
        let split = self.held.len() - keep;
        let out = self.held[..split].to_string();
        self.held.drain(..split);
        out
    }

    /// Everything still held, at the end of generation.
    pub fn finish(&mut self) -> String {
        if self.stopped {
            return String::new();
        }
        let mut out = std::mem::take(&mut self.held);
        out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut self.bytes)));
        out
    }

    /// Move the complete UTF-8 prefix of `bytes` into `held`; invalid bytes
    /// become U+FFFD, an incomplete trailing character waits for more.
    fn decode_complete(&mut self) {
        loop {
            match std::str::from_utf8(&self.bytes) {
                Ok(s) => {
                    self.held.push_str(s);
                    self.bytes.clear();
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // SAFETY-free: the prefix was just validated.
                    self.held
                        .push_str(std::str::from_utf8(&self.bytes[..valid]).unwrap_or_default());
                    match e.error_len() {
                        None => {
                            self.bytes.drain(..valid);
                            return;
                        }
                        Some(bad) => {
                            self.held.push('\u{FFFD}');
                            self.bytes.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Length in bytes of the longest tail of `held` that begins a stop string.
    fn longest_stop_prefix_suffix(&self) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            for (end, _) in stop.char_indices().skip(1) {
                if end > best && self.held.ends_with(&stop[..end]) {
                    best = end;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pieces: &[&[u8]], stops: &[&str]) -> (Vec<String>, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut a = TextAssembler::new(&stops);
        let mut out: Vec<String> = pieces.iter().map(|p| a.push(p)).collect();
        out.push(a.finish());
        (out, a.stopped())
    }

    #[test]
    fn split_utf8_waits_for_the_whole_character() {
        let e = "é".as_bytes();
        let (out, _) = run(&[b"caf", &e[..1], &e[1..], b"!"], &[]);
        assert_eq!(out, ["caf", "", "é", "!", ""]);
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let (out, _) = run(&[b"a\xffb"], &[]);
        assert_eq!(out.concat(), "a\u{FFFD}b");
    }

    #[test]
    fn stop_strings_across_tokens_are_cut() {
        let (out, stopped) = run(&[b"Hello", b" wor", b"ld\nUs", b"er: hi"], &["\nUser:"]);
        assert!(stopped);
        assert_eq!(out.concat(), "Hello world");
        assert_eq!(out[2], "ld", "the possible stop prefix is held back");
    }

    #[test]
    fn held_text_that_is_not_a_stop_is_released() {
        let (out, stopped) = run(&[b"a\nU", b"nless"], &["\nUser:"]);
        assert!(!stopped);
        assert_eq!(out[0], "a");
        assert_eq!(out.concat(), "a\nUnless");
    }

    #[test]
    fn earliest_stop_wins() {
        let (out, _) = run(&[b"one END two STOP"], &["STOP", "END"]);
        assert_eq!(out.concat(), "one ");
    }
}
