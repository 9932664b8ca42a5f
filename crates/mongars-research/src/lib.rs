//! Research providers behind the core's `ResearchProvider` port.
//!
//! - [`SearxNg`]: web search through a SearxNG instance (JSON API); result
//!   pages are fetched, when robots.txt allows it, for a summary.
//! - [`Documents`]: a document-retrieval service (`POST /search`).
//!
//! Nothing here is built unless `research.enabled` is set.

mod documents;
mod fetch;
mod html;
mod robots;
mod searxng;

pub use documents::Documents;
pub use fetch::{PageFetcher, PageOptions};
pub use html::text_of;
pub use robots::Robots;
pub use searxng::SearxNg;

/// An HTTP client that names itself with `user_agent`.
pub(crate) fn client(user_agent: &str, tls: &mongars_net::Tls) -> Result<reqwest::Client, String> {
    tls.client_builder()
        .user_agent(user_agent)
        .build()
        .map_err(|e| e.to_string())
}
