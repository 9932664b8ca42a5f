//! Input from outside is parsed at the edge, for every route: text that a
//! database cannot store, paths and queries that are not UTF-8, a key given
//! twice, bodies over the limit, the wrong content type, and requests for a
//! host name this server does not answer to. Every refusal is the API's
//! `{"detail", "code"}` with its status, never plain text and never a 500.

use crate::common::{TestApp, databases, status_json, use_db};
use mongars_core::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every route of the server, with a path that matches it.
const ROUTES: &[(&str, &str)] = &[
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

async fn admin_and_user(app: &TestApp) -> (String, String) {
    app.add_user("root", "secret-password", Role::Admin).await;
    app.add_user("ana", "secret-password", Role::User).await;
    (
        app.login("root", "secret-password").await,
        app.login("ana", "secret-password").await,
    )
}

/// The response is the API's error shape with this status; its code.
async fn api_error(resp: reqwest::Response, status: StatusCode, what: &str) -> String {
    assert_eq!(resp.status(), status, "{what}");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        ct.starts_with("application/json"),
        "{what}: content type {ct:?}"
    );
    assert!(resp.headers().contains_key("x-request-id"), "{what}");
    let body: Value = resp.json().await.unwrap();
    assert!(body["detail"].is_string(), "{what}: {body}");
    body["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no code in {body}"))
        .to_string()
}

#[tokio::test]
async fn nul_and_invalid_utf8_never_reach_the_database() {
    for db in databases().await {
        let app = TestApp::spawn_with(|s| use_db(s, &db)).await;
        let (root, ana) = admin_and_user(&app).await;
        let json_cases: Vec<(&str, &str, Value, &str)> = vec![
            (
                "POST",
                "/api/v1/auth/login",
                json!({"username": "an\u{0}a", "password": "x"}),
                "",
            ),
            (
                "POST",
                "/api/v1/auth/bootstrap-admin",
                json!({"username": "a\u{0}", "password": "long-enough"}),
                "",
            ),
            (
                "POST",
                "/api/v1/user/register",
                json!({"username": "b\u{0}b", "password": "long-enough"}),
                "root",
            ),
            (
                "POST",
                "/api/v1/user/change-password",
                json!({"old_password": "secret-password\u{0}", "new_password": "x-long-enough"}),
                "ana",
            ),
            (
                "POST",
                "/api/v1/conversation/chat",
                json!({"message": "hi\u{0}"}),
                "ana",
            ),
            (
                "POST",
                "/api/v1/conversation/chat",
                json!({"message": "hi", "session_id": "s\u{0}"}),
                "ana",
            ),
            (
                "POST",
                "/api/v1/memories",
                json!({"text": "I like \u{0} tea"}),
                "ana",
            ),
            (
                "PATCH",
                "/api/v1/memories/m1",
                json!({"text": "\u{0}"}),
                "ana",
            ),
            (
                "POST",
                "/api/v1/review/rag-context",
                json!({"query": "q\u{0}"}),
                "ana",
            ),
            (
                "POST",
                "/api/v1/ui/suggestions",
                json!({"prompt": "p\u{0}"}),
                "ana",
            ),
            (
                "POST",
                "/v1/chat/completions",
                json!({"messages": [{"role": "user", "content": "x\u{0}"}]}),
                "ana",
            ),
            ("POST", "/v1/embeddings", json!({"input": "x\u{0}"}), "ana"),
            ("POST", "/llm/chat", json!({"message": "x\u{0}"}), "ana"),
            (
                "PATCH",
                "/api/v1/user/ana",
                json!({"disabled": true, "n\u{0}": 1}),
                "root",
            ),
        ];
        for (method, path, body, who) in json_cases {
            let mut req = app
                .client
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    app.url(path),
                )
                .json(&body);
            match who {
                "root" => req = req.bearer_auth(&root),
                "ana" => req = req.bearer_auth(&ana),
                _ => {}
            }
            let what = format!("{method} {path} {body} on {db:?}");
            let code = api_error(
                req.send().await.unwrap(),
                StatusCode::UNPROCESSABLE_ENTITY,
                &what,
            )
            .await;
            assert_eq!(code, "request.validation", "{what}");
        }
        // The same in a form, a path and a query string.
        let form = app
            .client
            .post(app.url("/token"))
            .form(&[("username", "ana\u{0}"), ("password", "secret-password")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            api_error(form, StatusCode::UNPROCESSABLE_ENTITY, "form").await,
            "request.validation"
        );
        for (method, path) in [
            ("GET", "/api/v1/conversation/turns/%00/context"),
            ("PATCH", "/api/v1/memories/a%00b"),
            ("DELETE", "/api/v1/memories/%00"),
            ("GET", "/api/v1/memories/%FF%FE"),
            ("GET", "/api/v1/conversation/history?user_id=%00"),
            ("GET", "/api/v1/memories?q=%FF"),
            ("DELETE", "/api/v1/user/data?username=a%00"),
            ("PATCH", "/api/v1/user/%C0%AF"),
        ] {
            let resp = app
                .client
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    app.url(path),
                )
                .bearer_auth(&root)
                .json(&json!({"text": "fine", "disabled": false}))
                .send()
                .await
                .unwrap();
            let what = format!("{method} {path} on {db:?}");
            assert_eq!(
                api_error(resp, StatusCode::BAD_REQUEST, &what).await,
                "request.malformed",
                "{what}"
            );
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
    for (path, token) in [
        ("/api/v1/conversation/history?limit=1&limit=2", &ana),
        ("/api/v1/memories?limit=1&limit=2", &ana),
        ("/api/v1/memories?q=a&q=b", &ana),
        ("/api/v1/user/data?username=ana&username=root", &root),
    ] {
        let method = if path.starts_with("/api/v1/user/data") {
            Method::DELETE
        } else {
            Method::GET
        };
        let resp = app
            .client
            .request(method, app.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            api_error(resp, StatusCode::BAD_REQUEST, path).await,
            "request.malformed"
        );
    }
    assert!(
        crate::conversation::stored_turns(&app, "ana")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_on_every_route() {
    let app = TestApp::spawn_with(|s| s.server.body_limit_bytes = 2048).await;
    let (root, _) = admin_and_user(&app).await;
    let big = format!("{{\"message\": \"{}\"}}", "x".repeat(4096));
    for (method, path) in ROUTES {
        let resp = app
            .client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(path),
            )
            .bearer_auth(&root)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        let what = format!("{method} {path}");
        assert_eq!(
            api_error(resp, StatusCode::PAYLOAD_TOO_LARGE, &what).await,
            "request.too_large"
        );
    }
    // Without a declared length the limit holds as the body is read.
    let chunks =
        futures_util::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])));
    let resp = app
        .client
        .post(app.url("/api/v1/user/register"))
        .bearer_auth(&root)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(
        api_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "chunked").await,
        "request.too_large"
    );
}

