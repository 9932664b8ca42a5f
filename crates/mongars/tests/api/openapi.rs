//! `GET /openapi.json`: OpenAPI 3.1 generated from the code, describing
//! every route (a route added without documentation fails here), valid for
//! an independent validator, and kept as `docs/openapi.json` so that every
//! change to the contract shows in review.

use crate::common::TestApp;
use crate::edge::{ROUTES, admin_and_user, send};
use serde_json::Value;
use std::collections::BTreeSet;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
const ROUTER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../mongars-http/src/router.rs");

async fn document(app: &TestApp) -> (String, Value) {
    let resp = app.get("/openapi.json", None).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let doc = serde_json::from_str(&text).unwrap();
    (text, doc)
}

/// (method, path) of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "patch", "delete", "put"] {
            if item.get(method).is_some() {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn every_route_is_described_and_every_description_is_a_route() {
    let app = TestApp::spawn().await;
    let (_, doc) = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let ops = operations(&doc);
    for (method, path) in ROUTES {
        let path = path.replace("/user/ana", "/user/{username}");
        let path = path.replace("/turns/t1/", "/turns/{id}/");
        let path = path.replace("/memories/m1", "/memories/{id}");
        let path = path.replace("/review/s1", "/review/{id}");
        let path = path.replace("/datasets/d1", "/datasets/{id}");
        let path = path.replace("/adapters/a1", "/adapters/{id}");
        let path = path.replace("/runs/r1", "/runs/{id}");
        assert!(
            ops.contains(&(method.to_string(), path.clone())),
            "{method} {path} is not in the document"
        );
    }
    // The router adds routes only through `routes!` (which requires each
    // handler's documentation); the one exception is the document itself,
    // described in `ApiDoc`.
    let source = std::fs::read_to_string(ROUTER).unwrap();
    let plain: Vec<&str> = source
        .match_indices(".route(")
        .map(|(i, _)| source[i..].split(',').next().unwrap())
        .collect();
    assert_eq!(
        plain.len(),
        1,
        "routes added without documentation: {plain:?}"
    );
    assert!(plain[0].contains("/openapi.json"), "{plain:?}");

    // Every described operation is served (not the router's 404 or 405).
    let (root, _) = admin_and_user(&app).await;
    for (method, path) in &ops {
        let concrete = path.replace("{username}", "ana").replace("{id}", "x");
        let resp = send(&app, method, &concrete, Some(&root))
            .send()
            .await
            .unwrap();
        let code = resp
            .json::<Value>()
            .await
            .ok()
            .and_then(|b| b["code"].as_str().map(str::to_string));
        assert!(
            !matches!(
                code.as_deref(),
                Some("request.not_found" | "request.method_not_allowed")
            ),
            "{method} {path} is described but not served"
        );
    }
    // Authenticated operations say so, and errors have one shape.
    let chat = &doc["paths"]["/api/v1/conversation/chat"]["post"];
    assert_eq!(chat["security"][0]["bearer"], serde_json::json!([]));
    assert_eq!(
        chat["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    assert!(codes.as_array().unwrap().iter().any(|c| c == "llm.timeout"));
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let pydeps = std::env::var("MONGARS_TEST_PYDEPS").unwrap_or_default();
    if pydeps.is_empty() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but no validator"
        );
        mongars_store::testing::skipped("no openapi-spec-validator (MONGARS_TEST_PYDEPS not set)");
        return;
    }
    let app = TestApp::spawn().await;
    let (text, _) = document(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(&file)
        .env("PYTHONPATH", pydeps)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The committed document is the one the code generates. After a change to
/// the API, refresh it with `MONGARS_UPDATE_OPENAPI=1 cargo test -p mongars
/// --test api openapi` and review the difference.
#[tokio::test]
async fn the_committed_document_is_current() {
    let app = TestApp::spawn().await;
    let (text, _) = document(&app).await;
    let text = format!("{text}\n");
    if std::env::var("MONGARS_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(SNAPSHOT, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        committed == text,
        "docs/openapi.json differs from the generated document: run \
         MONGARS_UPDATE_OPENAPI=1 cargo test -p mongars --test api openapi, then review the change"
    );
}
