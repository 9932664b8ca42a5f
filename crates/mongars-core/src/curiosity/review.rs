//! What the review helper answers: the documents the retrieval service
//! finds for a question, and the words of the question worth focusing on.

use super::Researcher;
use crate::ports::{Reference, ResearchQuery};

/// The answer of a review request. `enabled` is false, with empty lists,
/// when research or the document service is off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReviewContext {
    pub enabled: bool,
    pub focus_areas: Vec<String>,
    /// Best first.
    pub references: Vec<Reference>,
}

/// Review context from `researcher` (none when research is off). A failing
/// retrieval service gives no references, never an error.
pub async fn review_context(
    researcher: Option<&Researcher>,
    query: ResearchQuery,
) -> ReviewContext {
    let Some(researcher) = researcher else {
        return ReviewContext::default();
    };
    let focus_areas = focus_areas(&query.text);
    let references = match researcher.documents(query).await {
        None => return ReviewContext::default(),
        Some(Ok(found)) => found,
        Some(Err(e)) => {
            tracing::warn!(error = e, "document retrieval failed");
            Vec::new()
        }
    };
    ReviewContext {
        enabled: true,
        focus_areas,
        references,
    }
}

/// Words of the query worth focusing on: longer than three letters, not
/// common words, lower-cased, in order, without repeats, at most eight.
pub fn focus_areas(query: &str) -> Vec<String> {
    const COMMON: &[&str] = &[
        "what", "where", "which", "when", "does", "with", "that", "this", "from", "have", "there",
        "about", "into", "should", "would", "could", "their", "these", "those", "code", "file",
    ];
    let mut out: Vec<String> = Vec::new();
    for w in query.split(|c: char| !c.is_alphanumeric() && c != '_') {
        let l = w.to_lowercase();
        if l.len() > 3 && !COMMON.contains(&l.as_str()) && !out.contains(&l) {
            out.push(l);
        }
    }
    out.truncate(8);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn focus_areas_keep_the_telling_words_once_in_order() {
        assert_eq!(
            focus_areas(
                "Where does the Parser handle parser_errors? What about the lexer, the LEXER?"
            ),
            ["parser", "handle", "parser_errors", "lexer"]
        );
        let many = "alpha bravo charlie delta echo foxtrot golf hotel india juliet";
        assert_eq!(focus_areas(many).len(), 8);
        assert!(focus_areas("what is it").is_empty());
    }
}
