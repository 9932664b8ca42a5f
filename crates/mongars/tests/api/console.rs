//! The operator console in a real browser (headless Chromium): sign in,
//! chat with a streamed reply, see it in history and in a second tab, keep
//! another user's tab unaware of it, sign out. Screenshots and the
//! time-to-interactive go to `target/browser-artifacts/`.

use crate::common::TestApp;
use crate::common::webdriver::{self, Driver};
use mongars_core::domain::Role;
use std::path::PathBuf;

const REPLY: &str = "Hello from the scripted backend. How can I help?";

pub fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_chat_history_two_tabs_and_sign_out_in_chromium() {
    if !webdriver::installed() {
        mongars_store::testing::skipped("chromium or chromedriver missing");
        return;
    }
    let app = TestApp::spawn().await;
    app.add_user("ana", "secret-password", Role::User).await;
    app.add_user("bob", "secret-password", Role::User).await;
    let driver = Driver::start().await;
    let ana = driver.browser().await;

    ana.goto(&app.base).await;
    ana.wait(
        "window.monGARS && window.monGARS.ready",
        "the console script",
    )
    .await;
    let tti = ana
        .run(
            "const n = performance.getEntriesByType('navigation')[0];\
             return {interactive: performance.getEntriesByName('interactive')[0].startTime,\
                     dom: n.domInteractive, load: n.loadEventEnd};",
        )
        .await;
    let line = format!(
        "console time-to-interactive: {:.1} ms (DOM interactive {:.1} ms)\n",
        tti["interactive"].as_f64().unwrap(),
        tti["dom"].as_f64().unwrap()
    );
    print!("{line}");
    std::fs::write(artifacts().join("time-to-interactive.txt"), &line).unwrap();

    // Sign in and chat; the reply streams into the page.
    ana.type_into("#username", "ana").await;
    ana.type_into("#password", "secret-password").await;
    ana.click("#login-form button[type=submit]").await;
    ana.wait(
        "document.getElementById('link').textContent === 'live'",
        "the socket",
    )
    .await;
    ana.type_into("#message", "Hello from the browser").await;
    ana.click("#send").await;
    let done = format!(
        "[...document.querySelectorAll('#messages li.assistant')]\
         .some(li => !li.classList.contains('streaming') && li.textContent === {REPLY:?})"
    );
    ana.wait(&done, "the streamed reply").await;
    assert!(
        ana.text("#messages li.user")
            .await
            .contains("Hello from the browser")
    );
    std::fs::write(artifacts().join("console-chat.png"), ana.screenshot().await).unwrap();

    // History lists the turn.
    ana.click("nav [data-panel=history]").await;
    ana.wait(
        "document.getElementById('history').textContent.includes('Hello from the browser')",
        "history",
    )
    .await;
    ana.click("nav [data-panel=chat]").await;

    // A second tab of the same browser is signed in and hears the first.
    let first = ana.handle().await;
    ana.new_tab().await;
    let second = ana.handle().await;
    ana.goto(&app.base).await;
    ana.wait(
        "document.getElementById('link').textContent === 'live'",
        "the second tab's socket",
    )
    .await;

    // Bob, in his own browser, is connected too.
    let bob = driver.browser().await;
    bob.goto(&app.base).await;
    bob.wait("window.monGARS && window.monGARS.ready", "bob's console")
        .await;
    bob.type_into("#username", "bob").await;
    bob.type_into("#password", "secret-password").await;
    bob.click("#login-form button[type=submit]").await;
    bob.wait(
        "document.getElementById('link').textContent === 'live'",
        "bob's socket",
    )
    .await;

    ana.switch(&first).await;
    ana.type_into("#message", "Sent from tab one").await;
    ana.click("#send").await;
    ana.switch(&second).await;
    ana.wait(
        "document.getElementById('messages').textContent.includes('Sent from tab one')",
        "the message in the second tab",
    )
    .await;
    std::fs::write(
        artifacts().join("console-second-tab.png"),
        ana.screenshot().await,
    )
    .unwrap();
    let bobs = bob
        .run("return document.getElementById('messages').textContent")
        .await;
    assert!(
        !bobs.as_str().unwrap().contains("Sent from tab one"),
        "{bobs}"
    );
    assert!(
        !bobs.as_str().unwrap().contains("Hello from the browser"),
        "{bobs}"
    );

    // An API key made in the console works at once, and is revoked there.
    ana.switch(&first).await;
    ana.click("nav [data-panel=keys]").await;
    ana.type_into("#key-name", "script").await;
    ana.click("#key-add button[type=submit]").await;
    ana.wait(
        "document.getElementById('key-secret').textContent.startsWith('mg_') \
         && document.getElementById('keys').textContent.includes('script')",
        "the new key",
    )
    .await;
    let key = ana.text("#key-secret").await;
    let models = |key: String| {
        let req = app.client.get(app.url("/v1/models")).bearer_auth(key);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(models(key.clone()).await, 200);
    std::fs::write(artifacts().join("console-keys.png"), ana.screenshot().await).unwrap();
    ana.run("window.confirm = () => true; return true").await;
    ana.click("#keys button").await;
    ana.wait(
        "document.getElementById('keys').children.length === 0",
        "the key revoked",
    )
    .await;
    assert_eq!(models(key).await, 401);
    ana.click("nav [data-panel=chat]").await;

    // Sign out: the form is back and the token is gone.
    ana.click("#logout").await;
    ana.wait(
        "!document.getElementById('login-view').hidden",
        "the sign-in form",
    )
    .await;
    let stored = ana
        .run("return localStorage.getItem('mongars.session')")
        .await;
    assert!(stored.is_null());
    ana.quit().await;
    bob.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learning_and_training_panels_in_chromium() {
    if !webdriver::installed() {
        mongars_store::testing::skipped("chromium or chromedriver missing");
        return;
    }
    let app = TestApp::spawn().await;
    app.add_user("ana", "secret-password", Role::User).await;
    app.add_user("root", "secret-password", Role::Admin).await;
    let driver = Driver::start().await;
    let page = driver.browser().await;
    let sign_in = |name: &'static str| {
        let page = &page;
        let base = app.base.clone();
        async move {
            page.goto(&base).await;
            page.wait(
                "window.monGARS && window.monGARS.ready",
                "the console script",
            )
            .await;
            page.type_into("#username", name).await;
            page.type_into("#password", "secret-password").await;
            page.click("#login-form button[type=submit]").await;
            page.wait(
                "document.getElementById('link').textContent === 'live'",
                "the socket",
            )
            .await;
        }
    };

    // A user turns consent on, rates a reply and adds an example with an
    // e-mail address in it.
    sign_in("ana").await;
    page.type_into("#message", "Hello").await;
    page.click("#send").await;
    page.wait(
        "document.querySelector('#messages li.assistant .rate button[data-rating=up]') !== null",
        "rating buttons under the reply",
    )
    .await;
    page.click("nav [data-panel=learning]").await;
    page.wait(
        "document.getElementById('consent').checked === false",
        "consent off",
    )
    .await;
    page.click("#consent").await;
    page.wait(
        "document.getElementById('learning-status').textContent.includes('on')",
        "consent on",
    )
    .await;
    page.type_into("#example-prompt", "How do I reach you?")
        .await;
    page.type_into("#example-response", "Write to ana@example.org. over.")
        .await;
    page.click("#example-add button[type=submit]").await;
    page.wait(
        "document.getElementById('learning-status').textContent.includes('waits for review')",
        "the example held for review",
    )
    .await;
    page.click("nav [data-panel=chat]").await;
    page.click("#messages li.assistant .rate button[data-rating=up]")
        .await;
    page.wait(
        "document.querySelector('#messages li.assistant .rate button[data-rating=up]').getAttribute('aria-pressed') === 'true'",
        "the rating recorded",
    )
    .await;
    page.click("#logout").await;

    // The admin approves the held sample, builds a version and sees it.
    sign_in("root").await;
    page.click("nav [data-panel=training]").await;
    page.wait(
        "document.getElementById('review').textContent.includes('[EMAIL]')",
        "the held sample, with its placeholder",
    )
    .await;
    page.click("#review button").await;
    page.wait(
        "document.getElementById('review-counts').textContent.startsWith('2 ready, 0 held')",
        "the sample approved",
    )
    .await;
    page.click("#dataset-build").await;
    page.wait(
        "document.getElementById('datasets').textContent.includes('v1')",
        "the new dataset version",
    )
    .await;
    assert!(page.text("#adapter-serving").await.contains("bare model"));
    std::fs::write(
        artifacts().join("console-training.png"),
        page.screenshot().await,
    )
    .unwrap();
    page.quit().await;
    drop(driver);
}
