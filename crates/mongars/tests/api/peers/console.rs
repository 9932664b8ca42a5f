//! The console's Peers tab in a real browser (headless Chromium): an admin
//! registers a peer with the form, sees it come up with its load, and
//! removes it.

use super::{EXCHANGE, Node};
use crate::common::webdriver::{self, Driver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_registers_watches_and_removes_a_peer_in_chromium() {
    if !webdriver::installed() {
        mongars_store::testing::skipped("chromium or chromedriver missing");
        return;
    }
    let a = Node::start("a", |_| {}).await;
    let b = Node::start("b", |_| {}).await;
    b.register(&a).await;
    let driver = Driver::start().await;
    let page = driver.browser().await;
    page.goto(&a.app.base).await;
    page.wait(
        "window.monGARS && window.monGARS.ready",
        "the console script",
    )
    .await;
    page.type_into("#username", "admin").await;
    page.type_into("#password", "admin-password-1").await;
    page.click("#login-form button[type=submit]").await;
    page.wait(
        "document.getElementById('link').textContent === 'live'",
        "the socket",
    )
    .await;
    page.click("nav [data-panel=peers]").await;
    page.wait(
        &format!(
            "document.getElementById('peer-self').textContent.includes('{}')",
            a.node_id()
        ),
        "this node's id",
    )
    .await;

    // A wrong fingerprint is refused with the reason.
    page.type_into("#peer-url", &b.peer_url()).await;
    page.type_into("#peer-fingerprint", "abc").await;
    page.click("#peer-add button[type=submit]").await;
    page.wait(
        "document.getElementById('peers-error').textContent.includes('fingerprint')",
        "the refusal",
    )
    .await;
    page.run("document.getElementById('peer-fingerprint').value = ''; return 1;")
        .await;
    page.type_into("#peer-fingerprint", &b.node_id()).await;
    page.click("#peer-add button[type=submit]").await;
    // Up with its load once the first report arrives (the tab reloads on
    // each visit).
    let row = format!(
        "document.querySelector('#peers tr[data-url=\"{}\"]')",
        b.peer_url()
    );
    let shown = &page;
    crate::common::eventually(EXCHANGE, "the peer up with its load", || {
        let check = format!(
            "const r = {row}; return r !== null && r.children[2].textContent === 'up' \
             && r.children[4].textContent.includes('/1)');"
        );
        async move {
            shown.click("nav [data-panel=peers]").await;
            shown.run(&check).await == serde_json::Value::Bool(true)
        }
    })
    .await;
    std::fs::write(
        crate::console::artifacts().join("console-peers.png"),
        page.screenshot().await,
    )
    .unwrap();

    page.run("window.confirm = () => true; return 1;").await;
    page.wait(
        &format!("{row} !== null && {row}.querySelector('button') !== null"),
        "the remove button",
    )
    .await;
    page.run(&format!("{row}.querySelector('button').click(); return 1;"))
        .await;
    page.wait(
        "document.querySelectorAll('#peers tr').length === 0",
        "the peer removed",
    )
    .await;
    assert!(a.peers().await["peers"].as_array().unwrap().is_empty());
    page.quit().await;
    drop(driver);
}
