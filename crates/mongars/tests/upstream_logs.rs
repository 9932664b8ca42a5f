//! A backend whose error text echoes the `Authorization` header it was sent
//! (a careless proxy) puts the key in no log line: failures are logged with
//! a scrubbed, shortened reason.

#![allow(clippy::disallowed_methods)] // test harness variables, not settings

mod capture;
#[path = "api/common/mod.rs"]
mod common;

use capture::Capture;
use common::TestApp;
use common::fake::{Fake, Mode};
use mongars_core::domain::Role;
use serde_json::json;

const KEY: &str = "sk-live-0123456789abcdefLOGGEDKEY";

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_echoing_its_key_leaves_it_out_of_the_logs() {
    let capture = Capture::install();
    let fake = Fake::start(Mode::EchoAuth(401)).await;
    let app = TestApp::spawn_with(|s| {
        let b = s.llm.backends.get_mut("openai").unwrap();
        b.url = fake.url.clone();
        b.model = "fake-model".into();
        b.api_key = mongars_config::Secret::new(KEY);
        for coding in [false, true] {
            s.llm.role_mut(coding).backends = vec!["openai".into()];
        }
    })
    .await;
    app.add_user("ana", "secret-password", Role::User).await;
    let token = app.login("ana", "secret-password").await;
    for _ in 0..3 {
        let resp = app
            .post_json(
                "/api/v1/conversation/chat",
                json!({"message": "hi"}),
                Some(&token),
            )
            .await;
        assert_eq!(resp.status(), 502);
    }
    app.get("/llm/health", None).await;
    app.shutdown().await;
    assert!(
        fake.chat_hits()[0]
            .authorization
            .as_deref()
            .unwrap()
            .contains(KEY)
    );
    let logs = capture.text();
    assert!(
        logs.contains("generation backend failed") || logs.contains("backend failed"),
        "logging was captured"
    );
    assert!(!logs.contains("LOGGEDKEY"), "the key reached the logs");
}
