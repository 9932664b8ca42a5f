//! Input from outside is parsed at the edge, for every route: text that a
//! database cannot store, paths and queries that are not UTF-8, a key given
//! twice, bodies over the limit and the wrong content type. Every refusal
//! is the API's `{"detail", "code"}` with its status, never plain text and
//! never a 500.

use crate::common::{TestApp, databases, status_json, use_db};
use mongars_core::domain::Role;
use reqwest::StatusCode as S;
use serde_json::{Value, json};

/// Every route of the server, with a path that matches it.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/healthz"),
    ("GET", "/ready"),
    ("POST", "/token"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/bootstrap-admin"),
    ("POST", "/api/v1/auth/ws/ticket"),
    ("GET", "/ws/chat/"),
    ("POST", "/api/v1/user/register"),
    ("GET", "/api/v1/user/list"),
    ("POST", "/api/v1/user/change-password"),
    ("PATCH", "/api/v1/user/ana"),
    ("POST", "/api/v1/conversation/chat"),
    ("POST", "/api/v1/conversation/chat/stream"),
    ("GET", "/api/v1/conversation/history"),
    ("GET", "/api/v1/conversation/turns/t1/context"),
    ("GET", "/api/v1/memories"),
    ("POST", "/api/v1/memories"),
    ("PATCH", "/api/v1/memories/m1"),
    ("DELETE", "/api/v1/memories/m1"),
    ("GET", "/api/v1/profile"),
    ("PATCH", "/api/v1/profile"),
    ("POST", "/api/v1/conversation/turns/t1/feedback"),
    ("POST", "/api/v1/training/examples"),
    ("GET", "/api/v1/admin/training/review"),
    ("POST", "/api/v1/admin/training/review/s1"),
    ("GET", "/api/v1/admin/training/datasets"),
    ("POST", "/api/v1/admin/training/datasets"),
    ("GET", "/api/v1/admin/training/datasets/d1"),
    ("GET", "/api/v1/admin/training/datasets/d1/export"),
    ("GET", "/api/v1/admin/training/runs"),
    ("POST", "/api/v1/admin/training/runs"),
    ("GET", "/api/v1/admin/training/runs/r1"),
    ("POST", "/api/v1/admin/training/runs/r1/cancel"),
    ("GET", "/api/v1/admin/adapters"),
    ("GET", "/api/v1/admin/adapters/a1"),
    ("POST", "/api/v1/admin/adapters/a1/approve"),
    ("POST", "/api/v1/admin/adapters/a1/reject"),
    ("POST", "/api/v1/admin/adapters/a1/activate"),
    ("POST", "/api/v1/admin/adapters/rollback"),
    ("POST", "/api/v1/peer/register"),
    ("POST", "/api/v1/peer/unregister"),
    ("GET", "/api/v1/peer/list"),
    ("GET", "/api/v1/peer/load"),
    ("GET", "/api/v1/peer/telemetry"),
    ("POST", "/api/v1/peer/telemetry"),
    ("DELETE", "/api/v1/user/data"),
    ("POST", "/api/v1/review/rag-context"),
    ("POST", "/api/v1/ui/suggestions"),
    ("POST", "/llm/chat"),
    ("GET", "/llm/health"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/models"),
    ("POST", "/v1/embeddings"),
    ("GET", "/api/v1/models"),
    ("POST", "/api/v1/models/provision"),
    ("GET", "/metrics"),
];

pub async fn admin_and_user(app: &TestApp) -> (String, String) {
    app.add_user("root", "secret-password", Role::Admin).await;
    app.add_user("ana", "secret-password", Role::User).await;
    (
        app.login("root", "secret-password").await,
        app.login("ana", "secret-password").await,
    )
}

/// A request of `method` to `path`, with `token` when given.
pub fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let req = app.client.request(method, app.url(path));
    match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

/// The response is the API's error shape with this status; its code.
pub async fn api_error(resp: reqwest::Response, status: S, what: &str) -> String {
    assert_eq!(resp.status(), status, "{what}");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    let ct = ct.unwrap_or("").to_string();
    assert!(
        ct.starts_with("application/json"),
        "{what}: content type {ct:?}"
    );
    assert!(resp.headers().contains_key("x-request-id"), "{what}");
    let body: Value = resp.json().await.unwrap();
    assert!(body["detail"].is_string(), "{what}: {body}");
    let code = body["code"].as_str();
    code.unwrap_or_else(|| panic!("{what}: no code in {body}"))
        .to_string()
}

/// `who method path body`, each body with a NUL somewhere in it.
const NUL_IN_JSON: &[&str] = &[
    r#"- POST /api/v1/auth/login {"username": "an\u0000a", "password": "x"}"#,
    r#"- POST /api/v1/auth/bootstrap-admin {"username": "a\u0000", "password": "long-enough"}"#,
    r#"root POST /api/v1/user/register {"username": "b\u0000b", "password": "long-enough"}"#,
    r#"ana POST /api/v1/user/change-password {"old_password": "x\u0000", "new_password": "long-enough"}"#,
    r#"ana POST /api/v1/conversation/chat {"message": "hi\u0000"}"#,
    r#"ana POST /api/v1/conversation/chat {"message": "hi", "session_id": "s\u0000"}"#,
    r#"ana POST /api/v1/memories {"text": "I like \u0000 tea"}"#,
    r#"ana PATCH /api/v1/memories/m1 {"text": "\u0000"}"#,
    r#"ana POST /api/v1/review/rag-context {"query": "q\u0000"}"#,
    r#"ana POST /api/v1/ui/suggestions {"prompt": "p\u0000"}"#,
    r#"ana POST /v1/chat/completions {"messages": [{"role": "user", "content": "x\u0000"}]}"#,
    r#"ana POST /v1/embeddings {"input": "x\u0000"}"#,
    r#"ana POST /llm/chat {"message": "x\u0000"}"#,
    r#"root PATCH /api/v1/user/ana {"disabled": true, "n\u0000": 1}"#,
];

/// Paths and queries that are not UTF-8 or hold NUL.
const BAD_URIS: &[(&str, &str)] = &[
    ("GET", "/api/v1/conversation/turns/%00/context"),
    ("PATCH", "/api/v1/memories/a%00b"),
    ("DELETE", "/api/v1/memories/%00"),
    ("GET", "/api/v1/memories/%FF%FE"),
    ("GET", "/api/v1/conversation/history?user_id=%00"),
    ("GET", "/api/v1/memories?q=%FF"),
    ("DELETE", "/api/v1/user/data?username=a%00"),
    ("PATCH", "/api/v1/user/%C0%AF"),
];

#[tokio::test]
async fn nul_and_invalid_utf8_never_reach_the_database() {
    for db in databases().await {
        let app = TestApp::spawn_with(|s| use_db(s, &db)).await;
        let (root, ana) = admin_and_user(&app).await;
        for case in NUL_IN_JSON {
            let [who, method, path, body] = case.splitn(4, ' ').collect::<Vec<_>>()[..] else {
                unreachable!()
            };
            let token = [("root", &root), ("ana", &ana)]
                .iter()
                .find(|(n, _)| *n == who)
                .map(|(_, t)| t.as_str());
            let req = send(&app, method, path, token)
                .header("content-type", "application/json")
                .body(body.to_string());
            let what = format!("{case} on {db:?}");
            let code = api_error(req.send().await.unwrap(), S::UNPROCESSABLE_ENTITY, &what).await;
            assert_eq!(code, "request.validation", "{what}");
        }
        let form = app.client.post(app.url("/token"));
        let form = form.form(&[("username", "ana\u{0}"), ("password", "secret-password")]);
        let code = api_error(form.send().await.unwrap(), S::UNPROCESSABLE_ENTITY, "form").await;
        assert_eq!(code, "request.validation");
        for (method, path) in BAD_URIS {
            let req = send(&app, method, path, Some(&root));
            let resp = req.json(&json!({"text": "fine", "disabled": false})).send();
            let what = format!("{method} {path} on {db:?}");
            let code = api_error(resp.await.unwrap(), S::BAD_REQUEST, &what).await;
            assert_eq!(code, "request.malformed", "{what}");
        }
        // Nothing was stored or changed, and the server is well.
        assert_eq!(app.get("/ready", None).await.status(), 200);
        let (_, users) = status_json(app.get("/api/v1/user/list", Some(&root)).await).await;
        assert_eq!(users["users"], json!(["ana", "root"]));
    }
}

#[tokio::test]
async fn a_query_key_given_twice_is_malformed() {
    let app = TestApp::spawn().await;
    let (root, ana) = admin_and_user(&app).await;
    for (method, path, token) in [
        ("GET", "/api/v1/conversation/history?limit=1&limit=2", &ana),
        ("GET", "/api/v1/memories?limit=1&limit=2", &ana),
        ("GET", "/api/v1/memories?q=a&q=b", &ana),
        (
            "DELETE",
            "/api/v1/user/data?username=ana&username=root",
            &root,
        ),
    ] {
        let resp = send(&app, method, path, Some(token)).send().await.unwrap();
        assert_eq!(
            api_error(resp, S::BAD_REQUEST, path).await,
            "request.malformed"
        );
    }
    let turns = crate::conversation::stored_turns(&app, "ana").await;
    assert!(turns.is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_on_every_route() {
    let app = TestApp::spawn_with(|s| s.server.body_limit_bytes = 2048).await;
    let (root, _) = admin_and_user(&app).await;
    let big = format!("{{\"message\": \"{}\"}}", "x".repeat(4096));
    for (method, path) in ROUTES {
        let req = send(&app, method, path, Some(&root));
        let req = req
            .header("content-type", "application/json")
            .body(big.clone());
        let what = format!("{method} {path}");
        let code = api_error(req.send().await.unwrap(), S::PAYLOAD_TOO_LARGE, &what).await;
        assert_eq!(code, "request.too_large", "{what}");
    }
    // Without a declared length the limit holds as the body is read.
    let chunks = (0..8).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let req = send(&app, "POST", "/api/v1/user/register", Some(&root));
    let resp = req
        .header("content-type", "application/json")
        .body(body)
        .send();
    let code = api_error(resp.await.unwrap(), S::PAYLOAD_TOO_LARGE, "chunked").await;
    assert_eq!(code, "request.too_large");
}

#[tokio::test]
async fn every_refusal_has_the_api_error_shape() {
    let app = TestApp::spawn().await;
    let (root, ana) = admin_and_user(&app).await;
    let (admin, user) = (Some(root.as_str()), Some(ana.as_str()));
    let json = "application/json";
    // (who, method, path, content type, body, status, code)
    let cases = [
        // Provisioning takes JSON like every other route.
        (
            admin,
            "POST",
            "/api/v1/models/provision",
            json,
            "{not json",
            S::BAD_REQUEST,
            "request.malformed",
        ),
        (
            admin,
            "POST",
            "/api/v1/models/provision",
            "text/plain",
            "{}",
            S::UNSUPPORTED_MEDIA_TYPE,
            "request.unsupported_media_type",
        ),
        (
            admin,
            "POST",
            "/api/v1/models/provision",
            json,
            r#"{"roles": ["nope"]}"#,
            S::UNPROCESSABLE_ENTITY,
            "request.validation",
        ),
        (
            user,
            "POST",
            "/api/v1/memories",
            "text/plain",
            r#"{"text": "x"}"#,
            S::UNSUPPORTED_MEDIA_TYPE,
            "request.unsupported_media_type",
        ),
        (
            None,
            "POST",
            "/token",
            json,
            r#"{"username": "a"}"#,
            S::UNSUPPORTED_MEDIA_TYPE,
            "request.unsupported_media_type",
        ),
        (
            None,
            "POST",
            "/token",
            "application/x-www-form-urlencoded",
            "password=x",
            S::UNPROCESSABLE_ENTITY,
            "request.validation",
        ),
        (
            None,
            "POST",
            "/api/v1/auth/login",
            json,
            "[1,",
            S::BAD_REQUEST,
            "request.malformed",
        ),
        (
            None,
            "POST",
            "/api/v1/auth/login",
            json,
            r#"{"username": 5}"#,
            S::UNPROCESSABLE_ENTITY,
            "request.validation",
        ),
        // A handshake without the upgrade headers: axum's own rejection.
        (
            None,
            "GET",
            "/ws/chat/?t=abc",
            json,
            "",
            S::BAD_REQUEST,
            "request.malformed",
        ),
        (
            user,
            "PUT",
            "/api/v1/memories",
            json,
            "",
            S::METHOD_NOT_ALLOWED,
            "request.method_not_allowed",
        ),
        (
            None,
            "GET",
            "/nowhere",
            json,
            "",
            S::NOT_FOUND,
            "request.not_found",
        ),
    ];
    for (who, method, path, ct, body, status, code) in cases {
        let req = send(&app, method, path, who).header("content-type", ct);
        let what = format!("{method} {path} {ct} {body}");
        let got = api_error(req.body(body).send().await.unwrap(), status, &what).await;
        assert_eq!(got, code, "{what}");
    }
    let empty = send(&app, "POST", "/api/v1/models/provision", admin)
        .send()
        .await;
    assert_eq!(
        empty.unwrap().status(),
        S::OK,
        "an empty body means every role"
    );
}

#[tokio::test]
async fn a_150_character_username_registers_and_logs_in() {
    let app = TestApp::spawn().await;
    let (root, _) = admin_and_user(&app).await;
    let name = "n".repeat(150);
    let account = json!({"username": name, "password": "long-password"});
    let resp = app
        .post_json("/api/v1/user/register", account, Some(&root))
        .await;
    assert_eq!(resp.status(), S::OK);
    app.login(&name, "long-password").await;
    assert_eq!(app.post_token(&name, "long-password").await.status(), S::OK);
    let longer = json!({"username": "n".repeat(151), "password": "long-password"});
    for resp in [
        app.post_json("/api/v1/user/register", longer.clone(), Some(&root))
            .await,
        app.post_json("/api/v1/auth/login", longer, None).await,
        app.post_token(&"n".repeat(151), "long-password").await,
    ] {
        let code = api_error(resp, S::UNPROCESSABLE_ENTITY, "151 characters").await;
        assert_eq!(code, "request.validation");
    }
}
