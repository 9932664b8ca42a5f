//! What a turn costs the embedder: the user's message is embedded once (for
//! recall, and the same vector is stored with the exchange), plus one
//! embedding per fact the message states. The reply is never embedded.

use crate::common::{TestApp, shared_embedder};
use crate::conversation::user;
use crate::memory::{say, wait_for};
use async_trait::async_trait;
use mongars_core::ports::{EmbedError, Embedder, Embeddings};
use mongars_llm::scripted::{Script, ScriptedBackend};
use std::sync::{Arc, Mutex};

/// The shared model, noting every text it is asked to embed.
struct Counting {
    inner: Arc<dyn Embedder>,
    seen: Mutex<Vec<String>>,
}

#[async_trait]
impl Embedder for Counting {
    fn model(&self) -> &str {
        self.inner.model()
    }
    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }
    async fn embed(&self, texts: &[String]) -> Result<Embeddings, EmbedError> {
        self.seen.lock().unwrap().extend(texts.iter().cloned());
        self.inner.embed(texts).await
    }
}

#[tokio::test]
async fn a_turn_embeds_the_message_once_and_each_stated_fact_once() {
    let Some(inner) = shared_embedder() else {
        mongars_store::testing::skipped("the embedding model is missing (run `make models`)");
        return;
    };
    let counting = Arc::new(Counting {
        inner,
        seen: Mutex::new(Vec::new()),
    });
    let backend = Arc::new(ScriptedBackend::new(Script::Reply(
        "Nice to meet you, Ana.".into(),
    )));
    let app = TestApp::spawn_embedding_with(counting.clone(), backend).await;
    let ana = user(&app, "ana").await;
    let message = "My name is Ana and I work on the Orion project";
    say(&app, &ana, message, "monday").await;
    // Both facts stored: the turn's learning, which stores the exchange
    // before the facts, is over.
    wait_for(&app, &ana, |m| m.len() == 2).await;

    let seen = counting.seen.lock().unwrap().clone();
    let of_message = seen.iter().filter(|t| t.as_str() == message).count();
    assert_eq!(
        of_message, 1,
        "the message was embedded {of_message} times: {seen:?}"
    );
    assert_eq!(
        seen.len(),
        3,
        "the message and two facts, nothing else: {seen:?}"
    );
    assert!(
        !seen.iter().any(|t| t.contains("Nice to meet you")),
        "the reply was embedded: {seen:?}"
    );
    app.shutdown().await;
}
