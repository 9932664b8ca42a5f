//! Knowledge gaps: a question about an entity or a fact that nothing in
//! memory or the conversation answers.

/// A question worth researching, and what to search for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeGap {
    pub query: String,
}

const QUESTION_WORDS: &[&str] = &[
    "what", "who", "where", "when", "which", "how", "why", "is", "are", "does", "do", "did", "can",
    "tell", "explain", "describe", "define", "qui", "quel", "quelle", "quoi", "où", "quand",
    "comment", "pourquoi",
];
/// Questions about the user or the conversation are memory's job.
const PERSONAL: &[&str] = &[
    "i", "my", "me", "mine", "myself", "we", "our", "you", "your", "je", "mon", "ma", "mes", "tu",
    "vous",
];

/// A gap when `message` is a question about something outside the user
/// (no "I"/"my"/"you") and the best memory scored below `threshold`.
pub fn detect_gap(message: &str, best_memory: Option<f32>, threshold: f32) -> Option<KnowledgeGap> {
    if best_memory.is_some_and(|s| s >= threshold) {
        return None;
    }
    let lower = message.trim().to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    let first = words.first()?;
    let asks = message.trim_end().ends_with('?') || QUESTION_WORDS.contains(first);
    if !asks || words.len() < 3 || words.iter().any(|w| PERSONAL.contains(w)) {
        return None;
    }
    // About an entity or a fact: a capitalised name after the first word,
    // or a "what is / who is" question.
    let named = message
        .split_whitespace()
        .skip(1)
        .any(|w| w.chars().next().is_some_and(char::is_uppercase));
    let factual = matches!(
        *first,
        "what"
            | "who"
            | "where"
            | "when"
            | "which"
            | "define"
            | "explain"
            | "describe"
            | "qui"
            | "quel"
            | "quelle"
            | "où"
            | "quand"
    );
    if !(named || factual) {
        return None;
    }
    let query = message
        .trim()
        .trim_end_matches(['?', '!', '.'])
        .trim()
        .to_string();
    Some(KnowledgeGap { query })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_about_the_world_are_gaps_unless_memory_knows() {
        let g = detect_gap("What is the Kuiper belt?", None, 0.5).unwrap();
        assert_eq!(g.query, "What is the Kuiper belt");
        assert!(detect_gap("Who founded Mistral AI?", Some(0.2), 0.5).is_some());
        assert!(detect_gap("Who founded Mistral AI?", Some(0.7), 0.5).is_none());
    }

    #[test]
    fn chatter_commands_and_personal_questions_are_not() {
        for m in [
            "What project do I work on?",
            "Do you remember my name?",
            "hello there",
            "Write a poem about spring",
            "ok?",
            "thanks a lot",
        ] {
            assert!(detect_gap(m, None, 0.5).is_none(), "{m}");
        }
    }
}
