//! Curiosity: notice when a question asks about something the assistant
//! has no memory or context of, and, only when research is enabled, ask the
//! configured providers (document retrieval, SearxNG) and put what they
//! found, with its source URLs, into the prompt.
//!
//! With research disabled nothing here makes a call: the providers are not
//! even built.

mod gap;
mod review;

pub use gap::{KnowledgeGap, detect_gap};
pub use review::{ReviewContext, focus_areas, review_context};

use crate::ports::{Reference, ResearchProvider, ResearchQuery};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ResearchOptions {
    /// Sources added to one prompt, at most.
    pub max_results: usize,
    /// Each provider gets this long; a late one is left out.
    pub provider_timeout: Duration,
    /// A memory at least this similar to the question means there is no gap.
    pub gap_similarity: f32,
}

pub struct Researcher {
    providers: Vec<Arc<dyn ResearchProvider>>,
    documents: Option<Arc<dyn ResearchProvider>>,
    options: ResearchOptions,
}

impl Researcher {
    /// `documents` is the document-retrieval provider (also in
    /// `providers`), used alone by the review endpoint.
    pub fn new(
        providers: Vec<Arc<dyn ResearchProvider>>,
        documents: Option<Arc<dyn ResearchProvider>>,
        options: ResearchOptions,
    ) -> Self {
        Self {
            providers,
            documents,
            options,
        }
    }

    pub fn options(&self) -> &ResearchOptions {
        &self.options
    }

    /// Ask every provider at once; each has its own timeout. Results are
    /// merged best first, one per URL.
    pub async fn research(&self, text: &str) -> Vec<Reference> {
        let query = ResearchQuery {
            text: text.to_string(),
            repositories: Vec::new(),
            max_results: self.options.max_results,
        };
        let mut set = tokio::task::JoinSet::new();
        for p in &self.providers {
            let (p, q, t) = (p.clone(), query.clone(), self.options.provider_timeout);
            set.spawn(async move {
                let name = p.name().to_string();
                match tokio::time::timeout(t, p.search(&q)).await {
                    Ok(Ok(found)) => found,
                    Ok(Err(e)) => {
                        tracing::warn!(provider = name, error = e, "research provider failed");
                        Vec::new()
                    }
                    Err(_) => {
                        tracing::warn!(provider = name, "research provider timed out");
                        Vec::new()
                    }
                }
            });
        }
        let mut all = Vec::new();
        while let Some(done) = set.join_next().await {
            all.extend(done.unwrap_or_default());
        }
        merge(all, self.options.max_results)
    }

    /// Document retrieval only, for the review endpoint; `None` when no
    /// document provider is configured.
    pub async fn documents(&self, query: ResearchQuery) -> Option<Result<Vec<Reference>, String>> {
        let p = self.documents.as_ref()?;
        let found =
            match tokio::time::timeout(self.options.provider_timeout, p.search(&query)).await {
                Ok(r) => r.map(|v| merge(v, query.max_results)),
                Err(_) => Err("document retrieval timed out".into()),
            };
        Some(found)
    }
}

fn merge(mut all: Vec<Reference>, max: usize) -> Vec<Reference> {
    all.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut seen = std::collections::HashSet::new();
    all.retain(|r| seen.insert(r.url.clone()));
    all.truncate(max);
    all
}

/// The prompt section for research results, with their sources.
pub fn research_section(found: &[Reference]) -> String {
    if found.is_empty() {
        return String::new();
    }
    let mut s = String::from("Sources found for this question (cite the URL when you use one):");
    for r in found {
        s.push_str(&format!("\n- {} ({}): {}", r.title, r.url, r.summary));
    }
    s
}
