//! Suggested actions for a prompt: each action is described in words, and
//! the actions are ranked by how close the meaning of their description is
//! to the prompt (cosine similarity of sentence embeddings, mapped to 0..1).

use crate::error::CoreError;
use crate::ports::{Embedder, dot};
use std::sync::Arc;

/// Actions offered when the client names none, with what each is for.
pub const DEFAULT_ACTIONS: &[(&str, &str)] = &[
    ("code", "write, fix or review program code"),
    ("summarize", "summarize a long text into its main points"),
    ("explain", "explain a concept or how something works"),
    ("translate", "translate text into another language"),
    ("research", "look up current facts and sources on the web"),
    ("remember", "remember a fact about me for later"),
    ("plan", "make a plan, a schedule or a list of steps"),
    ("write", "draft an email, a letter or a message"),
];

/// Actions in order, best first, each with its score (0..1, three decimals).
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub ranked: Vec<(String, f32)>,
    /// The embedding model that scored them.
    pub model: String,
}

pub struct Suggester {
    embedder: Arc<dyn Embedder>,
}

impl Suggester {
    pub fn new(embedder: Arc<dyn Embedder>) -> Self {
        Self { embedder }
    }

    /// Rank `actions` (the defaults when empty) for `prompt`. A known action
    /// name is scored by its description; another by its own words.
    pub async fn rank(&self, prompt: &str, actions: &[String]) -> Result<Ranking, CoreError> {
        let actions: Vec<(String, String)> = if actions.is_empty() {
            DEFAULT_ACTIONS
                .iter()
                .map(|(a, d)| ((*a).to_string(), (*d).to_string()))
                .collect()
        } else {
            actions.iter().map(|a| (a.clone(), describe(a))).collect()
        };
        let mut texts = vec![prompt.trim().to_string()];
        texts.extend(actions.iter().map(|(_, d)| d.clone()));
        let vectors = self
            .embedder
            .embed(&texts)
            .await
            .map_err(CoreError::from)?
            .vectors;
        let mut ranked: Vec<(String, f32)> = actions
            .into_iter()
            .zip(&vectors[1..])
            .map(|((a, _), v)| (a, score(&vectors[0], v)))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(Ranking {
            ranked,
            model: self.embedder.model().to_string(),
        })
    }
}

/// What an action is for: its known description, or its name in words.
fn describe(action: &str) -> String {
    DEFAULT_ACTIONS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(action.trim()))
        .map_or_else(
            || action.replace(['_', '-'], " "),
            |(_, d)| (*d).to_string(),
        )
}

/// Cosine similarity of unit vectors mapped from -1..1 to 0..1, rounded.
fn score(a: &[f32], b: &[f32]) -> f32 {
    ((dot(a, b) + 1.0) / 2.0 * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_use_their_description_and_others_their_words() {
        assert_eq!(describe(" Code "), "write, fix or review program code");
        assert_eq!(describe("book_a-flight"), "book a flight");
    }

    #[test]
    fn scores_map_cosine_to_zero_one() {
        assert_eq!(score(&[1.0, 0.0], &[1.0, 0.0]), 1.0);
        assert_eq!(score(&[1.0, 0.0], &[-1.0, 0.0]), 0.0);
        assert_eq!(score(&[1.0, 0.0], &[0.0, 1.0]), 0.5);
    }
}
