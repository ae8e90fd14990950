//! A write that collides with concurrent ones on every attempt the store makes (PostgreSQL's
//! serialization failure, made here by a trigger, as a deadlock would be) answers 503 with the
//! code `contended` and `Retry-After: 1`, on the JSON API and on STS, with nothing saved; the
//! Rust client sends it again after `Retry-After` and succeeds once the collisions stop.

use std::net::SocketAddr;

use reqwest::StatusCode;
use tessera_api_types as wire;
use tessera_client::ListParams;
use tessera_startup::Listen;
use tessera_testkit::{ADMIN_KEY, Backend, TestApp, spawn_app_with};

use crate::sts::{setup, sts_url};

async fn node(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| s.metrics.listen = Listen(Some(SocketAddr::from(([127, 0, 0, 1], 0))))).await
}

/// Makes every insert into `table` fail as a serialization failure; `times` limits it to the
/// first so many (counted by a sequence a rollback does not undo).
async fn collide(db: &tokio_postgres::Client, table: &str, times: i64) {
    db.batch_execute(&format!(
        "CREATE SEQUENCE IF NOT EXISTS collisions; \
         CREATE OR REPLACE FUNCTION collide() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF nextval('collisions') <= {times} THEN \
             RAISE EXCEPTION 'made to collide' USING ERRCODE = '40001'; \
           END IF; RETURN NULL; END $$; \
         DROP TRIGGER IF EXISTS collide ON {table}; \
         CREATE TRIGGER collide BEFORE INSERT ON {table} FOR EACH STATEMENT EXECUTE FUNCTION collide()"
    ))
    .await
    .unwrap();
}

async fn scrape(t: &TestApp) -> String {
    let addr = t.metrics_addr().expect("the metrics listener is on");
    reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap()
}

async fn group_names(t: &TestApp) -> Vec<String> {
    let groups = t.admin.list_groups(&ListParams::default()).await.unwrap().groups;
    groups.into_iter().map(|g| g.display_name).collect()
}

async fn a_contended_write_answers_503_contended_and_the_client_retries_it(backend: Backend) {
    let t = node(backend).await;
    let db = t.postgres_database().await.expect("a PostgreSQL node");
    collide(&db, "groups", i64::MAX).await;

    let res = reqwest::Client::new()
        .post(format!("{}/v2/groups", t.url))
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({"display_name": "ops"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "contended", "{body}");
    assert_eq!(body["error"]["message"], tessera_app::CONTENDED, "{body}");
    assert!(group_names(&t).await.is_empty(), "nothing of the contended write was saved");
    let metrics = scrape(&t).await;
    assert!(metrics.contains("tessera_store_write_retries_total{result=\"retried\"} 2"), "{metrics}");
    assert!(metrics.contains("tessera_store_write_retries_total{result=\"gave_up\"} 1"), "{metrics}");
    assert!(metrics.contains(r#"kind="contended"} 3"#), "each attempt's collision is counted: {metrics}");

    // Without its retries the client sees the same answer.
    let once = t.admin.with_contended_retries(0).create_group(&group("ops")).await.unwrap_err();
    assert!(once.is_contended(), "{once:?}");

    // The next 4 attempts collide: the server's 3 for the client's first request, then 1 of
    // the 3 for the request it sends again after Retry-After, which is saved.
    db.batch_execute("SELECT setval('collisions', 1, false)").await.unwrap();
    collide(&db, "groups", 4).await;
    let started = std::time::Instant::now();
    let created = t.admin.create_group(&group("ops")).await.expect("sent again and saved");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "waited for Retry-After");
    assert_eq!(created.display_name, "ops");
    assert_eq!(group_names(&t).await, ["ops"]);
    let attempts: i64 = db.query_one("SELECT last_value FROM collisions", &[]).await.unwrap().get(0);
    assert_eq!(attempts, 5);
}

fn group(name: &str) -> wire::GroupInput {
    wire::GroupInput { display_name: name.into(), description: String::new() }
}

/// STS answers a contended assume in its own shape: `ServiceUnavailable`, a `Receiver` fault.
async fn a_contended_assume_is_sts_service_unavailable(backend: Backend) {
    let t = node(backend).await;
    let s = setup(&t).await;
    let db = t.postgres_database().await.expect("a PostgreSQL node");
    collide(&db, "sessions", i64::MAX).await;
    let form = [
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", s.role_arn.as_str()),
        ("RoleSessionName", "deploy-42"),
    ];
    let res = reqwest::Client::new().post(sts_url(&t)).bearer_auth(&s.key).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    assert_eq!(res.headers()["content-type"], "text/xml");
    let xml = res.text().await.unwrap();
    assert!(xml.contains("<Type>Receiver</Type>"), "{xml}");
    assert!(xml.contains("<Code>ServiceUnavailable</Code>"), "{xml}");
    assert!(xml.contains("collided with a concurrent one"), "{xml}");
    let sessions: i64 = db.query_one("SELECT count(*) FROM sessions", &[]).await.unwrap().get(0);
    assert_eq!(sessions, 0, "no session was saved");
    let metrics = scrape(&t).await;
    assert!(metrics.contains("tessera_role_assumptions_total{outcome=\"contended\"} 1"), "{metrics}");
    assert!(metrics.contains("tessera_role_assumptions_total{outcome=\"internal\"} 0"), "{metrics}");
}

tessera_testkit::postgres_only!(
    a_contended_write_answers_503_contended_and_the_client_retries_it,
    a_contended_assume_is_sts_service_unavailable,
);
