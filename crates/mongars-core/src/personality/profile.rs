//! A user's style, learned from their messages with a decaying average, and
//! the short instruction it becomes in the system prompt.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Weight of the newest message once a profile has a few messages behind it.
const DECAY: f32 = 0.2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StyleProfile {
    /// Messages learned from.
    pub messages: u64,
    /// 0 casual .. 1 formal.
    pub formality: f32,
    /// 0 terse .. 1 wordy (the user's own messages).
    pub verbosity: f32,
    /// 0 short answers wanted .. 1 long answers wanted.
    pub length_preference: f32,
    /// -1 negative .. 1 positive.
    pub tone: f32,
    /// 0 flat .. 1 exclamatory.
    pub enthusiasm: f32,
    /// Decaying evidence per language code.
    pub languages: BTreeMap<String, f32>,
    /// "short", "medium" or "long", with hysteresis so that the system
    /// prompt does not flip on every message near a threshold.
    #[serde(default)]
    pub length_label: String,
    /// "casual", "neutral" or "formal", likewise.
    #[serde(default)]
    pub formality_label: String,
    pub updated_at: Option<DateTime<Utc>>,
}

/// The label for `x` given the current one: entering a band takes a clear
/// move past its edge, leaving it takes a clear move back.
fn banded(
    current: &str,
    x: f32,
    low: (&'static str, f32, f32),
    high: (&'static str, f32, f32),
    mid: &'static str,
) -> &'static str {
    let (low_name, low_in, low_out) = low;
    let (high_name, high_in, high_out) = high;
    match current {
        c if c == low_name && x < low_out => low_name,
        c if c == high_name && x > high_out => high_name,
        _ if x < low_in => low_name,
        _ if x > high_in => high_name,
        _ => mid,
    }
}

/// The profile as the API shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct ProfileView {
    pub messages: u64,
    pub formality: f32,
    pub verbosity: f32,
    pub language: String,
    pub tone: &'static str,
    pub enthusiasm: f32,
    pub preferred_length: &'static str,
    pub style_instruction: String,
    pub updated_at: Option<DateTime<Utc>>,
}

impl StyleProfile {
    /// Fold one message in. The first messages count fully, later ones with
    /// weight [`DECAY`], so the profile follows the user as they change.
    pub fn learn(&mut self, message: &str, at: DateTime<Utc>) {
        let m = observe(message);
        let w = (1.0 / (self.messages as f32 + 1.0)).max(DECAY);
        let mix = |old: f32, new: f32| old * (1.0 - w) + new * w;
        self.formality = mix(self.formality, m.formality);
        self.verbosity = mix(self.verbosity, m.verbosity);
        self.length_preference = mix(self.length_preference, m.length_preference);
        self.tone = mix(self.tone, m.tone);
        self.enthusiasm = mix(self.enthusiasm, m.enthusiasm);
        if let Some(lang) = m.language {
            for v in self.languages.values_mut() {
                *v *= 1.0 - w;
            }
            *self.languages.entry(lang.to_string()).or_default() += w;
            self.languages.retain(|_, v| *v > 0.01);
        }
        self.length_label = banded(
            &self.length_label,
            self.length_preference,
            ("short", 0.3, 0.45),
            ("long", 0.7, 0.55),
            "medium",
        )
        .into();
        self.formality_label = banded(
            &self.formality_label,
            self.formality,
            ("casual", 0.3, 0.4),
            ("formal", 0.75, 0.65),
            "neutral",
        )
        .into();
        self.messages += 1;
        self.updated_at = Some(at);
    }

    /// The most likely language and its weight.
    pub fn language(&self) -> (&str, f32) {
        self.languages
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(("en", 0.0), |(k, v)| (k.as_str(), *v))
    }

