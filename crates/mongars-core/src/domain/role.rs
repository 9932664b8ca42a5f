//! Model roles and the task-type classifier that picks one for a message.
//!
//! Each role has its own ordered list of backends and sampling defaults (a
//! model profile). The classifier is a deterministic scoring of the message,
//! cheap enough to run on every turn:
//!
//! | signal | score |
//! |---|---|
//! | a fenced code block (three backticks) | +3 |
//! | a stack trace or compiler error line (`error[E`, `Traceback`, `panicked at`, `Exception`) | +3 |
//! | a programming keyword as a word (`function`, `compile`, `regex`, `sql`, `python`, `rust`, `refactor`, `bug`, `debug`, ...) | +1 each, at most 3 |
//! | code punctuation (`::`, `=>`, `->`, `();`, `{}`, `!=`, `==`, `&&`, `||`) | +1 each kind, at most 3 |
//! | a line indented by four spaces or a tab | +1 |
//!
//! A message scoring 3 or more is a coding task; everything else is general.

use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelRole {
    General,
    Coding,
}

impl ModelRole {
    pub const ALL: [ModelRole; 2] = [ModelRole::General, ModelRole::Coding];

    pub fn as_str(self) -> &'static str {
        match self {
            ModelRole::General => "general",
            ModelRole::Coding => "coding",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "general" => Some(ModelRole::General),
            "coding" => Some(ModelRole::Coding),
            _ => None,
        }
    }
}

impl std::fmt::Display for ModelRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value per role.
#[derive(Debug, Clone, PartialEq)]
pub struct PerRole<T> {
    pub general: T,
    pub coding: T,
}

impl<T> PerRole<T> {
    pub fn get(&self, role: ModelRole) -> &T {
        match role {
            ModelRole::General => &self.general,
            ModelRole::Coding => &self.coding,
        }
    }

    /// The same value for both roles.
    pub fn both(value: T) -> Self
    where
        T: Clone,
    {
        Self {
            general: value.clone(),
            coding: value,
        }
    }
}

const CODING_THRESHOLD: u32 = 3;
const KEYWORDS: [&str; 24] = [
    "function",
    "compile",
    "compiler",
    "regex",
    "sql",
    "python",
    "rust",
    "javascript",
    "typescript",
    "java",
    "golang",
    "bash",
    "refactor",
    "bug",
    "debug",
    "stacktrace",
    "api",
    "struct",
    "class",
    "method",
    "variable",
    "syntax",
    "segfault",
    "code",
];
const ERROR_MARKERS: [&str; 5] = [
    "error[e",
    "traceback (most recent call last)",
    "panicked at",
    "exception in thread",
    "uncaught typeerror",
];
const PUNCTUATION: [&str; 9] = ["::", "=>", "->", "();", "{}", "!=", "==", "&&", "||"];

/// The role whose model should answer `message`. See the module docs.
pub fn classify_task(message: &str) -> ModelRole {
    if coding_score(message) >= CODING_THRESHOLD {
        ModelRole::Coding
    } else {
        ModelRole::General
    }
}

fn coding_score(message: &str) -> u32 {
    let lower = message.to_lowercase();
    let mut score = 0;
    if lower.contains("```") {
        score += 3;
    }
    if ERROR_MARKERS.iter().any(|m| lower.contains(m)) {
        score += 3;
    }
    let words = lower
        .split(|c: char| !c.is_alphanumeric() && c != '+' && c != '#')
        .filter(|w| KEYWORDS.contains(w))
        .count() as u32;
    score += words.min(3);
    let marks = PUNCTUATION.iter().filter(|p| lower.contains(*p)).count() as u32;
    score += marks.min(3);
    if message
        .lines()
        .any(|l| (l.starts_with("    ") || l.starts_with('\t')) && !l.trim().is_empty())
    {
        score += 1;
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everyday_questions_are_general() {
        for m in [
            "What is the capital of France?",
            "My name is Ana and I work on the Orion project",
            "Can you suggest a recipe with lentils?",
            "Write a short poem about the sea.",
            "Is Python a kind of snake?",
        ] {
            assert_eq!(classify_task(m), ModelRole::General, "{m}");
        }
    }

    #[test]
    fn programming_tasks_are_coding() {
        for m in [
            "Why does this not compile?\n```rust\nfn main() { let x: u8 = 256; }\n```",
            "thread 'main' panicked at src/main.rs:4:5",
            "Traceback (most recent call last):\n  File \"a.py\", line 1",
            "Refactor this Python function: def f(x): return x == 1 && y",
            "Write a SQL query and a regex to debug this bug",
            "In Rust, what does Vec::new() -> Self do?",
        ] {
            assert_eq!(classify_task(m), ModelRole::Coding, "{m}");
        }
    }

    #[test]
    fn roles_parse_and_print() {
        for r in ModelRole::ALL {
            assert_eq!(ModelRole::parse(r.as_str()), Some(r));
        }
        assert_eq!(ModelRole::parse(" Coding "), Some(ModelRole::Coding));
        assert_eq!(ModelRole::parse("vision"), None);
    }
}
