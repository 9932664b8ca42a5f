//! SearxNG: `GET {base}/search?q=...&format=json`. The top results' pages
//! are read for a passage when allowed; otherwise the engine's snippet is
//! used.

use crate::fetch::PageFetcher;
use async_trait::async_trait;
use mongars_core::ports::{Reference, ResearchProvider, ResearchQuery};
use serde::Deserialize;
use std::sync::Arc;

pub struct SearxNg {
    base: String,
    client: reqwest::Client,
    pages: Option<Arc<PageFetcher>>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    results: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    url: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    score: Option<f32>,
}

impl SearxNg {
    pub fn new(
        base: &str,
        user_agent: &str,
        tls: &mongars_net::Tls,
        pages: Option<Arc<PageFetcher>>,
    ) -> Result<Self, String> {
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            client: crate::client(user_agent, tls)?,
            pages,
        })
    }
}

#[async_trait]
impl ResearchProvider for SearxNg {
    fn name(&self) -> &str {
        "searxng"
    }

    async fn search(&self, q: &ResearchQuery) -> Result<Vec<Reference>, String> {
        let resp = self
            .client
            .get(format!("{}/search", self.base))
            .query(&[("q", q.text.as_str()), ("format", "json")])
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !resp.status().is_success() {
            return Err(format!("SearxNG answered {}", resp.status()));
        }
        let answer: Answer = resp.json().await.map_err(|e| e.without_url().to_string())?;
        let items: Vec<Item> = answer
            .results
            .into_iter()
            .filter(|i| i.url.starts_with("http://") || i.url.starts_with("https://"))
            .take(q.max_results)
            .collect();
        let count = items.len().max(1) as f32;
        let mut out = Vec::with_capacity(items.len());
        for (rank, item) in items.into_iter().enumerate() {
            let mut title = item.title.clone();
            let mut summary = mongars_core::text::clip(&item.content, 400);
            let passage = match &self.pages {
                Some(pages) => pages.passage(&item.url, &q.text, 400).await,
                None => None,
            };
            if let Some((page_title, passage)) = passage {
                summary = passage;
                if title.is_empty() {
                    title = page_title.unwrap_or_default();
                }
            }
            if summary.is_empty() {
                continue;
            }
            out.push(Reference {
                title: if title.is_empty() {
                    item.url.clone()
                } else {
                    mongars_core::text::clip(&title, 120)
                },
                url: item.url,
                summary,
                // Keep the engine's order when it gives no score.
                score: item
                    .score
                    .map_or(1.0 - rank as f32 / count, |s| s.clamp(0.0, 1.0)),
                repository: None,
                file_path: None,
                provider: "searxng".into(),
            });
        }
        Ok(out)
    }
}