    pub fn preferred_length(&self) -> &'static str {
        match self.length_label.as_str() {
            "short" => "short",
            "long" => "long",
            _ => "medium",
        }
    }

    pub fn tone_label(&self) -> &'static str {
        match self.tone {
            x if x < -0.25 => "negative",
            x if x > 0.25 => "positive",
            _ => "neutral",
        }
    }

    /// One or two sentences for the system prompt; empty when nothing is
    /// known or nothing stands out.
    pub fn instruction(&self) -> String {
        if self.messages == 0 {
            return String::new();
        }
        let mut parts: Vec<String> = Vec::new();
        let (lang, weight) = self.language();
        if lang != "en" && weight >= 0.5 {
            parts.push(format!("Reply in {}.", language_name(lang)));
        }
        match self.formality_label.as_str() {
            "casual" => parts.push("Use a relaxed, casual tone.".into()),
            "formal" => parts.push("Use a polite, formal tone.".into()),
            _ => {}
        }
        match self.preferred_length() {
            "short" => parts.push("Keep answers short: two or three sentences.".into()),
            "long" => parts.push("Give detailed, thorough answers.".into()),
            _ => {}
        }
        if self.tone < -0.25 {
            parts.push("The user seems frustrated: be patient and get to the point.".into());
        } else if self.enthusiasm > 0.6 {
            parts.push("Match the user's enthusiasm.".into());
        }
        parts.join(" ")
    }

    pub fn view(&self) -> ProfileView {
        ProfileView {
            messages: self.messages,
            formality: round(self.formality),
            verbosity: round(self.verbosity),
            language: self.language().0.to_string(),
            tone: self.tone_label(),
            enthusiasm: round(self.enthusiasm),
            preferred_length: self.preferred_length(),
            style_instruction: self.instruction(),
            updated_at: self.updated_at,
        }
    }
}

fn round(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

fn language_name(code: &str) -> &'static str {
    match code {
        "fr" => "French",
        "es" => "Spanish",
        "de" => "German",
        "it" => "Italian",
        "pt" => "Portuguese",
        _ => "English",
    }
}

/// What one message says about its writer.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub formality: f32,
    pub verbosity: f32,
    pub length_preference: f32,
    pub tone: f32,
    pub enthusiasm: f32,
    pub language: Option<&'static str>,
}

const POLITE: &[&str] = &[
    "please",
    "thank",
    "could",
    "would",
    "kindly",
    "regards",
    "hello",
    "good morning",
    "good afternoon",
    "dear",
    "appreciate",
    "s'il vous plaît",
    "merci",
    "vous",
    "bonjour",
    "por favor",
    "gracias",
    "bitte",
    "danke",
];
const CASUAL: &[&str] = &[
    "lol", "gonna", "wanna", "gotta", "thx", "pls", "plz", "btw", "hey", "yo", "dude", "omg",
    "lmao", "u", "ur", "ya", "yep", "nope", "cool", "awesome", "kinda", "salut", "mdr", "stp",
];
/// Explicit requests about answer length (single words like "quick" or
/// "short" are too often about something else: "a quick dinner").
const SHORT: &[&str] = &[
    "briefly",
    "in short",
    "short answer",
    "keep it short",
    "be brief",
    "in one sentence",
    "tl;dr",
    "tldr",
    "concise",
    "in a few words",
    "en bref",
    "sois bref",
    "réponse courte",
];
const LONG: &[&str] = &[
    "in detail",
    "detailed",
    "elaborate",
    "step by step",
    "thorough",
    "more details",
    "in depth",
    "en détail",
    "explique en détail",
];
const POSITIVE: &[&str] = &[
    "thanks",
    "thank",
    "great",
    "love",
    "awesome",
    "perfect",
    "nice",
    "good",
    "excellent",
    "happy",
    "glad",
    "merci",
    "super",
    "génial",
];
const NEGATIVE: &[&str] = &[
    "wrong",
    "bad",
    "hate",
    "useless",
    "annoying",
    "terrible",
    "broken",
    "doesn't work",
    "not working",
    "stupid",
    "frustrating",
    "awful",
    "nul",
];
const STOPWORDS: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "the", "is", "and", "you", "what", "how", "are", "my", "with", "this", "i", "do", "of",
            "to",
        ],
    ),
    (
        "fr",
        &[
            "le", "la", "les", "est", "et", "je", "tu", "vous", "que", "une", "des", "pour", "pas",
            "avec", "mon", "ma", "qui", "quoi", "comment",
        ],
    ),
    (
        "es",
        &[
            "el", "los", "las", "es", "y", "que", "una", "por", "para", "con", "mi", "qué", "cómo",
            "yo", "está",
        ],
    ),
    (
        "de",
        &[
            "der", "die", "das", "ist", "und", "ich", "du", "nicht", "mit", "ein", "eine", "wie",
            "was", "mein",
        ],
    ),
    (
        "it",
        &[
            "il", "lo", "gli", "è", "e", "che", "una", "per", "con", "non", "mio", "come", "sono",
            "cosa",
        ],
    ),
    (
        "pt",
        &[
            "o", "os", "é", "e", "que", "uma", "para", "com", "não", "meu", "como", "você", "eu",
            "está",
        ],
    ),
];

