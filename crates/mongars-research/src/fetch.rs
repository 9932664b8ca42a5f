//! Fetch a result page (`http://` or `https://`), when robots.txt allows it,
//! and cut out the passage that best matches the question.

use crate::html::{text_of, title_of};
use crate::robots::Robots;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PageOptions {
    pub timeout: Duration,
    pub max_bytes: usize,
    pub user_agent: String,
    /// Trust for `https://` pages.
    pub tls: mongars_net::Tls,
}

pub struct PageFetcher {
    client: reqwest::Client,
    robots: Robots,
    options: PageOptions,
}

/// (origin, path) of an `http://` or `https://` URL.
pub(crate) fn split_http(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    if host.is_empty() || host.contains('@') {
        return None;
    }
    let path = &rest[end..];
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Some((format!("{scheme}://{host}"), path))
}

impl PageFetcher {
    pub fn new(options: PageOptions) -> Result<Self, String> {
        let client = options
            .tls
            .client_builder()
            .user_agent(options.user_agent.clone())
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let robots = Robots::new(client.clone(), &options.user_agent);
        Ok(Self {
            client,
            robots,
            options,
        })
    }

    /// The page's title and the passage closest to `query`, or `None` when
    /// the page may not or cannot be read.
    pub async fn passage(
        &self,
        url: &str,
        query: &str,
        max_chars: usize,
    ) -> Option<(Option<String>, String)> {
        let (origin, path) = split_http(url)?;
        if !self.robots.allowed(&origin, &path).await {
            tracing::debug!(url, "robots.txt disallows the page");
            return None;
        }
        let mut resp = self.client.get(url).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let html_like = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|t| t.starts_with("text/html") || t.starts_with("text/plain"));
        if !html_like {
            return None;
        }
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            let room = self.options.max_bytes.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room <= chunk.len() {
                break;
            }
        }
        let page = String::from_utf8_lossy(&body);
        let text = text_of(&page);
        if text.is_empty() {
            return None;
        }
        Some((title_of(&page), best_passage(&text, query, max_chars)))
    }
}

/// The run of sentences, starting at the one sharing most words with
/// `query`, that fits in `max_chars`.
pub fn best_passage(text: &str, query: &str, max_chars: usize) -> String {
    let words: Vec<String> = query
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 3)
        .map(String::from)
        .collect();
    let sentences: Vec<&str> = text.split_inclusive(['.', '!', '?']).collect();
    let score = |s: &str| {
        let l = s.to_lowercase();
        words.iter().filter(|w| l.contains(w.as_str())).count()
    };
    let start = (0..sentences.len())
        .max_by_key(|&i| (score(sentences[i]), std::cmp::Reverse(i)))
        .unwrap_or(0);
    mongars_core::text::clip(&sentences[start..].concat(), max_chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_passages() {
        assert_eq!(
            split_http("http://example.org/a/b?c=1"),
            Some(("http://example.org".into(), "/a/b?c=1".into()))
        );
        assert_eq!(
            split_http("http://h:8080"),
            Some(("http://h:8080".into(), "/".into()))
        );
        assert_eq!(
            split_http("https://example.org/"),
            Some(("https://example.org".into(), "/".into()))
        );
        assert_eq!(split_http("ftp://example.org/"), None);
        assert_eq!(split_http("http://user@h/"), None);
        let text = "Welcome to the site. Cookies are used. The Kuiper belt lies beyond Neptune. It holds comets.";
        assert_eq!(
            best_passage(text, "What is the Kuiper belt?", 200),
            "The Kuiper belt lies beyond Neptune. It holds comets."
        );
    }
}
