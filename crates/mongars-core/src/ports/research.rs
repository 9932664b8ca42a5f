//! Outside knowledge: a document-retrieval service and web search.

use async_trait::async_trait;

/// What to look for.
#[derive(Debug, Clone)]
pub struct ResearchQuery {
    pub text: String,
    /// Repositories to search, for document retrieval (empty: all).
    pub repositories: Vec<String>,
    pub max_results: usize,
}

/// One source found, with the text that goes into a prompt.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reference {
    pub title: String,
    pub url: String,
    /// A few sentences of the source, as plain text.
    pub summary: String,
    /// Relevance as the provider ranked it, 0..1.
    pub score: f32,
    pub repository: Option<String>,
    pub file_path: Option<String>,
    /// Which provider found it.
    pub provider: String,
}

#[async_trait]
pub trait ResearchProvider: Send + Sync {
    fn name(&self) -> &str;
    /// Search; the error is a short reason for logs.
    async fn search(&self, query: &ResearchQuery) -> Result<Vec<Reference>, String>;
}