fn has(text: &str, words: &[&str], phrase: &str) -> bool {
    if phrase.contains(' ') || phrase.contains(';') {
        text.contains(phrase)
    } else {
        words
            .iter()
            .any(|w| w.starts_with(phrase) && (w.len() == phrase.len() || phrase.len() >= 5))
    }
}

fn count(text: &str, words: &[&str], list: &[&str]) -> usize {
    list.iter().filter(|p| has(text, words, p)).count()
}

pub fn observe(message: &str) -> Observation {
    let lower = message.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'' && c != ';')
        .filter(|w| !w.is_empty())
        .collect();
    let n = words.len() as f32;
    let emoji = message.chars().filter(|c| (*c as u32) >= 0x1F300).count();
    let exclaims = message.matches('!').count();
    let mut formality = 0.5;
    formality += 0.15 * count(&lower, &words, POLITE).min(2) as f32;
    formality -= 0.15 * count(&lower, &words, CASUAL).min(3) as f32;
    if message.chars().next().is_some_and(char::is_uppercase) {
        formality += 0.05;
    } else if message.chars().any(char::is_alphabetic) {
        formality -= 0.1;
    }
    if message.trim_end().ends_with(['.', '?']) {
        formality += 0.05;
    }
    if emoji > 0 || message.contains("!!") || message.contains("??") {
        formality -= 0.15;
    }
    let verbosity = (n / 40.0).min(1.0);
    let length_preference = if count(&lower, &words, SHORT) > 0 {
        0.0
    } else if count(&lower, &words, LONG) > 0 {
        1.0
    } else {
        // Without a cue, long messages hint at a taste for long answers;
        // short ones say little (people type briefly on phones).
        0.4 + 0.4 * verbosity
    };
    let pos = count(&lower, &words, POSITIVE) as f32;
    let neg = count(&lower, &words, NEGATIVE) as f32;
    let tone = if pos + neg > 0.0 {
        (pos - neg) / (pos + neg)
    } else {
        0.0
    };
    let enthusiasm = ((exclaims.min(3) + emoji.min(3)) as f32 / 3.0).min(1.0);
    Observation {
        formality: formality.clamp(0.0, 1.0),
        verbosity,
        length_preference,
        tone,
        enthusiasm,
        language: detect_language(&words),
    }
}

/// The language whose common words the message uses most; `None` when no
/// language stands out (too short, or a tie).
pub fn detect_language(words: &[&str]) -> Option<&'static str> {
    let mut scores: Vec<(&'static str, usize)> = STOPWORDS
        .iter()
        .map(|(lang, list)| (*lang, words.iter().filter(|w| list.contains(w)).count()))
        .collect();
    scores.sort_by_key(|s| std::cmp::Reverse(s.1));
    match scores.as_slice() {
        [(lang, best), (_, second), ..] if *best >= 2 && best > second => Some(lang),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
