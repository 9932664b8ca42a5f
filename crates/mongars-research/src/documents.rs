//! A document-retrieval service:
//! `POST {base}/search` with `{query, repositories, max_results}` answering
//! `{results: [{title?, url?, summary, score?, repository?, file_path?}]}`.

use async_trait::async_trait;
use mongars_core::ports::{Reference, ResearchProvider, ResearchQuery};
use serde::Deserialize;
use serde_json::json;

pub struct Documents {
    base: String,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    results: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default, alias = "snippet", alias = "content")]
    summary: String,
    #[serde(default)]
    score: Option<f32>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    file_path: Option<String>,
}

impl Documents {
    pub fn new(base: &str, user_agent: &str, tls: &mongars_net::Tls) -> Result<Self, String> {
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            client: crate::client(user_agent, tls)?,
        })
    }
}

#[async_trait]
impl ResearchProvider for Documents {
    fn name(&self) -> &str {
        "documents"
    }

    async fn search(&self, q: &ResearchQuery) -> Result<Vec<Reference>, String> {
        let resp = self
            .client
            .post(format!("{}/search", self.base))
            .json(&json!({"query": q.text, "repositories": q.repositories, "max_results": q.max_results}))
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !resp.status().is_success() {
            return Err(format!("document retrieval answered {}", resp.status()));
        }
        let answer: Answer = resp.json().await.map_err(|e| e.without_url().to_string())?;
        Ok(answer
            .results
            .into_iter()
            .take(q.max_results)
            .filter(|i| !i.summary.trim().is_empty())
            .map(|i| {
                let url = i.url.unwrap_or_default();
                let title = i
                    .title
                    .or_else(|| i.file_path.clone())
                    .unwrap_or_else(|| url.clone());
                Reference {
                    title: mongars_core::text::clip(&title, 120),
                    url,
                    summary: mongars_core::text::clip(&i.summary, 400),
                    score: i.score.unwrap_or(0.5).clamp(0.0, 1.0),
                    repository: i.repository,
                    file_path: i.file_path,
                    provider: "documents".into(),
                }
            })
            .collect())
    }
}
