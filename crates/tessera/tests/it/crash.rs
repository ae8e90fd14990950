//! `kill -9` under concurrent assume load, then a restart: every session the server
//! acknowledged with a 201 is still there and its token still works.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_client::Client;

use crate::{Node, PgDb, assume_req, assume_setup, list_status};

async fn crash_and_check(database: &str) {
    let mut node = Node::start(database).await;
    let (user, role, as_user) = assume_setup(&node.client).await;
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut workers = vec![];
    for _ in 0..16 {
        let (c, acked, req) = (as_user.clone(), Arc::clone(&acked), assume_req(&user, &role));
        workers.push(tokio::spawn(async move {
            // Until the server dies under us.
            while let Ok(s) = c.assume_role(&req).await {
                acked.lock().unwrap().push((s.id, s.session_token.unwrap()));
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    node.kill9();
    for w in workers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 50, "the load produced only {} sessions", acked.len());

    let node = Node::start(database).await;
    let admin: &Client = &node.client;
    for (id, token) in &acked {
        let s = admin.get_assumed_role(id).await.unwrap_or_else(|e| panic!("acknowledged session {id} lost: {e}"));
        assert_eq!(s.status, "Active");
        assert_eq!(list_status(&admin.with_token(token.clone())).await, 200, "token of {id} no longer works");
    }
    eprintln!(
        "{}: all {} acknowledged sessions survived kill -9",
        database.split(':').next().unwrap_or(""),
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_loses_no_acknowledged_session() {
    let dir = tempfile::tempdir().unwrap();
    crash_and_check(&format!("sqlite://{}", dir.path().join("tessera.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_loses_no_acknowledged_session() {
    let Some(db) = PgDb::create().await else {
        eprintln!("TEST_POSTGRES_URL is not set: skipping");
        return;
    };
    crash_and_check(&db.url).await;
}
