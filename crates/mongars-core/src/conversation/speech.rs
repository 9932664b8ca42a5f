//! Speech pacing for a reply: sentences become segments with an estimated
//! duration and a pause after each, from a words-per-second rate.
//!
//! The rate adapts to the session's tempo: short user messages suggest a brisk
//! exchange (tempo up to 1.15), long ones a calmer one (down to 0.85). The
//! tempo moves 40% of the way from the session's last tempo towards that
//! target each turn, so pacing drifts smoothly rather than jumping.

use crate::domain::{SpeechSegment, SpeechTurn};
use chrono::{DateTime, Utc};

/// Words per second of a neutral speaking voice (about 155 words a minute).
pub const BASE_WORDS_PER_SECOND: f64 = 2.6;
const MIN_TEMPO: f64 = 0.85;
const MAX_TEMPO: f64 = 1.15;
/// Sentences longer than this are cut again at commas and semicolons.
const LONG_SENTENCE_WORDS: usize = 25;

/// Tempo this turn, from the session's previous tempo and the length of the
/// user's message in words.
pub fn next_tempo(previous: Option<f64>, user_words: usize) -> f64 {
    let target = (MAX_TEMPO - 0.0075 * user_words as f64).clamp(MIN_TEMPO, MAX_TEMPO);
    let tempo = match previous {
        Some(p) if p.is_finite() => p + 0.4 * (target - p),
        _ => target,
    };
    round2(tempo.clamp(MIN_TEMPO, MAX_TEMPO))
}

pub fn plan(turn_id: &str, text: &str, created_at: DateTime<Utc>, tempo: f64) -> SpeechTurn {
    let wps = BASE_WORDS_PER_SECOND * tempo;
    let pieces = split(text);
    let last = pieces.len().saturating_sub(1);
    let segments = pieces
        .into_iter()
        .enumerate()
        .map(|(i, (seg, pause))| SpeechSegment {
            estimated_duration: round2(words(&seg).max(1) as f64 / wps),
            pause_after: if i == last {
                0.0
            } else {
                round2(pause / tempo)
            },
            text: seg,
        })
        .collect();
    SpeechTurn {
        turn_id: turn_id.to_string(),
        text: text.to_string(),
        created_at,
        segments,
        average_words_per_second: round2(wps),
        tempo,
    }
}

pub fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Cut at sentence ends (and paragraph breaks), then long sentences at
/// commas; each piece comes with the pause its punctuation calls for.
fn split(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for paragraph in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        let mut sentences = Vec::new();
        let mut current = String::new();
        let chars: Vec<char> = paragraph.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            current.push(if c == '\n' { ' ' } else { c });
            let at_end = i + 1 == chars.len() || chars[i + 1].is_whitespace();
            if matches!(c, '.' | '!' | '?' | '…') && at_end {
                sentences.push(std::mem::take(&mut current));
            }
        }
        sentences.push(current);
        for sentence in sentences.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            if words(sentence) > LONG_SENTENCE_WORDS {
                out.extend(split_clauses(sentence));
            } else {
                out.push((sentence.to_string(), pause_for(sentence)));
            }
        }
        if let Some(last) = out.last_mut() {
            last.1 = last.1.max(0.6);
        }
    }
    out
}

fn split_clauses(sentence: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in sentence.chars() {
        current.push(c);
        if matches!(c, ',' | ';' | ':') && words(&current) >= 6 {
            let piece = std::mem::take(&mut current);
            out.push((piece.trim().to_string(), pause_for(piece.trim())));
        }
    }
    if !current.trim().is_empty() {
        out.push((current.trim().to_string(), pause_for(current.trim())));
    }
    out
}

fn pause_for(piece: &str) -> f64 {
    match piece.chars().last() {
        Some('?') => 0.45,
        Some('.' | '!' | '…') => 0.35,
        Some(':' | ';') => 0.25,
        Some(',') => 0.18,
        _ => 0.3,
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_become_segments_with_pauses() {
        let t = plan(
            "t1",
            "The capital of France is Paris. Want more? Sure!",
            Utc::now(),
            1.0,
        );
        let texts: Vec<&str> = t.segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            ["The capital of France is Paris.", "Want more?", "Sure!"]
        );
        assert_eq!(t.segments[0].pause_after, 0.35);
        assert_eq!(t.segments[1].pause_after, 0.45);
        assert_eq!(t.segments[2].pause_after, 0.0, "nothing after the last one");
        assert_eq!(t.segments[0].estimated_duration, round2(6.0 / 2.6));
        assert_eq!(t.average_words_per_second, 2.6);
    }

    #[test]
    fn decimals_and_abbreviations_inside_words_do_not_split() {
        let t = plan("t", "Pi is 3.14 roughly. Done", Utc::now(), 1.0);
        assert_eq!(t.segments.len(), 2);
        assert_eq!(t.segments[0].text, "Pi is 3.14 roughly.");
    }

    #[test]
    fn long_sentences_split_at_commas() {
        let long = "This sentence keeps going with many words, and then it continues further, \
                    adding more and more clauses, until it is clearly far too long to say in one breath.";
        let t = plan("t", long, Utc::now(), 1.0);
        assert!(t.segments.len() >= 3, "{:?}", t.segments);
        assert!(t.segments[0].text.ends_with(','));
    }

    #[test]
    fn tempo_follows_the_conversation() {
        assert_eq!(next_tempo(None, 3), round2(MAX_TEMPO - 0.0225));
        assert_eq!(next_tempo(None, 200), MIN_TEMPO);
        let brisk = next_tempo(Some(1.0), 2);
        assert!(brisk > 1.0 && brisk < MAX_TEMPO);
        let calm = next_tempo(Some(1.0), 60);
        assert!((MIN_TEMPO..1.0).contains(&calm));
        let fast = plan("t", "One two three four.", Utc::now(), 1.15);
        let slow = plan("t", "One two three four.", Utc::now(), 0.85);
        assert!(fast.segments[0].estimated_duration < slow.segments[0].estimated_duration);
    }

    #[test]
    fn empty_text_has_no_segments() {
        assert!(plan("t", "   ", Utc::now(), 1.0).segments.is_empty());
    }
}
