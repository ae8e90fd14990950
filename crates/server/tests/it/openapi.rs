//! The OpenAPI document: served at `GET /v2/openapi.json` without credentials, published as
//! `docs/openapi.json` (`UPDATE_DOCS=1 cargo nextest run -p tessera-server` rewrites it), and
//! valid against what the server really answers for a few shapes a client depends on.

use std::path::Path;

use axum::http::{Method, StatusCode};
use tessera_server::router;

use super::{call, fixture};

#[tokio::test]
async fn the_document_is_served_without_credentials() {
    let f = fixture().await;
    let (s, headers, doc) = call(Method::GET, "/v2/openapi.json").send(&router(f.app.clone())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(&doc, tessera_server::openapi::document());
    assert!(doc["paths"]["/v2/users/{user_id}"]["get"]["responses"]["404"].is_object());
}

#[test]
fn docs_openapi_json_is_the_generated_document() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let expected = serde_json::to_string_pretty(tessera_server::openapi::document()).unwrap() + "\n";
    let found = std::fs::read_to_string(&path).unwrap_or_default();
    if found != expected && std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    assert!(found == expected, "docs/openapi.json disagrees with the code; UPDATE_DOCS=1 rewrites it");
}

#[test]
fn every_path_parameter_and_component_reference_resolves() {
    let doc = tessera_server::openapi::document();
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for (i, _) in text.match_indices("\"$ref\":\"#/components/schemas/") {
        let rest = &text[i + "\"$ref\":\"#/components/schemas/".len()..];
        let name = &rest[..rest.find('"').unwrap()];
        assert!(schemas.contains_key(name), "dangling reference to {name}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            let in_path = path.matches('{').count();
            assert_eq!(declared.len(), in_path, "{method} {path}");
            assert!(op["responses"].as_object().unwrap().keys().any(|k| k.starts_with('2')), "{method} {path}");
        }
    }
}

/// schemathesis found that forward-auth answered 200 to any method token at all (`QUERY`):
/// its route takes the standard methods only, like every other route.
#[tokio::test]
async fn forward_auth_refuses_a_method_outside_the_standard_ones() {
    let f = fixture().await;
    let r = router(f.app.clone());
    let query = Method::from_bytes(b"QUERY").unwrap();
    let (s, _, body) = call(query, "/v2/auth/forward").from("127.0.0.1:5000").bearer(super::ADMIN_KEY).send(&r).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    let (s, _, _) =
        call(Method::TRACE, "/v2/auth/forward").from("127.0.0.1:5000").bearer(super::ADMIN_KEY).send(&r).await;
    assert_eq!(s, StatusCode::OK, "the standard methods still work");
}

/// Every request example in the document is one the server accepts: sent in order (so the
/// names and ids they refer to exist), each is created or, where it names an object that
/// only exists in a real deployment, refused for that reason and never as a malformed body.
#[tokio::test]
async fn every_request_example_is_accepted_by_the_server() {
    let f = fixture().await;
    let app = router(f.app.clone());
    let doc = tessera_server::openapi::document();
    let examples = tessera_server::openapi::request_examples();
    assert!(examples.len() >= 10);
    let mut user_id = String::new();
    let mut service_id = String::new();
    for (method, path, example) in examples {
        assert_eq!(
            doc["paths"][path][method]["requestBody"]["content"]["application/json"]["example"], example,
            "the example of {method} {path} is in the document"
        );
        let target = path.replace("{user_id}", &user_id);
        let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
        let body = example.to_string().replace(tessera_server::openapi::EXAMPLE_SERVICE_ID, &service_id);
        let mut c = call(m, &target).json(serde_json::from_str(&body).unwrap());
        if path != "/v2/sessions" {
            c = c.bearer(super::ADMIN_KEY);
        }
        let (s, _, body) = c.send(&app).await;
        let refers_to_absent = path == "/v2/role-trusts" || path == "/v2/assumed-roles/assume";
        if refers_to_absent {
            assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        } else {
            assert!(s.is_success(), "{method} {path} answered {s}: {body}");
        }
        if path == "/v2/users" {
            user_id = body["user"]["id"].as_str().unwrap().to_owned();
        }
        if path == "/v2/gateway/services" {
            service_id = body["service"]["id"].as_str().or(body["id"].as_str()).unwrap_or_default().to_owned();
        }
    }
}