#[tokio::test]
async fn every_refusal_has_the_api_error_shape() {
    let app = TestApp::spawn().await;
    let (root, ana) = admin_and_user(&app).await;
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        // Provisioning takes JSON like every other route.
        (
            app.client
                .post(app.url("/api/v1/models/provision"))
                .bearer_auth(&root)
                .header("content-type", "application/json")
                .body("{not json"),
            StatusCode::BAD_REQUEST,
            "request.malformed",
        ),
        (
            app.client
                .post(app.url("/api/v1/models/provision"))
                .bearer_auth(&root)
                .header("content-type", "text/plain")
                .body("{\"force\": true}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request.unsupported_media_type",
        ),
        (
            app.client
                .post(app.url("/api/v1/models/provision"))
                .bearer_auth(&root)
                .json(&json!({"roles": ["nope"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.validation",
        ),
        (
            app.client
                .post(app.url("/api/v1/memories"))
                .bearer_auth(&ana)
                .header("content-type", "text/plain")
                .body("{\"text\": \"x\"}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request.unsupported_media_type",
        ),
        (
            app.client
                .post(app.url("/token"))
                .json(&json!({"username": "a", "password": "b"})),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request.unsupported_media_type",
        ),
        (
            app.client
                .post(app.url("/api/v1/auth/login"))
                .header("content-type", "application/json")
                .body("[1,"),
            StatusCode::BAD_REQUEST,
            "request.malformed",
        ),
        (
            app.client
                .post(app.url("/api/v1/auth/login"))
                .json(&json!({"username": 5})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.validation",
        ),
        // A handshake without the upgrade headers: axum's own rejection.
        (
            app.client.get(app.url("/ws/chat/?t=abc")),
            StatusCode::BAD_REQUEST,
            "request.malformed",
        ),
        (
            app.client
                .put(app.url("/api/v1/memories"))
                .bearer_auth(&ana),
            StatusCode::METHOD_NOT_ALLOWED,
            "request.method_not_allowed",
        ),
        (
            app.client.get(app.url("/nowhere")),
            StatusCode::NOT_FOUND,
            "request.not_found",
        ),
    ];
    for (req, status, code) in cases {
        let what = format!("{req:?}");
        assert_eq!(
            api_error(req.send().await.unwrap(), status, &what).await,
            code,
            "{what}"
        );
    }
    let empty = app
        .client
        .post(app.url("/api/v1/models/provision"))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(
        empty.status(),
        StatusCode::OK,
        "an empty body means every role"
    );
}

#[tokio::test]
async fn a_150_character_username_registers_and_logs_in() {
    let app = TestApp::spawn().await;
    let (root, _) = admin_and_user(&app).await;
    let name = "n".repeat(150);
    let (status, body) = status_json(
        app.post_json(
            "/api/v1/user/register",
            json!({"username": name, "password": "long-password"}),
            Some(&root),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.login(&name, "long-password").await;
    assert_eq!(
        app.post_token(&name, "long-password").await.status(),
        StatusCode::OK
    );
    let longer = "n".repeat(151);
    for resp in [
        app.post_json(
            "/api/v1/user/register",
            json!({"username": longer, "password": "long-password"}),
            Some(&root),
        )
        .await,
        app.post_json(
            "/api/v1/auth/login",
            json!({"username": longer, "password": "long-password"}),
            None,
        )
        .await,
        app.post_token(&longer, "long-password").await,
    ] {
        assert_eq!(
            api_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "151").await,
            "request.validation"
        );
    }
}

#[tokio::test]
async fn a_rebound_host_name_cannot_change_anything() {
    let app = TestApp::spawn().await;
    let evil = format!("attacker.example:{}", app.addr.port());
    let origin = format!("http://{evil}");
    // A fresh install: the attacker's page tries to create the first admin.
    let resp = app
        .client
        .post(app.url("/api/v1/auth/bootstrap-admin"))
        .header("host", &evil)
        .header("origin", &origin)
        .json(&json!({"username": "evil", "password": "evil-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        api_error(resp, StatusCode::MISDIRECTED_REQUEST, "bootstrap").await,
        "request.misdirected"
    );
    assert_eq!(app.app_auth.count_admins().await.unwrap(), 0);
    // Every route that changes state, and the socket handshake.
    for (method, path) in ROUTES
        .iter()
        .filter(|(m, p)| *m != "GET" || p.starts_with("/ws/"))
    {
        let resp = app
            .client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(path),
            )
            .header("host", &evil)
            .header("origin", &origin)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let what = format!("{method} {path}");
        assert_eq!(
            api_error(resp, StatusCode::MISDIRECTED_REQUEST, &what).await,
            "request.misdirected"
        );
    }
    // Reading is harmless (no credentials are sent cross-site) and works.
    let health = app
        .client
        .get(app.url("/healthz"))
        .header("host", &evil)
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // CORS never vouches for the rebound origin.
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/api/v1/auth/login"))
        .header("host", &evil)
        .header("origin", &origin)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        !preflight
            .headers()
            .contains_key("access-control-allow-origin"),
        "{:?}",
        preflight.headers()
    );

    // The real names still work: loopback, localhost, and listed names.
    for host in [
        format!("127.0.0.1:{}", app.addr.port()),
        format!("localhost:{}", app.addr.port()),
    ] {
        let resp = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("host", &host)
            .json(&json!({"username": "nobody", "password": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{host}");
    }
    let listed =
        TestApp::spawn_with(|s| s.server.allowed_hosts = vec!["chat.example.com".into()]).await;
    let resp = listed
        .client
        .post(listed.url("/api/v1/auth/bootstrap-admin"))
        .header("host", "chat.example.com")
        .header("origin", "https://chat.example.com")
        .json(&json!({"username": "admin", "password": "admin-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
