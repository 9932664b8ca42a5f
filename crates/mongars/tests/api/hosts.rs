//! DNS rebinding: a web page on another domain, pointed at the server's
//! address, cannot change anything, not even create the first admin of a
//! fresh install, and CORS never vouches for it. The server's real names
//! keep working.

use crate::common::TestApp;
use crate::edge::{ROUTES, api_error, send};
use reqwest::StatusCode as S;
use serde_json::json;

#[tokio::test]
async fn a_rebound_host_name_cannot_change_anything() {
    let app = TestApp::spawn().await;
    let evil = format!("attacker.example:{}", app.addr.port());
    let origin = format!("http://{evil}");
    let from_attacker = |method: &str, path: &str| {
        send(&app, method, path, None)
            .header("host", &evil)
            .header("origin", &origin)
    };
    // A fresh install: the attacker's page tries to create the first admin.
    let boot = json!({"username": "evil", "password": "evil-password"});
    let resp = from_attacker("POST", "/api/v1/auth/bootstrap-admin")
        .json(&boot)
        .send();
    let code = api_error(resp.await.unwrap(), S::MISDIRECTED_REQUEST, "bootstrap").await;
    assert_eq!(code, "request.misdirected");
    assert_eq!(app.app_auth.count_admins().await.unwrap(), 0);
    // Every route that changes state, and the socket handshake.
    let changing = ROUTES
        .iter()
        .filter(|(m, p)| *m != "GET" || p.starts_with("/ws/"));
    for (method, path) in changing {
        let resp = from_attacker(method, path)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let what = format!("{method} {path}");
        let code = api_error(resp, S::MISDIRECTED_REQUEST, &what).await;
        assert_eq!(code, "request.misdirected", "{what}");
    }
    // Reading is harmless (no credentials are sent cross-site) and works.
    assert_eq!(
        from_attacker("GET", "/healthz")
            .send()
            .await
            .unwrap()
            .status(),
        S::OK
    );
    // CORS never vouches for the rebound origin.
    let preflight = from_attacker("OPTIONS", "/api/v1/auth/login")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    let headers = preflight.headers();
    assert!(
        !headers.contains_key("access-control-allow-origin"),
        "{headers:?}"
    );

    // The real names still work: loopback and localhost.
    let port = app.addr.port();
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let nobody = json!({"username": "nobody", "password": "x"});
        let req = send(&app, "POST", "/api/v1/auth/login", None).header("host", &host);
        let resp = req.json(&nobody).send().await.unwrap();
        assert_eq!(resp.status(), S::UNAUTHORIZED, "{host}");
    }
}

#[tokio::test]
async fn listed_public_names_are_answered() {
    let app = TestApp::spawn_with(|s| {
        s.server.allowed_hosts = vec!["chat.example.com".into(), ".corp.example".into()];
    })
    .await;
    for (host, origin) in [
        ("chat.example.com", "https://chat.example.com"),
        ("eu.corp.example:8443", "https://eu.corp.example:8443"),
    ] {
        let resp = send(&app, "POST", "/api/v1/auth/login", None)
            .header("host", host)
            .header("origin", origin)
            .json(&json!({"username": "nobody", "password": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), S::UNAUTHORIZED, "{host}");
        let allowed = resp.headers().get("access-control-allow-origin");
        assert_eq!(
            allowed.and_then(|v| v.to_str().ok()),
            Some(origin),
            "{host}"
        );
    }
    let boot = json!({"username": "admin", "password": "admin-password"});
    let req = send(&app, "POST", "/api/v1/auth/bootstrap-admin", None);
    let resp = req
        .header("host", "chat.example.com")
        .json(&boot)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), S::OK);
}
